"""`python -m w2sbench` is the `w2sbench` command."""

from .cli import main

if __name__ == "__main__":
    main()

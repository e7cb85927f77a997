"""What a pull request changes in the leaderboard, read from git without a shell in between.

The pull-request job once listed the changed submissions with `git diff --name-only` into an unquoted shell
variable: a file named `x --help y.json` made reproduction print its help and exit 0, and a renamed file was
not reproduced. Here git's NUL-terminated listing (`-z`) is split on NUL bytes in Python and the names are
handed on as a list (`w2sbench leaderboard reproduce --changed-since REF`, or `changed -z` into `xargs -0`),
so no name is ever split, globbed or read as an option; renames count as changes (`-M`, `--diff-filter=AMR`).

Trusted data, which only the harness on the main branch writes (records of reproduction, the official
baselines, the maintainers' recipe runs, the built leaderboard), must not change in a pull request:
`trusted_changes` lists every path of those a pull request adds, changes, deletes or renames (either side).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from ..errors import W2SError

TRUSTED = ("records/", "baselines.json", "recipes/", "leaderboard.json")  # relative to the leaderboard folder


def _git(args: list[str], cwd: Path) -> bytes:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)
    except OSError as e:
        raise W2SError(f"git could not run here ({e})") from None
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise W2SError(f"git {args[0]} failed: {said[-1] if said else f'exit status {done.returncode}'}")
    return done.stdout


def _top_and_folder(folder: Path) -> tuple[Path, str]:
    """(the repository's top folder, `folder` relative to it as a git path)."""
    folder = Path(folder).absolute()
    probe = folder if folder.is_dir() else folder.parent
    top = Path(_git(["rev-parse", "--show-toplevel"], probe).decode().rstrip("\n"))
    try:
        rel = folder.resolve().relative_to(top.resolve()).as_posix()
    except ValueError:
        raise W2SError(f"{folder} is not inside the git repository at {top}") from None
    return top, rel


def _base(ref: str) -> str:
    if not ref or ref.startswith("-"):
        raise W2SError(f"--base {ref!r}: give a git ref (a branch, tag or commit)")
    return ref


def _names(out: bytes) -> list[str]:
    """git's -z listing: names separated by NUL, any other byte (newlines, spaces, dashes) part of a name."""
    return [raw.decode("utf-8", "surrogateescape") for raw in out.split(b"\0") if raw]


def changed_submissions(base: str, submissions_dir: Path) -> list[str]:
    """The submission files (`<submissions>/*.json`) added, modified or renamed between `base` and HEAD (their
    new names), as paths from the current folder's point of view: the repository top joined with git's name."""
    top, rel = _top_and_folder(submissions_dir)
    out = _git(
        ["diff", "-z", "--name-only", "--diff-filter=AMR", "-M", f"{_base(base)}...HEAD", "--", f":(literal){rel}"],
        top,
    )
    found = []
    for name in _names(out):
        leaf = name[len(rel) + 1 :] if name.startswith(rel + "/") else None
        if leaf and "/" not in leaf and leaf.endswith(".json") and not leaf.startswith("."):
            found.append(str(top / name))
    return found


def trusted_changes(base: str, submissions_dir: Path) -> list[str]:
    """Every path of trusted data (TRUSTED, in the leaderboard folder that holds `submissions_dir`) that
    differs between `base` and HEAD, renames split into their two sides so that moving a record away counts."""
    top, rel = _top_and_folder(Path(submissions_dir).absolute().parent)
    prefix = "" if rel == "." else rel + "/"
    out = _git(["diff", "-z", "--name-only", "--no-renames", f"{_base(base)}...HEAD", "--"], top)
    trusted = [prefix + t for t in TRUSTED]
    return [
        name
        for name in _names(out)
        if any(name == t.rstrip("/") or (t.endswith("/") and name.startswith(t)) for t in trusted)
    ]

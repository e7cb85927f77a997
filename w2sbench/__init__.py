"""w2sbench: one honest PGR for a weak-to-strong supervision method."""

__version__ = "0.1.0"

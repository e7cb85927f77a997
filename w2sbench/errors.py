"""User-facing errors: one clear line naming the file and field, never a deep traceback."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class W2SError(Exception):
    """An error caused by the user's input or environment; the CLI prints it as one line and exits 2."""


class UnknownNameError(W2SError):
    """A task, setting, method or model name that is not registered, with the closest names suggested."""

    def __init__(self, kind: str, name: str, known: Iterable[str]):
        known = sorted(known)
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        listing = f" Known {kind}s: {', '.join(known)}." if known and len(known) <= 30 else ""
        super().__init__(f"unknown {kind} {name!r}{hint}{listing}")
        self.kind, self.name, self.suggestions = kind, name, close


class MissingPackageError(W2SError):
    """An optional package that a feature needs is not installed."""

    def __init__(self, package: str, needed_for: str, install: str | None = None):
        install = install or f"pip install {package}"
        super().__init__(f"{needed_for} needs the package {package!r}, which is not installed: {install}")
        self.package = package


class ConfigError(W2SError):
    """A malformed YAML/JSON file: names the file and the field."""

    def __init__(self, path: str, field: str, message: str):
        where = f"{path}: field '{field}'" if field else str(path)
        super().__init__(f"{where}: {message}")
        self.path, self.field = str(path), field


class MethodFailed(W2SError):
    """One method failed on a task seed (its code raised, broke the method API, sent a reply the harness
    refuses, or passed a limit of its sandbox): that method stops, the run goes on with the others."""

    def __init__(self, method: str, message: str):
        super().__init__(message)
        self.method = method

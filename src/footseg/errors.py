"""The one exception type users see, and the one warning type.

Every failure a user can cause (bad file, bad folder, bad name) raises ``FootsegError`` with a one-line message
that names the file and the problem; the CLI prints it and exits non-zero instead of dumping a traceback.
``FootsegWarning`` says the same way what went on that the user would want to know of (the CLI prints one line).
"""

from __future__ import annotations

from pathlib import Path


class FootsegError(Exception):
    """A user-facing error: one line, naming the offending file (if any) and the problem."""

    def __init__(self, message: str, path: str | Path | None = None):
        self.path = None if path is None else Path(path)
        super().__init__(f"{path}: {message}" if path is not None else message)


class Interrupted(KeyboardInterrupt):
    """A stop (Ctrl-C) with a line saying what was kept and how to go on, which the CLI prints after "interrupted"."""


class FootsegWarning(UserWarning):
    """Something a user would want to know that stops nothing, e.g. a model run slower than it could be; one line."""

    def __init__(self, message: str, path: str | Path | None = None):
        super().__init__(f"{path}: {message}" if path is not None else message)


def require_folder(path: str | Path, what: str = "folder") -> Path:
    """``path`` as a folder that exists; a one-line ``FootsegError`` saying whether it is missing or a file."""
    path = Path(path)
    if not path.is_dir():
        raise FootsegError(f"is a file, not a {what}" if path.exists() else f"{what} not found", path)
    return path

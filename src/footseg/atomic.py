"""Atomic file writes: a crash at any moment leaves either the old file or the new one, never half of one.

Every file footseg writes that a later run reads back (checkpoints, weights, configs, histories, exports) goes
through ``atomic_path``: write to a temporary name in the same folder, fsync, then ``os.replace``. Outputs made again
in a moment where lost (masks and overlays) skip the fsync (``durable=False``): a stop still leaves no half file, and a
folder of photos is not slowed by a disk flush per file.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from footseg.errors import FootsegError


def check_writable(path: str | Path, folder: bool = False, hint: str = "") -> None:
    """Refuse, before any work is spent on what goes there, an output path footseg could not write: a file where a
    folder must be (or the other way round), a path under a file, or one in a folder this user cannot write. ``hint``
    (say, "choose another --out") ends each message."""
    end = f"; {hint}" if hint else ""
    path = Path(path)
    if path.exists() and path.is_dir() != folder:
        raise FootsegError(("exists and is not a folder" if folder else "is a folder; name a file") + end, path)
    # A file is written beside itself and renamed over (atomic_path): its folder is what must be writable.
    existing = path if folder and path.is_dir() else path.parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise FootsegError(f"cannot be made: {existing} is a file{end}", path)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise FootsegError(f"cannot be written: no write permission in {existing}{end}", path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | Path, durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; when the block succeeds it replaces ``path``, else it is removed."""
    with atomic_paths(path, durable=durable) as (tmp,):
        yield tmp


@contextmanager
def atomic_paths(*paths: str | Path, durable: bool = True) -> Iterator[tuple[Path, ...]]:
    """``atomic_path`` for files that belong together (weights and their config): every temporary file is complete
    and on disk before the first replaces its path, and they replace theirs in the order given, so a crash pairs a
    new file with an old one only between two renames, never while one is still being written."""
    targets = [Path(p) for p in paths]
    temps: list[Path] = []
    try:
        for path in targets:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            except OSError as exc:
                raise _unwritable(path, exc) from exc
            os.close(fd)
            temps.append(Path(tmp_name))
        yield tuple(temps)
        for tmp, path in zip(temps, targets, strict=True):
            try:
                if durable:
                    with open(tmp, "rb") as f:
                        os.fsync(f.fileno())  # (where a full disk may show first)
                os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; results should be as readable as any
            except OSError as exc:
                raise _unwritable(path, exc) from exc
        for tmp, path in zip(temps, targets, strict=True):
            try:
                os.replace(tmp, path)
            except OSError as exc:
                raise _unwritable(path, exc) from exc
    finally:
        for tmp in temps:
            tmp.unlink(missing_ok=True)


def _unwritable(path: Path, exc: OSError) -> FootsegError:
    """The error for ``path`` that the system refused: named by the file asked for, not by a temporary name the user
    never gave, and saying which folder above it is a file where one is."""
    try:
        check_writable(path)
    except FootsegError as clearer:
        return clearer
    return FootsegError(f"cannot be written: {exc.strerror or exc}", path)


def atomic_write_bytes(path: str | Path, data: bytes, durable: bool = True) -> None:
    with atomic_path(path, durable) as tmp:
        try:
            tmp.write_bytes(data)
        except OSError as exc:  # a full disk, say
            raise _unwritable(Path(path), exc) from exc


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_copy(src: str | Path, dest: str | Path) -> None:
    """Copy ``src`` to ``dest`` atomically: a folder is never seen with half a file."""
    with atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)

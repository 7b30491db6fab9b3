"""One footseg job at a time writes a folder.

Two jobs writing one folder spoil each other's work without an error: two trainings of one run overwrite each other's
checkpoint and history (a resume then continues whichever saved last), two `recipe run`s into one folder run each stage
twice over the same files, two `video`s replace each other's partial overlay. A job that writes a folder holds an
advisory lock (``flock``) on the folder itself while it runs, and a second job asking for it is refused at once, in one
line. The kernel drops the lock when its process ends, however it ends (a crash, SIGKILL), so nothing stale is left to
clear by hand, and the folder gets no lock file. Jobs are kept apart on one machine: an NFS folder's lock is each
client's own, a file system without locks keeps nobody apart, and Windows (no flock) neither.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from footseg.atomic import check_writable
from footseg.errors import FootsegError

try:
    import fcntl
except ImportError:  # Windows: no flock; jobs there are not kept apart
    fcntl = None  # type: ignore[assignment]

_held: set[int] = set()  # this process's handles on the folders it holds


def _drop_in_child() -> None:
    # A forked child (a DataLoader worker, a pool's process) shares the parent's locked handles; its copies are closed
    # so that the lock goes with the job that took it, not with the last of its workers.
    for handle in _held:
        with contextlib.suppress(OSError):
            os.close(handle)
    _held.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_drop_in_child)


@contextlib.contextmanager
def one_writer(folder: str | Path, hint: str = "") -> Iterator[Path]:
    """Hold ``folder`` (made if missing) for this process while the block runs; a ``FootsegError`` naming it if another
    process holds it. ``hint`` ends the messages, as in ``check_writable``. Folders made here for a job that leaves
    them empty (one refused after this) are removed again."""
    folder = Path(folder)
    check_writable(folder, folder=True, hint=hint)
    made = _make(folder)
    if fcntl is None:
        yield folder
        return
    handle = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        _lock(handle, folder, hint)
        here, held = os.stat(folder), os.fstat(handle)
        if (here.st_dev, here.st_ino) != (held.st_dev, held.st_ino):
            raise FootsegError("was removed or replaced as this job started: start it again", folder)
        _held.add(handle)
        try:
            yield folder
        finally:
            _held.discard(handle)
            for path in made:  # by the holder alone, while it holds: a refused job removes nothing
                try:
                    path.rmdir()
                except OSError:  # not empty: the job's work, kept (and so is everything above it)
                    break
    finally:
        os.close(handle)  # (the lock goes with the last descriptor of it)


def _make(folder: Path) -> list[Path]:
    """Make ``folder`` and any missing folders above it; returns those this call made, deepest first."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    made = []
    for path in reversed(missing):
        try:
            path.mkdir()
            made.append(path)
        except FileExistsError:  # made by another job meanwhile: its, not ours to remove
            pass
    return made[::-1]


def _lock(handle: int, folder: Path, hint: str) -> None:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(handle)
        raise FootsegError(f"another footseg job{f' (pid {holder})' if holder else ''} is writing here now: wait "
                           f"for it to end or stop it{f', or {hint}' if hint else ''}", folder) from None
    except OSError:  # a file system without locks (some network mounts): jobs there are not kept apart
        pass


def _holder(handle: int) -> int | None:
    """The pid holding the lock on ``handle``'s folder, where the system says (Linux's /proc/locks); None elsewhere."""
    info = os.fstat(handle)
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    # "1: FLOCK  ADVISORY  WRITE 1234 fd:00:56789 0 EOF": the device is the file system's, which a btrfs subvolume's
    # st_dev is not, so the inode decides where the device does not match
    exact = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    found = {}
    for fields in map(str.split, lines):
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[4].isdigit() and fields[5].endswith(f":{info.st_ino}"):
            found[fields[5]] = int(fields[4])
    if exact in found:
        return found[exact]
    return next(iter(found.values())) if len(found) == 1 else None

"""One footseg job at a time writes a folder.

Two jobs writing one folder spoil each other's work without an error: two trainings of one run overwrite each other's
checkpoint and history (a resume then continues whichever saved last), two `recipe run`s into one folder run each stage
twice over the same files, two `video`s replace each other's partial overlay. A job that writes a folder holds an
advisory lock (``flock``) on the folder itself while it runs, and a second job asking for it is refused at once, in one
line. The kernel drops the lock when its process ends, however it ends (a crash, SIGKILL, a lost machine), so nothing
stale is left to clear by hand, and the folder gets no lock file. Jobs on other machines sharing the folder over NFS
are kept apart where the mount supports locks; on a file system without them, and on Windows, they are not.
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


@contextlib.contextmanager
def one_writer(folder: str | Path, hint: str = "") -> Iterator[Path]:
    """Hold ``folder`` (made if missing) for this process while the block runs; a ``FootsegError`` naming it if another
    process holds it. ``hint`` ends the messages, as in ``check_writable``. A folder made here and left empty (a job
    refused after this) is removed again."""
    folder = Path(folder)
    check_writable(folder, folder=True, hint=hint)
    made = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    handle = os.open(folder, os.O_RDONLY)  # (not inherited by subprocesses: Python opens it non-inheritable)
    try:
        _lock(handle, folder, hint)
        yield folder
    finally:
        os.close(handle)  # (the lock goes with the last descriptor of it)
        if made:
            with contextlib.suppress(OSError):  # not empty: the job's work, kept
                folder.rmdir()


def _lock(handle: int, folder: Path, hint: str) -> None:
    if fcntl is None:
        return
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(folder)
        raise FootsegError(f"another footseg job{f' (pid {holder})' if holder else ''} is writing here now: wait "
                           f"for it to end or stop it{f', or {hint}' if hint else ''}", folder) from None
    except OSError:  # a file system without locks (some network mounts): jobs there are not kept apart
        pass


def _holder(folder: Path) -> int | None:
    """The pid holding ``folder``'s lock, where the system says (Linux's /proc/locks); None elsewhere."""
    info = folder.stat()
    where = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    for line in lines:  # "1: FLOCK  ADVISORY  WRITE 1234 fd:00:56789 0 EOF"
        fields = line.split()
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == where and fields[4].isdigit():
            return int(fields[4])
    return None

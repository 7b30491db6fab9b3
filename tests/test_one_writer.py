import multiprocessing
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from footseg import one_writer as one_writer_module
from footseg.errors import FootsegError
from footseg.one_writer import one_writer

pytestmark = pytest.mark.skipif(os.name != "posix", reason="folders are held with flock, a POSIX call")

HOLD = "import sys, time\nfrom footseg.one_writer import one_writer\nwith one_writer(sys.argv[1]):\n" \
       "    print('held', flush=True)\n    time.sleep(60)\n"
SAYS_WHO = Path("/proc/locks").exists()  # where the system says who holds a lock (Linux)


class _Elsewhere:
    """Another process holding a folder, as another footseg job would, until ended (SIGKILL: no cleanup of its own)."""

    def __init__(self, folder: Path) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True)

    def __enter__(self) -> subprocess.Popen:
        assert self.process.stdout is not None
        if self.process.stdout.readline() != "held\n":
            self.__exit__()
            raise AssertionError("the other process did not take the folder")
        return self.process

    def __exit__(self, *exc: object) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()


def test_a_folder_another_process_holds_is_refused_until_it_ends_however_it_ends(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    with _Elsewhere(folder) as other, pytest.raises(FootsegError) as info, one_writer(folder, "choose another --out"):
        pass
    who = f" (pid {other.pid})" if SAYS_WHO else ""
    assert str(info.value) == (f"{folder}: another footseg job{who} is writing here now: wait for it to end or stop "
                               "it, or choose another --out")
    with one_writer(folder) as held:  # the kernel dropped the lock with the killed process
        assert held == folder
    assert list(folder.iterdir()) == []  # no lock file: nothing stale to clear by hand


def test_the_same_process_cannot_hold_a_folder_twice(tmp_path: Path) -> None:
    who = f"pid {os.getpid()}" if SAYS_WHO else "another"
    with one_writer(tmp_path), pytest.raises(FootsegError, match=who), one_writer(tmp_path):
        pass


def test_folders_made_for_a_job_that_wrote_nothing_go_again(tmp_path: Path) -> None:
    with one_writer(tmp_path / "a" / "b" / "refused"):
        assert (tmp_path / "a" / "b" / "refused").is_dir()
    assert not (tmp_path / "a").exists()
    with one_writer(tmp_path / "c" / "work"):
        (tmp_path / "c" / "work" / "result.txt").write_text("kept")
    assert (tmp_path / "c" / "work" / "result.txt").read_text() == "kept"
    (tmp_path / "yours").mkdir()
    with one_writer(tmp_path / "yours"):
        pass
    assert (tmp_path / "yours").is_dir()  # a folder that was there stays, empty or not


def test_a_refused_job_leaves_the_folder_it_made_to_the_job_holding_it(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "new"
    make = one_writer_module._make
    others: list[_Elsewhere] = []

    def made_then_taken(path: Path) -> list[Path]:  # another job takes the folder between its making and the lock
        made = make(path)
        others.append(_Elsewhere(path))
        others[-1].__enter__()
        return made

    monkeypatch.setattr(one_writer_module, "_make", made_then_taken)
    try:
        with pytest.raises(FootsegError, match="another footseg job"), one_writer(folder):
            pass
        assert folder.is_dir()  # the holder's now, still empty: not removed from under it
    finally:
        for other in others:
            other.__exit__()


def _work(started: object) -> None:
    import time

    started.set()
    time.sleep(30)


def test_a_forked_worker_does_not_keep_the_folder_held_after_its_job(tmp_path: Path) -> None:
    fork = multiprocessing.get_context("fork")
    started = fork.Event()
    with one_writer(tmp_path):
        worker = fork.Process(target=_work, args=(started,), daemon=True)  # as a DataLoader worker
        worker.start()
        assert started.wait(30)
    try:
        with one_writer(tmp_path):  # the job has ended; its worker lives on
            assert worker.is_alive()
    finally:
        worker.kill()
        worker.join()


def test_a_file_where_the_folder_goes_is_refused_by_name(tmp_path: Path) -> None:
    (tmp_path / "out").write_text("")
    with pytest.raises(FootsegError, match=r"out: exists and is not a folder; choose another --out$"), \
            one_writer(tmp_path / "out", hint="choose another --out"):
        pass

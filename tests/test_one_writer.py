import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from footseg.errors import FootsegError
from footseg.one_writer import one_writer

pytestmark = pytest.mark.skipif(os.name != "posix", reason="folders are held with flock, a POSIX call")

HOLD = "import sys, time\nfrom footseg.one_writer import one_writer\nwith one_writer(sys.argv[1]):\n" \
       "    print('held', flush=True)\n    time.sleep(60)\n"


def _held_elsewhere(folder: Path) -> subprocess.Popen:
    """Another process holding ``folder``, as another footseg job would."""
    other = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True)
    assert other.stdout is not None and other.stdout.readline() == "held\n"
    return other


def test_a_folder_another_process_holds_is_refused_until_it_ends_however_it_ends(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    other = _held_elsewhere(folder)
    try:
        with pytest.raises(FootsegError) as info, one_writer(folder, hint="choose another --out"):
            pass
        assert str(info.value) == (f"{folder}: another footseg job (pid {other.pid}) is writing here now: wait for "
                                   "it to end or stop it, or choose another --out")
    finally:
        other.send_signal(signal.SIGKILL)  # no cleanup of its own: the kernel drops the lock with the process
        other.wait()
    with one_writer(folder) as held:
        assert held == folder
    assert list(folder.iterdir()) == []  # no lock file: nothing stale to clear by hand


def test_the_same_process_cannot_hold_a_folder_twice(tmp_path: Path) -> None:
    with one_writer(tmp_path), pytest.raises(FootsegError, match=f"pid {os.getpid()}"), one_writer(tmp_path):
        pass


def test_a_folder_made_for_a_job_that_wrote_nothing_goes_again(tmp_path: Path) -> None:
    with one_writer(tmp_path / "a" / "refused"):
        assert (tmp_path / "a" / "refused").is_dir()
    assert not (tmp_path / "a" / "refused").exists()
    with one_writer(tmp_path / "work"):
        (tmp_path / "work" / "result.txt").write_text("kept")
    assert (tmp_path / "work" / "result.txt").read_text() == "kept"
    (tmp_path / "yours").mkdir()
    with one_writer(tmp_path / "yours"):
        pass
    assert (tmp_path / "yours").is_dir()  # a folder that was there stays, empty or not


def test_a_file_where_the_folder_goes_is_refused_by_name(tmp_path: Path) -> None:
    (tmp_path / "out").write_text("")
    with pytest.raises(FootsegError, match=r"out: exists and is not a folder; choose another --out$"), \
            one_writer(tmp_path / "out", hint="choose another --out"):
        pass

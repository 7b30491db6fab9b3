import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from footseg.config import TrainConfig
from footseg.data.procedural import make_procedural_dataset
from footseg.errors import FootsegError
from footseg.one_writer import one_writer
from footseg.train import trainer
from footseg.train.checkpoint import load_checkpoint
from footseg.train.processes import per_process

ROOT = Path(__file__).resolve().parents[2]


def test_each_process_gets_an_equal_share_of_the_step_batch() -> None:
    cfg = TrainConfig(batch_size=16, data="d", out="o")
    assert per_process(cfg, 2).batch_size == 8
    assert per_process(cfg, 1) == cfg
    with pytest.raises(FootsegError, match="batch size 16 does not split into 3 equal process batches"):
        per_process(cfg, 3)


def _cfg(data: Path, run: Path, batch_size: int = 4, epochs: int = 3) -> dict:
    return dict(model="fastlinknet", width=0.25, size=64, epochs=epochs, batch_size=batch_size, workers=0,
                data=str(data), out=str(run), progress=False, device="cpu")


def _start(data: Path, run: Path, resume: bool, epochs: int = 3) -> subprocess.Popen:
    code = ("import sys; from footseg.config import TrainConfig; from footseg.train.processes import "
            f"train_processes; train_processes(TrainConfig(**{_cfg(data, run, epochs=epochs)!r}), 2, resume={resume})")
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


@pytest.mark.slow
def test_two_processes_stop_on_sigterm_to_the_launcher_and_resume(tmp_path: Path) -> None:
    proc, run = _a_run_one_epoch_in(tmp_path, epochs=3)
    proc.send_signal(signal.SIGTERM)  # to the launcher alone, as a scheduler stopping the recipe would
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert "training stopped by SIGTERM at epoch 2" in err, err[-3000:]
    assert "KeyboardInterrupt: training stopped by SIGTERM; its checkpoint is in" in err
    assert json.loads((run / "config.json").read_text())["batch_size"] == 2  # each process's half of a step
    stopped_at = load_checkpoint(run / "checkpoint.pt")["progress"]["global_step"]
    assert 40 <= stopped_at < 80  # 160 images in steps of 4 (2 a process): 40 steps an epoch; stopped in the second
    # one process, with each process's batch or with the step's, would skip other images than the two did: refused,
    # before the run's folder is touched
    for batch_size in (2, 4):
        with pytest.raises(FootsegError, match="a checkpoint of training in 2 process"):
            trainer.train(TrainConfig(**_cfg(tmp_path / "data", run, batch_size=batch_size, epochs=5)), resume=True)
    assert json.loads((run / "config.json").read_text())["epochs"] == 3

    resumed = _start(tmp_path / "data", run, resume=True)
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err[-3000:]
    assert [h["epoch"] for h in json.loads((run / "history.json").read_text())] == [1, 2, 3]
    assert load_checkpoint(run / "checkpoint.pt")["progress"]["global_step"] == 120
    assert (run / "best" / "config.json").is_file()


@pytest.mark.slow
def test_a_failed_process_is_one_error_naming_the_run(tmp_path: Path) -> None:
    from footseg.train.processes import train_processes

    cfg = TrainConfig(model="fastlinknet", data=str(tmp_path / "none"), out=str(tmp_path / "run"), batch_size=2,
                      workers=0, device="cpu", progress=False)
    with pytest.raises(FootsegError, match=r"run: training in 2 processes failed \(exit status 2"):
        train_processes(cfg, 2)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc for the processes still running")
def test_the_processes_stop_with_a_checkpoint_when_their_launcher_is_killed(tmp_path: Path) -> None:
    proc, run = _a_run_one_epoch_in(tmp_path)
    proc.kill()  # SIGKILL: nothing passes a stop on; the processes notice they were handed to another parent
    proc.wait()
    deadline = time.monotonic() + 120
    while _running(str(run)):
        assert time.monotonic() < deadline, "training processes still running 120 s after their launcher died"
        time.sleep(0.1)
    err = proc.stderr.read()  # everything they wrote, now that the last of them has ended
    assert re.search(r"training stopped by SIGTERM at epoch \d+, batch \d+; checkpoint saved", err), err[-3000:]
    assert 40 <= load_checkpoint(run / "checkpoint.pt")["progress"]["global_step"] < LONG_RUN_EPOCHS * 40


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc for the processes")
def test_one_process_killed_fails_the_run_and_ends_the_other(tmp_path: Path) -> None:
    proc, run = _a_run_one_epoch_in(tmp_path)
    os.kill(_children(proc.pid)[-1], signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert "training in 2 processes failed (exit status" in err, err[-3000:]
    assert not _running(str(run))


# Long enough that the run cannot end by itself before the test has stopped it (on a fast machine three epochs of
# these tiny images ended before the processes noticed their launcher had been killed).
LONG_RUN_EPOCHS = 1000


def _a_run_one_epoch_in(tmp_path: Path, epochs: int = LONG_RUN_EPOCHS) -> tuple[subprocess.Popen, Path]:
    """A two-process run of ``epochs`` on ``tmp_path/data``, into ``tmp_path/run``, once its first epoch has ended."""
    data = make_procedural_dataset(tmp_path / "data", n_train=160, n_val=4, n_test=1, size=64)
    run = tmp_path / "run"
    proc = _start(data, run, resume=False, epochs=epochs)
    deadline = time.monotonic() + 180
    while not (run / "history.json").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no epoch within 180 s"
        time.sleep(0.01)
    return proc, run


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``, in order of their ids."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:  # "pid (name) state ppid ..."
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):  # ended since the listing
            pass
    return sorted(found)


def _running(marker: str) -> bool:
    """Whether some process's command line holds ``marker``."""
    for path in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if marker in path.read_text(errors="replace"):
                return True
        except OSError:  # ended since the listing
            pass
    return False


def test_the_first_failure_is_reported_and_the_others_ended(monkeypatch: pytest.MonkeyPatch) -> None:
    from footseg.train import processes

    monkeypatch.setattr(processes, "FAILED_GRACE_S", 0.5)
    sleeper = _deaf_to_sigterm()
    failing = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(3)"])
    assert processes._wait([sleeper, failing], stopped=[]) == 3
    assert sleeper.returncode == -signal.SIGKILL  # deaf to SIGTERM, so killed after the grace


def test_during_a_stop_a_process_still_running_after_the_grace_is_killed(monkeypatch: pytest.MonkeyPatch) -> None:
    from footseg.train import processes

    monkeypatch.setattr(processes, "FAILED_GRACE_S", 0.5)
    stuck = _deaf_to_sigterm()  # as one blocked in a collective whose other side has gone
    stopped = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(130)"])
    assert processes._wait([stuck, stopped], stopped=[signal.SIGTERM]) == 130
    assert stuck.returncode == -signal.SIGKILL


def _deaf_to_sigterm() -> subprocess.Popen:
    """A process that ignores SIGTERM, returned once its handler is in place."""
    code = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); "
            "time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "ready\n"
    return proc


def test_during_a_stop_a_process_that_ended_first_does_not_end_the_others() -> None:
    from footseg.train import processes

    saving = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1.5)"])  # still writing its checkpoint
    stopped = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(130)"])
    assert processes._wait([saving, stopped], stopped=[signal.SIGTERM]) == 130
    assert saving.returncode == 0


def test_an_error_in_the_launcher_leaves_no_process(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from footseg.train import processes

    started: list[subprocess.Popen] = []

    def broken(children: list[subprocess.Popen], stopped: list[int]) -> int:
        started.extend(children)
        raise RuntimeError("the launcher's own error")

    monkeypatch.setattr(processes, "_wait", broken)
    cfg = TrainConfig(data=str(tmp_path / "d"), out=str(tmp_path / "run"), batch_size=4, device="cpu")
    with pytest.raises(RuntimeError, match="the launcher's own error"):
        processes.train_processes(cfg, 2)
    assert len(started) == 2 and all(child.poll() is not None for child in started)


def test_a_run_folder_another_job_writes_is_refused_before_a_process_starts(monkeypatch: pytest.MonkeyPatch,
                                                                            tmp_path: Path) -> None:
    from footseg.train import processes

    started: list[object] = []
    monkeypatch.setattr(processes.subprocess, "Popen", lambda *a, **k: started.append(a))
    run = tmp_path / "run"
    cfg = TrainConfig(data=str(tmp_path / "d"), out=str(run), batch_size=4, device="cpu")
    with one_writer(run), pytest.raises(FootsegError, match=r"run: another footseg job( \(pid \d+\))? is writing here"):
        processes.train_processes(cfg, 2)
    assert started == [] and not run.exists()


def test_a_process_whose_launcher_died_before_it_looked_stops_at_once() -> None:
    # the launcher's pid from its environment, not this process's parent (which would already be its new one)
    code = ("import signal, sys; signal.signal(signal.SIGTERM, lambda *_: sys.exit(7)); "
            "from footseg.train.processes import _watch; _watch(launcher=-1)")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=120).returncode == 7


def test_several_processes_are_refused_on_a_gpu(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from footseg.train import processes

    monkeypatch.setattr(processes, "resolve_device", lambda name: "cuda")
    with pytest.raises(FootsegError, match="several training processes are for a CPU; a GPU trains in one"):
        processes.train_processes(TrainConfig(data="d", out=str(tmp_path / "run"), batch_size=4), 2)


@pytest.mark.parametrize(("status", "complete"), [(3, True), (130, False)])
def test_a_stop_after_every_process_finished_the_last_epoch_says_the_run_is_complete(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, status: int, complete: bool) -> None:
    # processes that stop the launcher (as a Ctrl-C would) and end as the trainer's processes do: having finished the
    # last epoch (processes.STOPPED_COMPLETE), or with a checkpoint to resume from (130)
    from footseg.train import processes

    ready = tmp_path / "rank 1 ready"  # (the stop reaches each process as SIGTERM, which the trainer's handle)
    fake = ("import os, pathlib, signal, sys, time\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            f"ready = pathlib.Path({str(ready)!r})\n"
            "if os.environ['RANK'] == '1': ready.touch()\n"
            "while not ready.exists(): time.sleep(0.01)\n"
            f"if os.environ['RANK'] == '0': os.kill(int(os.environ['{trainer.LAUNCHER_ENV}']), signal.SIGINT)\n"
            f"time.sleep(0.5); sys.exit({status})")
    real_popen = subprocess.Popen
    monkeypatch.setattr(subprocess, "Popen", lambda cmd, **kw: real_popen([sys.executable, "-c", fake], **kw))
    cfg = TrainConfig(data=str(tmp_path / "d"), out=str(tmp_path / "run"), batch_size=4, device="cpu")
    with pytest.raises(KeyboardInterrupt) as stop:
        processes.train_processes(cfg, 2)
    assert isinstance(stop.value, trainer.StopAfterTheRun) is complete
    expected = "SIGINT came after the last epoch: the run is complete" if complete else "training stopped by SIGINT"
    assert str(stop.value).startswith(expected)


def test_a_process_that_finished_the_run_before_its_stop_exits_with_its_own_status(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from footseg.train import processes

    def stopped_after_the_run(cfg: TrainConfig, resume: bool) -> Path:
        raise trainer.StopAfterTheRun("SIGTERM came after the last epoch: the run is complete")

    monkeypatch.setattr(trainer, "train", stopped_after_the_run)
    monkeypatch.setattr(processes.threading, "Thread", lambda **kw: type("T", (), {"start": lambda self: None})())
    config = json.dumps(TrainConfig(data="d", out="o").to_dict())
    assert processes.main([config]) == processes.STOPPED_COMPLETE

"""One training run as several processes on this machine's CPU: DDP, launched by torchrun.

On a 2-core CPU two processes of one thread each train the default network about 1.2 times as fast as one process of
two threads (benchmarks/README.md, "Two processes on 2 cores"): the small network's convolutions use a second thread
poorly, and each process makes its own half of the batches. Each process holds half of every batch, so BatchNorm
normalises over that half: the weights differ from a one-process run's, and a recipe says how many processes made
its weights (its ``procs``).

    python -m footseg.train.processes CONFIG_JSON [--resume]

is what each process runs (``train_processes`` starts them); CONFIG_JSON is a ``TrainConfig`` as JSON, its batch
that of one process.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from footseg.config import TrainConfig
from footseg.errors import FootsegError
from footseg.train import trainer

SHUTDOWN_TIMEOUT_S = 600  # how long torchrun waits for the processes to stop after passing a stop on


def per_process(cfg: TrainConfig, procs: int) -> TrainConfig:
    """``cfg`` with its batch (of one step, over all processes) split among ``procs`` processes."""
    if procs < 1 or cfg.batch_size % procs:
        raise FootsegError(f"batch size {cfg.batch_size} does not split into {procs} equal process batches")
    return dataclasses.replace(cfg, batch_size=cfg.batch_size // procs)


def train_processes(cfg: TrainConfig, procs: int, resume: bool = False) -> Path:
    """Train ``cfg`` (``batch_size``: the whole step's) in ``procs`` CPU processes; returns ``RUN/best``.

    One process trains in this one. A stop (Ctrl-C, or SIGTERM to this process) reaches every process: they stop
    after the same step, process 0 saves the run's checkpoint, and this raises KeyboardInterrupt, as the one-process
    trainer does; ``resume`` continues from it. A second Ctrl-C kills them at once.
    """
    if procs == 1:
        return trainer.train(cfg, resume)
    launched = per_process(cfg, procs)
    threads = max(1, (os.cpu_count() or 1) // procs)
    # torchrun kills a process still running SHUTDOWN_TIMEOUT_S after it passed a stop on (30 s unless told): a
    # stop that arrives during a validation pass waits for its end and the checkpoint after it
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={procs}",
           f"--shutdown-timeout={SHUTDOWN_TIMEOUT_S}", "-m", "footseg.train.processes",
           json.dumps(dataclasses.asdict(launched))]
    if resume:
        cmd.append("--resume")
    stopped: list[int] = []
    child: subprocess.Popen | None = None
    code: int | None = None

    def forward(signum: int, frame: Any) -> None:
        stopped.append(signum)
        if child is None:
            return  # not started yet: it is not started at all
        if len(stopped) == 1:
            _signal(child.pid, signal.SIGTERM)  # torchrun passes it on to every process
        elif signum == signal.SIGINT:  # a second Ctrl-C: at once, no checkpoint
            for pid in [*_children(child.pid), child.pid]:
                _signal(pid, signal.SIGKILL)

    # Before the start: a signal in between would otherwise leave the processes running with nobody to stop them.
    main_thread = threading.current_thread() is threading.main_thread()  # handlers can only be set there
    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)} if main_thread else {}
    try:
        if not stopped:
            # Its own session, as torchrun gives each process its own: a terminal's Ctrl-C reaches this process
            # alone, which passes one SIGTERM on. torchrun sets one thread a process and warns unless told.
            child = subprocess.Popen(cmd, env={**os.environ, "OMP_NUM_THREADS": str(threads)},
                                     start_new_session=True)
            if stopped:  # it came while the processes were being started
                _signal(child.pid, signal.SIGTERM)
            code = child.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if stopped and code != 0:  # (a stop that came after the processes had finished stopped nothing)
        raise KeyboardInterrupt(f"training stopped by {signal.Signals(stopped[0]).name}; its checkpoint is in "
                                f"{cfg.out}")
    if code != 0:
        raise FootsegError(f"training in {procs} processes failed (exit status {code}; the error is printed above)",
                           cfg.out)
    return Path(cfg.out) / "best"


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # ended already
        os.kill(pid, signum)


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux's /proc; none found elsewhere)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if _parent(stat) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):  # ended since the listing
            pass
    return found


def _parent(stat: Path) -> int:
    # /proc/PID/stat: "pid (name) state ppid ..."; the name may hold spaces and brackets, so split after its last ')'
    return int(stat.read_text().rsplit(")", 1)[1].split()[1])


def _watch(every_s: float = 5.0) -> None:
    """Stop this process's training once the process tree above it breaks: a launcher or torchrun killed outright
    (SIGKILL) passes no stop on, and the processes, each in a session of its own, would train on with nobody to take
    their result, beside a new run of the same recipe."""
    torchrun = os.getppid()
    try:
        launcher = _parent(Path(f"/proc/{torchrun}/stat"))
    except (OSError, ValueError, IndexError):
        return  # no /proc: not watched
    while True:
        time.sleep(every_s)
        if os.getppid() != torchrun:  # torchrun is gone, and with it the way a stop reaches every process
            os.kill(os.getpid(), signal.SIGTERM)  # the trainer's stop: the processes agree on the step to stop at
            return
        try:
            gone = _parent(Path(f"/proc/{torchrun}/stat")) != launcher  # torchrun was handed to another parent
        except (OSError, ValueError, IndexError):
            continue
        if gone:
            # One process tells torchrun, which passes one SIGTERM to each, as when the launcher stops the run.
            if os.environ.get("LOCAL_RANK") == "0":
                os.kill(torchrun, signal.SIGTERM)
            return


def main(argv: list[str] | None = None) -> int:
    """One of the training processes: ``python -m footseg.train.processes CONFIG_JSON [--resume]`` under torchrun."""
    parser = argparse.ArgumentParser(prog="python -m footseg.train.processes")
    parser.add_argument("config", help="a TrainConfig as JSON, batch per process")
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    threading.Thread(target=_watch, name="watch the launcher", daemon=True).start()
    try:
        trainer.train(TrainConfig.from_dict(json.loads(args.config)), resume=args.resume)
    except FootsegError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

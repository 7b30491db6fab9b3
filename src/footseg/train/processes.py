"""One training run as several processes on this machine's CPU: DDP over gloo, each process running the trainer.

On a 2-core CPU two processes of one thread each train the default network about 1.2 times as fast as one process of
two threads (benchmarks/README.md, "Two processes on 2 cores"): the small network's convolutions use a second thread
poorly, and each process makes its own half of the batches. Each process holds half of every batch, so BatchNorm
normalises over that half: the weights differ from a one-process run's, and a recipe says how many processes made
its weights (its ``procs``).

The processes are started here rather than by torchrun: torchrun's rendezvous is a TCP store that listens on every
network interface, while these meet through a file and talk to each other over loopback only.

    python -m footseg.train.processes CONFIG_JSON [--resume]

is what each process runs (``train_processes`` starts them, with RANK and WORLD_SIZE set); CONFIG_JSON is a
``TrainConfig`` as JSON, its batch that of one process.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from footseg.config import TrainConfig
from footseg.errors import FootsegError
from footseg.one_writer import one_writer
from footseg.runtime.device import resolve_device
from footseg.train import trainer

FAILED_GRACE_S = 30  # once one process has ended (failed, or stopped), how long the others get before they are killed
LOOPBACK = "lo" if sys.platform.startswith("linux") else "lo0"  # gloo's sockets: on this machine only
STOPPED_COMPLETE = 3  # a process's exit status for a stop that came after the last epoch: the run is complete


def per_process(cfg: TrainConfig, procs: int) -> TrainConfig:
    """``cfg`` with its batch (of one step, over all processes) split among ``procs`` processes."""
    if procs < 1 or cfg.batch_size % procs:
        raise FootsegError(f"batch size {cfg.batch_size} does not split into {procs} equal process batches")
    return dataclasses.replace(cfg, batch_size=cfg.batch_size // procs)


def train_processes(cfg: TrainConfig, procs: int, resume: bool = False) -> Path:
    """Train ``cfg`` (``batch_size``: the whole step's) in ``procs`` CPU processes; returns ``RUN/best``.

    One process trains in this one. A stop (Ctrl-C, or SIGTERM to this process) reaches every process: they stop
    after the same step, process 0 saves the run's checkpoint, and this raises KeyboardInterrupt, as the one-process
    trainer does; ``resume`` continues from it (``trainer.StopAfterTheRun`` where they all finished the last epoch:
    nothing is left to continue). A second Ctrl-C kills them at once. If one process fails, the others
    are ended and this raises the failure.
    """
    if procs == 1:
        return trainer.train(cfg, resume)
    if os.name != "posix":
        raise FootsegError(f"training in {procs} processes needs a POSIX system (its signals); use procs = 1")
    if resolve_device(cfg.device) == "cuda":
        raise FootsegError("several training processes are for a CPU; a GPU trains in one", cfg.out)
    launched = per_process(cfg, procs)
    cmd = [sys.executable, "-m", "footseg.train.processes", json.dumps(launched.to_dict())]
    cmd += ["--resume"] * resume
    stopped: list[int] = []
    children: list[subprocess.Popen] = []

    def forward(signum: int, frame: Any) -> None:
        stopped.append(signum)
        for child in children:  # (Popen's own methods: a child already reaped is left alone)
            if len(stopped) == 1:
                child.terminate()  # SIGTERM, the trainer's stop: they agree on the step to stop at
            elif signum == signal.SIGINT:  # a second Ctrl-C: at once, no checkpoint
                child.kill()

    # the run folder is held here for the processes (which leave it to their launcher) as one job writing it
    with one_writer(cfg.out, hint="choose another --out"):
        # Before the start: a signal in between would otherwise leave the processes running with nobody to stop them.
        main_thread = threading.current_thread() is threading.main_thread()  # handlers can only be set there
        previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)} if main_thread else {}
        try:
            with tempfile.TemporaryDirectory(prefix="footseg-rendezvous-") as meeting:
                env = {**os.environ, "WORLD_SIZE": str(procs), "LOCAL_WORLD_SIZE": str(procs),
                       trainer.LAUNCHER_ENV: str(os.getpid()),
                       # not as_uri(): torch reads the path of a file:// address without undoing its %-escapes
                       trainer.RENDEZVOUS_ENV: f"file://{Path(meeting) / 'store'}", "GLOO_SOCKET_IFNAME": LOOPBACK,
                       "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // procs))}
                for rank in range(procs):
                    if stopped:  # it came while the processes were being started
                        break
                    # Each in its own session: a terminal's Ctrl-C reaches this process alone, which passes one SIGTERM
                    # on (a second SIGINT would stop a process at once, without its checkpoint).
                    children.append(subprocess.Popen(cmd, env={**env, "RANK": str(rank), "LOCAL_RANK": str(rank)},
                                                     start_new_session=True))
                if stopped:
                    for child in children:
                        child.terminate()
                status = _wait(children, stopped)
        finally:
            for child in children:  # still running only when this is left by an error (_wait returns once all ended)
                if child.poll() is None:
                    child.kill()
                    child.wait()
            for s, handler in previous.items():
                signal.signal(s, handler)
    if stopped and len(children) == procs and all(c.returncode == STOPPED_COMPLETE for c in children):
        raise trainer.StopAfterTheRun(f"{signal.Signals(stopped[0]).name} came after the last epoch: the run is "
                                      "complete")
    if stopped and (status != 0 or len(children) < procs):  # (a stop after they had finished stopped nothing)
        saved = (Path(cfg.out) / "checkpoint.pt").is_file()
        raise KeyboardInterrupt(f"training stopped by {signal.Signals(stopped[0]).name}; "
                                + (f"its checkpoint is in {cfg.out}" if saved else "before its first checkpoint"))
    if status != 0:
        raise FootsegError(f"training in {procs} processes failed (exit status {status}; the error is printed above)",
                           cfg.out)
    return Path(cfg.out) / "best"


def _wait(children: list[subprocess.Popen], stopped: list[int]) -> int:
    """Wait for every child; returns 0, or the exit status of the first to end with another. Once one has failed,
    the others (whose collectives can no longer complete) get SIGTERM; during a stop they already have it, and end by
    themselves once the checkpoint is saved. Either way, those still running FAILED_GRACE_S after the first ended
    are killed: one stuck in a collective would otherwise hold the launcher for good."""
    first, ended_at = 0, None
    while True:
        codes = [child.poll() for child in children]
        if first == 0:
            first = next((code for code in codes if code not in (None, 0)), 0)
        if all(code is not None for code in codes):
            return first
        if first != 0 and ended_at is None:
            ended_at = time.monotonic()
            if not stopped:
                for child in children:
                    child.terminate()
        elif ended_at is not None and time.monotonic() - ended_at > FAILED_GRACE_S:
            for child in children:
                child.kill()
        time.sleep(0.1)


def _watch(launcher: int, every_s: float = 1.0) -> None:
    """Stop this process's training once its launcher is gone: a launcher killed outright (SIGKILL) passes no stop
    on, and the processes, each in a session of its own, would train on with nobody to take their result, beside a
    new run of the same recipe. ``launcher`` comes from the launcher itself: one that died while this process was
    still importing torch would leave ``os.getppid()`` naming its new parent already."""
    while os.getppid() == launcher:  # until handed to another parent: the launcher has ended
        time.sleep(every_s)
    os.kill(os.getpid(), signal.SIGTERM)  # the trainer's stop: the processes agree on the step to stop at


def main(argv: list[str] | None = None) -> int:
    """One of the training processes: ``python -m footseg.train.processes CONFIG_JSON [--resume]``."""
    parser = argparse.ArgumentParser(prog="python -m footseg.train.processes")
    parser.add_argument("config", help="a TrainConfig as JSON, batch per process")
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    launcher = int(os.environ.get(trainer.LAUNCHER_ENV, os.getppid()))  # watched as this process's parent
    threading.Thread(target=_watch, args=(launcher,), name="watch the launcher", daemon=True).start()
    try:
        trainer.train(TrainConfig.from_dict(json.loads(args.config)), resume=args.resume)
    except FootsegError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except trainer.StopAfterTheRun:  # (the processes agree on it: each asks the others after every epoch)
        return STOPPED_COMPLETE
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

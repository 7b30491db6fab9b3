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

LAUNCHER = "FOOTSEG_LAUNCHER_PID"  # the process that started the training processes, which end with it


def per_process(cfg: TrainConfig, procs: int) -> TrainConfig:
    """``cfg`` with its batch (of one step, over all processes) split among ``procs`` processes."""
    if procs < 1 or cfg.batch_size % procs:
        raise FootsegError(f"batch size {cfg.batch_size} does not split into {procs} equal process batches")
    return dataclasses.replace(cfg, batch_size=cfg.batch_size // procs)


def train_processes(cfg: TrainConfig, procs: int, resume: bool = False) -> Path:
    """Train ``cfg`` (``batch_size``: the whole step's) in ``procs`` CPU processes; returns ``RUN/best``.

    One process trains in this one. A stop (Ctrl-C, or SIGTERM to this process) reaches every process, which save a
    checkpoint after the same step and end; this raises KeyboardInterrupt then, as the one-process trainer does, and
    ``resume`` continues from it.
    """
    if procs == 1:
        return trainer.train(cfg, resume)
    launched = per_process(cfg, procs)
    threads = max(1, (os.cpu_count() or 1) // procs)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={procs}",
           "-m", "footseg.train.processes", json.dumps(dataclasses.asdict(launched))]
    if resume:
        cmd.append("--resume")
    # torchrun sets one thread a process and warns about it unless told; the trainer sets the same count. Its own
    # session: a terminal's Ctrl-C reaches this process alone, which passes one SIGTERM on (torchrun would pass a
    # SIGINT on to processes that had their own already, and a second one stops them without a checkpoint).
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), LAUNCHER: str(os.getpid())}
    child = subprocess.Popen(cmd, env=env, start_new_session=True)
    stopped: list[int] = []

    def forward(signum: int, frame: Any) -> None:
        stopped.append(signum)
        if len(stopped) == 1:
            child.send_signal(signal.SIGTERM)  # each process saves a checkpoint after the same step
        elif signum == signal.SIGINT:  # a second Ctrl-C: stop at once
            os.killpg(child.pid, signal.SIGKILL)

    main_thread = threading.current_thread() is threading.main_thread()  # handlers can only be set there
    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)} if main_thread else {}
    try:
        code = child.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if stopped:
        raise KeyboardInterrupt(f"training stopped by {signal.Signals(stopped[0]).name}; its checkpoint is in "
                                f"{cfg.out}")
    if code != 0:
        raise FootsegError(f"training in {procs} processes failed (exit status {code}; the error is printed above)",
                           cfg.out)
    return Path(cfg.out) / "best"


def _stop_when_gone(launcher: int, every_s: float = 5.0) -> None:
    """Stop the run once ``launcher`` has ended: a launcher killed outright (SIGKILL) cannot pass a stop on, and the
    processes, in a session of their own, would otherwise train on with nobody to take their result."""
    while True:
        time.sleep(every_s)
        try:
            os.kill(launcher, 0)
        except ProcessLookupError:
            # to torchrun, which passes one SIGTERM to every process, as when the launcher stops it: each saves a
            # checkpoint after the same step (a process signalling itself could be signalled after its stop began)
            os.kill(os.getppid(), signal.SIGTERM)
            return
        except PermissionError:  # a process of another user's holds the number: not gone
            pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m footseg.train.processes")
    parser.add_argument("config", help="a TrainConfig as JSON, batch per process")
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    if LAUNCHER in os.environ and os.environ.get("LOCAL_RANK") == "0":  # one watcher, so torchrun is told once
        threading.Thread(target=_stop_when_gone, args=(int(os.environ[LAUNCHER]),), daemon=True).start()
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

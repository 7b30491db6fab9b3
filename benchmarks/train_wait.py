"""`footseg train` with one more line per epoch: the epoch's seconds, the seconds the loop waited for batches, and the
live threads and worker processes. Tells a loader-bound run (waiting dominates) from a step-bound one.

    python benchmarks/train_wait.py train --data DIR --out RUN ... (any `footseg train` options)

With TRAIN_WAIT_PROFILE=E in the environment, epoch E (1-based) runs under torch.profiler and its busiest operators
follow, by time on the host (where a step bound by kernel launches or synchronisation spends it), each line starting
"[profile]".

It wraps two private methods of footseg.train.trainer._Trainer (``_batches``, ``_train_epoch``): a diagnostic,
not an API; the training itself is unchanged.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Iterator

import torch

import footseg.train.trainer as trainer
from footseg.cli import main

_batches, _train_epoch = trainer._Trainer._batches, trainer._Trainer._train_epoch
_waited = [0.0]


def _timed_batches(self: trainer._Trainer) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    batches = iter(_batches(self))
    while True:
        start = time.perf_counter()
        try:
            batch = next(batches)
        except StopIteration:
            return
        _waited[0] += time.perf_counter() - start
        yield batch


def _timed_epoch(self: trainer._Trainer, stop: object) -> None:
    _waited[0] = 0.0
    epoch = self.state.epoch + 1
    start = time.perf_counter()
    if os.environ.get("TRAIN_WAIT_PROFILE") == str(epoch):
        _profiled_epoch(self, stop)
    else:
        _train_epoch(self, stop)
    print(f"[wait] epoch {epoch}: {time.perf_counter() - start:.2f} s, waiting for batches "
          f"{_waited[0]:.3f} s, threads {threading.active_count()}, workers {len(multiprocessing.active_children())}",
          flush=True)


def _profiled_epoch(self: trainer._Trainer, stop: object) -> None:
    activities = [torch.profiler.ProfilerActivity.CPU]
    if self.device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as profile:
        _train_epoch(self, stop)
    table = profile.key_averages().table(sort_by="self_cpu_time_total", row_limit=20, max_name_column_width=40)
    for line in table.splitlines():
        print(f"[profile] {line}", flush=True)


if __name__ == "__main__":
    trainer._Trainer._batches, trainer._Trainer._train_epoch = _timed_batches, _timed_epoch
    sys.exit(main(sys.argv[1:]))

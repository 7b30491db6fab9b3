"""`footseg train` with one more line per epoch: the epoch's seconds, the seconds the loop waited for batches, and the
live threads and worker processes. Tells a loader-bound run (waiting dominates) from a step-bound one.

    python benchmarks/train_wait.py train --data DIR --out RUN ... (any `footseg train` options)

It wraps two private methods of footseg.train.trainer._Trainer (``_batches``, ``_train_epoch``): a diagnostic,
not an API; the training itself is unchanged.
"""

from __future__ import annotations

import multiprocessing
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
    start = time.perf_counter()
    _train_epoch(self, stop)
    print(f"[wait] epoch {self.state.epoch + 1}: {time.perf_counter() - start:.2f} s, waiting for batches "
          f"{_waited[0]:.3f} s, threads {threading.active_count()}, workers {len(multiprocessing.active_children())}",
          flush=True)


if __name__ == "__main__":
    trainer._Trainer._batches, trainer._Trainer._train_epoch = _timed_batches, _timed_epoch
    sys.exit(main(sys.argv[1:]))

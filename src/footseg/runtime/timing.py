"""Latency sampling and statistics: the one timing module, shared by ``footseg bench``, ``footseg eval --clips``,
the video runner and the MediaPipe peer script.

Standard library only, on purpose: ``benchmarks/mediapipe_peer.py`` imports it from a venv that has no torch.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence

from footseg.errors import FootsegError

WARMUP_RUNS = 3


def time_runs(
    fn: Callable[[], object], runs: int = 20, warmup: int = WARMUP_RUNS, min_time: float = 0.0
) -> list[float]:
    """Milliseconds of each timed call of ``fn``, after ``warmup`` untimed calls.

    Timing goes on until there are at least ``runs`` samples *and* ``min_time`` seconds have passed, so a fast
    model gets thousands of samples and a stable median while a slow one still gets ``runs``.
    """
    if runs < 1:
        raise FootsegError(f"runs must be at least 1, got {runs}")
    if warmup < 0:
        raise FootsegError(f"warm-up runs cannot be negative, got {warmup}")
    for _ in range(warmup):
        fn()
    times: list[float] = []
    begin = time.perf_counter()
    while len(times) < runs or time.perf_counter() - begin < min_time:
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return times


def latency_stats(times: Sequence[float]) -> dict:
    """Median and 90th percentile (nearest rank) of latencies in ms, and the frames per second of the median."""
    ordered = sorted(times)
    median = statistics.median(ordered)
    return {
        "latency_ms": median,
        "p90_ms": ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)],  # the ceil(0.9 n)-th smallest
        "fps": 1000.0 / median,
        "runs": len(ordered),
    }


class Stopwatch:
    """Milliseconds of each timed section of a loop that cannot be timed by ``time_runs`` (each run needs the
    previous one's output, as video frames do): ``with watch: step()``, then ``watch.stats()``."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._start = 0.0

    def __enter__(self) -> Stopwatch:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.times.append((time.perf_counter() - self._start) * 1000)

    def stats(self) -> dict:
        """``latency_stats`` of the sections so far; a ``FootsegError`` when nothing was timed."""
        if not self.times:
            raise FootsegError("nothing was timed")
        return latency_stats(self.times)

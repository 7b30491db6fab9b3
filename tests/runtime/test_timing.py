"""The one timing module: median and nearest-rank 90th percentile, the numbers every benchmark table reports."""

from __future__ import annotations

import pytest

from footseg.errors import FootsegError
from footseg.runtime.timing import Stopwatch, latency_stats


def test_p90_is_the_nearest_rank() -> None:
    # of 20 samples the 90th percentile is the 18th smallest (rank ceil(0.9 * 20)), not the 19th
    stats = latency_stats([float(v) for v in range(20, 0, -1)])
    assert (stats["latency_ms"], stats["p90_ms"], stats["runs"]) == (10.5, 18.0, 20)
    assert stats["fps"] == pytest.approx(1000 / 10.5)
    assert latency_stats([7.0, 3.0, 5.0])["p90_ms"] == 7.0  # rank ceil(2.7) = 3
    assert latency_stats([4.0])["p90_ms"] == 4.0


def test_a_stopwatch_that_timed_nothing_says_so() -> None:
    with pytest.raises(FootsegError):
        Stopwatch().stats()

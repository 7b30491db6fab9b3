"""ONNX Runtime forwards of an exported file timed: in this process, or in a fresh process at each call.

A process's own speed on this machine depends on where it landed. The default's fp32 file timed in four processes, one
after another, gave medians of 4.4, 3.0, 4.0 and 4.1 ms, each steady over four sessions and six rounds inside its
process (2026-12-07). One process timing every round carries its luck into the whole benchmark, where MediaPipe's
peer is timed in a fresh process each round; ``fresh_process_sampler`` gives footseg's rows the same draws, so both
sides average their luck over the rounds. ``python -m footseg.bench.onnx_timing`` is that process: it imports no torch.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from footseg.errors import FootsegError
from footseg.runtime.timing import time_runs

Sampler = Callable[[int, int, float], list[float]]  # (runs, warmup, min_time) -> latencies in ms
FRESH_TIMEOUT_S = 600


def onnx_sampler(path: str | Path, threads: int) -> Sampler:
    """Times ONNX Runtime forwards of the exported ``path`` on one input of its own size; one session for all calls."""
    from footseg.runtime.onnx_model import OnnxModel  # onnxruntime is loaded only when an ONNX row is timed

    session = OnnxModel(path, threads=threads)
    h, w = session.info.input_size
    x = np.random.default_rng(0).random((1, session.info.in_channels, h, w), dtype=np.float32)
    feeds = session.feeds(x)  # built once: a prior-mask model's split inputs are not part of a forward's cost
    return lambda runs, warmup, min_time: time_runs(lambda: session.session.run(None, feeds), runs=runs,
                                                    warmup=warmup, min_time=min_time)


def fresh_process_sampler(path: str | Path, threads: int) -> Sampler:
    """``onnx_sampler``'s timing of ``path``, each call in a new process (a one-line ``FootsegError`` naming the file
    where that process fails)."""

    def sample(runs: int, warmup: int, min_time: float) -> list[float]:
        command = [sys.executable, "-m", "footseg.bench.onnx_timing", str(path), "--threads", str(threads),
                   "--runs", str(runs), "--warmup", str(warmup), "--min-time", repr(float(min_time))]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=FRESH_TIMEOUT_S, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise FootsegError(f"could not be timed in a fresh process ({type(exc).__name__}: {exc})", path) from exc
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise FootsegError(f"timing it in a fresh process failed (exit {done.returncode}): {last}", path)
        return [float(t) for t in json.loads(done.stdout)]

    return sample


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m footseg.bench.onnx_timing",
                                     description="latencies (ms, JSON) of an exported model's forwards in ONNX Runtime")
    parser.add_argument("path")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--min-time", type=float, default=0.0)
    args = parser.parse_args(argv)
    try:
        samples = onnx_sampler(args.path, args.threads)(args.runs, args.warmup, args.min_time)
    except FootsegError as exc:
        print(f"footseg: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(samples))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What a model costs: parameters, GFLOPs, CPU latency (PyTorch eager or ONNX Runtime) and the roofline.

The one place footseg times a network: ``footseg bench``, the Pareto sweep, the report, compression and the model
card all measure latency through the samplers here, which time with ``footseg.runtime.timing``.

FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` on one (1, C, size, size) input; it counts
convolutions and matrix products only (not BatchNorm, activations or resizes) and one multiply-add as 2 FLOPs.
Latency is one batch-1 forward with a pinned thread count: PyTorch eager (eval mode, ``torch.inference_mode``) or
ONNX Runtime. The roofline divides the achieved GFLOP/s by this CPU's fp32 peak at the same thread count, estimated
from a large ``torch.mm`` measured in the same run.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from footseg.bench import onnx_timing
from footseg.bench.onnx_timing import Sampler
from footseg.errors import FootsegError, FootsegWarning
from footseg.runtime.timing import WARMUP_RUNS, latency_stats, time_runs

PEAK_SIZE = 2048  # side of the square fp32 matmul whose speed stands for the CPU's peak
PEAK_REPEATS = 3


def input_channels(model: nn.Module) -> int:
    """3 (RGB), or 4 for a prior-mask network: what one timed input must have."""
    return int(getattr(model, "in_channels", 3))


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, size: int = 256) -> int:
    """FLOPs (2 per multiply-add) of one forward on a (1, C, size, size) input, C the network's input channels."""
    was_training = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as counter, torch.inference_mode():
            model(torch.rand(1, input_channels(model), size, size))
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


# Far above a phone's or a desktop's cores; PyTorch crashed (a segmentation fault, no message) at 100,000. "all" is
# this machine's cores, whatever their number.
MAX_THREADS = 256


def check_threads(threads: int) -> None:
    most = max(MAX_THREADS, available_threads())
    if not 1 <= threads <= most:
        raise FootsegError(f"threads must be 1 to {most}, got {threads}")


def measure_model(
    model: nn.Module,
    size: int = 256,
    threads: int = 1,
    runs: int = 20,
    warmup: int = WARMUP_RUNS,
    min_time: float = 0.0,
) -> dict:
    """Cost of ``model`` on one (1, C, size, size) input in PyTorch eager.

    Keys: params, gflops, size_mb (parameters and buffers as fp32), latency_ms (median), p90_ms, fps, runs.
    """
    check_threads(threads)  # before the FLOP count, so a bad setting fails at once (time_runs checks runs)
    size_mb = sum(t.numel() for t in (*model.parameters(), *model.buffers())) * 4 / 1e6  # every value as fp32
    gflops = count_flops(model, size) / 1e9
    timing = time_torch(model, size=size, threads=threads, runs=runs, warmup=warmup, min_time=min_time)
    return {"params": count_params(model), "gflops": gflops, "size_mb": size_mb, **timing}


def time_torch(
    model: nn.Module,
    size: int = 256,
    threads: int = 1,
    runs: int = 20,
    warmup: int = WARMUP_RUNS,
    min_time: float = 0.0,
) -> dict:
    """Latency of PyTorch eager on one (1, C, size, size) input at ``threads`` threads (model mode restored)."""
    return latency_stats(_torch_samples(model, size, threads, runs, warmup, min_time))


def _torch_samples(model: nn.Module, size: int, threads: int, runs: int, warmup: int, min_time: float) -> list[float]:
    check_threads(threads)
    was_training = model.training
    previous_threads = torch.get_num_threads()
    model.eval()
    torch.set_num_threads(threads)
    try:
        x = torch.rand(1, input_channels(model), size, size)
        with torch.inference_mode():
            return time_runs(lambda: model(x), runs=runs, warmup=warmup, min_time=min_time)
    finally:
        torch.set_num_threads(previous_threads)
        model.train(was_training)


def peak_gflops(threads: int) -> float:
    """This CPU's fp32 peak GFLOP/s at ``threads`` threads: the best of a few ``torch.mm`` of PEAK_SIZE matrices.

    A large square matmul runs at close to the machine's FMA throughput (it is compute-bound), so it stands for
    the roofline's flat part. Cached per process: one estimate per thread count and matrix size.
    """
    check_threads(threads)
    return _peak_gflops(threads, PEAK_SIZE)


@functools.cache
def _peak_gflops(threads: int, n: int) -> float:
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a, b = torch.rand(n, n), torch.rand(n, n)
        torch.mm(a, b)  # first call allocates and warms the caches
        best = min(time_runs(lambda: torch.mm(a, b), runs=PEAK_REPEATS, warmup=0))
    finally:
        torch.set_num_threads(previous)
    return 2 * n**3 / (best / 1000) / 1e9


def available_threads() -> int:
    """Cores this process may run on (what "all" threads means)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def parse_threads(spec: str | int | Sequence[int | str]) -> list[int]:
    """"1,all" -> [1, N] (N = usable cores), duplicates dropped, order kept."""
    items = spec.split(",") if isinstance(spec, str) else [spec] if isinstance(spec, int) else list(spec)
    counts: list[int] = []
    for item in items:
        text = str(item).strip()
        if text == "all":
            count = available_threads()
        else:
            try:
                count = int(text)
            except ValueError:
                raise FootsegError(f"thread counts are positive integers or 'all', got '{text}'") from None
        check_threads(count)
        counts.append(count)
    if not counts:
        raise FootsegError("no thread count given")
    return list(dict.fromkeys(counts))


def warn_oversubscribed(counts: Sequence[int]) -> None:
    """One warning line for thread counts beyond this machine's cores (said once per benchmark, by its entry point)."""
    cores = available_threads()
    if over := sorted({c for c in counts if c > cores}):
        warnings.warn(FootsegWarning(f"{', '.join(map(str, over))} threads on {cores} core{'s' * (cores != 1)}: "
                                     "threads beyond the cores take turns on them, so such a row times their "
                                     "contention"), stacklevel=2)




def torch_sampler(model: nn.Module, size: int, threads: int) -> Sampler:
    """Times PyTorch eager forwards of ``model`` on one (1, C, size, size) input at ``threads`` threads."""
    return lambda runs, warmup, min_time: _torch_samples(model, size, threads, runs, warmup, min_time)


def onnx_sampler(path: str | Path, threads: int, fresh_process: bool = False) -> Sampler:
    """Times ONNX Runtime forwards of the exported ``path`` on one input of its own size: one session for all calls,
    or with ``fresh_process`` a new process for each call (``footseg.bench.onnx_timing``: how ``footseg bench`` times
    its rows, as MediaPipe's peer is timed)."""
    check_threads(threads)
    return (onnx_timing.fresh_process_sampler if fresh_process else onnx_timing.onnx_sampler)(path, threads)


def interleaved(
    samplers: Sequence[Sampler], rounds: int, runs: int, warmup: int, min_time: float,
    between: Callable[[int, float], None] | None = None,
) -> list[list[float]]:
    """Latencies of every sampler, timed in ``rounds`` interleaved rounds of ``runs / rounds`` forwards and
    ``min_time / rounds`` seconds each (``between(runs, min_time)`` gets the same share after each round). A burst
    of load on a shared machine then slows every row a little instead of one row a lot, so rows compare fairly."""
    if rounds < 1:
        raise FootsegError(f"rounds must be at least 1, got {rounds}")
    share_runs, share_time = -(-runs // rounds), min_time / rounds
    samples: list[list[float]] = [[] for _ in samplers]
    for _ in range(rounds):
        for i, sample in enumerate(samplers):
            # each round warmed as the first: a sampler may start afresh each round (a new process, as the peer's)
            samples[i] += sample(share_runs, warmup, share_time)
        if between is not None:
            between(share_runs, share_time)
    return samples


def time_onnx(
    path: str | Path, threads: int = 1, runs: int = 20, warmup: int = WARMUP_RUNS, min_time: float = 0.0
) -> dict:
    """Latency of the exported ``path`` in ONNX Runtime (CPU) on one input of its own size at ``threads`` threads."""
    return latency_stats(onnx_sampler(path, threads)(runs, warmup, min_time))


def add_roofline(row: dict) -> dict:
    """Fill gflops_per_s, peak_gflops_per_s and roofline_fraction of a row with gflops, latency_ms and threads."""
    peak = peak_gflops(row["threads"])
    achieved = row["gflops"] / (row["latency_ms"] / 1000) if row.get("gflops") is not None else None
    row["gflops_per_s"] = achieved
    row["peak_gflops_per_s"] = peak
    row["roofline_fraction"] = achieved / peak if achieved is not None else None
    return row



"""Model cost: parameters, GFLOPs, fp32 size and CPU latency (the thesis's speed table).

FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` on one (1, 3, size, size) input; it counts
convolutions and matrix products only (not BatchNorm, activations or resizes) and one multiply-add as 2 FLOPs.
Latency is PyTorch eager on the CPU in eval mode under ``torch.inference_mode``, with a fixed thread count.
"""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from footseg.errors import FootsegError
from footseg.models.registry import create_model, list_models

WARMUP_RUNS = 3


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, size: int = 256) -> int:
    """FLOPs (2 per multiply-add) of one forward on a (1, 3, size, size) input."""
    was_training = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as counter, torch.inference_mode():
            model(torch.rand(1, 3, size, size))
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def measure_model(model: nn.Module, size: int = 256, threads: int = 1, runs: int = 20) -> dict:
    """Cost of ``model`` on one (1, 3, size, size) input: params, gflops, size_mb, latency_ms (median), p90_ms."""
    if runs < 1:
        raise FootsegError(f"runs must be at least 1, got {runs}")
    if threads < 1:
        raise FootsegError(f"threads must be at least 1, got {threads}")
    size_mb = sum(t.numel() for t in (*model.parameters(), *model.buffers())) * 4 / 1e6  # every value as fp32
    gflops = count_flops(model, size) / 1e9

    was_training = model.training
    previous_threads = torch.get_num_threads()
    model.eval()
    torch.set_num_threads(threads)
    try:
        x = torch.rand(1, 3, size, size)
        times = []
        with torch.inference_mode():
            for _ in range(WARMUP_RUNS):
                model(x)
            for _ in range(runs):
                start = time.perf_counter()
                model(x)
                times.append((time.perf_counter() - start) * 1000)
    finally:
        torch.set_num_threads(previous_threads)
        model.train(was_training)
    times.sort()
    return {
        "params": count_params(model),
        "gflops": gflops,
        "size_mb": size_mb,
        "latency_ms": statistics.median(times),
        "p90_ms": times[min(len(times) - 1, int(0.9 * len(times)))],
    }


def benchmark(models: list[str] | None = None, size: int = 256, threads: int = 1, runs: int = 20) -> list[dict]:
    """One row per model (all registered models by default), untrained weights at width 1."""
    names = list(models) if models else list_models()
    built = [(name, create_model(name)) for name in names]  # fail on a bad name before timing anything
    rows = []
    for name, model in built:
        row = {"model": name, **measure_model(model, size=size, threads=threads, runs=runs)}
        rows.append({**row, "threads": threads, "size": size})
    return rows


def format_table(rows: list[dict]) -> str:
    """Markdown table of ``benchmark`` rows with a footer saying how FLOPs and latency were measured."""
    lines = [
        "| model | params | GFLOPs | size (MB) | latency (ms) | p90 (ms) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['params']:,} | {r['gflops']:.3f} | {r['size_mb']:.2f} | "
            f"{r['latency_ms']:.1f} | {r['p90_ms']:.1f} |"
        )
    if rows:
        size, threads = rows[0].get("size", 256), rows[0].get("threads", 1)
        lines.append("")
        lines.append(
            f"FLOPs: torch.utils.flop_counter.FlopCounterMode on one 1x3x{size}x{size} input, 1 multiply-add = "
            f"2 FLOPs (convolutions and matmuls only). Latency: median and 90th percentile of PyTorch eager "
            f"CPU forwards, eval mode, batch 1, {threads} thread(s). Size: parameters and buffers as fp32."
        )
    return "\n".join(lines)

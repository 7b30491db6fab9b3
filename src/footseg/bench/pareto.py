"""Accuracy against speed across MobileNet's two knobs: width (channels) and resolution (input size).

Each point is one trained model run at one input size: its foot IoU on a dataset and its median latency. Width is a
property of the trained model (``footseg train --width``); resolution is chosen at inference: every model is fully
convolutional, so the same weights run at any multiple of 32 (photos are resized to it, masks scaled back).
``pareto_front`` keeps the points no other point beats on both axes; ``recommend`` picks the most accurate point
within a latency budget.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from footseg.bench.cost import count_flops, count_params, interleaved, onnx_sampler, torch_sampler
from footseg.config import MAX_INPUT_SIDE, is_input_side
from footseg.deploy.export import export_module
from footseg.eval.evaluate import evaluate
from footseg.models.info import LAYER_SHAPES_KEY
from footseg.runtime.resolve import load_network
from footseg.runtime.timing import WARMUP_RUNS, latency_stats


def _label(point: dict) -> str:
    return str(point.get("label", point["model"]))


def pareto_front(points: Sequence[dict], x: str = "latency_ms", y: str = "iou") -> list[int]:
    """Indices of the points not dominated by any other (lower or equal ``x`` and higher or equal ``y``, one of
    them strictly), sorted by ``x``. Exact duplicates are all kept."""
    front = []
    for i, p in enumerate(points):
        dominated = any(
            q[x] <= p[x] and q[y] >= p[y] and (q[x] < p[x] or q[y] > p[y]) for j, q in enumerate(points) if j != i
        )
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: (points[i][x], -points[i][y]))


def recommend(points: Sequence[dict], budget_ms: float, x: str = "latency_ms", y: str = "iou") -> int | None:
    """Index of the most accurate point with ``x <= budget_ms`` (the faster one on ties); None if none fits."""
    fitting = [i for i, p in enumerate(points) if p[x] <= budget_ms]
    if not fitting:
        return None
    return max(fitting, key=lambda i: (points[i][y], -points[i][x]))


RUNTIMES = ("onnx", "torch")


def sweep(
    models: Sequence[str | Path],
    data: str | Path,
    sizes: Sequence[int],
    split: str = "test",
    threads: int = 1,
    runs: int = 20,
    runtime: str = "onnx",
    min_time: float = 0.0,
    rounds: int = 5,
) -> list[dict]:
    """One point per (model, input size): model, label, width, size, params, gflops, latency_ms, iou.

    ``runtime`` times the network where it is deployed, ONNX Runtime fp32 (the model exported at that size), or in
    PyTorch eager (``"torch"``), whose per-operation overhead dominates small networks and flattens the curve.
    ``label`` is the model name, marked "(pruned, N params)" for a channel-pruned model (``footseg compress``),
    whose width alone no longer says how wide it is.
    """
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; use one of {', '.join(RUNTIMES)}")
    for size in sizes:
        if not is_input_side(size):
            raise ValueError(f"input sizes must be multiples of 32 from 32 to {MAX_INPUT_SIDE}, got {size}")
    points, samplers = [], []
    with tempfile.TemporaryDirectory(prefix="footseg-pareto-") as tmp:
        for folder in models:
            model, info = load_network(folder)
            for size in sizes:
                sized = replace(info, input_size=(size, size))
                params, gflops = count_params(model), count_flops(model, size) / 1e9
                if runtime == "onnx":
                    exported = export_module(model, sized, Path(tmp) / f"{len(points)}.onnx")
                    samplers.append(onnx_sampler(exported, threads))
                else:
                    samplers.append(torch_sampler(model, size, threads))
                points.append(
                    {
                        "model": info.model,
                        "label": info.model + (f" (pruned, {params / 1000:.0f}K params)"
                                               if LAYER_SHAPES_KEY in info.extra else ""),
                        "width": info.width,
                        "trained_size": int(info.input_size[0]),
                        "size": size,
                        "folder": str(folder),
                        "params": params,
                        "gflops": gflops,
                        "runtime": runtime,
                        "iou": evaluate((model, sized), data, split)["iou"],
                    }
                )
        # every point timed in the same interleaved rounds, so a burst of load cannot reorder the curve
        for point, times in zip(points, interleaved(samplers, rounds, runs, WARMUP_RUNS, min_time), strict=True):
            point["latency_ms"] = latency_stats(times)["latency_ms"]
    return points


def plot_pareto(
    points: Sequence[dict],
    path: str | Path,
    budget_ms: float | None = None,
    title: str = "foot IoU against latency",
) -> Path:
    """Scatter of IoU against latency (one colour per model, marker size by input size), the Pareto front as a
    line, and the recommended point under ``budget_ms`` circled. Writes a PNG; needs matplotlib (dev extra)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    front = pareto_front(points)
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=120)
    names = sorted({_label(p) for p in points})
    colours = plt.get_cmap("tab10")
    for k, name in enumerate(names):
        mine = [p for p in points if _label(p) == name]
        ax.scatter(
            [p["latency_ms"] for p in mine],
            [p["iou"] for p in mine],
            s=[p["size"] / 4 for p in mine],
            color=colours(k % 10),
            alpha=0.75,
            label=name,
            edgecolors="none",
        )
    for p in points:
        ax.annotate(
            f"w{p['width']:g}/{p['size']}",
            (p["latency_ms"], p["iou"]),
            fontsize=6,
            xytext=(3, 3),
            textcoords="offset points",
            color="0.3",
        )
    ax.plot(
        [points[i]["latency_ms"] for i in front], [points[i]["iou"] for i in front], "k--", lw=1, label="Pareto front"
    )
    if budget_ms is not None:
        ax.axvline(budget_ms, color="tab:red", lw=0.8, ls=":", label=f"budget {budget_ms:g} ms")
        best = recommend(points, budget_ms)
        if best is not None:
            p = points[best]
            ax.scatter(
                [p["latency_ms"]],
                [p["iou"]],
                s=250,
                facecolors="none",
                edgecolors="tab:red",
                lw=2,
                label=f"recommended: {_label(p)} w{p['width']:g} @ {p['size']}",
            )
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms, median, log scale)")
    ax.set_ylabel("foot IoU")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def format_points(points: Sequence[dict], budget_ms: float | None = None) -> str:
    """Markdown table of ``sweep`` points, fastest first, front members and the recommendation marked."""
    front = set(pareto_front(points))
    best = recommend(points, budget_ms) if budget_ms is not None else None
    lines = [
        "| model | width | input | params | GFLOPs | latency (ms) | IoU | Pareto |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for i in sorted(range(len(points)), key=lambda i: points[i]["latency_ms"]):
        p = points[i]
        mark = ("front" if i in front else "") + (" **recommended**" if i == best else "")
        lines.append(
            f"| {_label(p)} | {p['width']:g} | {p['size']} | {p['params']:,} | {p['gflops']:.3f} | "
            f"{p['latency_ms']:.2f} | {p['iou']:.4f} | {mark.strip()} |"
        )
    return "\n".join(lines) + "\n"

"""Pareto plot of foot IoU against 1-thread latency across models, widths and input sizes (MobileNet's two knobs).

    python benchmarks/pareto.py MODEL [MODEL ...] [--sizes 128,160,192,256] [--budget 10] [--out DIR]
    python benchmarks/pareto.py --train fastlinknet,mobileseg --data SYNTH --widths 0.5,1.0 --epochs 2

Points are scored on the validation split of ``--data`` (a ``footseg synth`` render), where the recommended point
(the most accurate within ``--budget``) may choose a model and side; or, with ``--real DIR``, on real photos, which
report and never choose: that plot marks no recommended point. ``--train`` first trains each model at each width
briefly (into OUT/runs/) and uses those. Writes OUT/pareto.png, pareto.json and pareto.md (default OUT:
benchmarks/results/pareto). The library part is footseg.bench.pareto.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from footseg.bench.pareto import format_points, plot_pareto, recommend, sweep
from footseg.config import TrainConfig
from footseg.errors import FootsegError
from footseg.train.trainer import train

RUNTIME_NAMES = {"onnx": "ONNX Runtime fp32", "torch": "PyTorch eager"}


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v]


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="*", help="models: saved or run folders, shipped names")
    p.add_argument("--sizes", type=_ints, default=[128, 160, 192, 256], help="input sides, multiples of 32")
    p.add_argument("--budget", type=float, default=10.0, help="latency budget (ms) for the recommended point")
    p.add_argument("--data", default=None, help="a render with splits: points are scored on its val split (--train "
                   "trains on its train split)")
    p.add_argument("--real", default=None, help="score on this flat folder of real photos with masks instead: a "
                   "report, with no recommended point (real photos never choose)")
    p.add_argument(
        "--train",
        type=lambda s: [v for v in s.split(",") if v],
        default=[],
        help="comma-separated model names to train first, at each --widths",
    )
    p.add_argument("--widths", type=_floats, default=[0.5, 1.0])
    p.add_argument("--train-size", type=int, default=256)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--steps-per-epoch", type=int, default=30)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runtime", choices=["onnx", "torch"], default="onnx",
                   help="latency in ONNX Runtime fp32 (deployed) or PyTorch eager")
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--min-time", type=float, default=1.0, help="and time each point for at least this many seconds")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "pareto"))
    args = p.parse_args(argv)
    out = Path(args.out)
    try:
        real = Path(args.real) if args.real else None
        data = Path(args.data) if args.data else None
        if data is None and (args.train or real is None):
            raise FootsegError("--data DIR is needed (a `footseg synth` render) to train on or, without --real, to "
                               "score on")
        models = list(args.models)
        for name in args.train:
            for width in args.widths:
                cfg = TrainConfig(
                    model=name,
                    data=str(data),
                    out=str(out / "runs" / f"{name}-w{width:g}"),
                    width=width,
                    size=args.train_size,
                    epochs=args.epochs,
                    steps_per_epoch=args.steps_per_epoch,
                    progress=False,
                )
                run = Path(cfg.out)
                models.append(train(cfg, resume=(run / "checkpoint.pt").is_file()))
        if not models:
            raise FootsegError("give model folders, or --train model names to train first")
        scored_on = real if real is not None else data
        torch.set_num_threads(args.threads)
        points = sweep(models, scored_on, args.sizes, split="test" if real is not None else "val", threads=args.threads,
                       runs=args.runs, runtime=args.runtime, min_time=args.min_time)
    except FootsegError as exc:
        print(f"pareto: error: {exc}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    where = "real photos, report only" if real is not None else "synthetic validation split"
    title = f"foot IoU ({where}) vs {args.threads}-thread {RUNTIME_NAMES[args.runtime]} latency"
    budget = None if real is not None else args.budget  # real photos report; they never recommend
    plot_pareto(points, out / "pareto.png", budget_ms=budget, title=title)
    best = recommend(points, budget) if budget is not None else None
    result = {
        "scored_on": str(scored_on),
        "threads": args.threads,
        "budget_ms": args.budget,
        "points": points,
        "recommended": points[best] if best is not None else None,
    }
    (out / "pareto.json").write_text(json.dumps(result, indent=2) + "\n")
    table = format_points(points, budget)
    note = (
        f"\nIoU on {scored_on} ({where}); latency: {RUNTIME_NAMES[args.runtime]}, batch 1, {args.threads} "
        f"thread(s), median of at least {args.runs} runs and {args.min_time:g} s; "
        + (f"recommended: most accurate point within {budget:g} ms.\n" if budget is not None
           else "no recommended point: real photos never choose.\n")
    )
    (out / "pareto.md").write_text("# Accuracy against latency\n\n" + table + note)
    print(table + note)
    print(f"plot: {out / 'pareto.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

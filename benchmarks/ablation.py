"""What matters in the synthetic data: train the same network on `footseg synth` output with one ingredient removed
at a time and score each on real photos (issue 3's ablation table).

    .venv/bin/python benchmarks/ablation.py --real ../shared/data/real-dev --floors ../shared/data/floors \
        --find ../shared/assets/find --out runs/ablation

Every variant renders its own dataset with the same seed (so the images differ only by the removed ingredient),
trains fastlinknet from scratch with the same budget and seed, and is scored on the real photos. Results go to
OUT/ablation.md and OUT/ablation.json; finished variants are reused, so an interrupted study continues where it
stopped. The default budget is small (minutes per variant on 2 cores): differences of a point or two are noise.
With ``--jobs J`` J variants render and train side by side, each in one thread: on a small machine that is faster
than one variant at a time, whose PyTorch threads mostly wait on each other at this network size.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from footseg.data.synth.engine import INGREDIENTS

FOOTSEG = [sys.executable, "-m", "footseg"]


def _run(args: list[str], a: argparse.Namespace) -> None:
    print("+", " ".join(args), flush=True)
    env = os.environ | ({"OMP_NUM_THREADS": "1"} if a.jobs > 1 else {})
    subprocess.run(args, check=True, env=env)


def render(name: str, removed: list[str], seed: int, a: argparse.Namespace) -> Path:
    data = Path(a.out) / name / "data"
    synth = [*FOOTSEG, "synth", str(data), "--n", str(a.n), "--seed", str(seed), "--size", str(a.size),
             "--workers", str(a.workers), "--no-progress", "--resume"]
    if a.floors:
        synth += ["--floors", a.floors]
    if a.find:
        synth += ["--find", a.find]
    if removed:
        synth += ["--without", ",".join(removed)]
    _run(synth, a)
    return data


def variant(name: str, removed: list[str], seed: int, a: argparse.Namespace) -> dict:
    folder = Path(a.out) / name
    result_file = folder / "result.json"
    if result_file.is_file():
        return json.loads(result_file.read_text())
    data, run = render(name, removed, seed, a), folder / "run"
    _run([*FOOTSEG, "train", "--model", a.model, "--data", str(data), "--out", str(run), "--size", str(a.size),
          "--epochs", str(a.epochs), "--steps-per-epoch", str(a.steps), "--batch-size", "16", "--lr", "3e-3",
          "--workers", str(a.workers), "--no-progress", "--resume"], a)
    scores = {}
    # every variant is scored on the full recipe's test split: a variant's own test split would be easier
    for label, where in (("real", a.real), ("synth_test", str(Path(a.out) / "full" / "data" / "test"))):
        out = folder / f"eval_{label}.json"
        _run([*FOOTSEG, "eval", str(run / "best"), "--data", where, "--json", str(out)], a)
        scores[label] = json.loads(out.read_text())["iou"]
    result = {"variant": name, "removed": removed, "seed": seed, "real_iou": scores["real"],
              "synth_test_iou": scores["synth_test"]}
    result_file.write_text(json.dumps(result, indent=1) + "\n")
    return result


def _row_name(row: dict) -> str:
    if row["variant"] == "full":
        return "all ingredients"
    if row["variant"].startswith("full-seed"):
        return f"all ingredients, data seed {row['seed']}"
    return "without " + row["variant"][1:]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--real", required=True, help="real photos with masks (flat images/ + masks/)")
    ap.add_argument("--floors", default=None, help="floor photo folder (the photo-floors ingredient needs it)")
    ap.add_argument("--find", default=None, help="FIND model folder (the find ingredient needs it)")
    ap.add_argument("--out", default="runs/ablation")
    ap.add_argument("--only", default="", help="comma-separated variants such as -paper,-find (full always runs)")
    ap.add_argument("--model", default="fastlinknet")
    ap.add_argument("--n", type=int, default=3000, help="images per variant dataset")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--steps", type=int, default=150, help="steps per epoch (batch 16)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--replicates", type=int, default=1,
                    help="renders of the full recipe with data seeds seed, seed+1, ...: their spread is the noise")
    ap.add_argument("--workers", type=int, default=2, help="synth and data-loader worker processes per variant")
    ap.add_argument("--jobs", type=int, default=1, help="variants run side by side, one PyTorch thread each")
    a = ap.parse_args()
    variants = {"full": ([], a.seed)} | {f"-{k}": ([k], a.seed) for k in INGREDIENTS}
    if a.only:  # the full recipe always runs: its test split scores every variant
        variants = {k: v for k, v in variants.items() if k == "full" or k in a.only.split(",")}
    variants |= {f"full-seed{a.seed + i}": ([], a.seed + i) for i in range(1, a.replicates)}
    render("full", [], a.seed, a)  # every variant is scored on its test split, so it must exist before any finishes
    with ThreadPoolExecutor(max(1, a.jobs)) as pool:
        rows = list(pool.map(lambda item: variant(item[0], *item[1], a), variants.items()))
    full = next((r for r in rows if r["variant"] == "full"), None)
    lines = ["| synthetic data | real IoU | change | synthetic test IoU (full recipe) |", "|---|---:|---:|---:|"]
    for r in rows:
        delta = "" if full is None or r is full else f"{100 * (r['real_iou'] - full['real_iou']):+.1f}"
        lines.append(f"| {_row_name(r)} | {100 * r['real_iou']:.1f} | {delta} | {100 * r['synth_test_iou']:.1f} |")
    budget = (f"\nfastlinknet from scratch, {a.epochs} x {a.steps} steps of 16 images at {a.size}x{a.size}, on {a.n} "
              f"synthetic images per variant (data seed {a.seed}); real IoU on {a.real}.\n")
    replicates = [r["real_iou"] for r in rows if r["variant"].startswith("full")]
    if len(replicates) > 1:
        budget += (f"The full recipe rendered with {len(replicates)} data seeds scores {100 * min(replicates):.1f} to "
                   f"{100 * max(replicates):.1f} real IoU: a change within that spread is noise.\n")
    Path(a.out).mkdir(parents=True, exist_ok=True)
    (Path(a.out) / "ablation.md").write_text("\n".join(lines) + "\n" + budget)
    (Path(a.out) / "ablation.json").write_text(json.dumps(rows, indent=1) + "\n")
    print("\n".join(lines) + "\n" + budget)


if __name__ == "__main__":
    main()

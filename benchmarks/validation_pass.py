"""Seconds of one validation pass as the trainer makes it, with the split read from its files each time against held
in memory (``SegmentationDataset(keep_bytes=...)``, the trainer's since 2026-12-06), and that both score the same.

    .venv/bin/python benchmarks/validation_pass.py --data DIR [--model MODEL] [--size 192] [--rounds 3]

DIR is a dataset with a val/ split (the default's: a recipe run's `all`). The two ways alternate for `--rounds`
rounds after the kept one's first pass (which reads the files and fills it); each round times the loader alone and
then the loader with the network's forward and the confusion counts, batch 16, channels-last, as `_validate` does.
Run it on a quiet CPU.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from footseg.data.dataset import SegmentationDataset, make_loader
from footseg.data.samples import split_folder
from footseg.metrics import ConfusionMeter
from footseg.runtime.resolve import resolve_model
from footseg.train.trainer import KEPT_VALIDATION_BYTES, memory_format


def _pass(dataset: SegmentationDataset, net: torch.nn.Module | None) -> tuple[float, float | None]:
    """Seconds of one pass over ``dataset`` in the trainer's batches, and the foot IoU when ``net`` scores it."""
    layout = memory_format(torch.device("cpu"))
    meter, start = ConfusionMeter(), time.perf_counter()
    with torch.no_grad():
        for images, masks in make_loader(dataset, 16, shuffle=False, workers=0, seed=0):
            if net is not None:
                meter.update(net(images.contiguous(memory_format=layout)).argmax(1), masks)
    return time.perf_counter() - start, meter.compute()["iou"] if net is not None else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", default="fastlinknet_ctx")
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    net, _ = resolve_model(args.model).load()
    net = net.eval().to(memory_format=memory_format(torch.device("cpu")))
    folder = split_folder(args.data, "val")
    read = SegmentationDataset(folder, args.size)
    kept = SegmentationDataset(folder, args.size, keep_bytes=KEPT_VALIDATION_BYTES)
    if not kept.keeps:
        parser.error(f"{len(kept)} images at {args.size} px do not fit in {KEPT_VALIDATION_BYTES} bytes")
    print(f"{len(kept)} images at {args.size} px; the kept split's first pass (reads and fills): "
          f"{_pass(kept, None)[0]:.2f} s")
    seconds: dict[str, list[float]] = {}
    scores: set[float | None] = set()
    for _ in range(args.rounds):
        for name, dataset in (("read", read), ("kept", kept)):
            seconds.setdefault(f"{name}, loader", []).append(_pass(dataset, None)[0])
            elapsed, iou = _pass(dataset, net)
            seconds.setdefault(f"{name}, validation", []).append(elapsed)
            scores.add(iou)
    for name, values in seconds.items():
        print(f"{name:18s} median {statistics.median(values):6.2f} s  ({', '.join(f'{v:.2f}' for v in values)})")
    print(f"foot IoU {', '.join(f'{s:.6f}' for s in scores)} ({'the same' if len(scores) == 1 else 'DIFFERENT'})")


if __name__ == "__main__":
    main()

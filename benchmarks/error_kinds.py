"""Where a model's error lies on a labelled dataset: missed foot, false foot beside the foot, false foot far from it.

    .venv/bin/python benchmarks/error_kinds.py [MODEL] --data DIR [--split val] [--near 0.05] [--blob 0.005]
        [--region-peak P]

The failures seen on held-out real photos are mostly of the third kind (blobs of floor far from the foot marked as
foot), so this says how much of a synthetic set's error is of that kind, i.e. how much a lever against it can move the
synthetic validation score that chooses the default. Every image is predicted and scored as `footseg eval` does it
(``evaluate.predictions``: the model's side, threshold and region peak, the map resized to the mask), and its error
pixels are split by where they are: a false-foot pixel is "beside" the foot when it lies within ``--near`` of the mask's
short side of a true foot pixel, else "far". Printed: the foot IoU (summed over pixels, as `footseg eval`), each kind's
share of the error pixels, the IoU were every far false-foot pixel gone, and how many images hold a far false-foot
region larger than ``--blob`` of the frame, or (of those with foot) miss more than a fifth of their foot.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from footseg.data.samples import has_splits
from footseg.eval.error_kinds import ErrorKinds, error_kinds, iou, largest_region
from footseg.eval.evaluate import labelled_samples, predictions
from footseg.runtime.predictor import Predictor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default=None, help="a model name or folder (default: the shipped default)")
    parser.add_argument("--data", required=True)
    parser.add_argument("--split", default="val")
    parser.add_argument("--near", type=float, default=0.05, help="'beside': within this share of the short side")
    parser.add_argument("--blob", type=float, default=0.005, help="a far region counts as a blob above this share")
    parser.add_argument("--region-peak", type=float, default=None, metavar="P",
                        help="as footseg eval's (default: the model's own; 0 keeps every region)")
    parser.add_argument("--presence", type=float, default=None, metavar="P",
                        help="as footseg eval's (default: the model's own; 0 turns the gate off)")
    args = parser.parse_args()
    predictor = Predictor(args.model).at_region_peak(args.region_peak).at_presence(args.presence)
    samples = labelled_samples(args.data, args.split)
    total, blobs, misses, with_foot = ErrorKinds(), 0, 0, 0
    # Scored as `footseg eval` scores: the probability map resized to the mask's size, then thresholded.
    for _, prob, target in predictions(predictor, samples, batch_size=8):
        foot = target > 0
        counts, far = error_kinds(prob > predictor.threshold, foot, args.near)
        total += counts
        blobs += largest_region(far) > args.blob * foot.size
        with_foot += bool(foot.any())
        misses += bool(foot.any()) and counts.missed > 0.2 * foot.sum()
    error = max(1, total.union - total.intersection)
    n = len(samples)
    where = f"{args.split}, " if has_splits(Path(args.data)) else ""
    peak = f"region peak {predictor.region_peak:g}" if predictor.region_peak else "every region kept"
    if predictor.presence:
        peak += f", presence {predictor.presence:g}"
    print(f"{predictor.label} ({peak}) on {args.data} ({where}{n} images): foot IoU {100 * iou(total):.2f}")
    print(f"  error pixels: missed foot {100 * total.missed / error:.1f} %, false foot beside it "
          f"{100 * total.false_beside / error:.1f} %, far from it {100 * total.false_far / error:.1f} %")
    without_far = dataclasses.replace(total, union=total.union - total.false_far, false_far=0)
    print(f"  foot IoU without the far false foot: {100 * iou(without_far):.2f}")
    print(f"  images with a far false-foot region over {100 * args.blob:g} % of the frame: {blobs} "
          f"({100 * blobs / n:.1f} %); missing over a fifth of their foot: {misses} of {with_foot} with foot "
          f"({100 * misses / max(1, with_foot):.1f} %)")


if __name__ == "__main__":
    main()

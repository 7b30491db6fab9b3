"""Where a model's error lies on a labelled dataset: missed foot, false foot beside the foot, false foot far from it.

    .venv/bin/python benchmarks/error_kinds.py MODEL --data DIR [--split val] [--near 0.05] [--blob 0.005]
        [--region-peak P]

The failures seen on held-out real photos are mostly of the third kind (blobs of floor far from the foot marked as
foot), so this says how much of a synthetic set's error is of that kind, i.e. how much a lever against it can move the
synthetic validation score that chooses the default. Every image is predicted as `footseg eval` predicts it (the
model's side, threshold and region peak; the map resized to the photo), and its error pixels are split by where they
are: a false-foot pixel is "beside" the foot when it lies within ``--near`` of the photo's short side of a true foot
pixel, else "far". Printed: the foot IoU (summed over pixels, as `footseg eval`), each kind's share of the error
pixels, the IoU were every far false-foot pixel gone, and how many images hold a far false-foot region larger than
``--blob`` of the frame, or miss more than a fifth of their foot.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2

from footseg.data.dataset import has_splits, read_sample
from footseg.eval.error_kinds import ErrorKinds, error_kinds, largest_region
from footseg.eval.evaluate import labelled_samples
from footseg.runtime.predictor import Predictor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a model name or folder (default: the shipped default)")
    parser.add_argument("--data", required=True)
    parser.add_argument("--split", default="val")
    parser.add_argument("--near", type=float, default=0.05, help="'beside the foot': within this share of the side")
    parser.add_argument("--blob", type=float, default=0.005, help="a far region counts as a blob above this share")
    parser.add_argument("--region-peak", type=float, default=None, metavar="P",
                        help="as footseg eval's (default: the model's own; 0 keeps every region)")
    args = parser.parse_args()
    predictor = Predictor(args.model).at_region_peak(args.region_peak)
    samples = labelled_samples(args.data, args.split)
    total, blobs, misses = ErrorKinds(), 0, 0
    for sample in samples:
        image, mask = read_sample(sample, scaled_mask=True)
        true = mask > 0
        pred = cv2.resize(predictor.predict_mask(image), true.shape[::-1], interpolation=cv2.INTER_NEAREST) > 0
        counts, far = error_kinds(pred, true, args.near)
        total += counts
        blobs += largest_region(far) > args.blob * true.size
        misses += counts.missed > 0.2 * true.sum()
    error = max(1, total.union - total.intersection)
    n = len(samples)
    where = f"{args.split}, " if has_splits(Path(args.data)) else ""
    peak = f"region peak {predictor.region_peak:g}" if predictor.region_peak else "every region kept"
    print(f"{predictor.label} ({peak}) on {args.data} ({where}{n} images): foot IoU "
          f"{100 * total.intersection / max(1, total.union):.2f}")
    print(f"  error pixels: missed foot {100 * total.missed / error:.1f} %, false foot beside it "
          f"{100 * total.false_beside / error:.1f} %, far from it {100 * total.false_far / error:.1f} %")
    print(f"  foot IoU without the far false foot: "
          f"{100 * total.intersection / max(1, total.union - total.false_far):.2f}")
    print(f"  images with a far false-foot region over {100 * args.blob:g} % of the frame: {blobs} "
          f"({100 * blobs / n:.1f} %); missing over a fifth of their foot: {misses} ({100 * misses / n:.1f} %)")


if __name__ == "__main__":
    main()

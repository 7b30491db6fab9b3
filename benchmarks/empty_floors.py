"""False foot on photos with no foot in them: a model run on real floor photos, every foot pixel it finds is wrong.

    .venv/bin/python benchmarks/empty_floors.py [MODEL] --photos DIR [DIR ...] [--blob 0.005] [--region-peak P]
        [--presence P]
    .venv/bin/python benchmarks/empty_floors.py [MODEL] --floors ../shared/data/floors [--split val]

Held-out real photos fail by marking patches of floor as foot, which the synthetic renders rarely provoke (their
floors fool the network in about 5 % of third-person scenes, benchmarks/README.md "Where its error lies"). Floor photos
with no foot are a direct, label-free measure of that failure: for each folder of photos (e.g. the floor photos' val
split, ``../shared/data/floors/val/*``) it prints the share of pixels marked foot, how many photos hold a foot region
larger than ``--blob`` of the frame, and how many have a pixel the network is sure of (above 0.99). Each photo is
predicted as ``footseg eval`` predicts (the model's side, threshold, region peak and presence gate;
``--region-peak 0`` keeps every region, ``--presence 0`` turns the gate off). ``--floors DIR`` takes a floor photo
folder's ``--split`` as ``footseg synth`` lists it (copies of an earlier split's photos left out), a row for each kind
(its first subfolder: carpet, tiles, wood). A live camera pointed at a bare floor shows these blobs as a foot.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from footseg.data.io import image_files, read_image
from footseg.data.synth.floors import SPLITS, list_photos
from footseg.errors import FootsegError
from footseg.eval.error_kinds import BLOB, largest_region
from footseg.runtime.predictor import Predictor, to_mask

SURE = 0.99  # a probability the region peak keeps a region for, and no threshold choice removes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default=None, help="a model name or folder (default: the shipped default)")
    parser.add_argument("--photos", nargs="+", default=[], help="folders of photos with no foot in them")
    parser.add_argument("--floors", default=None, help="a floor photo folder, read as footseg synth reads it")
    parser.add_argument("--split", default="val", choices=SPLITS, help="the split of --floors (default val)")
    parser.add_argument("--blob", type=float, default=BLOB,
                        help=f"a foot region counts as a blob above this share (default {BLOB:g})")
    parser.add_argument("--region-peak", type=float, default=None, metavar="P",
                        help="as footseg eval's (default: the model's own; 0 keeps every region)")
    parser.add_argument("--presence", type=float, default=None, metavar="P",
                        help="as footseg eval's (default: the model's own; 0 turns the gate off)")
    args = parser.parse_args()
    if not args.photos and args.floors is None:
        parser.error("give --photos DIR ... or --floors DIR")
    groups = {folder: image_files(folder) for folder in args.photos}
    if args.floors is not None:
        try:
            groups.update(floor_kinds(Path(args.floors), args.split))
        except FootsegError as exc:
            raise SystemExit(str(exc)) from None
    predictor = Predictor(args.model).at_region_peak(args.region_peak).at_presence(args.presence)
    peak = f"region peak {predictor.region_peak:g}" if predictor.region_peak else "every region kept"
    if predictor.presence:
        peak += f", presence {predictor.presence:g}"
    print(f"{predictor.label} ({peak}, threshold {predictor.threshold:g}) on photos with no foot:")
    for folder, files in groups.items():
        if not files:
            raise SystemExit(f"{folder}: no photos")
        shares, blobs, sure = [], 0, 0
        for file in files:
            prob = predictor.predict_proba(read_image(file))
            foot = to_mask(prob, predictor.threshold) > 0
            shares.append(foot.mean())
            blobs += largest_region(foot) > args.blob * foot.size
            sure += bool((prob > SURE).any())
        n = len(files)
        print(f"  {Path(folder)}: {n} photos, {100 * np.mean(shares):.2f} % of pixels marked foot; a blob over "
              f"{100 * args.blob:g} % of the frame in {blobs} ({100 * blobs / n:.0f} %); a pixel above {SURE:g} in "
              f"{sure} ({100 * sure / n:.0f} %)")


def floor_kinds(root: Path, split: str) -> dict[str, list[Path]]:
    """The photos of ``root``'s ``split`` as footseg synth lists them, by kind (the first folder below the split's)."""
    base = root / split if (root / split).is_dir() else root
    kinds: dict[str, list[Path]] = {}
    for photo in map(Path, list_photos(root)[split]):
        parts = photo.relative_to(base).parts
        kinds.setdefault(str(base / parts[0]) if len(parts) > 1 else str(base), []).append(photo)
    return dict(sorted(kinds.items())) or {f"{root} ({split})": []}


if __name__ == "__main__":
    main()

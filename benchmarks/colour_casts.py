"""A dataset's photos with the colour casts cameras and light give them, for `footseg eval` to score each.

    .venv/bin/python benchmarks/colour_casts.py --data DIR --out OUT [--split val] [--n N] [--casts grey,warm,...]
    .venv/bin/footseg eval --data OUT/warm          # and so on, beside `footseg eval --data OUT/clean`

DIR holds photos with masks as ``footseg eval --data`` reads them (a flat folder, or the ``--split`` of one with
splits: choose on a synthetic val split, report on real photos). The first ``N`` photos in natural name order (as
``footseg eval`` lists them) are read as
footseg reads them (``read_image``: EXIF rotation, colour profile) and written to ``OUT/<cast>/images/<stem>.png``,
lossless, with a copy of each mask in ``OUT/<cast>/masks/``; ``clean`` is the photos as read, written the same way, so
every variant differs from it by its cast alone. The casts (rounded to the nearest level, clipped to 0..255):

- ``grey``: 0.299 R + 0.587 G + 0.114 B in all three channels (a greyscale file, a night or infrared camera);
- ``warm``: red x1.15, blue x0.8 (tungsten light, a white balance set for daylight);
- ``cool``: red x0.85, blue x1.15 (shade, a white balance set for tungsten);
- ``sat50``, ``sat25``: colour halfway, three quarters of the way to grey (a washed-out camera, mist, haze);
- ``dark``: every channel x0.6 (40 % less light, about three quarters of a stop under).
"""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from footseg.data.io import read_image, write_png
from footseg.data.samples import find_samples, no_mask_error, split_folder
from footseg.errors import FootsegError

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _towards_grey(share: float) -> Callable[[np.ndarray], np.ndarray]:
    def cast(rgb: np.ndarray) -> np.ndarray:
        grey = (rgb @ LUMA)[..., None]
        return grey + (rgb - grey) * share
    return cast


CASTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "clean": lambda rgb: rgb,
    "grey": lambda rgb: np.repeat((rgb @ LUMA)[..., None], 3, axis=2),
    "warm": lambda rgb: rgb * np.array([1.15, 1.0, 0.8], dtype=np.float32),
    "cool": lambda rgb: rgb * np.array([0.85, 1.0, 1.15], dtype=np.float32),
    "sat50": _towards_grey(0.5),
    "sat25": _towards_grey(0.25),
    "dark": lambda rgb: rgb * np.float32(0.6),
}


def write_casts(data: Path, out: Path, casts: list[str], split: str = "val", n: int | None = None) -> int:
    """Write each cast of the first ``n`` photos of ``data`` (its ``split`` where it has splits); returns how many."""
    folder = split_folder(data, split)
    samples = find_samples(folder)[:n]
    if not samples:
        raise FootsegError("no photos with masks here", folder)
    unlabelled = next((sample for sample in samples if sample.mask is None), None)
    if unlabelled is not None:  # before anything is written: a half-written --out is refused on the next try
        raise no_mask_error(unlabelled)
    for sample in samples:
        rgb = read_image(sample.image).astype(np.float32)
        for name in casts:
            write_png(out / name / "images" / f"{sample.stem}.png",
                      np.clip(np.round(CASTS[name](rgb)), 0, 255).astype(np.uint8))
            (out / name / "masks").mkdir(parents=True, exist_ok=True)
            shutil.copyfile(sample.mask, out / name / "masks" / f"{sample.stem}{sample.mask.suffix}")
    return len(samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="photos with masks (footseg eval --data's format)")
    parser.add_argument("--out", type=Path, required=True, help="where OUT/<cast>/ go")
    parser.add_argument("--split", default="val", help="the split of a dataset with splits (default val)")
    parser.add_argument("--n", type=int, default=None, help="the first N photos in name order (default all)")
    parser.add_argument("--casts", default=",".join(CASTS), help=f"of {', '.join(CASTS)} (default all)")
    args = parser.parse_args(argv)
    casts = [c for c in args.casts.split(",") if c]
    unknown = [c for c in casts if c not in CASTS]
    try:
        if unknown or not casts:
            raise FootsegError(f"unknown cast {', '.join(unknown) or '(none given)'}; choose of: {', '.join(CASTS)}")
        if args.n is not None and args.n < 1:
            raise FootsegError(f"--n must be at least 1, got {args.n}")
        if args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())):
            raise FootsegError("holds files: choose another --out", args.out)
        n = write_casts(args.data, args.out, casts, args.split, args.n)
    except FootsegError as exc:
        print(f"colour_casts: error: {exc}")
        return 2
    print(f"wrote {n} photos in {len(casts)} casts to {args.out}: footseg eval --data {args.out}/<cast>")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Dataset folders: pairing photos with their masks, reading them, and a dataset's splits.

A dataset folder holds ``images/<stem>.jpg`` (or another of ``io.IMAGE_EXTENSIONS``) and ``masks/<stem>.png``
(0 = background, any other value = foot). A dataset root either has ``train/``, ``val/`` and ``test/`` folders in
that format, or is itself one flat folder (as real photos for evaluation usually are).

No torch here: scoring an ONNX export (``footseg eval``) reads datasets without importing it.
"""

from __future__ import annotations

import glob
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from footseg.data.io import IMAGE_HINT, MASK_EXTENSION, image_files, natural_key, read_image, read_mask
from footseg.errors import FootsegError, require_folder

SPLITS = ("train", "val", "test")
T = TypeVar("T")


@dataclass(frozen=True)
class Sample:
    stem: str
    image: Path
    mask: Path | None  # None when a flat folder of photos has no mask for this one


def find_samples(folder: Path) -> list[Sample]:
    """Pair ``folder/images/*`` with ``folder/masks/<stem>.png``, in natural order of stems (``natural_key``); mask
    is None where missing."""
    folder = Path(folder)
    images_dir = folder / "images"
    if not images_dir.is_dir():
        raise FootsegError(f"no images/ folder (expected images/<stem>.{IMAGE_HINT} and masks/<stem>.png)", folder)
    masks_dir = folder / "masks"
    masks = {}
    if masks_dir.is_dir():  # listed rather than probed, so 'a.PNG' pairs with 'a.jpg' on case-sensitive file systems
        masks = {p.stem: p for p in masks_dir.iterdir() if p.is_file() and p.suffix.lower() == MASK_EXTENSION}
    samples: dict[str, Sample] = {}
    for path in image_files(images_dir):
        if path.stem in samples:
            raise FootsegError(f"two images share the stem '{path.stem}' ({samples[path.stem].image.name}): keep "
                               "one of them (a HEIC original beside its JPEG copy, say)", path)
        samples[path.stem] = Sample(path.stem, path, masks.get(path.stem))
    return [samples[k] for k in sorted(samples, key=natural_key)]  # clip frames: frame_2 before frame_10


def no_mask_error(sample: Sample) -> FootsegError:
    """The one-line error for a sample without its PNG mask, naming a mask of the same stem in another format (a
    JPEG's values are not labels) where there is one."""
    masks = sample.image.parent.parent / "masks"
    others = sorted(p.name for p in masks.glob(f"{glob.escape(sample.stem)}.*")) if masks.is_dir() else []
    there = f"; masks/{others[0]} is there, but masks must be PNG (lossy formats change the labels)" if others else ""
    return FootsegError(f"no mask (expected masks/{sample.stem}{MASK_EXTENSION}){there}", sample.image)


def read_sample(sample: Sample, scaled_mask: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The decoded (RGB image, raw mask) of a sample, checked to be the same size.

    ``scaled_mask``: also accept a mask of the same picture at another resolution (scoring resizes the prediction to
    it); a mask of another shape is refused either way, never stretched to fit.
    """
    if sample.mask is None:
        raise no_mask_error(sample)
    image, mask = read_image(sample.image), read_mask(sample.mask)
    (ih, iw), (mh, mw) = image.shape[:2], mask.shape
    scaled = abs(mh - ih * mw / iw) <= 1 and abs(mw - iw * mh / ih) <= 1  # rounding of a resize moves a side by 1
    if (ih, iw) != (mh, mw) and not (scaled_mask and scaled):
        # Sides swapped: an annotation tool that ignored the photo's EXIF rotation drew on the picture as stored.
        hint = ("; drawn on the photo as stored, before the rotation its EXIF orientation asks for? footseg reads "
                "photos upright") if (mh, mw) == (iw, ih) else ""
        raise FootsegError(f"mask size {mw}x{mh} differs from image size {iw}x{ih}{hint}", sample.mask)
    return image, mask


def spread(items: Sequence[T], k: int) -> list[T]:
    """``k`` of ``items`` spread evenly from the first to the last (all of them when there are no more than ``k``):
    a reproducible sample of a sorted list that is not just its first stems."""
    if len(items) <= k:
        return list(items)
    return [items[i] for i in np.linspace(0, len(items) - 1, k).round().astype(int)]


def has_splits(root: Path) -> bool:
    """True when ``root`` holds any of the train/val/test split folders."""
    return any((Path(root) / s).is_dir() for s in SPLITS)


def split_folder(root: Path, split: str) -> Path:
    """``root/split`` for a dataset with splits, ``root`` itself for a flat folder."""
    root = Path(root)
    require_folder(root, "dataset folder")
    if has_splits(root):
        folder = root / split
        if not folder.is_dir():
            present = [name for name in SPLITS if (root / name).is_dir()]
            raise FootsegError(f"dataset has no '{split}' split (it has {', '.join(present)})", root)
        return folder
    if (root / "images").is_dir():
        return root
    raise FootsegError("not a dataset: expected train/ val/ test/ folders or images/ + masks/", root)

"""Dataset folders, the torch Dataset over them, and the one way to build a DataLoader.

A dataset folder holds ``images/<stem>.jpg`` (or another of ``io.IMAGE_EXTENSIONS``) and ``masks/<stem>.png``
(0 = background, any other value = foot). A dataset root either has ``train/``, ``val/`` and ``test/`` folders in
that format, or is itself one flat folder (as real photos for evaluation usually are).
"""

from __future__ import annotations

import glob
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from footseg.data.augment import AugmentConfig, ThesisAugment
from footseg.data.io import IMAGE_HINT, MASK_EXTENSION, image_files, natural_key, read_image, read_mask
from footseg.data.transforms import mask_to_tensor, resize_image, resize_mask, to_tensor
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
            raise FootsegError(f"dataset has no '{split}' split", root)
        return folder
    if (root / "images").is_dir():
        return root
    raise FootsegError("not a dataset: expected train/ val/ test/ folders or images/ + masks/", root)


class SegmentationDataset(Dataset):
    """Items are (image float32 (3, size, size) in [0, 1], mask int64 (size, size) in {0, 1}).

    With ``augment`` each access applies the thesis warp, flip and photometric noise drawn from
    ``np.random.default_rng([seed, epoch, index])``: the same sample in the same epoch looks the same whichever
    worker or process loads it, and a resumed run replays the same augmentations.

    Without ``augment`` an item is the same every time: where all of them fit in ``keep_bytes`` (resized, as uint8)
    each is held in memory after its first load, so a validation set scored every epoch is decoded once.
    """

    def __init__(
        self,
        folder: Path,
        size: int = 256,
        augment: bool = False,
        seed: int = 0,
        config: AugmentConfig | None = None,
        keep_bytes: int = 0,
    ):
        self.folder = Path(folder)
        self.size = size
        self.seed = seed
        self.samples = find_samples(self.folder)
        if not self.samples:
            raise FootsegError("no images in images/", self.folder)
        for s in self.samples:
            if s.mask is None:
                raise no_mask_error(s)
        self.augment = ThesisAugment(size, config) if augment else None
        # index -> resized (image, raw mask): 4 bytes a pixel, where the tensors take 20 (float image, int64 mask)
        keep = not augment and len(self.samples) * size * size * 4 <= keep_bytes
        self._kept: dict[int, tuple[np.ndarray, np.ndarray]] | None = {} if keep else None
        # Shared memory, so persistent worker processes see set_epoch() made in the main process.
        self._epoch = torch.zeros(1, dtype=torch.int64).share_memory_()

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def keeps(self) -> bool:
        """Whether items are held in memory after their first load (``keep_bytes``)."""
        return self._kept is not None

    @property
    def epoch(self) -> int:
        return int(self._epoch[0])

    def set_epoch(self, epoch: int) -> None:
        self._epoch[0] = epoch

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The decoded (image, raw mask) of one sample at full resolution."""
        return read_sample(self.samples[index])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self._kept is not None and index in self._kept:
            image, mask = self._kept[index]
            return to_tensor(image), mask_to_tensor(mask)
        image, mask = self.load(index)
        if self.augment is not None:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            image, mask = self.augment(image, mask, rng)
        else:
            image = resize_image(image, (self.size, self.size))
            mask = resize_mask(mask, (self.size, self.size))
            if self._kept is not None:
                self._kept[index] = image, mask
        return to_tensor(image), mask_to_tensor(mask)


class EpochSampler(DistributedSampler):
    """A DistributedSampler (one replica when not distributed) whose ``set_epoch`` also re-seeds the dataset's
    augmentation, so the trainer makes one call per epoch and shuffling stays reproducible across resumes."""

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)


def _worker_init(worker_id: int) -> None:
    # Each worker does its own decoding and warping; extra intra-op threads would only fight over the 2 cores.
    # Not cv2.setNumThreads: in a forked child whose parent already used OpenCV's thread pool it can hang forever.
    torch.set_num_threads(1)
    np.random.seed(torch.initial_seed() % 2**32)
    # Ctrl-C in a terminal reaches the whole process group: the main process stops at the next step and saves a
    # checkpoint, which it can only do while its workers still serve batches.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def make_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool,
    workers: int,
    seed: int,
    distributed: bool = False,
    drop_last: bool = False,
) -> DataLoader:
    """The DataLoader every footseg job uses; call ``loader.sampler.set_epoch(epoch)`` before each epoch.

    Without ``distributed`` the sampler covers the whole dataset as one replica; with it, each process gets its
    share (torch.distributed must be initialised).
    """
    if distributed:
        sampler = EpochSampler(dataset, shuffle=shuffle, seed=seed)
    else:
        sampler = EpochSampler(dataset, num_replicas=1, rank=0, shuffle=shuffle, seed=seed)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        pin_memory=torch.cuda.is_available(),
        persistent_workers=workers > 0,
        worker_init_fn=_worker_init if workers > 0 else None,
        generator=generator,
        drop_last=drop_last,
    )

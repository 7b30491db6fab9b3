"""The torch Dataset over dataset folders (``footseg.data.samples``) and the one way to build a DataLoader."""

from __future__ import annotations

import signal
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from footseg.data.augment import AugmentConfig, ThesisAugment
from footseg.data.samples import find_samples, no_mask_error, read_sample
from footseg.data.transforms import mask_to_tensor, resize_image, resize_mask, to_tensor
from footseg.errors import FootsegError


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

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from footseg.data.dataset import SegmentationDataset, make_loader
from footseg.data.samples import find_samples
from footseg.errors import FootsegError


def test_dataset_requires_masks(tmp_path: Path, make_flat_folder: Callable[..., Path]) -> None:
    folder = make_flat_folder(tmp_path, ["a", "b"], ["a"])
    with pytest.raises(FootsegError, match=r"b\.jpg: no mask"):
        SegmentationDataset(folder, size=32)


@pytest.mark.parametrize("augment", [False, True])
def test_items_have_model_shapes(tiny_dataset: Path, augment: bool) -> None:
    ds = SegmentationDataset(tiny_dataset / "train", size=32, augment=augment)
    image, mask = ds[0]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32
    assert mask.shape == (32, 32) and mask.dtype == torch.int64
    assert image.min() >= 0.0 and image.max() <= 1.0
    assert set(mask.unique().tolist()) <= {0, 1}


def test_augmentation_depends_on_seed_epoch_and_index_only(tiny_dataset: Path) -> None:
    a = SegmentationDataset(tiny_dataset / "train", size=32, augment=True, seed=1)
    b = SegmentationDataset(tiny_dataset / "train", size=32, augment=True, seed=1)
    assert torch.equal(a[3][0], b[3][0]) and torch.equal(a[3][1], b[3][1])
    first = a[3][0]
    a.set_epoch(1)
    assert a.epoch == 1
    assert not torch.equal(a[3][0], first)
    c = SegmentationDataset(tiny_dataset / "train", size=32, augment=True, seed=2)
    assert not torch.equal(c[3][0], first)


def test_plain_items_are_resized_masks(tiny_dataset: Path) -> None:
    ds = SegmentationDataset(tiny_dataset / "val", size=64)
    image, raw = ds.load(0)
    _, mask = ds[0]
    assert torch.equal(mask, torch.from_numpy((raw > 0).astype(np.int64)))  # 64 -> 64: no resampling at all
    assert ds[0][0].shape == (3, 64, 64) and image.shape == (64, 64, 3)


def _copy_split(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize("size", [32, 64])  # 64: the renders' own size, so the kept arrays are the decoded ones
def test_kept_items_are_read_once_and_stay_the_same(tiny_dataset: Path, tmp_path: Path, size: int) -> None:
    folder = _copy_split(tiny_dataset / "val", tmp_path / "val")
    fresh = SegmentationDataset(folder, size=size)
    kept = SegmentationDataset(folder, size=size, keep_bytes=len(fresh) * size * size * 4)  # just fits
    assert kept.keeps and not fresh.keeps
    first = [kept[i] for i in range(len(kept))]
    shutil.rmtree(folder)  # a second pass reads no file
    for i, (image, mask) in enumerate(first):
        again = kept[i]
        assert torch.equal(again[0], image) and torch.equal(again[1], mask)
        assert again[0].data_ptr() != image.data_ptr()  # a new tensor each time: a caller may change it in place
    expected = [SegmentationDataset(tiny_dataset / "val", size=size)[i] for i in range(len(first))]
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, expected, strict=True))


def test_items_over_the_budget_or_augmented_are_read_every_time(tiny_dataset: Path, tmp_path: Path) -> None:
    folder = _copy_split(tiny_dataset / "val", tmp_path / "val")
    n = len(find_samples(folder))
    over = SegmentationDataset(folder, size=32, keep_bytes=n * 32 * 32 * 4 - 1)
    augmented = SegmentationDataset(folder, size=32, augment=True, keep_bytes=1 << 30)
    assert not over.keeps and not augmented.keeps
    over[0], augmented[0]
    (folder / "images" / find_samples(folder)[0].image.name).unlink()
    for ds in (over, augmented):
        with pytest.raises(FootsegError, match="file not found"):
            ds[0]


def _epoch_batches(loader, epoch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    loader.sampler.set_epoch(epoch)
    return list(loader)


def test_loader_batches_and_reproducibility_across_worker_counts(tiny_dataset: Path) -> None:
    ds0 = SegmentationDataset(tiny_dataset / "train", size=32, augment=True, seed=3)
    ds2 = SegmentationDataset(tiny_dataset / "train", size=32, augment=True, seed=3)
    inline = make_loader(ds0, batch_size=3, shuffle=True, workers=0, seed=3)
    workers = make_loader(ds2, batch_size=3, shuffle=True, workers=2, seed=3)
    assert workers.persistent_workers and workers.pin_memory == torch.cuda.is_available()
    for epoch in (0, 1):  # epoch 1 checks that set_epoch reaches the persistent worker processes
        a, b = _epoch_batches(inline, epoch), _epoch_batches(workers, epoch)
        assert [x.shape[0] for x, _ in a] == [3, 3, 2]
        assert a[0][0].shape == (3, 3, 32, 32) and a[0][1].shape == (3, 32, 32) and a[0][1].dtype == torch.int64
        for (xa, ya), (xb, yb) in zip(a, b, strict=True):
            assert torch.equal(xa, xb) and torch.equal(ya, yb)
    e0, e1 = _epoch_batches(inline, 0), _epoch_batches(inline, 1)
    assert not torch.equal(e0[0][0], e1[0][0])


def test_loader_shuffle_and_drop_last(tiny_dataset: Path) -> None:
    ds = SegmentationDataset(tiny_dataset / "train", size=32)
    ordered = make_loader(ds, batch_size=8, shuffle=False, workers=0, seed=0)
    assert list(ordered.sampler) == list(range(8))
    shuffled = make_loader(ds, batch_size=3, shuffle=True, workers=0, seed=0, drop_last=True)
    shuffled.sampler.set_epoch(0)
    order0 = list(shuffled.sampler)
    shuffled.sampler.set_epoch(1)
    assert sorted(order0) == list(range(8)) and order0 != list(shuffled.sampler)
    assert len(shuffled) == 2


def test_distributed_loader_uses_the_process_group(tiny_dataset: Path, tmp_path: Path) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        ds = SegmentationDataset(tiny_dataset / "train", size=32, augment=True, seed=5)
        loader = make_loader(ds, batch_size=4, shuffle=True, workers=0, seed=5, distributed=True)
        assert loader.sampler.num_replicas == 1 and loader.sampler.seed == 5
        loader.sampler.set_epoch(2)
        assert ds.epoch == 2  # one call re-seeds both the shuffle and the augmentation
        assert sum(x.shape[0] for x, _ in loader) == 8
    finally:
        dist.destroy_process_group()

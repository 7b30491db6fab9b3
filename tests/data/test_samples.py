"""Dataset folders: pairing, reading, splits (``footseg.data.samples``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from footseg.data.io import write_png
from footseg.data.samples import find_samples, has_splits, read_sample, split_folder, spread
from footseg.errors import FootsegError


def test_find_samples_pairs_masks_and_sorts(tmp_path: Path, make_flat_folder: Callable[..., Path]) -> None:
    folder = make_flat_folder(tmp_path, ["b", "a", "c"], ["a", "b"])
    samples = find_samples(folder)
    assert [s.stem for s in samples] == ["a", "b", "c"]
    assert samples[0].mask == folder / "masks" / "a.png"
    assert samples[2].mask is None
    (folder / "masks" / "b.png").rename(folder / "masks" / "c.PNG")
    assert find_samples(folder)[2].mask == folder / "masks" / "c.PNG"


def test_clip_frames_pair_in_natural_order(tmp_path: Path, make_flat_folder: Callable[..., Path]) -> None:
    folder = make_flat_folder(tmp_path, ["f10", "f9", "f1"], ["f10", "f9", "f1"])
    assert [s.stem for s in find_samples(folder)] == ["f1", "f9", "f10"]


def test_read_sample_refuses_a_mask_of_another_size_naming_it(
    tmp_path: Path, make_flat_folder: Callable[..., Path]
) -> None:
    folder = make_flat_folder(tmp_path, ["a", "b"], ["a"])
    image, mask = read_sample(find_samples(folder)[0])
    assert image.shape == (40, 30, 3) and mask.shape == (40, 30)
    with pytest.raises(FootsegError, match=r"b\.jpg: no mask \(expected masks/b\.png\)$"):
        read_sample(find_samples(folder)[1])
    odd = make_flat_folder(tmp_path / "odd", ["c[1]"], [])
    (odd / "masks").mkdir()
    (odd / "masks" / "c1.jpg").write_bytes(b"")  # matched by the stem "c[1]" read as a glob pattern
    with pytest.raises(FootsegError, match=r"no mask \(expected masks/c\[1\]\.png\)$"):
        read_sample(find_samples(odd)[0])
    (folder / "masks" / "b.webp").write_bytes(b"")
    with pytest.raises(FootsegError, match=r"masks/b\.webp is there, but masks must be PNG"):  # training says so too
        read_sample(find_samples(folder)[1])
    write_png(folder / "masks" / "a.png", np.zeros((20, 15), np.uint8))  # the same picture at half size
    with pytest.raises(FootsegError, match=r"a\.png: mask size 15x20 differs from image size 30x40"):
        read_sample(find_samples(folder)[0])
    assert read_sample(find_samples(folder)[0], scaled_mask=True)[1].shape == (20, 15)
    write_png(folder / "masks" / "a.png", np.zeros((30, 40), np.uint8))  # another shape: never stretched
    with pytest.raises(FootsegError, match=r"a\.png: mask size 40x30 differs from image size 30x40; drawn on the "
                       "photo as stored, before the rotation its EXIF orientation asks for"):
        read_sample(find_samples(folder)[0], scaled_mask=True)
    write_png(folder / "masks" / "a.png", np.zeros((30, 30), np.uint8))
    with pytest.raises(FootsegError, match=r"mask size 30x30 differs from image size 30x40$"):  # no rotation to blame
        read_sample(find_samples(folder)[0])


def test_spread_takes_the_first_the_last_and_evenly_between() -> None:
    assert spread(list(range(11)), 3) == [0, 5, 10]
    assert spread(list(range(8)), 3) == [0, 4, 7]
    assert spread([1, 2], 5) == [1, 2]


def test_find_samples_rejects_duplicate_stems_and_missing_images_folder(
    tmp_path: Path, make_flat_folder: Callable[..., Path]
) -> None:
    folder = make_flat_folder(tmp_path / "d", ["a"], ["a"])
    write_png(folder / "images" / "a.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(FootsegError, match="share the stem"):
        find_samples(folder)
    with pytest.raises(FootsegError, match="no images/ folder"):
        find_samples(tmp_path / "empty")


def test_splits(tiny_dataset: Path, tmp_path: Path, make_flat_folder: Callable[..., Path]) -> None:
    assert has_splits(tiny_dataset)
    assert split_folder(tiny_dataset, "val") == tiny_dataset / "val"
    assert [len(find_samples(tiny_dataset / s)) for s in ("train", "val", "test")] == [8, 4, 4]
    flat = make_flat_folder(tmp_path / "flat", ["a"], ["a"])
    assert not has_splits(flat)
    assert split_folder(flat, "test") == flat
    with pytest.raises(FootsegError, match="not a dataset"):
        split_folder(tmp_path, "test")
    (tmp_path / "partial" / "train").mkdir(parents=True)
    with pytest.raises(FootsegError, match="no 'test' split"):
        split_folder(tmp_path / "partial", "test")

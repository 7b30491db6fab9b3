from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from footseg.data.check import check_dataset
from footseg.data.io import read_image, read_mask
from footseg.data.procedural import make_procedural_dataset, render_sample
from footseg.data.samples import find_samples
from footseg.errors import FootsegError


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_different_seed_different(tiny_dataset: Path, tmp_path: Path) -> None:
    again = make_procedural_dataset(tmp_path / "again", n_train=8, n_val=4, n_test=4, size=64, seed=0)
    assert _files(again) == _files(tiny_dataset)
    other = make_procedural_dataset(tmp_path / "other", n_train=8, n_val=4, n_test=4, size=64, seed=1)
    a, b = _files(tiny_dataset), _files(other)
    assert a.keys() == b.keys()
    assert all(a[k] != b[k] for k in a if k.endswith(".jpg"))


def test_dataset_is_valid_with_binary_non_empty_masks(tiny_dataset: Path) -> None:
    assert check_dataset(tiny_dataset).summary() == "ok: train 8, val 4, test 4 images"
    for split in ("train", "val", "test"):
        for s in find_samples(tiny_dataset / split):
            mask = read_mask(s.mask)
            assert read_image(s.image).shape == (64, 64, 3)
            assert set(np.unique(mask)) == {0, 255}
            assert 0.01 < (mask > 0).mean() < 0.95


def test_splits_use_different_random_streams(tiny_dataset: Path) -> None:
    train = {p.read_bytes() for p in (tiny_dataset / "train" / "masks").iterdir()}
    test = {p.read_bytes() for p in (tiny_dataset / "test" / "masks").iterdir()}
    assert not train & test


def test_existing_complete_set_is_reused_and_changed_settings_regenerate(tmp_path: Path) -> None:
    out = make_procedural_dataset(tmp_path / "d", n_train=2, n_val=1, n_test=1, size=32)
    stamp = (out / "train" / "images" / "train_00000.jpg").stat().st_mtime_ns
    make_procedural_dataset(out, n_train=2, n_val=1, n_test=1, size=32)
    assert (out / "train" / "images" / "train_00000.jpg").stat().st_mtime_ns == stamp
    make_procedural_dataset(out, n_train=3, n_val=1, n_test=1, size=32)
    assert len(find_samples(out / "train")) == 3


def test_refuses_to_overwrite_a_foreign_dataset(tmp_path: Path) -> None:
    (tmp_path / "train" / "images").mkdir(parents=True)
    (tmp_path / "train" / "images" / "mine.jpg").write_bytes(b"precious")
    with pytest.raises(FootsegError, match="not made by footseg"):
        make_procedural_dataset(tmp_path, n_train=1, n_val=1, n_test=1, size=32)
    assert (tmp_path / "train" / "images" / "mine.jpg").read_bytes() == b"precious"


def test_images_are_textured_and_masks_binary() -> None:
    image, mask = render_sample(np.random.default_rng([0, 1, 5]), 128)
    assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 255}
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 1000  # textured, shaded, not flat colour fills


def test_varied_content_across_samples() -> None:
    fractions = [(render_sample(np.random.default_rng([0, 1, i]), 64)[1] > 0).mean() for i in range(12)]
    assert max(fractions) - min(fractions) > 0.1  # feet at different scales and positions

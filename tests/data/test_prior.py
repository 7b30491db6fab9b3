"""Fake previous-frame masks: every kind a real previous frame can be, reproducible, and within [0, 1]."""

from __future__ import annotations

import numpy as np
import torch

from footseg.data.prior import PriorConfig, PriorDataset, fake_prior


def _mask() -> np.ndarray:
    mask = np.zeros((96, 96), np.uint8)
    mask[30:70, 35:60] = 1
    return mask


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(((a > 0.5) & (b > 0)).sum() / max(1, ((a > 0.5) | (b > 0)).sum()))


def test_priors_are_probabilities_drawn_reproducibly() -> None:
    a = fake_prior(_mask(), np.random.default_rng(3))
    b = fake_prior(_mask(), np.random.default_rng(3))
    assert a.dtype == np.float32 and a.shape == (96, 96) and np.array_equal(a, b)
    assert a.min() >= 0.0 and a.max() <= 1.0


def test_priors_range_from_empty_to_close_to_the_truth_to_wrong() -> None:
    priors = [fake_prior(_mask(), np.random.default_rng(i)) for i in range(200)]
    ious = np.array([_iou(p, _mask()) for p in priors])
    empty = np.array([p.max() == 0 for p in priors])
    assert 0.05 < empty.mean() < 0.3  # first frames
    assert (ious[~empty] > 0.6).mean() > 0.5  # mostly a good previous mask...
    assert (ious[~empty] < 0.6).any()  # ...but sometimes a bad one, which the network must overrule


def test_an_undistorted_prior_is_the_mask() -> None:
    still = PriorConfig(empty=0, shift=0, rotate=0, scale=0, morph=0, cut=0, blobs=0, soft=0)
    assert np.array_equal(fake_prior(_mask(), np.random.default_rng(0), still), _mask().astype(np.float32))


class _Pairs(torch.utils.data.Dataset):
    epoch = 0

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.zeros(3, 96, 96), torch.from_numpy(_mask()).long()


def test_the_dataset_adds_the_prior_as_a_fourth_channel_the_same_way_every_time() -> None:
    data = PriorDataset(_Pairs(), seed=1)
    image, mask = data[2]
    assert image.shape == (4, 96, 96) and mask.shape == (96, 96)
    assert torch.equal(image, data[2][0]) and not all(torch.equal(image, data[i][0]) for i in (0, 1, 3))

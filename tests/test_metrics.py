"""``ConfusionMeter``: dataset-level counts and scores, checked against hand-counted cases (other tests use it as an
oracle, so it is pinned here by arithmetic, not by itself)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from footseg.metrics import ConfusionMeter, binary_scores


def test_counts_and_scores_of_a_hand_counted_case() -> None:
    pred = torch.tensor([[1, 1, 0], [0, 2, 0]])  # any non-zero label is foot
    true = torch.tensor([[1, 0, 1], [0, 1, 0]])
    meter = ConfusionMeter()
    meter.update(pred, true)
    assert meter.counts.tolist() == [2, 1, 1, 2]  # tp, fp, fn, tn
    scores = meter.compute()
    assert scores["iou"] == pytest.approx(2 / 4) and scores["accuracy"] == pytest.approx(4 / 6)
    assert scores["miou"] == pytest.approx((2 / 4 + 2 / 4) / 2)


def test_counts_pool_over_images_before_dividing() -> None:
    meter = ConfusionMeter()
    meter.update(torch.tensor([1, 1, 1, 1]), torch.tensor([1, 0, 0, 0]))  # IoU 1/4 alone
    meter.update(torch.tensor([1, 0]), torch.tensor([1, 0]))  # IoU 1 alone
    assert meter.compute()["iou"] == pytest.approx(2 / 5)  # not the mean of 0.25 and 1


def test_empty_classes_and_no_pixels() -> None:
    no_foot = binary_scores(torch.zeros(3, 3), torch.zeros(3, 3))
    assert no_foot == {"accuracy": 1.0, "iou": 1.0, "miou": 1.0}  # nothing to find, nothing found
    assert binary_scores(torch.zeros(2), torch.ones(2))["iou"] == 0.0
    assert ConfusionMeter().compute()["accuracy"] == 0.0
    with pytest.raises(ValueError, match="shape"):
        ConfusionMeter().update(torch.zeros(2, 2), torch.zeros(4))


def test_numpy_arrays_and_tensors_count_alike() -> None:
    # evaluation gives NumPy masks (no torch import to score an export), training gives tensors
    pred = np.array([[1, 1, 0], [0, 2, 0]])
    target = np.array([[1, 0, 0], [1, 1, 0]], np.uint8)
    counts = []
    for p, t in ((pred, target), (torch.from_numpy(pred), torch.from_numpy(target)),
                 (torch.from_numpy(pred).to(torch.bfloat16), target), (pred > 0, torch.from_numpy(target))):
        meter = ConfusionMeter()
        meter.update(p, t)
        assert meter.counts.dtype == np.int64
        counts.append(meter.counts.tolist())
    assert counts == [[2, 1, 1, 2]] * 4

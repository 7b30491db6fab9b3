"""Segmentation scores from a binary confusion matrix, accumulated over a whole dataset.

Counts are summed over all pixels of all images before dividing (the standard dataset-level IoU), in one int64 array
(DDP ranks ``all_reduce`` it as a tensor). Label maps may be numpy arrays or torch tensors; no torch import here, so
scoring an ONNX export never loads PyTorch.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _foot(labels: Any) -> np.ndarray:
    """A flat boolean foot map of a numpy array or a torch tensor on any device (any non-zero label is foot)."""
    if hasattr(labels, "detach"):  # a torch tensor: compared where it is (any dtype), one byte a pixel to the host
        return (labels.detach() > 0).reshape(-1).cpu().numpy()
    return np.asarray(labels).reshape(-1) > 0


class ConfusionMeter:
    """Accumulates true/false positives/negatives of the foreground class (label 1)."""

    def __init__(self) -> None:
        self.counts = np.zeros(4, dtype=np.int64)  # tp, fp, fn, tn

    def update(self, pred: Any, target: Any) -> None:
        """``pred`` and ``target``: label maps of the same shape (numpy arrays or torch tensors); any non-zero label
        counts as foot."""
        if tuple(pred.shape) != tuple(target.shape):
            raise ValueError(f"prediction shape {tuple(pred.shape)} != target shape {tuple(target.shape)}")
        p, t = _foot(pred), _foot(target)
        tp = np.count_nonzero(p & t)
        fp = np.count_nonzero(p) - tp
        fn = np.count_nonzero(t) - tp
        self.counts += np.array([tp, fp, fn, p.size - tp - fp - fn], dtype=np.int64)

    def compute(self) -> dict[str, float]:
        tp, fp, fn, tn = (float(c) for c in self.counts)
        total = tp + fp + fn + tn
        # An empty class (no foot predicted or present) counts as a perfect match for that class.
        fg_union = tp + fp + fn
        bg_union = tn + fp + fn
        iou_fg = tp / fg_union if fg_union else 1.0
        iou_bg = tn / bg_union if bg_union else 1.0
        return {
            "accuracy": (tp + tn) / total if total else 0.0,
            "iou": iou_fg,
            "miou": (iou_fg + iou_bg) / 2,
        }


def binary_scores(pred: Any, target: Any) -> dict[str, float]:
    """Scores of a single prediction (e.g. one image), for per-image tables."""
    meter = ConfusionMeter()
    meter.update(pred, target)
    return meter.compute()

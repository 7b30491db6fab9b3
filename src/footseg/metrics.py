"""Segmentation scores from a binary confusion matrix, accumulated over a whole dataset.

Counts are summed over all pixels of all images before dividing (the standard dataset-level IoU), and they live in
one int64 tensor so that DDP ranks can ``all_reduce`` them.
"""

from __future__ import annotations

import torch


class ConfusionMeter:
    """Accumulates true/false positives/negatives of the foreground class (label 1)."""

    def __init__(self) -> None:
        self.counts = torch.zeros(4, dtype=torch.int64)  # tp, fp, fn, tn

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """``pred`` and ``target``: integer label maps of the same shape; any non-zero label counts as foot."""
        if pred.shape != target.shape:
            raise ValueError(f"prediction shape {tuple(pred.shape)} != target shape {tuple(target.shape)}")
        p = pred.detach().reshape(-1).cpu() > 0
        t = target.detach().reshape(-1).cpu() > 0
        tp = int((p & t).sum())
        fp = int((p & ~t).sum())
        fn = int((~p & t).sum())
        self.counts += torch.tensor([tp, fp, fn, p.numel() - tp - fp - fn], dtype=torch.int64)

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


def binary_scores(pred: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """Scores of a single prediction (e.g. one image), for per-image tables."""
    meter = ConfusionMeter()
    meter.update(pred, target)
    return meter.compute()

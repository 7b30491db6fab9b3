"""Segmentation losses, picked by name: ``ce``, ``iou`` (soft IoU, Rahman & Wang 2016) or their sum ``ce+iou``.

A loss is a callable ``(logits (N, C, H, W), target (N, H, W) int64) -> scalar``. ``build_loss`` parses ``+``-joined
term names from ``TERMS``. Distillation needs a teacher's outputs as well, so its terms live in
``footseg.train.distill`` and the trainer mixes them with the label loss.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from footseg.errors import FootsegError
from footseg.runtime.predictor import foot_probability

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Pixel-wise cross-entropy averaged over all pixels of the batch."""
    return F.cross_entropy(logits, target)


def soft_iou_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """``1 - sum(p*t) / sum(p + t - p*t)`` on the foreground probability, per image, averaged over the batch.

    The foreground probability is ``foot_probability`` (``1 - softmax(logits)[:, 0]``) so that, as in
    ``ConfusionMeter``, every non-zero class counts as foot. Optimising IoU directly counters the imbalance between a
    small foot and a large background.
    """
    p = foot_probability(logits)
    t = (target > 0).to(p.dtype)
    intersection = (p * t).flatten(1).sum(1)
    union = (p + t - p * t).flatten(1).sum(1)
    # eps in both terms: an image with neither foot nor predicted foot is a perfect match (loss 0), not 0/0.
    return (1.0 - (intersection + eps) / (union + eps)).mean()


TERMS: dict[str, Loss] = {"ce": cross_entropy, "iou": soft_iou_loss}


def build_loss(name: str) -> Loss:
    """The loss called ``name``: one term of ``TERMS`` or several joined by ``+``, summed."""
    parts = [part.strip() for part in name.split("+")]
    unknown = [part for part in parts if part not in TERMS]
    if unknown or not parts:
        raise FootsegError(f"unknown loss '{name}'; use one of {', '.join(TERMS)} or a sum like 'ce+iou'")
    terms = [TERMS[part] for part in parts]
    if len(terms) == 1:
        return terms[0]

    def summed(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return sum(term(logits, target) for term in terms)  # type: ignore[return-value]

    return summed


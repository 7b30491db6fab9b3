"""Segmentation losses, picked by name: ``ce``, ``iou`` (soft IoU, Rahman & Wang 2016) or their sum ``ce+iou``;
and knowledge distillation from a teacher network (Hinton et al. 2015) with the annealed weight of FitNets.

A loss is a callable ``(logits (N, C, H, W), target (N, H, W) int64) -> scalar``. ``build_loss`` parses ``+``-joined
term names from ``TERMS``. Distillation needs the teacher's logits as well, so it is not one of those terms: the
trainer mixes ``distillation_loss`` with the label loss by ``distill_weight``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from footseg.errors import FootsegError

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Pixel-wise cross-entropy averaged over all pixels of the batch."""
    return F.cross_entropy(logits, target)


def soft_iou_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """``1 - sum(p*t) / sum(p + t - p*t)`` on the foreground probability, per image, averaged over the batch.

    The foreground probability is ``1 - softmax(logits)[:, 0]`` so that, as in ``ConfusionMeter``, every non-zero
    class counts as foot. Optimising IoU directly counters the imbalance between a small foot and a large background.
    """
    p = 1.0 - logits.softmax(dim=1)[:, 0]
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


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """Hinton's soft-target loss: ``T^2 * KL(softmax(teacher / T) || softmax(student / T))``, averaged per pixel.

    Both are (N, C, H, W) logits at the same size. The ``T^2`` keeps the gradient's scale independent of ``T``, so
    the weight that mixes this with the label loss means the same at any temperature.
    """
    if student.shape != teacher.shape:
        raise ValueError(f"student logits {tuple(student.shape)} and teacher logits {tuple(teacher.shape)} differ")
    t = float(temperature)
    log_p_student = F.log_softmax(student / t, dim=1)
    log_p_teacher = F.log_softmax(teacher / t, dim=1)
    kl = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(1)  # per pixel
    return kl.mean() * (t * t)


def distill_weight(initial: float, progress: float, anneal: bool = True) -> float:
    """The distillation term's weight at ``progress`` (0 at the first step, 1 at the last) of a run.

    As in FitNets, the weight falls linearly from ``initial`` to 0: early on the student follows the teacher's soft
    outputs, by the end it is fitted to the labels alone. ``anneal=False`` keeps ``initial`` throughout.
    """
    if not anneal:
        return initial
    return initial * (1.0 - min(1.0, max(0.0, progress)))

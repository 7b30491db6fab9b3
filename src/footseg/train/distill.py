"""Knowledge distillation from a teacher network: Hinton's soft targets and Zagoruyko's attention transfer.

- ``distillation_loss`` (Hinton et al. 2015): the student fits the teacher's per-pixel class distribution softened by
  a temperature; ``distill_weight`` anneals its share of the loss linearly to 0, as FitNets (Romero et al. 2015) did.
- ``attention_transfer_loss`` (Zagoruyko & Komodakis 2017): the student's encoder stages fit the teacher's spatial
  attention maps (channel mean of squared activations, L2-normalised), stage by stage at the same stride. Each
  architecture names its encoder stages in ``feature_stages`` ({stride: module name}), so any teacher and student
  pair up at the strides both have; ``FeatureTap`` collects those stage outputs with forward hooks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from footseg.errors import FootsegError


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
    kl = F.kl_div(log_p_student, log_p_teacher, reduction="none", log_target=True).sum(1)  # per pixel
    return kl.mean() * (t * t)


def distill_weight(initial: float, progress: float, anneal: bool = True) -> float:
    """The distillation term's weight at ``progress`` (0 at the first step, 1 at the last) of a run.

    As in FitNets, the weight falls linearly from ``initial`` to 0: early on the student follows the teacher's soft
    outputs, by the end it is fitted to the labels alone. ``anneal=False`` keeps ``initial`` throughout.
    """
    if not anneal:
        return initial
    return initial * (1.0 - min(1.0, max(0.0, progress)))


def attention_map(features: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) activations -> (N, H*W) spatial attention: channel mean of squares, unit L2 norm per image."""
    return F.normalize(features.pow(2).mean(1).flatten(1), dim=1)


def attention_transfer_loss(student: dict[int, torch.Tensor], teacher: dict[int, torch.Tensor]) -> torch.Tensor:
    """Mean over the strides both have of ``mean((Q_s - Q_t)^2)``, Q the ``attention_map`` of a stage's output.

    Maps at one stride are compared at the student's resolution (bilinear), so a teacher whose stage is a pixel
    larger or smaller (odd padding) still pairs up.
    """
    strides = sorted(set(student) & set(teacher))
    if not strides:
        raise ValueError(f"no common stride: student has {sorted(student)}, teacher {sorted(teacher)}")
    terms = []
    for s in strides:
        fs, ft = student[s], teacher[s]
        if ft.shape[-2:] != fs.shape[-2:]:
            ft = F.interpolate(ft, size=fs.shape[-2:], mode="bilinear", align_corners=False)
        terms.append((attention_map(fs) - attention_map(ft)).pow(2).mean())
    return torch.stack(terms).mean()


class FeatureTap:
    """Forward hooks that keep the latest output of each of a network's ``feature_stages``, keyed by stride."""

    def __init__(self, model: nn.Module):
        stages: dict[int, str] | None = getattr(model, "feature_stages", None)
        if not stages:
            raise FootsegError(f"{type(model).__name__} names no feature_stages; attention transfer needs them")
        self.features: dict[int, torch.Tensor] = {}
        self._handles = [model.get_submodule(name).register_forward_hook(self._keeper(stride))
                         for stride, name in stages.items()]

    def _keeper(self, stride: int):
        def keep(module: nn.Module, inputs: object, output: torch.Tensor) -> None:
            self.features[stride] = output

        return keep

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self.features.clear()

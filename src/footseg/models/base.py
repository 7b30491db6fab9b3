"""The shape every footseg network shares, after segmentation_models_pytorch's ``SegmentationModel``.

input check -> ``encode`` (encoder features) -> ``decode`` -> ``head`` (logits) -> optional bilinear upsampling.
An architecture builds its layers in ``__init__``, calls ``initialize()`` last, and writes ``encode`` and
``decode``; ``forward`` lives here only. Subclasses keep their layers as flat attributes (``stem``, ``stages``,
``dec4``, ``head``...) rather than grouping them into ``encoder``/``decoder`` containers, because the module names
are the state_dict keys of shipped checkpoints and the names recorded in pruned ``layer_shapes``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch
from torch import nn

from footseg.errors import FootsegError
from footseg.models.blocks import check_input, init_weights


class SegmentationModel(nn.Module, ABC):
    """Base class of the registered architectures: (N, in_channels, H, W) -> (N, num_classes, H, W) logits.

    ``in_channels`` is 3 (RGB) unless an architecture is built with more, e.g. a previous frame's mask as a 4th
    channel; the input check follows it.
    """

    # Encoder outputs by stride -> module name, for attention transfer (``footseg.train.distill.FeatureTap``).
    feature_stages: ClassVar[dict[int, str]] = {}
    # Bilinear factor applied to the head's output: heads that run below full resolution are cheaper, and a
    # resize commutes with the export's margin folding (it acts on each channel alone).
    head_upsample: ClassVar[int] = 1
    # The layer that makes the logits; the last two-output conv is what ONNX export folds to one margin channel.
    head: nn.Module

    def __init__(self, in_channels: int = 3):
        super().__init__()
        if in_channels < 1:
            raise FootsegError(f"in_channels must be at least 1, got {in_channels}")
        self.in_channels = in_channels

    def initialize(self) -> None:
        """He-normal convs, unit BatchNorm (``blocks.init_weights``); call once, after every layer is built."""
        init_weights(self)

    @abstractmethod
    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """What the decoder needs from the input, shallowest first."""

    @abstractmethod
    def decode(self, features: list[torch.Tensor]) -> torch.Tensor:
        """The decoder's output, which ``head`` turns into logits."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.in_channels)
        logits = self.head(self.decode(self.encode(x)))
        if self.head_upsample > 1:  # a class constant, so a traced graph holds one fixed-scale Resize
            scale = float(self.head_upsample)
            logits = nn.functional.interpolate(logits, scale_factor=scale, mode="bilinear", align_corners=False)
        return logits

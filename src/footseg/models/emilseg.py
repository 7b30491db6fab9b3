"""EmilSeg: the large teacher model (about 24M parameters at width 1), accuracy first, speed second.

A ResNet-34 encoder (He et al. 2016; ``blocks.ResNetEncoder`` with (3, 4, 6, 3) BasicBlocks, 64..512 channels)
with a U-Net decoder (Ronneberger et al. 2015) in the form popularised by segmentation_models_pytorch: five
stages, each upsampling x2 (bilinear), concatenating the encoder features of that resolution (1/16, 1/8, 1/4 and
the 1/2 stem output; none at full resolution) and applying two 3x3 Conv+BN+ReLU, with 256, 128, 64, 32, 16
channels; a 3x3 conv gives the logits at full resolution.

Choices of ours: bilinear upsampling instead of U-Net's 2x2 up-convolutions; BatchNorm throughout; ``width``
scales every channel count.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from footseg.models.base import SegmentationModel
from footseg.models.blocks import RESNET_FEATURE_STAGES, ConvBNAct, ResNetEncoder, scaled, upsample2x
from footseg.models.registry import register_model


class UpBlock(nn.Module):
    def __init__(self, in_ch: int, skip_ch: int, out_ch: int):
        super().__init__()
        self.convs = nn.Sequential(ConvBNAct(in_ch + skip_ch, out_ch, 3), ConvBNAct(out_ch, out_ch, 3))

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        x = upsample2x(x)
        if skip is not None:  # fixed per block (only the last has no skip), so the graph stays static
            x = torch.cat([x, skip], dim=1)
        return self.convs(x)


class EmilSeg(SegmentationModel):
    feature_stages: ClassVar[dict[int, str]] = RESNET_FEATURE_STAGES

    def __init__(self, width: float = 1.0, num_classes: int = 2, in_channels: int = 3):
        super().__init__(in_channels)
        self.encoder = ResNetEncoder((3, 4, 6, 3), width, in_channels)
        s2, e4, e8, e16, e32 = self.encoder.channels
        d16, d8, d4, d2, d1 = (scaled(c, width) for c in (256, 128, 64, 32, 16))
        self.up16 = UpBlock(e32, e16, d16)
        self.up8 = UpBlock(d16, e8, d8)
        self.up4 = UpBlock(d8, e4, d4)
        self.up2 = UpBlock(d4, s2, d2)
        self.up1 = UpBlock(d2, 0, d1)
        self.head = nn.Conv2d(d1, num_classes, 3, padding=1)
        self.initialize()

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.encoder(x)

    def decode(self, features: list[torch.Tensor]) -> torch.Tensor:
        s2, e4, e8, e16, e32 = features
        d = self.up16(e32, e16)
        d = self.up8(d, e8)
        d = self.up4(d, e4)
        d = self.up2(d, s2)
        return self.up1(d)


@register_model("emilseg")
def emilseg(width: float = 1.0, num_classes: int = 2, in_channels: int = 3) -> nn.Module:
    return EmilSeg(width=width, num_classes=num_classes, in_channels=in_channels)

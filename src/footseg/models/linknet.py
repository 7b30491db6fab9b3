"""LinkNet (Chaurasia & Culurciello 2017, "LinkNet: Exploiting Encoder Representations for Efficient Semantic
Segmentation").

From the paper:
- encoder: ResNet-18 (7x7 stride-2 conv, 3x3 stride-2 max-pool, four stages of two BasicBlocks with 64, 128,
  256, 512 channels), written in ``blocks.ResNetEncoder`` rather than taken from torchvision;
- decoder blocks (m -> n): 1x1 conv m -> m/4, 3x3 stride-2 transposed conv m/4 -> m/4, 1x1 conv m/4 -> n, each
  followed by BatchNorm and ReLU; each decoder's output is *added* to the encoder output of the same resolution
  (the "link"), so the decoder never has to re-learn what the encoder lost;
- head: 3x3 stride-2 transposed conv 64 -> 32, 3x3 conv 32 -> 32, 2x2 stride-2 transposed conv 32 -> classes.
About 11.5M parameters at width 1.

Deviations: ``width`` scales all channel counts; as in the authors' released code, the first decoder (64 -> 64,
at 1/4) does not upsample (a 3x3 conv replaces its transposed conv), since the first ResNet stage does not
downsample either; the head's transposed convs then bring 1/4 back to full resolution.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from footseg.models.base import SegmentationModel
from footseg.models.blocks import RESNET_FEATURE_STAGES, ConvBNAct, ResNetEncoder, scaled
from footseg.models.registry import register_model


def transposed_conv_bn_relu(in_ch: int, out_ch: int) -> nn.Sequential:
    """3x3 stride-2 transposed conv that exactly doubles H and W, + BN + ReLU."""
    return nn.Sequential(
        nn.ConvTranspose2d(in_ch, out_ch, 3, 2, padding=1, output_padding=1, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    )


class DecoderBlock(nn.Sequential):
    def __init__(self, in_ch: int, out_ch: int, upsample: bool = True):
        mid = max(8, in_ch // 4)
        super().__init__(
            ConvBNAct(in_ch, mid, 1),
            transposed_conv_bn_relu(mid, mid) if upsample else ConvBNAct(mid, mid, 3),
            ConvBNAct(mid, out_ch, 1),
        )


class LinkNet(SegmentationModel):
    feature_stages: ClassVar[dict[int, str]] = RESNET_FEATURE_STAGES

    def __init__(self, width: float = 1.0, num_classes: int = 2, in_channels: int = 3):
        super().__init__(in_channels)
        self.encoder = ResNetEncoder((2, 2, 2, 2), width, in_channels)
        _, c1, c2, c3, c4 = self.encoder.channels
        self.dec4 = DecoderBlock(c4, c3)
        self.dec3 = DecoderBlock(c3, c2)
        self.dec2 = DecoderBlock(c2, c1)
        self.dec1 = DecoderBlock(c1, c1, upsample=False)
        c32 = scaled(32, width)
        self.head = nn.Sequential(
            transposed_conv_bn_relu(c1, c32),
            ConvBNAct(c32, c32, 3),
            nn.ConvTranspose2d(c32, num_classes, 2, 2),
        )
        self.initialize()

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.encoder(x)

    def decode(self, features: list[torch.Tensor]) -> torch.Tensor:
        _, e1, e2, e3, e4 = features
        d = self.dec4(e4) + e3
        d = self.dec3(d) + e2
        d = self.dec2(d) + e1
        return self.dec1(d)


@register_model("linknet")
def linknet(width: float = 1.0, num_classes: int = 2, in_channels: int = 3) -> nn.Module:
    return LinkNet(width=width, num_classes=num_classes, in_channels=in_channels)

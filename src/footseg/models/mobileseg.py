"""MobileSeg: a MobileNetV2 encoder (Sandler et al. 2018) with a light skip decoder.

From MobileNetV2: the 3x3 stride-2 stem with 32 channels and the seven inverted-residual stages
(expansion t, channels c, repeats n, stride s) = (1,16,1,1) (6,24,2,2) (6,32,3,2) (6,64,4,2) (6,96,3,1)
(6,160,3,2) (6,320,1,1); each block is 1x1 expansion + ReLU6, depthwise 3x3 + ReLU6, linear 1x1 projection,
with a residual when shapes match; ``width`` is the paper's width multiplier (channels rounded to multiples of 8).

Not from the paper (the decoder is ours): the final 1x1 conv to 1280 channels and the classifier are dropped;
a U-Net-like decoder upsamples the 1/32 features x2 three times, concatenating the encoder features at 1/16, 1/8
and 1/4 and fusing each with one depthwise-separable conv (128 -> 96 -> 64 -> 32 channels); a 1x1 conv gives the
logits at 1/4, bilinearly upsampled x4 to the input size.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from footseg.models.base import SegmentationModel
from footseg.models.blocks import ConvBNAct, SeparableConv, scaled, upsample2x
from footseg.models.registry import register_model

# (expansion, channels, repeats, first stride) from MobileNetV2 Table 2
_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
# indices of the stages whose outputs are the 1/4, 1/8, 1/16 and 1/32 features
_TAPS = (1, 2, 4, 6)


class InvertedResidual(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, stride: int, expansion: int):
        super().__init__()
        hidden = in_ch * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(ConvBNAct(in_ch, hidden, 1, act="relu6"))
        layers += [
            ConvBNAct(hidden, hidden, 3, stride, groups=hidden, act="relu6"),
            ConvBNAct(hidden, out_ch, 1, act=None),  # linear bottleneck
        ]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x) if self.residual else self.block(x)


class MobileSeg(SegmentationModel):
    feature_stages: ClassVar[dict[int, str]] = {
        stride: f"stages.{i}" for stride, i in zip((4, 8, 16, 32), _TAPS, strict=True)
    }
    head_upsample: ClassVar[int] = 4  # the head runs at 1/4

    def __init__(self, width: float = 1.0, num_classes: int = 2, in_channels: int = 3):
        super().__init__(in_channels)
        in_ch = scaled(32, width)
        self.stem = ConvBNAct(in_channels, in_ch, 3, 2, act="relu6")
        stages = []
        taps = []
        for i, (t, c, n, s) in enumerate(_STAGES):
            out_ch = scaled(c, width)
            blocks = []
            for j in range(n):
                blocks.append(InvertedResidual(in_ch, out_ch, s if j == 0 else 1, t))
                in_ch = out_ch
            stages.append(nn.Sequential(*blocks))
            if i in _TAPS:
                taps.append(out_ch)
        self.stages = nn.ModuleList(stages)
        e4, e8, e16, e32 = taps
        d32, d16, d8, d4 = (scaled(c, width) for c in (128, 96, 64, 32))
        self.top = ConvBNAct(e32, d32, 1)
        self.fuse16 = SeparableConv(d32 + e16, d16)
        self.fuse8 = SeparableConv(d16 + e8, d8)
        self.fuse4 = SeparableConv(d8 + e4, d4)
        self.head = nn.Conv2d(d4, num_classes, 1)
        self.initialize()

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        y = self.stem(x)
        for i, stage in enumerate(self.stages):
            y = stage(y)
            if i in _TAPS:
                feats.append(y)
        return feats

    def decode(self, features: list[torch.Tensor]) -> torch.Tensor:
        e4, e8, e16, e32 = features
        d = self.top(e32)
        d = self.fuse16(torch.cat([upsample2x(d), e16], dim=1))
        d = self.fuse8(torch.cat([upsample2x(d), e8], dim=1))
        return self.fuse4(torch.cat([upsample2x(d), e4], dim=1))


@register_model("mobileseg")
def mobileseg(width: float = 1.0, num_classes: int = 2, in_channels: int = 3) -> nn.Module:
    return MobileSeg(width=width, num_classes=num_classes, in_channels=in_channels)

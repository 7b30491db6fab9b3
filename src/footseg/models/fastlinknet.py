"""FastLinkNet: LinkNet (Chaurasia & Culurciello 2017) rebuilt for phone-CPU speed; with a context gate
(``fastlinknet_ctx``), the default shipped model.

Kept from LinkNet: a four-stage residual encoder (1/4 .. 1/32) whose stage outputs are *added* to the decoder
(no concatenation, so the decoder never widens), and decoder blocks that squeeze to m/4 channels with a 1x1
conv, upsample x2, then expand with a 1x1 conv to the skip's width.

Changed for speed (<= 0.3 GFLOPs at 256x256, ~0.2M parameters, int8-friendly):
- every 3x3 conv except the first is depthwise-separable (MobileNetV1 style: dw 3x3 + BN + ReLU, 1x1 + BN);
- early downsampling: a 3x3 stride-2 conv then a stride-2 separable conv reaches 1/4 after two layers, instead of
  LinkNet's 7x7 conv + max-pool (the 7x7 conv alone costs more than this whole network);
- channels 16/32/64/96/128 instead of 64/64/128/256/512 (still two residual blocks per stage);
- the decoder's 3x3 transposed conv is replaced by bilinear x2 upsampling followed by a depthwise 3x3 conv
  (no checkerboard artefacts; Resize + Conv quantize better than ConvTranspose);
- a cheap 1/2-resolution skip from the stem sharpens boundaries; the head is a 1x1 conv at 1/2 followed by
  bilinear x2 upsampling, instead of LinkNet's full-resolution transposed-conv/conv/transposed-conv head.
Only Conv+BN(+ReLU), Add, Resize: operations that ONNX Runtime fuses and quantizes to int8 without surprises.

``fastlinknet_ctx`` adds LR-ASPP's context branch (MobileNetV3, Howard et al. 2019) on the 1/32 features: a 1x1
Conv+BN+ReLU whose output is scaled per channel by a sigmoid of the whole image's mean (GlobalAveragePool, Conv,
Sigmoid, Mul; ONNX Runtime quantizes them too). The decoder can then tell a foot-coloured floor blob from a foot by
what else is in the frame (the paper, the other foot, a shin). At width 1: 199,554 parameters against 166,402, and
1.3% more FLOPs at 256x256.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from footseg.models.base import SegmentationModel
from footseg.models.blocks import ConvBNAct, SeparableConv, scaled, upsample2x
from footseg.models.registry import register_model


class SeparableBasicBlock(nn.Module):
    """ResNet basic block with both 3x3 convs made depthwise-separable; strided blocks project the shortcut."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1):
        super().__init__()
        self.body = nn.Sequential(
            SeparableConv(in_ch, out_ch, stride),
            SeparableConv(out_ch, out_ch, last_act=False),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = ConvBNAct(in_ch, out_ch, 1, stride, act=None)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


class Decoder(nn.Module):
    """LinkNet decoder block: 1x1 squeeze to m/4, x2 upsampling + depthwise 3x3, 1x1 expansion to n."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        mid = max(8, in_ch // 4)
        self.squeeze = ConvBNAct(in_ch, mid, 1)
        self.spatial = ConvBNAct(mid, mid, 3, groups=mid)
        self.expand = ConvBNAct(mid, out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.expand(self.spatial(upsample2x(self.squeeze(x))))


class GlobalContext(nn.Module):
    """LR-ASPP's context branch: a 1x1 Conv+BN+ReLU, multiplied by a per-channel sigmoid gate of the global mean."""

    def __init__(self, channels: int):
        super().__init__()
        self.local = ConvBNAct(channels, channels, 1)
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, channels, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.local(x) * self.gate(x)


class FastLinkNet(SegmentationModel):
    feature_stages: ClassVar[dict[int, str]] = {4: "stages.0", 8: "stages.1", 16: "stages.2", 32: "stages.3"}
    head_upsample: ClassVar[int] = 2  # the head runs at 1/2

    def __init__(self, width: float = 1.0, num_classes: int = 2, in_channels: int = 3, context: bool = False):
        super().__init__(in_channels)
        c0, c1, c2, c3, c4 = (scaled(c, width) for c in (16, 32, 64, 96, 128))
        depths = (2, 2, 2, 2)  # as in LinkNet's ResNet-18
        self.stem = ConvBNAct(in_channels, c0, 3, 2)  # 1/2
        self.down = SeparableConv(c0, c1, 2)  # 1/4
        stages = []
        for i, (depth, cin, cout) in enumerate(zip(depths, (c1, c1, c2, c3), (c1, c2, c3, c4), strict=True)):
            blocks = [SeparableBasicBlock(cin, cout, 1 if i == 0 else 2)]
            blocks += [SeparableBasicBlock(cout, cout) for _ in range(depth - 1)]
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.context = GlobalContext(c4) if context else None  # None: the plain network's graph gains no node
        self.dec4 = Decoder(c4, c3)
        self.dec3 = Decoder(c3, c2)
        self.dec2 = Decoder(c2, c1)
        self.dec1 = Decoder(c1, c0)
        self.refine = SeparableConv(c0, c0)
        self.head = nn.Conv2d(c0, num_classes, 1)
        self.initialize()

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        s = self.stem(x)
        e1 = self.stages[0](self.down(s))
        e2 = self.stages[1](e1)
        e3 = self.stages[2](e2)
        e4 = self.stages[3](e3)
        return [s, e1, e2, e3, e4]

    def decode(self, features: list[torch.Tensor]) -> torch.Tensor:
        s, e1, e2, e3, e4 = features
        if self.context is not None:
            e4 = self.context(e4)
        d = self.dec4(e4) + e3
        d = self.dec3(d) + e2
        d = self.dec2(d) + e1
        d = self.dec1(d) + s
        return self.refine(d)  # kept out of the head so that ``head`` is the one-layer classifier


@register_model("fastlinknet")
def fastlinknet(width: float = 1.0, num_classes: int = 2, in_channels: int = 3) -> nn.Module:
    return FastLinkNet(width=width, num_classes=num_classes, in_channels=in_channels)


@register_model("fastlinknet_ctx")
def fastlinknet_ctx(width: float = 1.0, num_classes: int = 2, in_channels: int = 3) -> nn.Module:
    return FastLinkNet(width=width, num_classes=num_classes, in_channels=in_channels, context=True)

"""ENet (Paszke, Chaurasia, Kim & Culurciello 2016, "ENet: A Deep Neural Network Architecture for Real-Time
Semantic Segmentation"), as published.

From the paper (Table 1 and Section 3):
- initial block: 13-channel 3x3 stride-2 conv concatenated with a 2x2 max-pool of the input (16 channels, 1/2);
- stage 1: a downsampling bottleneck to 64 channels (1/4) and four regular bottlenecks, spatial dropout p=0.01;
- stages 2 and 3: regular, dilated 2, asymmetric 5, dilated 4, regular, dilated 8, asymmetric 5, dilated 16
  bottlenecks at 128 channels (1/8), stage 2 starting with a downsampling bottleneck; spatial dropout p=0.1;
- bottlenecks: 1x1 projection to out/4 channels, main conv (3x3, dilated 3x3, or 5x1 followed by 1x5), 1x1
  expansion, spatial dropout, added to the shortcut; BatchNorm after every conv; PReLU in the encoder, ReLU in the
  decoder;
- downsampling bottlenecks: the projection is a 2x2 stride-2 conv; the shortcut is a 2x2 max-pool (indices kept)
  zero-padded to the new channel count;
- decoder (stages 4, 5): upsampling bottlenecks whose shortcut is a 1x1 conv + max-unpooling with the indices of
  the matching encoder max-pool and whose main branch uses a 3x3 stride-2 transposed conv, followed by regular
  bottlenecks (64, 64 then 16); a final 2x2 stride-2 transposed conv ("fullconv", ``head`` here) produces
  full-resolution logits.
About 0.35M parameters at width 1 (the paper reports 0.37M).

Deviations: ``width`` scales the 16/64/128 channel counts (rounded to multiples of 8; the initial conv leaves
``in_channels``, 3 for RGB, of the 16 channels to the pooled input); the decoder uses spatial dropout p=0.1 like
stage 2 and 3; the internal width of every bottleneck is out_channels/4.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from footseg.models.base import SegmentationModel
from footseg.models.blocks import ConvBNAct, activation, scaled
from footseg.models.registry import register_model


class InitialBlock(nn.Module):
    def __init__(self, out_ch: int, in_ch: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch - in_ch, 3, 2, 1, bias=False)  # the pooled input fills the rest
        self.pool = nn.MaxPool2d(2, 2)
        self.bn = nn.BatchNorm2d(out_ch)
        self.act = nn.PReLU(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(torch.cat([self.conv(x), self.pool(x)], dim=1)))


class Bottleneck(nn.Module):
    """Regular, dilated (``dilation > 1``) or asymmetric (``asymmetric=True``: 5x1 then 1x5) bottleneck."""

    def __init__(self, ch: int, dilation: int = 1, asymmetric: bool = False, dropout: float = 0.1, act: str = "prelu"):
        super().__init__()
        mid = ch // 4
        if asymmetric:
            main: nn.Module = nn.Sequential(
                nn.Conv2d(mid, mid, (5, 1), padding=(2, 0), bias=False),
                ConvBNAct(mid, mid, (1, 5), act=act),
            )
        else:
            main = ConvBNAct(mid, mid, 3, dilation=dilation, act=act)
        self.branch = nn.Sequential(
            ConvBNAct(ch, mid, 1, act=act),
            main,
            ConvBNAct(mid, ch, 1, act=None),
            nn.Dropout2d(dropout),
        )
        self.act = activation(act, ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.branch(x))


class DownsamplingBottleneck(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, dropout: float):
        super().__init__()
        mid = out_ch // 4
        self.pool = nn.MaxPool2d(2, 2, return_indices=True)
        self.pad = out_ch - in_ch
        self.branch = nn.Sequential(
            ConvBNAct(in_ch, mid, 2, 2, padding=0, act="prelu"),
            ConvBNAct(mid, mid, 3, act="prelu"),
            ConvBNAct(mid, out_ch, 1, act=None),
            nn.Dropout2d(dropout),
        )
        self.act = nn.PReLU(out_ch)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        main, indices = self.pool(x)
        main = nn.functional.pad(main, (0, 0, 0, 0, 0, self.pad))  # zero channels up to out_ch
        return self.act(main + self.branch(x)), indices


def max_unpool2x(values: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """Inverse of a 2x2 stride-2 max-pool: each value goes back to its argmax position, zeros elsewhere.

    Same result as ``nn.MaxUnpool2d(2, 2)``, written with Resize/Range/Equal because the ONNX exporter has no
    MaxUnpool conversion. Positions go through float32, exact for feature maps up to 2^24 pixels.
    """
    up_values = nn.functional.interpolate(values, scale_factor=2.0, mode="nearest")
    up_indices = nn.functional.interpolate(indices.to(values.dtype), scale_factor=2.0, mode="nearest")
    h, w = up_values.shape[-2:]
    positions = torch.arange(h * w, dtype=values.dtype, device=values.device).reshape(1, 1, h, w)
    return torch.where(up_indices == positions, up_values, torch.zeros_like(up_values))


class UpsamplingBottleneck(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, dropout: float):
        super().__init__()
        mid = out_ch // 4
        self.main = ConvBNAct(in_ch, out_ch, 1, act=None)
        self.branch = nn.Sequential(
            ConvBNAct(in_ch, mid, 1),
            nn.ConvTranspose2d(mid, mid, 3, 2, padding=1, output_padding=1, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            ConvBNAct(mid, out_ch, 1, act=None),
            nn.Dropout2d(dropout),
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        main = max_unpool2x(self.main(x), indices)
        return self.act(main + self.branch(x))


def _stage23(ch: int) -> list[nn.Module]:
    return [
        Bottleneck(ch),
        Bottleneck(ch, dilation=2),
        Bottleneck(ch, asymmetric=True),
        Bottleneck(ch, dilation=4),
        Bottleneck(ch),
        Bottleneck(ch, dilation=8),
        Bottleneck(ch, asymmetric=True),
        Bottleneck(ch, dilation=16),
    ]


class ENet(SegmentationModel):
    feature_stages: ClassVar[dict[int, str]] = {4: "stage1", 8: "stage3"}

    def __init__(self, width: float = 1.0, num_classes: int = 2, in_channels: int = 3):
        super().__init__(in_channels)
        c16, c64, c128 = (scaled(c, width) for c in (16, 64, 128))
        self.initial = InitialBlock(c16, in_channels)
        self.down1 = DownsamplingBottleneck(c16, c64, dropout=0.01)
        self.stage1 = nn.Sequential(*[Bottleneck(c64, dropout=0.01) for _ in range(4)])
        self.down2 = DownsamplingBottleneck(c64, c128, dropout=0.1)
        self.stage2 = nn.Sequential(*_stage23(c128))
        self.stage3 = nn.Sequential(*_stage23(c128))
        self.up4 = UpsamplingBottleneck(c128, c64, dropout=0.1)
        self.stage4 = nn.Sequential(Bottleneck(c64, act="relu"), Bottleneck(c64, act="relu"))
        self.up5 = UpsamplingBottleneck(c64, c16, dropout=0.1)
        self.stage5 = Bottleneck(c16, act="relu")
        self.head = nn.ConvTranspose2d(c16, num_classes, 2, 2)  # the paper's "fullconv"
        self.initialize()

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        # The decoder unpools with the encoder's max-pool indices, so they travel with the 1/8 features.
        x = self.initial(x)
        x, idx1 = self.down1(x)
        x = self.stage1(x)
        x, idx2 = self.down2(x)
        return [idx1, idx2, self.stage3(self.stage2(x))]

    def decode(self, features: list[torch.Tensor]) -> torch.Tensor:
        idx1, idx2, x = features
        x = self.stage4(self.up4(x, idx2))
        return self.stage5(self.up5(x, idx1))


@register_model("enet")
def enet(width: float = 1.0, num_classes: int = 2, in_channels: int = 3) -> nn.Module:
    return ENet(width=width, num_classes=num_classes, in_channels=in_channels)

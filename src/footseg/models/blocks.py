"""Layers shared by the architectures: channel scaling, the input-size check, conv units and a ResNet encoder.

Everything here is export-friendly: no data-dependent Python control flow in ``forward``, upsampling by fixed
factors, so ``torch.onnx.export`` traces each model into a static graph.
"""

from __future__ import annotations

import torch
from torch import nn

from footseg.errors import FootsegError

STRIDE = 32  # every model downsamples by 32, so inputs must be divisible by it


def scaled(channels: int, width: float, divisor: int = 8, minimum: int = 8) -> int:
    """``channels * width`` rounded to the nearest multiple of ``divisor`` (at least ``minimum``).

    Multiples of 8 keep SIMD lanes full in CPU/mobile kernels; as in MobileNetV2, rounding never drops more
    than 10% below the requested width.
    """
    target = channels * width
    value = max(minimum, int(target + divisor / 2) // divisor * divisor)
    if value < 0.9 * target:
        value += divisor
    return value


def _exporting() -> bool:
    return torch.jit.is_tracing() or torch.compiler.is_compiling() or torch.onnx.is_in_onnx_export()


def check_input(x: torch.Tensor, channels: int = 3) -> None:
    """Raise a ``FootsegError`` unless ``x`` is an (N, channels, H, W) batch with H and W multiples of 32.

    Skipped while tracing/exporting: the check is Python control flow on the shape, which an exported graph
    cannot (and need not) contain.
    """
    if _exporting():
        return
    if x.dim() != 4 or x.shape[1] != channels:
        kind = "RGB" if channels == 3 else f"{channels}-channel"
        raise FootsegError(f"expected an (N, {channels}, H, W) {kind} batch, got shape {tuple(x.shape)}")
    h, w = int(x.shape[2]), int(x.shape[3])
    if h % STRIDE or w % STRIDE:
        raise FootsegError(f"input size {h}x{w} is not a multiple of {STRIDE}; resize or pad it")


def activation(name: str, channels: int) -> nn.Module:
    """``"relu"``, ``"relu6"`` or ``"prelu"`` (one learnable slope per channel, as in ENet)."""
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "relu6":
        return nn.ReLU6(inplace=True)
    if name == "prelu":
        return nn.PReLU(channels)
    raise ValueError(f"unknown activation {name!r}")


class ConvBNAct(nn.Sequential):
    """Conv2d (no bias) + BatchNorm + activation (see ``activation``); ``groups=in_ch`` makes it depthwise.

    The Conv+BN+ReLU triple is the unit that ONNX Runtime fuses and quantizes best.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int | tuple[int, int] = 3,
        stride: int = 1,
        padding: int | tuple[int, int] | None = None,
        dilation: int = 1,
        groups: int = 1,
        act: str | None = "relu",
    ):
        if padding is None:
            k = (kernel, kernel) if isinstance(kernel, int) else kernel
            padding = (dilation * (k[0] - 1) // 2, dilation * (k[1] - 1) // 2)
        layers: list[nn.Module] = [
            nn.Conv2d(in_ch, out_ch, kernel, stride, padding, dilation=dilation, groups=groups, bias=False),
            nn.BatchNorm2d(out_ch),
        ]
        if act is not None:
            layers.append(activation(act, out_ch))
        super().__init__(*layers)


class SeparableConv(nn.Sequential):
    """Depthwise 3x3 (+BN+act) followed by pointwise 1x1 (+BN, optional act), as in MobileNetV1."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        stride: int = 1,
        act: str = "relu",
        last_act: bool = True,
    ):
        super().__init__(
            ConvBNAct(in_ch, in_ch, 3, stride, groups=in_ch, act=act),
            ConvBNAct(in_ch, out_ch, 1, act=act if last_act else None),
        )


def upsample2x(x: torch.Tensor) -> torch.Tensor:
    """Bilinear x2 upsampling (a fixed scale exports as one ONNX Resize)."""
    return nn.functional.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


class BasicBlock(nn.Module):
    """ResNet basic block (He et al. 2016): two 3x3 convs with an identity or 1x1-projection shortcut."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1):
        super().__init__()
        self.conv1 = ConvBNAct(in_ch, out_ch, 3, stride)
        self.conv2 = ConvBNAct(out_ch, out_ch, 3, act=None)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = ConvBNAct(in_ch, out_ch, 1, stride, act=None)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv2(self.conv1(x)) + self.shortcut(x))


# Module names of a ``ResNetEncoder``'s stage outputs by stride, for a network holding one as ``encoder``.
RESNET_FEATURE_STAGES = {stride: f"encoder.stages.{i}" for i, stride in enumerate((4, 8, 16, 32))}


class ResNetEncoder(nn.Module):
    """A torchvision-compatible ResNet trunk without the classifier (written here; no torchvision).

    ``depths=(2, 2, 2, 2)`` is ResNet-18, ``(3, 4, 6, 3)`` ResNet-34. ``forward`` returns the stem output (1/2)
    and the four stage outputs (1/4, 1/8, 1/16, 1/32).
    """

    def __init__(self, depths: tuple[int, int, int, int], width: float = 1.0, in_channels: int = 3):
        super().__init__()
        chans = [scaled(c, width) for c in (64, 128, 256, 512)]
        self.channels = (chans[0], *chans)
        self.stem = ConvBNAct(in_channels, chans[0], 7, 2)
        self.pool = nn.MaxPool2d(3, 2, 1)
        stages = []
        in_ch = chans[0]
        for i, (depth, out_ch) in enumerate(zip(depths, chans, strict=True)):
            blocks = [BasicBlock(in_ch, out_ch, 1 if i == 0 else 2)]
            blocks += [BasicBlock(out_ch, out_ch) for _ in range(depth - 1)]
            stages.append(nn.Sequential(*blocks))
            in_ch = out_ch
        self.stages = nn.ModuleList(stages)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        feats = [x]
        x = self.pool(x)
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats


def init_weights(model: nn.Module) -> None:
    """He-normal convs, unit BatchNorm: the standard initialisation for ReLU networks."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

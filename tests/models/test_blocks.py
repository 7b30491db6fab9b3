"""Shared layers: channel rounding and the input check."""

from __future__ import annotations

import pytest
import torch

from footseg.errors import FootsegError
from footseg.models.blocks import ResNetEncoder, check_input, scaled


@pytest.mark.parametrize(
    ("channels", "width", "expected"),
    [(64, 1.0, 64), (64, 0.5, 32), (16, 0.25, 8), (32, 0.1, 8), (96, 0.75, 72), (100, 1.0, 104), (24, 1.4, 32)],
)
def test_scaled_rounds_to_multiples_of_8(channels: int, width: float, expected: int) -> None:
    assert scaled(channels, width) == expected


def test_check_input_accepts_multiples_of_32_and_names_the_size_otherwise() -> None:
    check_input(torch.zeros(2, 3, 32, 96))
    with pytest.raises(FootsegError) as err:
        check_input(torch.zeros(1, 3, 250, 256))
    assert str(err.value) == "input size 250x256 is not a multiple of 32; resize or pad it"


def test_resnet_encoder_strides_and_channels() -> None:
    enc = ResNetEncoder((2, 2, 2, 2)).eval()
    with torch.no_grad():
        feats = enc(torch.rand(1, 3, 64, 64))
    assert [f.shape[1] for f in feats] == list(enc.channels) == [64, 64, 128, 256, 512]
    assert [f.shape[-1] for f in feats] == [32, 16, 8, 4, 2]
    # ResNet-18 without its classifier has 11,176,512 parameters
    assert sum(p.numel() for p in enc.parameters()) == 11_176_512

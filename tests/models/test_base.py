"""The shared network shape: every architecture is a ``SegmentationModel`` whose input check, encoder stages and
head follow the base class's contract."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from footseg.errors import FootsegError
from footseg.models import create_model, list_models
from footseg.models.base import SegmentationModel


def _model(name: str, **kwargs: object) -> SegmentationModel:
    torch.manual_seed(0)
    return create_model(name, width=0.25, **kwargs).eval()


class _Tiny(SegmentationModel):
    """The smallest complete subclass: one strided conv encoder, an identity decoder, a 1x1 head at 1/32."""

    head_upsample = 32

    def __init__(self, in_channels: int = 3):
        super().__init__(in_channels)
        self.down = nn.Conv2d(in_channels, 8, 32, 32)
        self.head = nn.Conv2d(8, 2, 1)
        self.initialize()

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.down(x)]

    def decode(self, features: list[torch.Tensor]) -> torch.Tensor:
        return features[-1]


@pytest.mark.parametrize("name", list_models())
def test_every_registered_model_is_a_segmentation_model(name: str) -> None:
    model = _model(name)
    assert isinstance(model, SegmentationModel)
    assert model.in_channels == 3
    assert model.feature_stages, "attention transfer needs named encoder stages"
    modules = dict(model.named_modules())
    assert all(stage in modules for stage in model.feature_stages.values())


@pytest.mark.parametrize("name", list_models())
def test_forward_is_head_of_decode_of_encode_then_the_head_upsampling(name: str) -> None:
    model = _model(name, num_classes=3)
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        head_out = model.head(model.decode(model.encode(x)))
        out = model(x)
    assert head_out.shape[1] == 3
    assert (head_out.shape[2] * model.head_upsample, head_out.shape[3] * model.head_upsample) == (64, 96)
    if model.head_upsample == 1:
        assert torch.equal(out, head_out)


@pytest.mark.parametrize("name", list_models())
def test_the_last_two_class_conv_is_in_the_head(name: str) -> None:
    """ONNX export folds the last two-output conv into one margin channel; it must be the classifier itself."""
    model = _model(name)
    order: list[nn.Module] = []
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    hooks = [m.register_forward_hook(lambda mod, *_: order.append(mod)) for m in convs]
    with torch.no_grad():
        model(torch.rand(1, 3, 64, 64))
    for hook in hooks:
        hook.remove()
    last = [m for m in order if m.out_channels == 2 and m.groups == 1][-1]
    assert any(last is m for m in model.head.modules())
    assert order[-1] is last  # nothing but (channel-wise) resizing after it


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("shape", [(1, 1, 64, 64), (1, 4, 64, 64), (3, 64, 64), (1, 3, 64, 80)])
def test_the_input_check_rejects_wrong_channels_and_sizes(name: str, shape: tuple[int, ...]) -> None:
    with pytest.raises(FootsegError, match=r"RGB|not a multiple of 32"):
        _model(name)(torch.rand(shape))


@pytest.mark.parametrize("name", list_models())
def test_a_four_channel_model_takes_four_channels(name: str) -> None:
    torch.manual_seed(0)
    model = type(_model(name))(width=0.25, num_classes=2, in_channels=4).eval()
    assert model.in_channels == 4
    with torch.no_grad():
        assert model(torch.rand(2, 4, 64, 32)).shape == (2, 2, 64, 32)
    with pytest.raises(FootsegError, match=r"expected an \(N, 4, H, W\) 4-channel batch"):
        model(torch.rand(1, 3, 64, 64))


@pytest.mark.filterwarnings("ignore:`torch.jit.trace:DeprecationWarning")
def test_the_check_follows_in_channels_and_skips_while_tracing() -> None:
    model = _Tiny(in_channels=5).eval()
    with pytest.raises(FootsegError, match=r"\(N, 5, H, W\)"):
        model(torch.rand(1, 3, 64, 64))
    with torch.no_grad():
        assert model(torch.rand(1, 5, 64, 96)).shape == (1, 2, 64, 96)
        # the check is Python control flow that an exported graph cannot hold, so tracing skips it
        traced = torch.jit.trace(model, torch.rand(1, 5, 40, 40), check_trace=False)  # the check re-runs eagerly
        assert traced(torch.rand(1, 5, 40, 40)).shape == (1, 2, 32, 32)


def test_the_base_class_is_abstract_and_needs_a_channel() -> None:
    with pytest.raises(TypeError):
        SegmentationModel()  # type: ignore[abstract]
    with pytest.raises(FootsegError, match="in_channels"):
        _Tiny(in_channels=0)

"""The model contract, for every registered architecture: shapes, width, input checks, gradients, determinism."""

from __future__ import annotations

import pytest
import torch

from footseg.bench.cost import count_flops, count_params
from footseg.errors import FootsegError
from footseg.models import create_model, list_models
from footseg.models.registry import THESIS_MODELS

REGISTERED = tuple(list_models())  # the thesis's five and their variants: every one keeps the contract


def test_all_five_architectures_are_registered() -> None:
    assert set(THESIS_MODELS) <= set(list_models())


def test_the_names_known_without_torch_are_the_registered_ones() -> None:
    from footseg.models import registry

    assert tuple(list_models()) == registry.ARCHITECTURES


@pytest.mark.parametrize("name", REGISTERED)
@pytest.mark.parametrize("shape", [(1, 3, 64, 64), (2, 3, 64, 96), (1, 3, 96, 32)])
def test_output_is_logits_at_input_size(name: str, shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    model = create_model(name, num_classes=3).eval()
    with torch.no_grad():
        out = model(torch.rand(shape))
    assert out.shape == (shape[0], 3, shape[2], shape[3])
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", REGISTERED)
def test_width_scales_parameter_count(name: str) -> None:
    full = count_params(create_model(name, width=1.0))
    half = count_params(create_model(name, width=0.5))
    assert half < 0.6 * full  # channels halve, so most layers shrink ~4x


@pytest.mark.parametrize("name", REGISTERED)
@pytest.mark.parametrize("hw", [(50, 64), (64, 250)])
def test_size_not_multiple_of_32_is_a_user_error(name: str, hw: tuple[int, int]) -> None:
    model = create_model(name, width=0.25).eval()
    with pytest.raises(FootsegError, match=rf"input size {hw[0]}x{hw[1]} is not a multiple of 32"):
        model(torch.rand(1, 3, *hw))


def test_wrong_channel_count_is_a_user_error() -> None:
    with pytest.raises(FootsegError, match="RGB"):
        create_model("fastlinknet", width=0.25)(torch.rand(1, 1, 64, 64))


@pytest.mark.parametrize("name", REGISTERED)
def test_backward_reaches_every_parameter(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, width=0.5).train()
    x = torch.rand(2, 3, 64, 64)
    target = torch.randint(0, 2, (2, 64, 64))
    torch.nn.functional.cross_entropy(model(x), target).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing
    grads = torch.cat([p.grad.flatten() for p in model.parameters()])
    assert torch.isfinite(grads).all() and grads.abs().sum() > 0


@pytest.mark.parametrize("name", REGISTERED)
def test_eval_mode_is_deterministic(name: str) -> None:
    model = create_model(name, width=0.5).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), model(x))


def test_fastlinknet_fits_the_mobile_flop_budget() -> None:
    model = create_model("fastlinknet")
    flops = count_flops(model, 256)
    assert 0.1e9 <= flops <= 0.3e9
    assert 100_000 <= count_params(model) <= 300_000  # int8 ONNX must stay under 300 KB


def test_context_variant_is_fastlinknet_plus_a_cheap_gate() -> None:
    torch.manual_seed(0)
    plain, ctx = create_model("fastlinknet"), create_model("fastlinknet_ctx")
    plain_keys, ctx_keys = set(plain.state_dict()), set(ctx.state_dict())
    assert plain_keys < ctx_keys  # shipped fastlinknet checkpoints load into the plain variant unchanged
    assert all(k.startswith("context.") for k in ctx_keys - plain_keys)
    assert count_flops(ctx, 256) < 1.02 * count_flops(plain, 256)
    # the gate sees the whole frame: a far corner the encoder cannot see from the centre changes it there
    ctx.eval()
    x = torch.rand(1, 3, 512, 512)
    y = x.clone()
    y[..., :64, :64] = 0
    with torch.no_grad():
        deep_x, deep_y = ctx.encode(x)[-1], ctx.encode(y)[-1]
        assert torch.equal(deep_x[..., 8, 8], deep_y[..., 8, 8])
        assert not torch.equal(ctx.context(deep_x)[..., 8, 8], ctx.context(deep_y)[..., 8, 8])


def test_emilseg_is_large() -> None:
    assert count_params(create_model("emilseg")) >= 20_000_000


@pytest.mark.parametrize(("name", "published"), [("enet", 0.37e6), ("linknet", 11.5e6)])
def test_published_parameter_counts(name: str, published: float) -> None:
    assert count_params(create_model(name)) == pytest.approx(published, rel=0.05)


def test_models_are_ordered_by_size_as_intended() -> None:
    params = {n: count_params(create_model(n)) for n in THESIS_MODELS}
    assert params["fastlinknet"] < params["enet"] < params["mobileseg"] < params["linknet"] < params["emilseg"]


def test_enet_unpooling_matches_max_unpool() -> None:
    from footseg.models.enet import max_unpool2x

    x = torch.randn(2, 3, 8, 12)
    values, indices = torch.nn.functional.max_pool2d(x, 2, 2, return_indices=True)
    assert torch.equal(max_unpool2x(values, indices), torch.nn.functional.max_unpool2d(values, indices, 2, 2))

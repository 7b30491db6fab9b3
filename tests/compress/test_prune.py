"""Magnitude pruning keeps its zeros and shrinks the sparse file; channel pruning gives a smaller, equivalent-shaped
network that saves, loads and exports like any other."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from footseg.bench.cost import count_flops, count_params
from footseg.compress.compressed_file import write_compressed
from footseg.compress.prune import (
    channel_prune,
    magnitude_prune,
    make_permanent,
    pruned_info,
    sparsity,
    weight_layers,
)
from footseg.deploy.quantize import MIN_STRIDE_KEY
from footseg.errors import FootsegError
from footseg.models import SavedModelInfo, create_model, load_model, save_model
from footseg.models.info import LAYER_SHAPES_KEY


def _model(name: str = "fastlinknet", width: float = 0.5, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return create_model(name, width=width).eval()


def _weight_names(model: nn.Module) -> set[str]:
    return {f"{name}.weight" for name, _ in weight_layers(model)}


def test_magnitude_pruning_reaches_the_requested_sparsity_and_shrinks_the_sparse_file(tmp_path: Path) -> None:
    model = _model()
    info = SavedModelInfo("fastlinknet", 0.5, 2, (64, 64))
    dense = write_compressed(
        tmp_path / "dense.fsdc", model.state_dict(), info, sparse=_weight_names(model), use_huffman=False
    )
    assert sparsity(model) == 0.0
    magnitude_prune(model, 0.6)
    make_permanent(model)
    assert not any(hasattr(m, "weight_orig") for _, m in weight_layers(model))
    total = sum(m.weight.numel() for _, m in weight_layers(model))
    assert sparsity(model) == pytest.approx(round(0.6 * total) / total, abs=1e-9)
    pruned = write_compressed(
        tmp_path / "pruned.fsdc", model.state_dict(), info, sparse=_weight_names(model), use_huffman=False
    )
    # 60% zeros: each survivor costs 4 bytes + an 8-bit gap, so weights shrink to about 0.4 * 5/4 = 50%.
    assert pruned["bits"]["values"] == pytest.approx(0.4 * dense["bits"]["values"], rel=0.01)
    assert pruned["bytes"] < 0.65 * dense["bytes"]
    save_model(model, tmp_path / "folder", info)
    assert pruned["bytes"] < 0.65 * (tmp_path / "folder" / "model.safetensors").stat().st_size


def test_the_smallest_weights_go_first() -> None:
    model = _model()
    before = torch.cat([m.weight.detach().abs().flatten() for _, m in weight_layers(model)])
    magnitude_prune(model, 0.3)
    make_permanent(model)
    after = torch.cat([m.weight.detach().flatten() for _, m in weight_layers(model)])
    assert before[after == 0].max() <= before[after != 0].min()


def test_fine_tuning_keeps_pruned_weights_at_zero(tune) -> None:
    model = _model(width=0.25)
    magnitude_prune(model, 0.5)
    zeros = {name: (m.weight == 0).clone() for name, m in weight_layers(model)}
    history = tune(model, steps=2)
    assert len(history) == 2
    make_permanent(model)
    for name, m in weight_layers(model):
        assert bool((m.weight[zeros[name]] == 0).all()), name
        assert bool((m.weight[~zeros[name]] != 0).any()), name


def test_channel_pruning_gives_fewer_params_and_flops_with_the_same_output_shape() -> None:
    model = _model(width=1.0)
    x = torch.rand(2, 3, 64, 64)
    shape = model(x).shape
    params, flops = count_params(model), count_flops(model, 64)
    channel_prune(model, 0.25)
    assert model(x).shape == shape
    assert count_params(model) < 0.7 * params
    assert count_flops(model, 64) < 0.75 * flops
    assert model.head.out_channels == 2  # the classes are never pruned


def test_channel_pruning_removes_exactly_the_dead_channels() -> None:
    """Channels whose every BatchNorm outputs zero carry nothing: removing them, through the residual sums and
    depthwise convs they are tied to, must leave the network's output unchanged."""
    model = _model()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                k = int(m.num_features * 0.25)
                m.weight[:k] = 0
                m.bias[:k] = 0
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2.0)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
    widths = {name: m.num_features for name, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)}
    channel_prune(model, 0.25, importance="bn")
    with torch.no_grad():
        torch.testing.assert_close(model(x), expected, rtol=0, atol=1e-5)
    for name, m in model.named_modules():
        if isinstance(m, nn.BatchNorm2d):
            assert m.num_features == widths[name] - int(widths[name] * 0.25), name
            assert bool((m.weight != 0).all()), name


def test_pruned_model_round_trips_through_save_load_and_onnx(tmp_path: Path) -> None:
    from footseg.deploy.export import export_onnx
    from footseg.runtime.onnx_model import OnnxModel

    model = _model()
    channel_prune(model, 0.5)
    unpruned = SavedModelInfo("fastlinknet", 0.5, 2, (64, 64), extra={MIN_STRIDE_KEY: 8, "kept": 1}, threshold=0.7,
                              region_peak=0.99, presence=0.995)
    info = pruned_info(model, unpruned, note="test")
    assert info.extra["note"] == "test" and info.extra[LAYER_SHAPES_KEY] and info.extra["kept"] == 1
    assert MIN_STRIDE_KEY not in info.extra  # an int8 setting chosen for the unpruned widths
    assert (info.threshold, info.region_peak, info.presence) == (0.5, None, None)  # the old weights' operating point
    folder = save_model(model, tmp_path / "pruned", info)
    loaded, loaded_info = load_model(folder)
    assert loaded_info.extra == info.extra
    assert count_params(loaded) == count_params(model)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
        assert torch.equal(loaded(x), expected)
    onnx_path = export_onnx(folder, tmp_path / "pruned.onnx")
    got = OnnxModel(onnx_path)(x.numpy())  # logits [0, l1 - l0]: the exported file outputs the margin
    margin = (expected[:, 1] - expected[:, 0]).numpy()
    assert abs(got[:, 1] - margin).max() < 1e-4
    assert (got.argmax(1) == expected.argmax(1).numpy()).all()


def test_a_pruned_prior_mask_model_keeps_its_fourth_input(tmp_path: Path) -> None:
    """A prior-mask network (4 inputs) pruned, saved and compressed still says 4 inputs and loads as it was."""
    from footseg.compress.compressed_file import load_compressed

    torch.manual_seed(0)
    model = create_model("fastlinknet", width=0.5, in_channels=4).eval()
    channel_prune(model, 0.25)
    info = pruned_info(model, SavedModelInfo("fastlinknet", 0.5, 2, (64, 64), in_channels=4))
    assert info.in_channels == 4
    x = torch.rand(1, 4, 64, 64)
    with torch.no_grad():
        expected = model(x)
        loaded, loaded_info = load_model(save_model(model, tmp_path / "pruned", info))
        assert loaded_info.in_channels == 4 and torch.equal(loaded(x), expected)
        write_compressed(tmp_path / "pruned.fsdc", model.state_dict(), info)
        unpacked, unpacked_info = load_compressed(tmp_path / "pruned.fsdc")
        assert unpacked_info == info and torch.allclose(unpacked(x), expected, atol=1e-5)


def test_corrupt_layer_shapes_name_the_config(tmp_path: Path) -> None:
    model = _model()
    channel_prune(model, 0.25)
    folder = save_model(model, tmp_path / "m", pruned_info(model, SavedModelInfo("fastlinknet", 0.5, 2, (64, 64))))
    config = json.loads((folder / "config.json").read_text())
    config["extra"][LAYER_SHAPES_KEY]["no.such.layer"] = {"features": 3}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(FootsegError, match=r"no\.such\.layer") as err:
        load_model(folder)
    assert str(err.value).startswith(str(folder / "config.json"))


def test_an_unpruned_model_records_no_layer_shapes() -> None:
    info = pruned_info(_model(), SavedModelInfo("fastlinknet", 0.5, 2, (64, 64)))
    assert LAYER_SHAPES_KEY not in info.extra


def test_bad_settings_and_unsupported_models_are_user_errors() -> None:
    with pytest.raises(FootsegError, match="channel ratio"):
        channel_prune(_model(), 1.0)
    with pytest.raises(FootsegError, match="importance"):
        channel_prune(_model(), 0.25, importance="random")
    with pytest.raises(FootsegError, match="prune amount"):
        magnitude_prune(_model(), -0.1)
    # ENet's shortcut zero-pads channels with F.pad, which no dependency graph can follow: refuse, don't corrupt.
    with pytest.raises(FootsegError, match="not supported"):
        channel_prune(_model("enet", width=0.25), 0.25)

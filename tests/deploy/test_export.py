"""fp32 ONNX export: the same foreground margin (l1 - l0) and masks as PyTorch, a clean graph, metadata."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from footseg.deploy.export import MarginOutput, export_module, export_onnx, margin_module
from footseg.errors import FootsegError
from footseg.models import SavedModelInfo, create_model, list_models, load_model, save_model
from footseg.provenance import sha256_file
from footseg.runtime.onnx_model import OnnxModel

SIZE = 64  # the input size of the conftest model


def _torch_logits(model_dir: Path, batch: np.ndarray, dtype: torch.dtype = torch.float32) -> np.ndarray:
    model, _ = load_model(model_dir)
    with torch.inference_mode():
        return model.to(dtype)(torch.from_numpy(batch).to(dtype)).numpy()


def _margin(logits: np.ndarray) -> np.ndarray:
    return logits[:, 1] - logits[:, 0]


def _onnx_margin(runner: OnnxModel, batch: np.ndarray) -> np.ndarray:
    """The file's one-channel margin output, checked against the [0, m] logits the runner returns."""
    assert runner.margin
    raw = runner.run(batch)
    assert raw.shape == (len(batch), 1, *batch.shape[2:])
    logits = runner(batch)
    np.testing.assert_array_equal(logits[:, 0], 0)
    np.testing.assert_array_equal(logits[:, 1], raw[:, 0])
    return raw[:, 0]


def test_untrained_fp32_matches_pytorch_to_1e4(tiny_dataset: Path, fitted_images: np.ndarray, tmp_path: Path) -> None:
    torch.manual_seed(0)
    info = SavedModelInfo("fastlinknet", 0.5, 2, (SIZE, SIZE))
    folder = save_model(create_model("fastlinknet", width=0.5), tmp_path / "m", info)
    runner = OnnxModel(export_onnx(folder))
    random = np.random.default_rng(0).random((2, 3, SIZE, SIZE), dtype=np.float32)
    for batch in (random, fitted_images):
        ref = _torch_logits(folder, batch)
        got = _onnx_margin(runner, batch)
        assert ref.shape == (len(batch), 2, SIZE, SIZE)
        assert np.abs(got - _margin(ref)).max() <= 1e-4
        np.testing.assert_array_equal(runner(batch).argmax(1), ref.argmax(1))


def test_trained_fp32_is_as_exact_as_pytorch(trained_dir: Path, fp32_onnx: Path, fitted_images: np.ndarray) -> None:
    """Against a float64 reference, ONNX Runtime's error is of the size of PyTorch's own float32 error.

    A trained network's logits (here up to ~13) carry float32 rounding noise of a few 1e-4 in PyTorch itself, so
    two float32 runtimes cannot agree to 1e-4 there; a real export bug (wrong resize mode, padding, folded
    BatchNorm) shows up as errors orders of magnitude above that noise.
    """
    runner = OnnxModel(fp32_onnx)
    random = np.random.default_rng(0).random((2, 3, SIZE, SIZE), dtype=np.float32)
    for batch in (random, fitted_images):
        exact = _margin(_torch_logits(trained_dir, batch, torch.float64))
        ref = _margin(_torch_logits(trained_dir, batch))
        got = _onnx_margin(runner, batch)
        torch_error = np.abs(ref - exact).max()
        assert np.abs(got - exact).max() <= 4 * torch_error + 1e-5
        assert np.abs(got - ref).max() <= 2e-3
        assert ref.std() > 0.5  # a near-constant output would make the comparison meaningless
        sure = np.abs(exact) > 1e-3  # pixels float32 rounding cannot flip
        np.testing.assert_array_equal((got > 0)[sure], (exact > 0)[sure])


def test_graph_is_a_clean_static_conv_graph(fp32_onnx: Path) -> None:
    model = onnx.load(str(fp32_onnx))
    ops = {n.op_type for n in model.graph.node}
    assert ops <= {"Conv", "Relu", "Add", "Resize", "Reshape", "Constant"}, ops  # BN folded, no Identity left over
    assert "BatchNormalization" not in ops
    (inp,) = model.graph.input
    (out,) = model.graph.output
    assert inp.name == "image" and out.name == "logits"
    assert [d.dim_value for d in inp.type.tensor_type.shape.dim] == [1, 3, SIZE, SIZE]
    assert [d.dim_value for d in out.type.tensor_type.shape.dim] == [1, 1, SIZE, SIZE]  # the margin only
    assert model.opset_import[0].version == 17
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["footseg.output"] == "margin"
    # The head conv itself computes the margin (no Sub of two logits), and the final upsampling reads it through a
    # no-op Reshape that keeps ONNX Runtime from resizing it in its 8-channel blocked layout.
    head, reshape, resize = model.graph.node[-4], model.graph.node[-2], model.graph.node[-1]
    weights = {i.name: i for i in model.graph.initializer}
    assert head.op_type == "Conv" and weights[head.input[1]].dims[0] == 1
    assert reshape.op_type == "Reshape" and resize.op_type == "Resize" and resize.input[0] == reshape.output[0]
    assert list(onnx.numpy_helper.to_array(weights[reshape.input[1]])) == [0, 0, 0, 0]


@pytest.mark.parametrize("name", list_models())
def test_every_model_exports_its_margin(name: str, tmp_path: Path) -> None:
    """Each registered model's two-output head folds into one output channel; ONNX matches PyTorch's margin."""
    torch.manual_seed(0)
    model = create_model(name, width=0.25).eval()
    for m in model.modules():  # random BN statistics so the comparison exercises more than the init values
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    x = torch.rand(2, 3, SIZE, SIZE)
    folded = margin_module(model, x[:1])
    assert not isinstance(folded, MarginOutput)
    with torch.inference_mode():
        want = _margin(model(x).numpy())
        np.testing.assert_allclose(folded(x)[:, 0].numpy(), want, atol=1e-4 * (1 + np.abs(want).max()), rtol=0)
    runner = OnnxModel(export_module(model, SavedModelInfo(name, 0.25, 2, (SIZE, SIZE)), tmp_path / "m.onnx"))
    got = _onnx_margin(runner, x.numpy())
    assert np.abs(got - want).max() <= 1e-4 * (1 + np.abs(want).max())
    sure = np.abs(want) > 1e-3 * (1 + np.abs(want).max())
    np.testing.assert_array_equal((got > 0)[sure], (want > 0)[sure])


def test_export_leaves_the_callers_network_as_it_was(tmp_path: Path) -> None:
    model = create_model("fastlinknet", width=0.25).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    export_module(model, SavedModelInfo("fastlinknet", 0.25, 2, (SIZE, SIZE)), tmp_path / "m.onnx")
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_margin_falls_back_to_a_subtraction() -> None:
    """A model whose two-output conv is followed by a layer mixing its channels cannot fold the conv."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 1), torch.nn.Conv2d(2, 2, 1, groups=2), torch.nn.Tanh())
    x = torch.rand(1, 3, 8, 8)
    folded = margin_module(model, x)
    assert isinstance(folded, MarginOutput)
    with torch.inference_mode():
        np.testing.assert_allclose(folded(x).numpy(), _margin(model(x).numpy())[:, None], atol=1e-6)
    assert model[0].out_channels == 2  # the model itself is untouched


def test_two_channel_files_still_run(trained_dir: Path, fp32_onnx: Path, tmp_path: Path) -> None:
    """A file without the margin (as exported before it, or with margin=False) gives the same softmax and masks."""
    model, info = load_model(trained_dir)
    old = OnnxModel(export_module(model, info, tmp_path / "old.onnx", margin=False))
    new = OnnxModel(fp32_onnx)
    assert not old.margin and new.margin
    batch = np.random.default_rng(2).random((2, 3, SIZE, SIZE), dtype=np.float32)
    two = old(batch)
    assert two.shape == old.run(batch).shape == (2, 2, SIZE, SIZE)
    one = new(batch)
    assert np.abs(_margin(two) - _margin(one)).max() <= 1e-4
    np.testing.assert_allclose(
        torch.softmax(torch.from_numpy(two), 1).numpy(), torch.softmax(torch.from_numpy(one), 1).numpy(), atol=1e-5
    )


def test_metadata_round_trip(trained_dir: Path, fp32_onnx: Path) -> None:
    _, info = load_model(trained_dir)
    runner = OnnxModel(fp32_onnx)
    assert runner.info == info
    assert runner.info.extra == {"note": "deploy test", "steps": 60}
    assert runner.precision == "fp32"


def test_an_export_names_footseg_and_its_version_as_its_producer(fp32_onnx: Path, int8_onnx: Path) -> None:
    import footseg

    for path in (fp32_onnx, int8_onnx):  # not torch's exporter's version, nor ONNX Runtime's quantizer's
        proto = onnx.load(str(path))
        assert (proto.producer_name, proto.producer_version) == ("footseg", footseg.__version__), path


def test_an_export_names_the_weights_file_it_came_from(trained_dir: Path, fp32_onnx: Path, tmp_path: Path) -> None:
    """A folder's export records its weights' sha256, so footseg knows it for those weights (``own_export``); a
    network exported from memory has no file to name."""
    assert OnnxModel(fp32_onnx).weights_sha256 == sha256_file(trained_dir / "model.safetensors")
    net, info = load_model(trained_dir)
    assert OnnxModel(export_module(net, info, tmp_path / "memory.onnx")).weights_sha256 is None


def test_default_path_and_dynamic_batch(trained_dir: Path, tmp_path: Path) -> None:
    out = export_onnx(trained_dir, tmp_path / "dyn.onnx", dynamic_batch=True)
    (inp,) = onnx.load(str(out)).graph.input
    assert inp.type.tensor_type.shape.dim[0].dim_param == "batch"
    batch = np.random.default_rng(1).random((3, 3, SIZE, SIZE), dtype=np.float32)
    runner = OnnxModel(out)
    assert runner.fixed_batch is None
    # a trained network's margins carry float32 noise in proportion to their size (test_trained_fp32_is_as_exact...):
    # 2.4e-4 on margins up to ~8 on a Xeon with AVX-512 (2026-12-05), where 1e-4 flat had held elsewhere
    want = _margin(_torch_logits(trained_dir, batch))
    assert np.abs(_onnx_margin(runner, batch) - want).max() <= 1e-4 * (1 + np.abs(want).max())

    folder = tmp_path / "copy"
    folder.mkdir()
    for f in trained_dir.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    assert export_onnx(folder) == folder / "model.onnx"
    assert (folder / "model.onnx").is_file()


def test_bad_model_folder_and_opset(tmp_path: Path, trained_dir: Path) -> None:
    with pytest.raises(FootsegError, match=r"config\.json"):
        export_onnx(tmp_path)
    for opset in (11, 21, 99):  # above 20 torch's exporter warned and failed in a long traceback
        with pytest.raises(FootsegError, match=f"opset must be 13 to 20 .*got {opset}"):
            export_onnx(trained_dir, tmp_path / "x.onnx", opset=opset)
    assert not (tmp_path / "x.onnx").exists()


def test_a_prior_mask_network_exports_with_image_and_prior_inputs(tmp_path: Path, tiny_dataset: Path) -> None:
    import onnx

    from footseg.deploy.quantize import export_int8
    from footseg.runtime.onnx_model import OnnxModel

    torch.manual_seed(0)
    model = create_model("fastlinknet", width=0.25, in_channels=4).eval()
    folder = save_model(model, tmp_path / "prior", SavedModelInfo("fastlinknet", 0.25, 2, (64, 64), in_channels=4))
    path = export_onnx(folder, tmp_path / "prior.onnx")
    assert [i.name for i in onnx.load(str(path)).graph.input] == ["image", "prior"]
    x = torch.rand(2, 4, 64, 64)
    with torch.no_grad():
        expected = model(x).numpy()
    got = OnnxModel(path)(x.numpy())
    assert np.abs((got[:, 1] - got[:, 0]) - (expected[:, 1] - expected[:, 0])).max() < 1e-4
    int8 = OnnxModel(export_int8(folder, tmp_path / "prior.int8.onnx", calib=tiny_dataset, calib_n=4))
    assert int8.precision == "int8" and int8(x.numpy()).shape == (2, 2, 64, 64)


def test_an_export_already_made_is_copied_not_traced_again(trained_dir: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The default ships the file `footseg export` writes of it: exporting it copies that file (seconds, not a
    trace); another opset, batch or side, or a config changed since, are exported anew."""
    import dataclasses

    from footseg.deploy import export
    from footseg.models.info import read_info, write_info

    shipped = Path(export.__file__).parents[1] / "models" / "pretrained" / "fastlinknet_ctx" / "model.onnx"
    traced = []
    real = export.export_module
    monkeypatch.setattr(export, "export_module", lambda *a, **k: traced.append(k) or real(*a, **k))
    assert export_onnx("default", tmp_path / "d.onnx").read_bytes() == shipped.read_bytes() and traced == []

    folder = tmp_path / "model"
    folder.mkdir()
    for f in trained_dir.iterdir():
        if f.name != "model.onnx":
            (folder / f.name).write_bytes(f.read_bytes())
    own = export_onnx(folder)  # folder/model.onnx, traced
    assert len(traced) == 1
    assert export_onnx(folder, tmp_path / "again.onnx").read_bytes() == own.read_bytes() and len(traced) == 1
    assert export_onnx(folder) == own and len(traced) == 2  # the file itself: traced again (how it is made anew)
    assert own.read_bytes() == (tmp_path / "again.onnx").read_bytes()  # and the copy is what a trace writes
    export_onnx(folder, tmp_path / "dyn.onnx", dynamic_batch=True)
    export_onnx(folder, tmp_path / "o18.onnx", opset=18)
    assert len(traced) == 4
    write_info(folder, dataclasses.replace(read_info(folder), threshold=0.6))
    assert OnnxModel(export_onnx(folder, tmp_path / "t.onnx")).info.threshold == 0.6 and len(traced) == 5
    # an export from before margins (two-class logits out): today's export is another graph, so it is traced
    export_module(*load_model(folder), own, margin=False, weights_sha256=sha256_file(folder / "model.safetensors"))
    assert not OnnxModel(own).margin
    assert OnnxModel(export_onnx(folder, tmp_path / "m.onnx")).margin and len(traced) == 6

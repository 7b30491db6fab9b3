"""fp32 ONNX export: same logits as PyTorch, a clean graph, self-describing metadata."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from footseg.deploy.export import export_onnx
from footseg.deploy.onnx_model import OnnxModel
from footseg.errors import FootsegError
from footseg.models import SavedModelInfo, create_model, load_model, save_model

SIZE = 64  # the input size of the conftest model


def _torch_logits(model_dir: Path, batch: np.ndarray, dtype: torch.dtype = torch.float32) -> np.ndarray:
    model, _ = load_model(model_dir)
    with torch.inference_mode():
        return model.to(dtype)(torch.from_numpy(batch).to(dtype)).numpy()


def test_untrained_fp32_matches_pytorch_to_1e4(tiny_dataset: Path, fitted_images: np.ndarray, tmp_path: Path) -> None:
    torch.manual_seed(0)
    info = SavedModelInfo("fastlinknet", 0.5, 2, (SIZE, SIZE))
    folder = save_model(create_model("fastlinknet", width=0.5), tmp_path / "m", info)
    runner = OnnxModel(export_onnx(folder))
    random = np.random.default_rng(0).random((2, 3, SIZE, SIZE), dtype=np.float32)
    for batch in (random, fitted_images):
        ref = _torch_logits(folder, batch)
        got = runner(batch)
        assert got.shape == ref.shape == (len(batch), 2, SIZE, SIZE)
        assert np.abs(got - ref).max() <= 1e-4


def test_trained_fp32_is_as_exact_as_pytorch(trained_dir: Path, fp32_onnx: Path, fitted_images: np.ndarray) -> None:
    """Against a float64 reference, ONNX Runtime's error is of the size of PyTorch's own float32 error.

    A trained network's logits (here up to ~13) carry float32 rounding noise of a few 1e-4 in PyTorch itself, so
    two float32 runtimes cannot agree to 1e-4 there; a real export bug (wrong resize mode, padding, folded
    BatchNorm) shows up as errors orders of magnitude above that noise.
    """
    runner = OnnxModel(fp32_onnx)
    random = np.random.default_rng(0).random((2, 3, SIZE, SIZE), dtype=np.float32)
    for batch in (random, fitted_images):
        exact = _torch_logits(trained_dir, batch, torch.float64)
        ref = _torch_logits(trained_dir, batch)
        got = runner(batch)
        torch_error = np.abs(ref - exact).max()
        assert np.abs(got - exact).max() <= 4 * torch_error + 1e-5
        assert np.abs(got - ref).max() <= 2e-3
        assert ref.std() > 0.5  # a near-constant output would make the comparison meaningless


def test_graph_is_a_clean_static_conv_graph(fp32_onnx: Path) -> None:
    model = onnx.load(str(fp32_onnx))
    ops = {n.op_type for n in model.graph.node}
    assert ops <= {"Conv", "Relu", "Add", "Resize", "Constant"}, ops  # BatchNorm folded, no Identity left over
    assert "BatchNormalization" not in ops
    (inp,) = model.graph.input
    (out,) = model.graph.output
    assert inp.name == "image" and out.name == "logits"
    assert [d.dim_value for d in inp.type.tensor_type.shape.dim] == [1, 3, SIZE, SIZE]
    assert model.opset_import[0].version == 17


def test_metadata_round_trip(trained_dir: Path, fp32_onnx: Path) -> None:
    _, info = load_model(trained_dir)
    runner = OnnxModel(fp32_onnx)
    assert runner.info == info
    assert runner.info.extra == {"note": "deploy test", "steps": 60}
    assert runner.precision == "fp32"


def test_default_path_and_dynamic_batch(trained_dir: Path, tmp_path: Path) -> None:
    out = export_onnx(trained_dir, tmp_path / "dyn.onnx", dynamic_batch=True)
    (inp,) = onnx.load(str(out)).graph.input
    assert inp.type.tensor_type.shape.dim[0].dim_param == "batch"
    batch = np.random.default_rng(1).random((3, 3, SIZE, SIZE), dtype=np.float32)
    runner = OnnxModel(out)
    assert runner.fixed_batch is None
    assert np.abs(runner(batch) - _torch_logits(trained_dir, batch)).max() <= 1e-4

    folder = tmp_path / "copy"
    folder.mkdir()
    for f in trained_dir.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    assert export_onnx(folder) == folder / "model.onnx"
    assert (folder / "model.onnx").is_file()


def test_bad_model_folder_and_opset(tmp_path: Path, trained_dir: Path) -> None:
    with pytest.raises(FootsegError, match=r"config\.json"):
        export_onnx(tmp_path)
    with pytest.raises(FootsegError, match="opset"):
        export_onnx(trained_dir, tmp_path / "x.onnx", opset=11)
    assert not (tmp_path / "x.onnx").exists()

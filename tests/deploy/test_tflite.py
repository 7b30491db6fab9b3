"""TFLite export: the glue around litert-torch (with a stand-in converter), its missing-converter error, and -- where
litert-torch is installed (``pip install 'footseg[tflite]'``) -- the real conversion against PyTorch."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from footseg.cli import main
from footseg.deploy import tflite
from footseg.models.saved import load_model


def test_missing_converter_is_a_clear_error(
    trained_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "litert_torch", None)  # import fails as if not installed
    assert main(["export", str(trained_dir), "--format", "tflite", "--out", str(tmp_path / "m.tflite")]) == 2
    err = capsys.readouterr().err
    assert "litert-torch" in err and "footseg[tflite]" in err
    assert not (tmp_path / "m.tflite").exists()


def test_a_prior_mask_network_is_refused_before_conversion(trained_dir: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from footseg.errors import FootsegError
    from footseg.models.saved import add_prior_input, save_model

    monkeypatch.setattr(tflite, "_converter", lambda: pytest.fail("converted a 4-input network"))
    wide, wide_info = add_prior_input(*load_model(trained_dir))
    prior_dir = save_model(wide, tmp_path / "prior", wide_info)
    with pytest.raises(FootsegError, match="takes RGB models; this one has 4 inputs"):
        tflite.export_tflite(prior_dir, tmp_path / "m.tflite")
    assert not (tmp_path / "m.tflite").exists()


def test_export_converts_the_margin_network_and_writes_atomically(
    trained_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = {}

    def convert(module: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> SimpleNamespace:
        seen["out"] = module(*args)
        seen["input"] = args[0].shape

        def export(path: str) -> None:
            assert not path.endswith("m.tflite")  # written under a temporary name, renamed when complete
            Path(path).write_bytes(b"TFL3")

        return SimpleNamespace(export=export)

    monkeypatch.setattr(tflite, "_converter", lambda: SimpleNamespace(convert=convert))
    out = tflite.export_tflite(trained_dir, tmp_path / "m.tflite")
    assert out.read_bytes() == b"TFL3"
    _, info = load_model(trained_dir)
    assert seen["input"] == (1, 3, *info.input_size)
    assert seen["out"].shape == (1, 1, *info.input_size)  # the one-channel margin, as in the ONNX export
    config = json.loads(tflite.config_path(out).read_text())  # the file has no metadata: its config lies beside it
    assert out.with_name("m.tflite.json").is_file()
    assert config["threshold"] == info.threshold and config["input_size"] == list(info.input_size)


@pytest.mark.skipif(
    importlib.util.find_spec("litert_torch") is None or importlib.util.find_spec("ai_edge_litert") is None,
    reason="litert-torch not installed (pip install 'footseg[tflite]')",
)
def test_tflite_matches_pytorch(trained_dir: Path, tmp_path: Path) -> None:
    from ai_edge_litert.interpreter import Interpreter

    out = tflite.export_tflite(trained_dir, tmp_path / "m.tflite")
    model, info = load_model(trained_dir)
    x = torch.rand(1, 3, *info.input_size)
    with torch.no_grad():
        logits = model.eval()(x)
    want = (logits[:, 1:2] - logits[:, 0:1]).numpy()
    interpreter = Interpreter(model_path=str(out))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x.numpy())
    interpreter.invoke()
    got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).reshape(want.shape)
    # XNNPACK sums in another order than PyTorch: equal up to float rounding, relative to the margin's size
    assert np.abs(got - want).max() <= 1e-4 * (1.0 + np.abs(want).max())
    sure = np.abs(want) > 1e-3
    assert np.array_equal(got[sure] > 0, want[sure] > 0)  # the same mask

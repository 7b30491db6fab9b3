"""``footseg export`` in-process, and exported files used as MODEL by eval and predict."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from footseg.cli import main
from footseg.data.io import read_image
from footseg.runtime.onnx_model import OnnxModel
from footseg.runtime.predictor import Predictor
from footseg.runtime.resolve import DEFAULT_MODEL


@pytest.fixture
def model_copy(trained_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(trained_dir, tmp_path / "model"))


def test_export_fp32_default_path(model_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", str(model_copy)]) == 0
    out = model_copy / "model.onnx"
    assert str(out) in capsys.readouterr().out
    assert OnnxModel(out).precision == "fp32"


def test_export_int8_with_calib_and_keep(
    model_copy: Path, tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sub" / "m.int8.onnx"
    argv = ["export", str(model_copy), "--format", "onnx-int8", "--out", str(out), "--calib", str(tiny_dataset)]
    assert main([*argv, "--calib-n", "4", "--keep-fp32", "first-conv,last-conv", "--calib-method", "percentile"]) == 0
    assert "procedural" not in capsys.readouterr().out
    assert OnnxModel(out).precision == "int8"


def test_export_int8_min_stride_chooses_how_much_is_quantized(
    model_copy: Path, tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import onnx

    def quantized_convs(min_stride: str) -> int:
        out = tmp_path / f"s{min_stride}.onnx"
        argv = ["export", str(model_copy), "--format", "onnx-int8", "--out", str(out), "--calib", str(tiny_dataset)]
        assert main([*argv, "--calib-n", "2", "--min-stride", min_stride]) == 0
        graph = onnx.load(str(out)).graph
        weights = {i.name for i in graph.initializer if i.data_type == onnx.TensorProto.INT8}
        dequantized = {n.output[0] for n in graph.node if n.op_type == "DequantizeLinear" and n.input[0] in weights}
        return sum(1 for n in graph.node if n.op_type == "Conv" and n.input[1] in dequantized)

    everything, eighth, default = quantized_convs("1"), quantized_convs("8"), quantized_convs("16")
    assert everything > eighth > default > 0
    argv = ["export", str(model_copy), "--format", "onnx-int8", "--calib", str(tiny_dataset), "--calib-n", "1"]
    assert main([*argv, "--min-stride", "0"]) == 2
    assert "min_stride must be at least 1" in capsys.readouterr().err


def test_export_int8_without_calib_says_what_it_needs(model_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", str(model_copy), "--format", "onnx-int8", "--calib-n", "2"]) == 2
    err = capsys.readouterr().err
    assert "needs --calib DIR" in err and len(err.strip().splitlines()) == 1
    assert not (model_copy / "model.int8.onnx").exists()


def test_a_folders_own_int8_export_serves_where_no_option_asks_for_another(
    model_copy: Path, tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    import torch

    from footseg.models.saved import save_model
    from footseg.runtime.resolve import resolve_model

    own = model_copy / "model.int8.onnx"
    argv = ["export", str(model_copy), "--format", "onnx-int8", "--calib", str(tiny_dataset), "--calib-n", "3"]
    assert main(argv) == 0
    made = own.read_bytes()
    capsys.readouterr()
    # without --calib: a copy of that file (where it is, nothing written), and the web page's int8 model is it
    assert main(["export", str(model_copy), "--format", "onnx-int8"]) == 0
    assert own.read_bytes() == made and "the folder's own int8 export, as it is" in capsys.readouterr().out
    assert main(["export", str(model_copy), "--format", "onnx-int8", "--out", str(tmp_path / "copy.onnx")]) == 0
    assert (tmp_path / "copy.onnx").read_bytes() == made
    site = tmp_path / "site"
    assert main(["export", str(model_copy), "--format", "web", "--precision", "int8", "--out", str(site)]) == 0
    assert (site / "model.onnx").read_bytes() == made
    assert json.loads((site / "model.json").read_text())["precision"] == "int8"
    capsys.readouterr()
    # it was calibrated with options it does not record: any option given asks for images to calibrate on
    assert main(["export", str(model_copy), "--format", "onnx-int8", "--calib-n", "3", "--out",
                 str(tmp_path / "other.onnx")]) == 2
    err = capsys.readouterr().err
    assert "needs --calib DIR" in err and "made with options it does not record, so the --calib-n given" in err
    # weights trained again since: the file is of other weights, so it serves no more
    model, info = resolve_model(model_copy).load()
    with torch.no_grad():
        next(model.parameters()).add_(1.0)
    save_model(model, model_copy, info)
    assert main(["export", str(model_copy), "--format", "web", "--precision", "int8", "--out", str(site)]) == 2
    err = capsys.readouterr().err
    assert "needs --calib DIR" in err and "options" not in err
    assert f"({model_copy}: its model.int8.onnx was exported from other weights (trained again since?))" in err
    assert (site / "model.onnx").read_bytes() == made  # the earlier site is left as it was


def test_a_shipped_model_exports_its_recipes_int8_file_without_calibrating(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from footseg.deploy.quantize import shipped_int8
    from footseg.runtime.resolve import resolve_model

    monkeypatch.chdir(tmp_path)
    assert main(["export", "--format", "onnx-int8"]) == 0
    shipped = shipped_int8(resolve_model(None))
    assert (tmp_path / f"{DEFAULT_MODEL}.int8.onnx").read_bytes() == shipped.read_bytes()
    assert "recipe's own int8 file" in capsys.readouterr().out
    # options that ask for what the file already is change nothing
    for same in (["--min-stride", "8"], ["--size", "288"], ["--calib-n", "64", "--calib-method", "minmax"]):
        assert main(["export", "--format", "onnx-int8", "--out", str(tmp_path / "same.onnx"), *same]) == 0
        assert (tmp_path / "same.onnx").read_bytes() == shipped.read_bytes()
    capsys.readouterr()
    # anything that would make another file asks for images to calibrate on, naming what rules the shipped one out
    for extra, option in ((["--min-stride", "1"], "--min-stride"), (["--size", "256"], "--size"),
                          (["--dynamic-batch"], "--dynamic-batch"), (["--opset", "13"], "--opset"),
                          (["--keep-fp32", "x"], "--keep-fp32"), (["--calib-n", "5"], "--calib-n"),
                          (["--calib-method", "entropy"], "--calib-method")):
        assert main(["export", "--format", "onnx-int8", "--out", str(tmp_path / "other.onnx"), *extra]) == 2
        err = capsys.readouterr().err
        assert "needs --calib DIR" in err and f"does not match the {option} given" in err, err
    assert not (tmp_path / "other.onnx").exists() and not list(tmp_path.glob("*256px*"))
    assert main(["export", "fastlinknet", "--format", "onnx-int8"]) == 2  # the small tier ships no int8 file
    assert "needs --calib DIR" in capsys.readouterr().err


def test_export_without_a_model_exports_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # a shipped model exports into the working directory, never into the package
    assert main(["export"]) == 0
    assert OnnxModel(tmp_path / f"{DEFAULT_MODEL}.onnx").info.model == DEFAULT_MODEL


def test_export_errors_name_the_file(tmp_path: Path, model_copy: Path, tiny_dataset: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", str(tmp_path / "nothing")]) == 2
    assert capsys.readouterr().err.strip().startswith(f"footseg: error: {tmp_path / 'nothing'}: ")
    argv = ["export", str(model_copy), "--format", "onnx-int8", "--calib", str(tmp_path / "nodata")]
    assert main(argv) == 2
    assert f"{tmp_path / 'nodata'}: dataset folder not found" in capsys.readouterr().err
    argv = ["export", str(model_copy), "--format", "onnx-int8", "--keep-fp32", "nope", "--calib", str(tiny_dataset)]
    assert main([*argv, "--calib-n", "1"]) == 2
    assert "no node named 'nope'" in capsys.readouterr().err
    assert not (model_copy / "model.int8.onnx").exists()
    assert main(["export", str(model_copy), "--format", "onnx", "--calib", str(tiny_dataset)]) == 2  # unused otherwise
    assert "--calib, --min-stride and --keep-fp32 shape an int8 file" in capsys.readouterr().err
    for out, fmt in (("m.txt", "onnx"), ("m.onnx.tmp", "onnx-int8"), ("m.onnx", "tflite")):
        assert main(["export", str(model_copy), "--format", fmt, "--out", str(tmp_path / out)]) == 2
        suffix = ".tflite" if fmt == "tflite" else ".onnx"
        assert f"{tmp_path / out}: --format {fmt} writes a {suffix} file: name --out so" in capsys.readouterr().err
        assert not (tmp_path / out).exists()
    assert main(["export", str(model_copy), "--format", "web", "--out", str(tmp_path / "site.onnx")]) == 2
    assert (f"{tmp_path / 'site.onnx'}: --format web writes a folder (the page and its model): name --out so"
            in capsys.readouterr().err)
    assert not (tmp_path / "site.onnx").exists()


def test_predictor_eval_and_predict_accept_onnx(
    trained_dir: Path, fp32_onnx: Path, int8_onnx: Path, tiny_dataset: Path, tmp_path: Path
) -> None:
    image = read_image(sorted((tiny_dataset / "train" / "images").iterdir())[0])
    torch_prob = Predictor(trained_dir).predict_proba(image)
    onnx_prob = Predictor(fp32_onnx).predict_proba(image)
    assert Predictor(fp32_onnx).input_size == (64, 64)
    assert np.abs(onnx_prob - torch_prob).max() < 1e-4
    assert main(["eval", str(int8_onnx), "--data", str(tiny_dataset), "--json", str(tmp_path / "s.json")]) == 0
    assert (tmp_path / "s.json").is_file()
    inputs = str(tiny_dataset / "test")
    assert main(["predict", str(int8_onnx), inputs, "--out", str(tmp_path / "pred")]) == 0
    assert len(list((tmp_path / "pred").glob("*_mask.png"))) == 4


def test_predictor_bad_onnx_is_a_user_error(
    tmp_path: Path, tiny_dataset: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"nope")
    assert main(["eval", str(bad), "--data", str(tiny_dataset)]) == 2
    assert f"{bad}: unreadable ONNX model" in capsys.readouterr().err


def test_export_at_another_side(model_copy: Path, tiny_dataset: Path, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    own = Predictor(model_copy)
    assert own.input_size != (96, 96)
    out = tmp_path / "m96.onnx"
    assert main(["export", str(model_copy), "--size", "96", "--out", str(out)]) == 0
    exported = Predictor(out)
    assert exported.input_size == (96, 96)
    assert exported.threshold == own.threshold  # the model's own operating point
    image = read_image(next((tiny_dataset / "test" / "images").iterdir()))
    np.testing.assert_allclose(exported.predict_proba(image), own.at_size(96).predict_proba(image), atol=1e-4)
    assert main(["export", str(model_copy), "--size", "96"]) == 0  # beside the model's own export, not over it
    assert Predictor(model_copy / "model.96px.onnx").input_size == (96, 96)
    assert not (model_copy / "model.onnx").exists()
    assert main(["export", str(model_copy), "--size", "48", "--out", str(tmp_path / "bad.onnx")]) == 2
    assert "input size must be a multiple of 32 from 32 to 4096, got 48" in capsys.readouterr().err
    assert main(["export", str(out), "--format", "web", "--size", "128", "--out", str(tmp_path / "site")]) == 2
    err = capsys.readouterr().err
    assert "runs at the size it was exported at" in err and str(out) in err
    assert not (tmp_path / "bad.onnx").exists() and not (tmp_path / "site").exists()

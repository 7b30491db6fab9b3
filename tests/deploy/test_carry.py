"""A model's exports carried to a folder of the same weights with another operating point (``footseg threshold``)."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import onnx
import pytest

from footseg.cli import main
from footseg.deploy.carry import carry_exports
from footseg.deploy.export import export_onnx
from footseg.deploy.quantize import INT8_NAME, export_int8, own_int8, shipped_int8
from footseg.errors import FootsegError
from footseg.models.info import CONFIG_NAME, WEIGHTS_NAME, read_info, write_info
from footseg.runtime.onnx_model import FP32_NAME, OnnxModel, own_export
from footseg.runtime.resolve import DEFAULT_MODEL, resolve_model


@pytest.fixture
def exported(trained_dir: Path, tiny_dataset: Path, tmp_path: Path) -> Path:
    """A model folder with a region peak and its own current fp32 and int8 exports."""
    folder = Path(shutil.copytree(trained_dir, tmp_path / "model"))
    write_info(folder, dataclasses.replace(read_info(folder), region_peak=0.9))
    export_onnx(folder)
    export_int8(folder, calib=tiny_dataset, calib_n=3)
    return folder


def test_threshold_carries_a_folders_exports_with_the_new_point_in_their_metadata(
        exported: Path, tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "point"
    assert main(["threshold", str(exported), "--data", str(tiny_dataset), "--out", str(out),
                 "--region-peaks", "none"]) == 0
    printed = capsys.readouterr().out
    assert "carried model.onnx and model.int8.onnx, their metadata the point saved: it runs in ONNX Runtime" in printed
    assert "writes its ONNX file" not in printed  # nothing left to export
    config = read_info(out)
    assert config.region_peak is None and config.threshold == json.loads((out / "choice.json").read_text())["chosen"]
    for name in (FP32_NAME, INT8_NAME):
        carried, made = onnx.load(str(out / name)), onnx.load(str(exported / name))
        assert carried.graph == made.graph  # the network as exported: only what it says about itself changed
        info = OnnxModel(out / name).info
        assert (info.threshold, info.region_peak) == (config.threshold, None)  # no region peak left over
    assert own_export(out)[0] is not None and own_int8(resolve_model(str(out))) == out / INT8_NAME
    assert own_export(exported)[0] is not None  # the source's files are as they were
    assert OnnxModel(exported / FP32_NAME).info.region_peak == 0.9
    # the export itself is no model to choose a point for, and the refusal names the folder that is
    argv = ["threshold", str(exported / FP32_NAME), "--data", str(tiny_dataset), "--out", str(tmp_path / "x")]
    assert main(argv) == 2
    assert f"pass a saved model folder (its folder {exported} is one)" in capsys.readouterr().err


def test_exports_of_another_side_or_other_weights_are_not_carried(exported: Path, tmp_path: Path) -> None:
    other_side = Path(shutil.copytree(exported, tmp_path / "side", ignore=shutil.ignore_patterns("*.onnx")))
    write_info(other_side, dataclasses.replace(read_info(other_side), input_size=(96, 96)))
    assert carry_exports(resolve_model(str(exported)), other_side) == []
    assert not list(other_side.glob("*.onnx"))
    other_weights = Path(shutil.copytree(exported, tmp_path / "weights", ignore=shutil.ignore_patterns("*.onnx")))
    (other_weights / WEIGHTS_NAME).write_bytes((other_weights / WEIGHTS_NAME).read_bytes() + b" ")
    with pytest.raises(FootsegError, match="holds other weights than"):
        carry_exports(resolve_model(str(exported)), other_weights)
    # a stale export of the source (its weights trained again) is not its own, and is not carried
    stale = Path(shutil.copytree(exported, tmp_path / "stale"))
    target = Path(shutil.copytree(exported, tmp_path / "target", ignore=shutil.ignore_patterns("*.onnx")))
    for folder in (stale, target):
        (folder / WEIGHTS_NAME).write_bytes((folder / WEIGHTS_NAME).read_bytes() + b" ")
    assert carry_exports(resolve_model(str(stale)), target) == []


def test_the_defaults_shipped_int8_file_is_carried_and_then_known_for_the_folders(tmp_path: Path) -> None:
    source = resolve_model(DEFAULT_MODEL)
    folder = tmp_path / "default-point"
    folder.mkdir()
    shutil.copyfile(source.folder / WEIGHTS_NAME, folder / WEIGHTS_NAME)
    shutil.copyfile(source.folder / CONFIG_NAME, folder / CONFIG_NAME)
    write_info(folder, dataclasses.replace(read_info(folder), threshold=0.6))
    assert own_int8(resolve_model(str(folder))) is None  # a bare copy of the weights: nothing of its own yet
    assert [p.name for p in carry_exports(source, folder)] == [FP32_NAME, INT8_NAME]
    assert own_int8(resolve_model(str(folder))) == folder / INT8_NAME
    carried, shipped = onnx.load(str(folder / INT8_NAME)), onnx.load(str(shipped_int8(source)))
    assert carried.graph == shipped.graph and OnnxModel(folder / INT8_NAME).info.threshold == 0.6

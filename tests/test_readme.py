"""The README's Python example runs as written."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
HEIC = Path(__file__).resolve().parent / "data" / "files" / "rotated.heic"


def test_the_python_example_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    section = README.read_text().split("## From Python", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    shutil.copy(HEIC, tmp_path / "IMG_0042.HEIC")  # the photo it names: shown 24 wide, 32 high
    names: dict = {}
    exec(compile(code, "README.md", "exec"), names)
    assert names["mask"].shape == (32, 24) and names["mask"].dtype == np.uint8
    assert names["foot"].shape == (32, 24) and names["foot"].dtype == np.float32
    assert [m.shape for m in names["masks"]] == [(32, 24)] * 2


def test_the_fine_tuning_commands_run_as_written(tiny_dataset: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from footseg.cli import main
    from footseg.models.info import read_info
    from footseg.runtime.resolve import DEFAULT_MODEL, resolve_model

    section = README.read_text().split("**Fine-tuning the default on your own photos.**", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    commands = [line.split("#")[0].split() for line in block.splitlines() if line.strip()]
    verbs = ("check", "train", "threshold", "eval", "export")
    assert [c[:2] for c in commands] == [[".venv/bin/footseg", verb] for verb in verbs]
    monkeypatch.chdir(tmp_path)
    shutil.copytree(tiny_dataset, tmp_path / "mine")
    for command in commands:
        argv = command[1:]
        if argv[0] == "train":  # one step of a batch of two: the command, not the training, is what is checked
            argv += ["--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "2", "--workers", "0", "--no-progress"]
        assert main(argv) == 0, command
    tuned, default = read_info(tmp_path / "runs" / "mine" / "best"), read_info(resolve_model(DEFAULT_MODEL).folder)
    assert (tuned.model, tuned.input_size, tuned.threshold, tuned.region_peak) == (
        default.model, default.input_size, default.threshold, default.region_peak)
    # the point chosen on val/ for the weights as trained, saved beside them with its export
    point = read_info(tmp_path / "runs" / "mine-point")
    choice = json.loads((tmp_path / "runs" / "mine-point" / "choice.json").read_text())
    assert (point.model, point.input_size, point.threshold) == (tuned.model, tuned.input_size, choice["chosen"])
    assert point.region_peak == choice["region_peak"] and "val_iou_by_region_peak" in choice
    assert (tmp_path / "runs" / "mine-point" / "model.onnx").is_file()

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import torch

from footseg.errors import FootsegError
from footseg.models import SavedModelInfo, create_model, load_model, save_model
from footseg.models.info import PRETRAINED_DIR, WEIGHTS_NAME, info_from_dict, pretrained_models, read_info


def _save_tiny(folder: Path) -> torch.nn.Module:
    model = create_model("fastlinknet", width=0.25).eval()
    save_model(model, folder, SavedModelInfo(model="fastlinknet", width=0.25, input_size=(64, 64)))
    return model


def test_round_trip_gives_identical_outputs_and_readable_files(tmp_path: Path) -> None:
    model = _save_tiny(tmp_path / "m")
    loaded, info = load_model(tmp_path / "m")
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    assert info.input_size == (64, 64) and info.width == 0.25
    assert json.loads((tmp_path / "m" / "config.json").read_text())["model"] == "fastlinknet"
    for name in ("config.json", "model.safetensors"):
        assert (tmp_path / "m" / name).stat().st_mode & stat.S_IRGRP  # not the 0600 of a temp file
    assert not list((tmp_path / "m").glob("*.tmp"))


def test_the_same_weights_save_to_the_same_bytes(tmp_path: Path) -> None:
    """A rebuilt model's weights hash as the shipped ones do (a recipe's card records the sha256)."""
    model = create_model("fastlinknet", width=0.25)
    info = SavedModelInfo(model="fastlinknet", width=0.25, input_size=(64, 64))
    saved = {(save_model(model, tmp_path / str(i), info) / WEIGHTS_NAME).read_bytes() for i in range(8)}
    assert len(saved) == 1


def test_load_model_takes_a_folder_not_a_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # names are the runtime's job (footseg.runtime.resolve_model)
    with pytest.raises(FootsegError, match="not a model folder"):
        load_model("fastlinknet")


@pytest.mark.parametrize("name", pretrained_models())
def test_every_shipped_model_loads_and_has_a_model_card(name: str) -> None:
    model, info = load_model(PRETRAINED_DIR / name)
    assert info.model == name
    assert (PRETRAINED_DIR / name / "MODEL_CARD.md").is_file()
    with torch.no_grad():
        out = model(torch.rand(1, 3, *info.input_size))
    assert out.shape == (1, info.num_classes, *info.input_size)


def test_adding_a_prior_input_keeps_what_the_network_computes() -> None:
    from footseg.models.saved import add_prior_input
    from footseg.runtime.resolve import load_network

    model, info = load_network("fastlinknet")  # channel-pruned: its recorded widths must follow
    wide, wide_info = add_prior_input(model, info)
    assert wide_info.in_channels == 4 and wide.in_channels == 4
    x = torch.rand(2, 3, *info.input_size)
    with torch.no_grad():
        assert torch.equal(model(x), wide.eval()(torch.cat([x, torch.rand(2, 1, *info.input_size)], dim=1)))


def test_a_model_keeps_its_threshold_and_an_old_config_reads_as_argmax(tmp_path: Path) -> None:
    model = create_model("fastlinknet", width=0.25).eval()
    save_model(model, tmp_path / "m", SavedModelInfo("fastlinknet", 0.25, 2, (64, 64), threshold=0.65))
    assert read_info(tmp_path / "m").threshold == 0.65
    raw = json.loads((tmp_path / "m" / "config.json").read_text())
    del raw["threshold"]  # a config from before thresholds
    assert info_from_dict(raw).threshold == 0.5
    for bad in (0, 1.0, "0.6", True, -0.2):
        (tmp_path / "m" / "config.json").write_text(json.dumps({**raw, "threshold": bad}))
        with pytest.raises(FootsegError, match="threshold must be a number between 0 and 1") as err:
            read_info(tmp_path / "m")
        assert str(tmp_path / "m" / "config.json") in str(err.value)


def test_a_model_keeps_its_region_peak_and_one_without_writes_none(tmp_path: Path) -> None:
    model = create_model("fastlinknet", width=0.25).eval()
    save_model(model, tmp_path / "plain", SavedModelInfo("fastlinknet", 0.25, 2, (64, 64)))
    assert "region_peak" not in json.loads((tmp_path / "plain" / "config.json").read_text())  # files as before
    assert read_info(tmp_path / "plain").region_peak is None
    save_model(model, tmp_path / "m", SavedModelInfo("fastlinknet", 0.25, 2, (64, 64), region_peak=0.99))
    assert read_info(tmp_path / "m").region_peak == 0.99
    raw = json.loads((tmp_path / "m" / "config.json").read_text())
    for bad in (0, 1.0, "0.9", True, -0.2):
        (tmp_path / "m" / "config.json").write_text(json.dumps({**raw, "region_peak": bad}))
        with pytest.raises(FootsegError, match="region_peak must be a number between 0 and 1") as err:
            read_info(tmp_path / "m")
        assert str(tmp_path / "m" / "config.json") in str(err.value)


def test_a_model_keeps_its_presence_and_one_without_writes_none(tmp_path: Path) -> None:
    model = create_model("fastlinknet", width=0.25).eval()
    save_model(model, tmp_path / "plain", SavedModelInfo("fastlinknet", 0.25, 2, (64, 64), region_peak=0.99))
    assert "presence" not in json.loads((tmp_path / "plain" / "config.json").read_text())  # files as before
    assert read_info(tmp_path / "plain").presence is None
    save_model(model, tmp_path / "m", SavedModelInfo("fastlinknet", 0.25, 2, (64, 64), presence=0.995))
    assert read_info(tmp_path / "m").presence == 0.995 and read_info(tmp_path / "m").region_peak is None
    raw = json.loads((tmp_path / "m" / "config.json").read_text())
    for bad in (0, 1.0, "0.9", True, -0.2):
        (tmp_path / "m" / "config.json").write_text(json.dumps({**raw, "presence": bad}))
        with pytest.raises(FootsegError, match="presence must be a number between 0 and 1") as err:
            read_info(tmp_path / "m")
        assert str(tmp_path / "m" / "config.json") in str(err.value)

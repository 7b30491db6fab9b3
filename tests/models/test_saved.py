from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import torch

from footseg.models import SavedModelInfo, create_model, load_model, save_model
from footseg.models import saved as saved_module
from footseg.models.saved import pretrained_models, resolve_model_folder


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


def test_a_shipped_model_loads_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(saved_module, "PRETRAINED_DIR", tmp_path / "pretrained")
    assert pretrained_models() == []
    _save_tiny(tmp_path / "pretrained" / "fastlinknet")
    assert pretrained_models() == ["fastlinknet"]
    assert resolve_model_folder("fastlinknet") == tmp_path / "pretrained" / "fastlinknet"
    _, info = load_model("fastlinknet")
    assert info.width == 0.25


def test_a_local_folder_wins_over_a_shipped_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(saved_module, "PRETRAINED_DIR", tmp_path / "pretrained")
    _save_tiny(tmp_path / "pretrained" / "fastlinknet")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "fastlinknet").mkdir()
    assert resolve_model_folder("fastlinknet") == Path("fastlinknet")


def test_a_model_without_shipped_weights_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(saved_module, "PRETRAINED_DIR", tmp_path / "none")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(saved_module.FootsegError, match="no weights ship with footseg for 'enet'"):
        load_model("enet")


@pytest.mark.parametrize("name", pretrained_models())
def test_every_shipped_model_loads_and_has_a_model_card(name: str) -> None:
    model, info = load_model(name)
    assert info.model == name
    assert (saved_module.PRETRAINED_DIR / name / "MODEL_CARD.md").is_file()
    with torch.no_grad():
        out = model(torch.rand(1, 3, *info.input_size))
    assert out.shape == (1, info.num_classes, *info.input_size)

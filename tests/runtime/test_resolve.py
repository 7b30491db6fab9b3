"""``resolve_model``: every way a user names a model means the same model in every verb."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from footseg.errors import FootsegError
from footseg.models import SavedModelInfo, create_model, save_model
from footseg.models import info as info_module
from footseg.runtime.resolve import DEFAULT_MODEL, load_network, resolve_model


def _save_tiny(folder: Path) -> torch.nn.Module:
    model = create_model("fastlinknet", width=0.25).eval()
    save_model(model, folder, SavedModelInfo(model="fastlinknet", width=0.25, input_size=(64, 64)))
    return model


@pytest.fixture
def shipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A package whose only shipped model is a tiny one under the default's name, and a working directory without
    model folders."""
    monkeypatch.setattr(info_module, "PRETRAINED_DIR", tmp_path / "pretrained")
    _save_tiny(tmp_path / "pretrained" / DEFAULT_MODEL)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return tmp_path / "pretrained" / DEFAULT_MODEL


@pytest.mark.parametrize("ref", [None, "default", DEFAULT_MODEL])
def test_nothing_default_and_a_shipped_name_mean_the_shipped_model(shipped: Path, ref: str | None) -> None:
    model = resolve_model(ref)
    assert model.path == shipped and model.shipped and not model.onnx and model.name == DEFAULT_MODEL
    _, info = load_network(ref)
    assert info.width == 0.25


def test_a_local_folder_wins_over_a_shipped_name(shipped: Path) -> None:
    _save_tiny(Path(DEFAULT_MODEL))
    model = resolve_model(DEFAULT_MODEL)
    assert model.path == Path(DEFAULT_MODEL) and not model.shipped


def test_a_run_folder_means_its_best_model(shipped: Path, tmp_path: Path) -> None:
    _save_tiny(tmp_path / "run" / "best")
    (tmp_path / "run" / "config.json").write_text("{}")
    model = resolve_model(tmp_path / "run")
    assert model.path == tmp_path / "run" / "best" and model.name == "run"


def test_a_run_folder_without_a_best_model_says_so(shipped: Path, tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text("{}")
    with pytest.raises(FootsegError, match="without a best/ model yet"):
        resolve_model(tmp_path / "run")


def test_an_onnx_file_resolves_without_pytorch_weights(fp32_onnx: Path) -> None:
    model = resolve_model(fp32_onnx)
    assert model.onnx and model.path == fp32_onnx
    with pytest.raises(FootsegError, match="no PyTorch weights"):
        model.load()


@pytest.mark.parametrize("ref", ["enet", "nope", "missing.onnx", "some/folder"])
def test_what_names_no_model_is_a_one_line_error(shipped: Path, ref: str) -> None:
    with pytest.raises(FootsegError) as err:
        resolve_model(ref)
    assert ref in str(err.value) and "\n" not in str(err.value)


def test_a_folder_that_is_no_model_is_refused(shipped: Path, tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    with pytest.raises(FootsegError, match="not a model"):
        resolve_model(tmp_path / "photos")

"""examples/onnx_app.py, the steps an app takes with an exported file and nothing of footseg, gives footseg's masks."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import onnx
import pytest

from footseg.data.io import read_mask, write_png
from footseg.deploy.quantize import shipped_int8
from footseg.runtime.predictor import Predictor, keep_confident_regions
from footseg.runtime.resolve import resolve_model

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "onnx_app.py"
REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-dev" / "images"


@pytest.fixture(scope="module")
def app():
    spec = importlib.util.spec_from_file_location("onnx_app", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def default_file() -> Path:
    return shipped_int8(resolve_model("default"))


def test_its_region_step_is_footsegs(app) -> None:
    rng = np.random.default_rng(0)
    cleared = kept_as_most_confident = 0
    for _ in range(60):
        # scattered regions, few or none above the peak
        prob = (rng.random((24, 32)) ** 3 * rng.uniform(0.7, 1.0)).astype(np.float32)
        ours = keep_confident_regions(prob, 0.5, 0.95)
        np.testing.assert_array_equal(app.clear_unconfident_regions(prob, 0.5, 0.95), ours)
        cleared += int((ours != prob).any())
        kept_as_most_confident += int(prob.max() <= 0.95 and ours.max() == prob.max())
    assert cleared > 20 and kept_as_most_confident > 10  # the maps did exercise both rules


@pytest.mark.parametrize(("h", "w"), [(480, 640), (97, 131), (300, 300)])
def test_its_masks_are_footsegs(app, default_file: Path, make_photo, h: int, w: int) -> None:
    session, settings = app.load(str(default_file))
    assert settings["threshold"] == 0.7 and settings["region_peak"] == 0.98 and settings["input_size"] == [288, 288]
    image, _ = make_photo(h, w, seed=h)
    # grain finer than the network's pixels, which only an area filter averages away as footseg's resize does
    grain = np.random.default_rng(h).normal(0, 40, image.shape)
    image = np.clip(image + grain, 0, 255).astype(np.uint8)
    ours = Predictor(default_file).predict_mask(image).astype(bool)
    np.testing.assert_array_equal(app.foot_mask(session, settings, image), ours)


def test_its_masks_are_footsegs_on_real_photos(app, default_file: Path) -> None:
    if not REAL.is_dir():
        pytest.skip(f"no real photos at {REAL}")
    from footseg.data.io import image_files, read_image

    session, settings = app.load(str(default_file))
    predictor = Predictor(default_file)
    for path in image_files(REAL)[:5]:
        image = read_image(path)
        np.testing.assert_array_equal(app.foot_mask(session, settings, image),
                                      predictor.predict_mask(image).astype(bool), err_msg=path.name)


def test_a_presence_gate_in_the_file_clears_frames_as_footseg_does(app, default_file: Path, make_photo,
                                                                   tmp_path: Path) -> None:
    model = onnx.load(default_file)
    onnx.helper.set_model_props(model, {**{p.key: p.value for p in model.metadata_props},
                                        "footseg.presence": "0.9999"})
    gated = tmp_path / "gated.onnx"
    onnx.save(model, gated)
    session, settings = app.load(str(gated))
    image, _ = make_photo(120, 160, seed=3)
    ours = Predictor(gated).predict_mask(image).astype(bool)
    assert Predictor(default_file).predict_mask(image).any() and not ours.any()  # the gate did clear this frame
    np.testing.assert_array_equal(app.foot_mask(session, settings, image), ours)


def test_the_script_writes_the_mask(app, default_file: Path, make_photo, tmp_path: Path, capsys) -> None:
    image, _ = make_photo(90, 120, seed=7)
    write_png(tmp_path / "photo.png", image)
    assert app.main([str(default_file), str(tmp_path / "photo.png"), str(tmp_path / "mask.png")]) == 0
    np.testing.assert_array_equal(read_mask(tmp_path / "mask.png") > 0,
                                  Predictor(default_file).predict_mask(image).astype(bool))
    assert "of the frame is foot" in capsys.readouterr().out
    assert app.main([str(default_file), str(tmp_path / "missing.jpg"), str(tmp_path / "m.png")]) == 1
    assert "missing.jpg: cannot read this image" in capsys.readouterr().err


def test_what_the_script_cannot_load_or_write_is_one_line_and_a_failure(app, default_file: Path, make_photo,
                                                                       tmp_path: Path, capsys) -> None:
    image, _ = make_photo(90, 120, seed=7)
    write_png(tmp_path / "photo.png", image)
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    for model in (tmp_path / "missing.onnx", tmp_path / "bad.onnx"):
        assert app.main([str(model), str(tmp_path / "photo.png"), str(tmp_path / "m.png")]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"{model}: cannot load it as an ONNX model (") and err.count("\n") == 1
    for out in (tmp_path / "no" / "such" / "m.png", tmp_path / "m.jpeg2"):
        assert app.main([str(default_file), str(tmp_path / "photo.png"), str(out)]) == 1
        assert capsys.readouterr().err == f"{out}: cannot write the mask there (a PNG in an existing folder, say)\n"
        assert not out.exists()

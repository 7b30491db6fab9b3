"""benchmarks/web_photos.py: photos opened on the web page against footseg's Predictor on the same files."""

import json
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from footseg.bench.browser import browser_problem
from footseg.data.io import read_image, read_mask, write_png

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def photos_larger_than_the_input(dataset: Path, out: Path, size: tuple[int, int] = (150, 110)) -> Path:
    """The dataset's test photos and masks scaled up to ``size`` (w, h): photos the page must shrink to the network's
    64x64, by the area filter, and masks it must scale back up."""
    for sub in ("images", "masks"):
        (out / sub).mkdir(parents=True)
    for image in sorted((dataset / "test" / "images").iterdir()):
        write_png(out / "images" / f"{image.stem}.png", cv2.resize(read_image(image), size))
        mask = read_mask(dataset / "test" / "masks" / f"{image.stem}.png")
        write_png(out / "masks" / f"{image.stem}.png", cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST))
    return out


def test_the_pages_photo_masks_are_pythons(trained_dir: Path, tiny_dataset: Path, tmp_path: Path) -> None:
    problem = browser_problem()  # no Chromium, Playwright or onnxruntime-web
    if problem:
        pytest.skip(problem)
    out = tmp_path / "photos.json"
    data = photos_larger_than_the_input(tiny_dataset, tmp_path / "photos")
    done = subprocess.run([sys.executable, "benchmarks/web_photos.py", "--data", str(data),
                           "--model", str(trained_dir), "--json", str(out)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert result["photos"] == 4 and result["pixels"] == 4 * 150 * 110
    assert result["median_ms"] > 0 and result["threads"] >= 1
    # the same input to the byte and the same network: only float rounding of the two runtimes can set them apart
    assert result["pixels_apart"] <= 0.001 * result["pixels"], result
    assert result["iou"]["page"] == pytest.approx(result["iou"]["python"], abs=0.01)
    assert f"{result['pixels_apart']} of {result['pixels']} pixels differ" in done.stdout


@pytest.mark.parametrize("kind", ["no images folder", "empty", "a photo without mask"])
def test_a_folder_that_is_no_photo_set_is_refused_in_one_line(tmp_path: Path, kind: str) -> None:
    if kind != "no images folder":
        (tmp_path / "images").mkdir()
        (tmp_path / "masks").mkdir()
    if kind == "a photo without mask":
        (tmp_path / "images" / "feet.jpg").write_bytes(b"")
    done = subprocess.run([sys.executable, "benchmarks/web_photos.py", "--data", str(tmp_path)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    message = done.stderr.strip().splitlines()[-1]
    assert done.returncode == 2 and str(tmp_path) in message and "Traceback" not in done.stderr, done.stderr
    expected = {"no images folder": "no images/ folder", "empty": "no photos", "a photo without mask": "feet"}
    assert expected[kind] in message

"""benchmarks/web_photos.py: photos opened on the web page against footseg's Predictor on the same files."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from footseg.bench.browser import browser_problem

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_the_pages_photo_masks_are_pythons(trained_dir: Path, tiny_dataset: Path, tmp_path: Path) -> None:
    problem = browser_problem()  # no Chromium, Playwright or onnxruntime-web
    if problem:
        pytest.skip(problem)
    out = tmp_path / "photos.json"
    done = subprocess.run([sys.executable, "benchmarks/web_photos.py", "--data", str(tiny_dataset / "test"),
                           "--model", str(trained_dir), "--json", str(out)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert result["photos"] == 4 and result["pixels"] == 4 * 64 * 64
    assert result["median_ms"] > 0 and result["threads"] >= 1
    # the photos are the network's size: the page feeds them unresized, as resize_image does
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

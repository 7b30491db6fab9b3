"""benchmarks/empty_floors.py: the foot a model finds on photos with no foot in them."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from footseg.data.io import image_files, read_image
from footseg.runtime.predictor import Predictor

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "benchmarks/empty_floors.py", *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)


def test_every_foot_pixel_counts_as_false(trained_dir: Path, tiny_dataset: Path, tmp_path: Path) -> None:
    photos = shutil.copytree(tiny_dataset / "test" / "images", tmp_path / "floor")
    done = _run(str(trained_dir), "--photos", str(photos))
    assert done.returncode == 0, done.stderr
    found = re.search(r"floor: 4 photos, ([\d.]+) % of pixels marked foot; a blob over 0.5 % of the frame in (\d+) "
                      r"\(\d+ %\); a pixel above 0.99 in (\d+)", done.stdout)
    assert found, done.stdout
    predictor = Predictor(str(trained_dir))
    masks = [predictor.predict_mask(read_image(f)) for f in image_files(photos)]
    assert float(found.group(1)) == pytest.approx(100 * np.mean([m.mean() for m in masks]), abs=0.006)
    assert 0 <= int(found.group(2)) <= 4 and 0 <= int(found.group(3)) <= 4


def test_a_folder_without_photos_is_named(trained_dir: Path, tmp_path: Path) -> None:
    done = _run(str(trained_dir), "--photos", str(tmp_path))
    assert done.returncode != 0 and f"{tmp_path}: no photos" in done.stderr


def test_a_floor_folder_is_read_as_the_renders_read_it(trained_dir: Path, tiny_dataset: Path, tmp_path: Path) -> None:
    a, b, c = image_files(tiny_dataset / "test" / "images")[:3]
    for rel, photo in (("train/wood/1.jpg", a), ("val/wood/1.jpg", a), ("val/wood/2.jpg", b),
                       ("val/tiles/1.jpg", c)):  # val/wood/1.jpg: a copy of a training photo, left out
        (tmp_path / "floors" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(photo, tmp_path / "floors" / rel)
    done = _run(str(trained_dir), "--floors", str(tmp_path / "floors"))
    assert done.returncode == 0, done.stderr
    rows = re.findall(r"floors/val/(\w+): (\d+) photos", done.stdout)
    assert rows == [("tiles", "1"), ("wood", "1")], done.stdout
    missing = _run(str(trained_dir), "--floors", str(tmp_path / "nowhere"))
    assert missing.returncode != 0 and "floor photo folder not found" in missing.stderr


def test_a_presence_gate_clears_the_frames_it_is_unsure_of(trained_dir: Path, tiny_dataset: Path,
                                                          tmp_path: Path) -> None:
    photos = shutil.copytree(tiny_dataset / "test" / "images", tmp_path / "floor")
    # the gate sees the network-size map (before it is resized to the photo)
    maps = Predictor(str(trained_dir)).network_proba([read_image(f) for f in image_files(photos)])
    peak = float(maps.max())
    assert peak < 1.0  # room above it for a level that clears every frame
    above_all = float(np.nextafter(np.float32(peak), np.float32(1.0)))
    ungated = _run(str(trained_dir), "--photos", str(photos))
    assert ungated.returncode == 0 and not re.search(r"floor: 4 photos, 0.00 % of pixels", ungated.stdout), ungated
    done = _run(str(trained_dir), "--photos", str(photos), "--presence", f"{above_all!r}")
    assert done.returncode == 0, done.stderr
    assert f"presence {above_all:g}" in done.stdout
    assert "floor: 4 photos, 0.00 % of pixels marked foot; a blob over 0.5 % of the frame in 0 (0 %)" in done.stdout

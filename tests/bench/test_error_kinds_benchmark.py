"""benchmarks/error_kinds.py: a model's error split into missed foot, false foot beside it and far from it."""

import dataclasses
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from footseg.eval.evaluate import evaluate
from footseg.models.info import read_info, write_info

ROOT = Path(__file__).resolve().parents[2]
SHARES = r"missed foot ([\d.]+) %, false foot beside it ([\d.]+) %, far from it ([\d.]+) %"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "benchmarks/error_kinds.py", *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)


def _iou(stdout: str) -> float:
    return float(re.search(r"images\): foot IoU ([\d.]+)", stdout).group(1))


def test_it_scores_a_model_as_eval_does(trained_dir: Path, tiny_dataset: Path) -> None:
    done = _run(str(trained_dir), "--data", str(tiny_dataset), "--split", "test")
    assert done.returncode == 0, done.stderr
    assert "(every region kept) on" in done.stdout and "(test, 4 images)" in done.stdout
    assert _iou(done.stdout) == pytest.approx(100 * evaluate(str(trained_dir), tiny_dataset, split="test")["iou"],
                                              abs=0.006)
    assert re.search(SHARES, done.stdout) and re.search(r"missing over a fifth of their foot: \d+ of 4 with foot",
                                                        done.stdout)


def test_near_decides_what_is_far(trained_dir: Path, tiny_dataset: Path) -> None:
    everything_beside = _run(str(trained_dir), "--data", str(tiny_dataset), "--split", "test", "--near", "1")
    assert everything_beside.returncode == 0, everything_beside.stderr
    assert float(re.search(SHARES, everything_beside.stdout).group(3)) == 0.0
    assert f"without the far false foot: {_iou(everything_beside.stdout):.2f}" in everything_beside.stdout


def test_it_takes_a_flat_folder_and_a_region_peak(trained_dir: Path, tiny_dataset: Path, tmp_path: Path) -> None:
    flat = shutil.copytree(tiny_dataset / "test", tmp_path / "flat")
    peaked = shutil.copytree(trained_dir, tmp_path / "peaked")
    write_info(peaked, dataclasses.replace(read_info(peaked), region_peak=0.9))
    for peak, label in (("0.9", "region peak 0.9"), ("0", "every region kept")):  # 0.9 clears a region here
        done = _run(str(peaked), "--data", str(flat), "--region-peak", peak)
        assert done.returncode == 0, done.stderr
        assert f"({label}) on {flat} (4 images)" in done.stdout
        expected = evaluate(str(peaked), flat, region_peak=float(peak))["iou"]
        assert _iou(done.stdout) == pytest.approx(100 * expected, abs=0.006)  # printed to 2 decimals

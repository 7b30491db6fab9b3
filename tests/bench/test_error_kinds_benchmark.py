"""benchmarks/error_kinds.py: a model's error split into missed foot, false foot beside it and far from it."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from footseg.eval.evaluate import evaluate

ROOT = Path(__file__).resolve().parents[2]


def test_it_scores_a_model_as_eval_does(trained_dir: Path, tiny_dataset: Path) -> None:
    done = subprocess.run([sys.executable, "benchmarks/error_kinds.py", str(trained_dir), "--data", str(tiny_dataset),
                           "--split", "test"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "(every region kept)" in done.stdout
    iou = float(re.search(r"\(test, 4 images\): foot IoU ([\d.]+)", done.stdout).group(1))
    assert iou == pytest.approx(100 * evaluate(str(trained_dir), tiny_dataset, split="test")["iou"], abs=0.01)
    shares = [float(v) for v in re.search(r"missed foot ([\d.]+) %, false foot beside it ([\d.]+) %, far from it "
                                          r"([\d.]+) %", done.stdout).groups()]
    assert sum(shares) == pytest.approx(100, abs=0.2)
    without_far = float(re.search(r"without the far false foot: ([\d.]+)", done.stdout).group(1))
    assert without_far >= iou


def test_it_takes_a_region_peak(trained_dir: Path, tiny_dataset: Path) -> None:
    done = subprocess.run([sys.executable, "benchmarks/error_kinds.py", str(trained_dir), "--data", str(tiny_dataset),
                           "--split", "test", "--region-peak", "0.9"], capture_output=True, text=True, timeout=300,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr
    iou = float(re.search(r"\(region peak 0.9\) on .* foot IoU ([\d.]+)", done.stdout).group(1))
    expected = evaluate(str(trained_dir), tiny_dataset, split="test", region_peak=0.9)["iou"]
    assert iou == pytest.approx(100 * expected, abs=0.01)

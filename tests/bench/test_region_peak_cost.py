"""benchmarks/region_peak_cost.py: a model's region filter timed beside its network."""

import dataclasses
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from footseg.models.info import read_info, write_info

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "benchmarks/region_peak_cost.py", *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)


def test_it_times_the_region_filter_beside_the_network(trained_dir: Path, int8_onnx: Path, tiny_dataset: Path,
                                                       tmp_path: Path) -> None:
    plain = shutil.copytree(trained_dir, tmp_path / "plain")
    done = _run(str(plain), "--data", str(tiny_dataset), "--onnx", str(int8_onnx), "--n", "2")
    assert done.returncode != 0 and "has no region peak" in done.stderr
    peaked = shutil.copytree(trained_dir, tmp_path / "peaked")
    write_info(peaked, dataclasses.replace(read_info(peaked), region_peak=0.9))
    done = _run(str(peaked), "--data", str(tiny_dataset), "--onnx", str(int8_onnx), "--n", "2")
    assert done.returncode == 0, done.stderr
    found = re.search(r"int8 network ([\d.]+) ms, keep_confident_regions ([\d.]+) ms \(([\d.]+) % of the network\)",
                      done.stdout)
    assert found, done.stdout
    network, regions, share = (float(v) for v in found.groups())
    assert network > 0 and regions > 0 and share == pytest.approx(100 * regions / network, rel=0.05)  # ms rounded
    assert "region peak 0.9, 2 photos" in done.stdout

"""benchmarks/train_wait.py: `footseg train` with one timing line an epoch, the training itself unchanged."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _train(script: list[str], data: Path, out: Path, **env: str) -> subprocess.CompletedProcess:
    args = ["train", "--model", "fastlinknet", "--width", "0.25", "--size", "64", "--epochs", "2", "--batch-size", "2",
            "--steps-per-epoch", "3", "--workers", "0", "--device", "cpu", "--no-progress", "--data", str(data),
            "--out", str(out)]
    return subprocess.run([sys.executable, *script, *args], capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env={**os.environ, **env})


@pytest.mark.timeout(600)
def test_train_wait_prints_each_epochs_wait_and_trains_as_footseg_train(tiny_dataset: Path, tmp_path: Path) -> None:
    waited = _train(["benchmarks/train_wait.py"], tiny_dataset, tmp_path / "waited", TRAIN_WAIT_PROFILE="2")
    assert waited.returncode == 0, waited.stderr
    lines = [line for line in waited.stdout.splitlines() if line.startswith("[wait]")]
    assert [line.split(":")[0] for line in lines] == ["[wait] epoch 1", "[wait] epoch 2"]
    assert all("workers 0" in line for line in lines)
    # With no worker processes every batch is made while the loop waits: the wait is measured, not left at 0.
    waits = [float(re.search(r"waiting for batches ([\d.]+) s", line).group(1)) for line in lines]
    assert all(wait > 0 for wait in waits), lines
    profile = [line for line in waited.stdout.splitlines() if line.startswith("[profile]")]
    assert any("Self CPU" in line for line in profile) and any("aten::" in line for line in profile), profile
    assert waited.stdout.index("[profile]") > waited.stdout.index("[wait] epoch 1")  # epoch 2's, not epoch 1's

    plain = _train(["-m", "footseg"], tiny_dataset, tmp_path / "plain")
    assert plain.returncode == 0, plain.stderr
    history = [json.loads((tmp_path / run / "history.json").read_text()) for run in ("waited", "plain")]
    for entry in history:
        for epoch in entry:
            epoch.pop("images_per_s")
    assert history[0] == history[1]

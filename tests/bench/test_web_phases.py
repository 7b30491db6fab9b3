"""benchmarks/web_phases.py: the web page's loop timed step by step in headless Chromium."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from footseg.bench.browser import browser_problem

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_it_times_every_step_of_the_page(trained_dir: Path, tmp_path: Path) -> None:
    problem = browser_problem()  # no Chromium, Playwright or onnxruntime-web
    if problem:
        pytest.skip(problem)
    out = tmp_path / "phases.json"
    done = subprocess.run([sys.executable, "benchmarks/web_phases.py", "--model", str(trained_dir), "--frames", "8",
                           "--json", str(out)], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    side = json.loads((trained_dir / "config.json").read_text())["input_size"]
    result = json.loads(out.read_text())
    assert result["size"] == side and result["mode"] == "smooth" and result["threads"] == 1
    medians = result["median_ms"]
    assert set(medians) == {"draw", "read", "toInput", "run", "sigmoid", "peak", "smooth", "paint", "put", "step"}
    assert all(v >= 0 for v in medians.values()) and medians["run"] > 0
    found = re.search(r"outside the network: ([\d.]+) ms; the network: ([\d.]+) ms", done.stdout)
    assert found and float(found.group(2)) == pytest.approx(medians["run"], abs=0.006), done.stdout

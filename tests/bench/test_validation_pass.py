"""benchmarks/validation_pass.py: one validation pass read from files against kept in memory, the same scores."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(data: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "benchmarks/validation_pass.py", "--data", str(data), "--size", "64",
                           "--rounds", "2", *extra], capture_output=True, text=True, timeout=300, cwd=ROOT)


def test_both_ways_are_timed_and_score_the_same(tiny_dataset: Path) -> None:
    done = _run(tiny_dataset)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("4 images at 64 px")
    timed = {line[:18].strip(): line for line in lines[1:5]}
    assert set(timed) == {"read, loader", "read, validation", "kept, loader", "kept, validation"}
    assert all(line.count(",") >= 1 and " s  (" in line for line in timed.values())
    assert lines[-1].startswith("foot IoU ") and lines[-1].endswith("(the same)")


def test_a_split_too_large_to_keep_is_refused(tiny_dataset: Path) -> None:
    done = _run(tiny_dataset, "--size", "20000")  # 4 x 20000^2 x 4 bytes: over the 1 GiB budget
    assert done.returncode == 2 and "do not fit in" in done.stderr

"""benchmarks/weight_sharing.py: what sharing keeps of a network's masks, with and without per-channel scales."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "benchmarks/weight_sharing.py", *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)


def test_rows_compare_both_ways_of_sharing_against_the_unshared_masks(trained_dir: Path, tiny_dataset: Path) -> None:
    done = _run(str(trained_dir), "--data", str(tiny_dataset), "--n", "4", "--clusters", "2,256")
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line.strip("|").split("|") for line in done.stdout.splitlines()[2:]]
    table = {int(k): (float(scaled), float(plain)) for k, scaled, plain in rows}
    assert sorted(table) == [2, 256] and all(0.0 <= v <= 1.0 for pair in table.values() for v in pair)
    assert table[256][0] > 0.9  # 256 shared values in each channel's own unit change little
    assert table[2][0] < table[256][0]  # two values do change the masks


def test_a_folder_without_photos_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    done = _run("--data", str(tmp_path))
    assert done.returncode == 2 and done.stdout.startswith("weight_sharing.py: error: ")
    assert done.stdout.count("\n") == 1

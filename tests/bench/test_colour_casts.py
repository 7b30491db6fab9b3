"""benchmarks/colour_casts.py: a dataset's photos under colour casts, for footseg eval to score."""

import subprocess
import sys
from pathlib import Path

import numpy as np

from footseg.data.io import read_image, read_mask

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "benchmarks/colour_casts.py", *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


def test_each_cast_is_the_photo_as_read_with_its_cast_alone(tiny_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "casts"
    done = _run("--data", str(tiny_dataset), "--out", str(out), "--n", "2", "--casts", "clean,grey,warm")
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["clean", "grey", "warm"]
    stems = sorted(p.stem for p in (out / "clean" / "images").iterdir())
    assert len(stems) == 2 and stems == sorted(p.stem for p in (out / "warm" / "masks").iterdir())
    for stem in stems:
        clean = read_image(out / "clean" / "images" / f"{stem}.png").astype(np.float32)
        grey = read_image(out / "grey" / "images" / f"{stem}.png")
        warm = read_image(out / "warm" / "images" / f"{stem}.png").astype(np.float32)
        assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()
        assert np.abs(grey[..., 0] - clean @ np.array([0.299, 0.587, 0.114])).max() <= 0.5 + 1e-3
        assert np.abs(warm - np.clip(clean * [1.15, 1.0, 0.8], 0, 255)).max() <= 0.5 + 1e-3  # (rounded)
        val = tiny_dataset / "val"  # the val split of a dataset with splits, its masks as they are
        assert (read_mask(out / "grey" / "masks" / f"{stem}.png") == read_mask(val / "masks" / f"{stem}.png")).all()


def test_an_unknown_cast_or_an_out_with_files_is_one_line(tiny_dataset: Path, tmp_path: Path) -> None:
    done = _run("--data", str(tiny_dataset), "--out", str(tmp_path / "c"), "--casts", "sepia")
    assert done.returncode == 2 and done.stdout.startswith("colour_casts: error: unknown cast sepia; choose of: clean")
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "x").write_text("mine")
    done = _run("--data", str(tiny_dataset), "--out", str(tmp_path / "c"))
    assert done.returncode == 2 and "c: holds files: choose another --out" in done.stdout


def test_a_photo_without_its_mask_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    from footseg.data.io import write_png

    photos = tmp_path / "photos"
    for stem in ("a", "b"):
        write_png(photos / "images" / f"{stem}.png", np.full((8, 8, 3), 90, np.uint8))
    write_png(photos / "masks" / "a.png", np.zeros((8, 8), np.uint8))  # b has none
    done = _run("--data", str(photos), "--out", str(tmp_path / "c"))
    assert done.returncode == 2 and "b.png: no mask (expected masks/b.png)" in done.stdout
    assert not (tmp_path / "c").exists()
    done = _run("--data", str(photos), "--out", str(tmp_path / "c"), "--n", "0")
    assert done.returncode == 2 and "--n must be at least 1, got 0" in done.stdout

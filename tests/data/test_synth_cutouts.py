"""``footseg synth --cutouts``: foreground photos with masks composited onto rendered floors (the thesis's mode)."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from footseg.data.io import read_image, read_mask, write_png
from footseg.data.synth import SynthSettings, synthesize
from footseg.data.synth.cutouts import list_cutouts
from footseg.data.synth.floors import SPLITS, split_of
from footseg.errors import FootsegError

GREEN = (20, 230, 40)
MAGENTA = (255, 0, 255)


def _cutout(folder: Path, stem: str, leg: bool = False) -> None:
    """A green ellipse 'foot' on a magenta backdrop (which must never show), as a scanner would give it."""
    img = np.zeros((40, 56, 3), np.uint8)
    img[:] = MAGENTA
    # a corner of the backdrop from the name, so no two are the same file (copies across splits are left out)
    img[0, :2, 1] = np.frombuffer(zlib.crc32(stem.encode()).to_bytes(4, "little")[:2], np.uint8)
    mask = np.zeros((40, 56), np.uint8)
    cv2.ellipse(mask, (28, 20), (22, 10), 15, 0, 360, 255, -1)
    if leg:  # a leg running off the photo's bottom edge
        cv2.rectangle(mask, (8, 20), (20, 39), 255, -1)
    img[mask > 0] = GREEN
    write_png(folder / "images" / f"{stem}.png", img)
    write_png(folder / "masks" / f"{stem}.png", mask)


def _flat_folder(folder: Path, per_split: int = 2) -> Path:
    """Cutouts named so that the crc32 partition gives every split at least ``per_split``."""
    have = dict.fromkeys(SPLITS, 0)
    k = 0
    while min(have.values()) < per_split:
        stem = f"c{k:03d}"
        sp = split_of(zlib.crc32(f"images/{stem}.png".encode()))
        if have[sp] < per_split + 2:
            _cutout(folder, stem, leg=k % 2 == 1)
            have[sp] += 1
        k += 1
    return folder


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def cutouts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _flat_folder(tmp_path_factory.mktemp("cutouts") / "cut")


@pytest.fixture(scope="module")
def composites(egl, cutouts: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("comp") / "ds"
    synthesize(out, SynthSettings(n=10, size=64, seed=2, cutouts=str(cutouts)), progress=False)
    return out


def _greenish(img: np.ndarray) -> np.ndarray:
    x = img.astype(int)
    return (x[..., 1] > x[..., 0] + 40) & (x[..., 1] > x[..., 2] + 40)


def test_masks_cover_the_pasted_foreground(egl, cutouts: Path, tmp_path: Path) -> None:
    out = tmp_path / "png"
    synthesize(out, SynthSettings(n=10, size=64, seed=1, cutouts=str(cutouts), camera_effects=False,
                                  distractors=False, image_format="png"), progress=False)
    inside = outside = n_in = n_out = 0
    kernel = np.ones((3, 3), np.uint8)
    for split in SPLITS:
        for p in sorted((out / split / "images").glob("*.png")):
            img, m = read_image(p), read_mask(out / split / "masks" / p.name)
            assert img.shape == (64, 64, 3) and m.shape == (64, 64) and set(np.unique(m)) <= {0, 255}
            assert (m > 0).sum() > 0
            core = cv2.erode((m > 0).astype(np.uint8), kernel) > 0
            ring = (cv2.dilate((m > 0).astype(np.uint8), kernel, iterations=3) > 0) & ~(
                cv2.dilate((m > 0).astype(np.uint8), kernel) > 0)
            g = _greenish(img)
            inside, n_in = inside + g[core].sum(), n_in + core.sum()
            outside, n_out = outside + g[ring].sum(), n_out + ring.sum()
            x = img.astype(int)
            magenta = (x[..., 0] > x[..., 1] + 120) & (x[..., 2] > x[..., 1] + 120)
            assert not magenta[ring | (m > 0)].any(), f"{p}: the cutout photo's backdrop bled in"
    assert n_in > 200 and inside / n_in > 0.97  # colour matched, but still the green foreground
    assert outside / n_out < 0.15  # just outside the mask: floor, not foreground


def test_layout_and_split_discipline(composites: Path, cutouts: Path) -> None:
    manifest = json.loads((composites / "manifest.json").read_text())
    assert manifest["counts"] == {"train": 8, "val": 1, "test": 1}
    assert manifest["settings"]["cutouts"] == str(cutouts) and manifest["settings"]["cutout_prob"] == 1.0
    seen: dict[str, str] = {}
    for split in SPLITS:
        sp = manifest["splits"][split]
        assert sp["cutouts"] and sp["foot_ids"] == [] and sp["meshes"] == []
        for rel in sp["cutouts"]:
            assert seen.setdefault(rel, split) == split
            assert split_of(zlib.crc32(rel.encode())) == split and (cutouts / rel).is_file()
        images = sorted((composites / split / "images").glob("*.jpg"))
        assert [p.stem for p in images] == [p.stem for p in sorted((composites / split / "masks").glob("*.png"))]
        assert len(images) == manifest["counts"][split]


def test_same_bytes_for_workers_and_shards(composites: Path, cutouts: Path, tmp_path: Path) -> None:
    s = SynthSettings(n=10, size=64, seed=2, cutouts=str(cutouts))
    synthesize(tmp_path / "w2", s, workers=2, progress=False)
    synthesize(tmp_path / "sh", s, shard=(1, 2), progress=False)
    synthesize(tmp_path / "sh", s, shard=(0, 2), progress=False)
    ref = _files(composites)
    assert _files(tmp_path / "w2") == ref
    assert _files(tmp_path / "sh") == ref


def test_split_subfolders_and_mixing(egl, tmp_path: Path) -> None:
    folder = tmp_path / "cut"
    for split in SPLITS:
        for k in range(2):
            _cutout(folder / split, f"{split}{k}", leg=k == 1)
    assert {sp: len(v) for sp, v in list_cutouts(folder).items()} == dict.fromkeys(SPLITS, 2)
    out = tmp_path / "mix"
    synthesize(out, SynthSettings(n=20, size=48, seed=0, cutouts=str(folder), cutout_prob=0.5), progress=False)
    splits = json.loads((out / "manifest.json").read_text())["splits"]
    for split in SPLITS:
        assert all(Path(p).parts[0] == split for p in splits[split]["cutouts"])
    assert sum(len(splits[s]["cutouts"]) for s in SPLITS) > 0
    assert sum(len(splits[s]["foot_ids"]) for s in SPLITS) > 0  # the rest are 3D renders


def test_bad_cutout_folders(egl, tmp_path: Path) -> None:
    def run(folder: Path, n: int = 3, **kw) -> None:
        synthesize(tmp_path / "out" / folder.name, SynthSettings(n=n, size=32, cutouts=str(folder), **kw),
                   progress=False)

    with pytest.raises(FootsegError, match="folder not found"):
        run(tmp_path / "missing")
    empty = tmp_path / "empty"
    (empty / "images").mkdir(parents=True)
    with pytest.raises(FootsegError, match="no cutouts found"):
        run(empty)
    (tmp_path / "noimages").mkdir()
    with pytest.raises(FootsegError, match="no images/ folder"):
        run(tmp_path / "noimages")
    nomask = tmp_path / "nomask"
    _cutout(nomask, "a")
    (nomask / "masks" / "a.png").unlink()
    with pytest.raises(FootsegError, match=r"a\.png: cutout image without a mask"):
        run(nomask)
    blank = tmp_path / "blank"  # single cutouts go to train/: a flat folder would hash them into any split
    _cutout(blank / "train", "a")
    write_png(blank / "train" / "masks" / "a.png", np.zeros((40, 56), np.uint8))
    with pytest.raises(FootsegError, match=r"masks/a\.png: empty mask"):
        run(blank)
    sized = tmp_path / "sized"
    _cutout(sized / "train", "a")
    write_png(sized / "train" / "masks" / "a.png", np.full((10, 10), 255, np.uint8))
    with pytest.raises(FootsegError, match=r"masks/a\.png: mask size 10x10 differs"):
        run(sized)
    one = tmp_path / "one"
    _cutout(one / "train", "a")  # a single cutout can serve one split only
    with pytest.raises(FootsegError, match="no cutout falls into the"):
        run(one, n=10)
    with pytest.raises(FootsegError, match="--cutout-prob"):
        run(one, cutout_prob=1.5)


def test_cli_cutouts(egl, cutouts: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from footseg.cli import main

    out = tmp_path / "c"
    assert main(["synth", str(out), "--n", "3", "--size", "32", "--cutouts", str(cutouts), "--cutout-prob", "1",
                 "--no-progress"]) == 0
    assert "train 3" in capsys.readouterr().out
    assert json.loads((out / "manifest.json").read_text())["splits"]["train"]["cutouts"]
    assert main(["synth", str(tmp_path / "d"), "--n", "3", "--cutouts", str(tmp_path / "nowhere")]) == 2


def test_resume_accepts_manifests_from_before_cutouts(egl, tmp_path: Path) -> None:
    out = tmp_path / "old"
    s = SynthSettings(n=2, size=32)
    synthesize(out, s, progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    for key in ("cutouts", "cutout_prob"):  # written before these settings existed
        del manifest["settings"][key]
    (out / "manifest.json").write_text(json.dumps(manifest))
    synthesize(out, s, resume=True, progress=False)
    with pytest.raises(FootsegError, match="other settings"):
        synthesize(out, SynthSettings(n=2, size=32, cutout_prob=0.5), resume=True, progress=False)

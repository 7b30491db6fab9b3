"""Clips as data: finding clips and their frames in order, and ``footseg check`` on clip datasets."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from footseg.cli import main
from footseg.data.check import check_dataset
from footseg.data.clips import find_clips, is_clip_dataset
from footseg.data.io import write_jpeg, write_png
from footseg.errors import FootsegError

REAL_DEV_CLIPS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real-dev-clips"


def _frame(clip: Path, name: str, h: int = 24, w: int = 32, mask: bool = True) -> None:
    rng = np.random.default_rng(len(name))
    write_jpeg(clip / "images" / f"{name}.jpg", rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
    if mask:
        m = np.zeros((h, w), np.uint8)
        m[4:12, 5:15] = 255
        write_png(clip / "masks" / f"{name}.png", m)


def _clip(folder: Path, names: tuple[str, ...] = ("f000", "f001", "f002")) -> Path:
    for name in names:
        _frame(folder, name)
    return folder


@pytest.fixture
def clips(tmp_path: Path) -> Path:
    """A flat clip dataset: two clips of three frames, the frames written out of order."""
    root = tmp_path / "clips"
    _clip(root / "walk", ("f002", "f000", "f001"))
    _clip(root / "a_turn")
    return root


def test_find_clips_flat_and_split(clips: Path, tmp_path: Path) -> None:
    assert is_clip_dataset(clips)
    found = find_clips(clips)
    assert [c.name for c in found] == ["a_turn", "walk"]
    walk = found[1]
    assert walk.folder == clips / "walk" and len(walk) == 3
    assert [f.stem for f in walk.frames] == ["f000", "f001", "f002"]  # by name, not by writing order
    image, mask = walk.read(1)
    assert image.shape == (24, 32, 3) and mask.shape == (24, 32) and set(np.unique(mask)) == {0, 255}
    (clips / "walk" / "masks" / "f002.png").unlink()
    assert find_clips(clips)[1].frames[2].mask is None
    assert find_clips(clips)[1].read(2)[1] is None

    split = tmp_path / "split"
    _clip(split / "train" / "c1")
    _clip(split / "test" / "c2")
    _clip(split / "test" / "c3")
    (split / "val").mkdir()
    assert is_clip_dataset(split)
    assert [c.name for c in find_clips(split)] == ["c2", "c3"]  # the test split by default
    assert [c.name for c in find_clips(split, "train")] == ["c1"]
    with pytest.raises(FootsegError, match="no clips"):
        find_clips(split, "val")
    with pytest.raises(FootsegError, match="no 'nope' split"):
        find_clips(split, "nope")
    with pytest.raises(FootsegError, match="not found"):
        find_clips(tmp_path / "missing")


def test_one_clip_is_a_clip_dataset_of_one(clips: Path) -> None:
    # as `footseg video CLIP` takes it; its images/ folder is named as what it is
    [walk] = find_clips(clips / "walk")
    assert (walk.name, walk.folder, len(walk)) == ("walk", clips / "walk", 3)
    with pytest.raises(FootsegError, match=r"this is a clip's images/ folder: name the clip, its parent"):
        find_clips(clips / "walk" / "images")


def test_still_datasets_are_not_clip_datasets(tiny_dataset: Path, tmp_path: Path) -> None:
    assert not is_clip_dataset(tiny_dataset)
    assert not is_clip_dataset(tiny_dataset / "train")
    assert not is_clip_dataset(tmp_path / "missing")
    assert not is_clip_dataset(tmp_path)  # empty folder


def test_check_passes_good_clip_datasets(clips: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = check_dataset(clips)
    assert result.ok, [str(p) for p in result.problems]
    assert result.clips == {"": 2} and result.counts == {"": 6}
    assert result.summary() == "ok: 2 clips, 6 frames"
    assert main(["check", str(clips)]) == 0
    assert "ok: 2 clips, 6 frames" in capsys.readouterr().out

    split = tmp_path / "split"
    for s in ("train", "val", "test"):
        _clip(split / s / f"clip_{s}")
    result = check_dataset(split)
    assert result.ok
    assert result.summary() == "ok: train 1 clips, 3 frames; val 1 clips, 3 frames; test 1 clips, 3 frames"


def _problems(root: Path) -> set[tuple[str, str]]:
    result = check_dataset(root)
    return {(p.path.relative_to(root).as_posix(), p.message.split(" (")[0]) for p in result.problems}


def test_check_reports_clip_problems_by_file(clips: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # frame names of images and masks disagree
    (clips / "walk" / "masks" / "f001.png").rename(clips / "walk" / "masks" / "f009.png")
    # one frame of another size (image and mask agree with each other)
    _frame(clips / "a_turn", "f001", h=20, w=30)
    # an empty clip, a folder that is no clip, and a truncated frame
    (clips / "empty" / "images").mkdir(parents=True)
    (clips / "empty" / "masks").mkdir()
    (clips / "notes").mkdir()
    _clip(clips / "broken", ("f000", "f001"))
    data = (clips / "broken" / "images" / "f001.jpg").read_bytes()
    (clips / "broken" / "images" / "f001.jpg").write_bytes(data[: len(data) // 2])
    assert is_clip_dataset(clips)
    assert _problems(clips) == {
        ("walk/images/f001.jpg", "mask missing"),
        ("walk/masks/f009.png", "mask without image"),
        ("a_turn/images/f001.jpg", "frame is 30x20 but the other frames of this clip are 32x24"),
        ("empty/images", "empty clip: no frames"),
        ("notes", "not a clip: no images/ folder"),
        ("broken/images/f001.jpg", "unreadable or truncated image"),
    }
    assert main(["check", str(clips)]) == 1
    err = capsys.readouterr().err
    assert f"{clips / 'empty' / 'images'}: empty clip: no frames" in err


def test_check_reports_empty_and_missing_splits_of_clip_datasets(tmp_path: Path) -> None:
    root = tmp_path / "split"
    _clip(root / "train" / "c1")
    (root / "val").mkdir()
    assert _problems(root) == {("val", "empty split: no clips")}
    result = check_dataset(root, ["train", "test"])
    assert [(p.path.name, p.message) for p in result.problems] == [("test", "missing test/ split")]


def test_a_mask_mismatch_inside_a_clip_uses_the_still_image_checks(clips: Path) -> None:
    write_png(clips / "walk" / "masks" / "f001.png", np.zeros((10, 10), np.uint8))
    m = np.zeros((24, 32), np.uint8)
    m[:4], m[4:8] = 7, 9
    write_png(clips / "walk" / "masks" / "f002.png", m)
    assert _problems(clips) == {
        ("walk/masks/f001.png", "mask is 10x10 but its image is 32x24"),
        ("walk/masks/f002.png", "mask has 3 distinct values"),
    }


@pytest.mark.skipif(not REAL_DEV_CLIPS.is_dir(), reason="../shared real-dev-clips not available")
def test_real_dev_clips_pass(tmp_path: Path) -> None:
    result = check_dataset(REAL_DEV_CLIPS)
    assert result.ok, [str(p) for p in result.problems[:5]]
    assert result.clips == {"": 20} and result.counts == {"": 720}
    clips = find_clips(REAL_DEV_CLIPS)
    assert len(clips) == 20 and all(len(c) == 36 for c in clips)
    assert [f.stem for f in clips[0].frames][:3] == ["000", "001", "002"]
    # a copy of one clip with a frame of another size: the check names that frame
    one = tmp_path / "one" / clips[0].name
    shutil.copytree(clips[0].folder, one)
    image, mask = clips[0].read(5)
    write_jpeg(one / "images" / "005.jpg", image[:-2])
    write_png(one / "masks" / "005.png", mask[:-2])
    problems = check_dataset(tmp_path / "one").problems
    assert [p.path for p in problems] == [one / "images" / "005.jpg"]


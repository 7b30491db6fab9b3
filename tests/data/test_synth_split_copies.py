"""Byte copies of a file in two splits of a folder of floor photos (meshes, cutouts): the later split leaves its copy
out, so no synthetic validation or test image shows a byte copy of a training floor (near copies, the same spot shot
twice, are not caught), and training lists stay as they were."""

from __future__ import annotations

from pathlib import Path

import pytest

from footseg.data.synth import SynthSettings, synthesize
from footseg.data.synth.floors import list_photos
from footseg.data.synth.merge import merge_renders


def _write(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def _names(per_split: dict[str, list[str]], root: Path) -> dict[str, list[str]]:
    return {sp: [str(Path(p).relative_to(root)) for p in paths] for sp, paths in per_split.items()}


def test_a_later_split_leaves_out_copies_of_an_earlier_ones_files(tmp_path: Path) -> None:
    root = _write(tmp_path / "floors", {
        "train/wood/1.jpg": b"oak", "train/wood/2.jpg": b"pine", "train/wood/3.jpg": b"pine",  # a copy within train
        "val/wood/9.jpg": b"oak", "val/tiles/1.jpg": b"slate",  # oak: a training floor under another name
        "test/tiles/4.jpg": b"slate", "test/tiles/5.jpg": b"marble", "test/wood/7.jpg": b"pine"})
    assert _names(list_photos(root), root) == {
        "train": ["train/wood/1.jpg", "train/wood/2.jpg", "train/wood/3.jpg"], "val": ["val/tiles/1.jpg"],
        "test": ["test/tiles/5.jpg"]}


def test_a_flat_folder_is_split_by_path_and_then_the_same(tmp_path: Path) -> None:
    root = _write(tmp_path / "flat", {f"p{k}.jpg": b"the same floor" for k in range(40)})
    per_split = list_photos(root)
    kept = [sp for sp, paths in per_split.items() if paths]
    assert len(kept) == 1 and len(per_split[kept[0]]) >= 2  # every copy in the first split that had one, none later


@pytest.fixture
def floors(tmp_path: Path) -> Path:
    """Floor photos with copies across splits, as real collections have (the floors given to footseg do)."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    files = {}
    for sp, k in (("train", 6), ("val", 3), ("test", 3)):
        for j in range(k):
            _, data = cv2.imencode(".jpg", rng.integers(0, 255, (24, 24, 3), np.uint8))
            files[f"{sp}/wood/{j}.jpg"] = data.tobytes()
    files["val/wood/copy.jpg"] = files["train/wood/0.jpg"]
    files["test/wood/copy.jpg"] = files["val/wood/1.jpg"]
    return _write(tmp_path / "floors", files)


def test_renders_of_one_folder_named_two_ways_merge(egl, floors: Path, tmp_path: Path) -> None:
    other_name = tmp_path / "same_floors"
    other_name.symlink_to(floors)
    for name, folder, seed in (("a", floors, 1), ("b", other_name, 2)):
        synthesize(tmp_path / name, SynthSettings(n=30, size=32, seed=seed, floors=str(folder),
                                                  photo_floor_prob=1.0), progress=False)
    # compared by contents (two folder names): a copy in two splits would be refused here
    manifest = merge_renders(tmp_path / "ab", {"a": tmp_path / "a", "b": tmp_path / "b"})
    assert manifest["counts"]["val"] == 6
    used = {sp: {p for src in ("a", "b") for p in _photos(tmp_path / src, sp)} for sp in ("val", "test")}
    assert used["val"] and used["test"]
    assert not {"val/wood/copy.jpg", "test/wood/copy.jpg"} & (used["val"] | used["test"])


def _photos(render: Path, split: str) -> list[str]:
    import json

    return json.loads((render / "manifest.json").read_text())["splits"][split]["floor_photos"]


def test_a_resume_that_would_plan_from_other_files_is_refused(egl, floors: Path, tmp_path: Path) -> None:
    from footseg.errors import FootsegError

    settings = SynthSettings(n=60, size=32, seed=3, floors=str(floors), photo_floor_prob=1.0)
    synthesize(tmp_path / "r", settings, shard=(0, 2), progress=False)  # half of it, as if stopped
    synthesize(tmp_path / "r", settings, resume=True, shard=(0, 2), progress=False)  # the same plan: fine
    # the folder as an older footseg listed it: a validation photo that copies a training one still in it
    (floors / "val" / "wood" / "0.jpg").write_bytes((floors / "train" / "wood" / "1.jpg").read_bytes())
    with pytest.raises(FootsegError, match=r"planned from other files .*val floor_photos") as info:
        synthesize(tmp_path / "r", settings, resume=True, progress=False)
    assert "\n" not in str(info.value)

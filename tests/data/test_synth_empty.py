"""Scenes with no foot in ``footseg synth`` (``empty_prob``): the same scene with its feet and legs taken out, an empty
mask; and, at 0, exactly the images footseg rendered before such scenes existed."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from footseg.data.io import read_mask
from footseg.data.synth import SynthSettings, synthesize
from footseg.data.synth.engine import ABSENT_IN_OLD_MANIFESTS, Worker, setting_differences
from footseg.errors import FootsegError


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.suffix in (".jpg", ".png")}


def test_the_setting_and_its_old_value() -> None:
    field = next(f for f in dataclasses.fields(SynthSettings) if f.name == "empty_prob")
    assert field.default == 0.0 and field.metadata[ABSENT_IN_OLD_MANIFESTS] == 0.0
    for bad in (-0.1, 1.5):
        with pytest.raises(FootsegError, match="empty_prob must be between 0 and 1") as info:
            SynthSettings(n=4, empty_prob=bad).validate()
        assert "\n" not in str(info.value)


def test_the_share_is_drawn_per_image_and_leaves_other_draws_alone() -> None:
    from footseg.data.synth.engine import Planner

    plain = Planner(SynthSettings(n=400, seed=3))
    half = Planner(SynthSettings(n=400, seed=3, empty_prob=0.5))
    empty = 0
    for i in range(400):
        (rng_a, a), (rng_b, b) = plain.plan(i), half.plan(i)
        empty += b.pop("empty", False)
        assert a == b and rng_a.random() == rng_b.random(), i  # the scene's own generator is untouched
    assert 160 <= empty <= 240


def test_emptied_scenes_have_no_foot_and_the_others_are_the_bytes_they_were(egl, tmp_path: Path) -> None:
    synthesize(tmp_path / "zero", SynthSettings(n=10, size=48, seed=9), progress=False)
    synthesize(tmp_path / "half", SynthSettings(n=10, size=48, seed=9, empty_prob=0.5), progress=False)
    zero, half = _files(tmp_path / "zero"), _files(tmp_path / "half")
    manifest = json.loads((tmp_path / "half" / "manifest.json").read_text())
    planner = Worker(SynthSettings(**manifest["settings"])).planner
    emptied = {f"{i:07d}" for i in range(10) if planner.plan(i)[1].get("empty")}
    assert emptied and len(emptied) < 10
    assert sum(d["empty_images"] for d in manifest["splits"].values()) == len(emptied)
    for name, data in half.items():
        if Path(name).stem in emptied:
            if "/masks/" in name:
                assert not read_mask(tmp_path / "half" / name).any(), name
            assert data != zero[name], name
        else:
            assert data == zero[name], name
    assert "empty_images" not in json.loads((tmp_path / "zero" / "manifest.json").read_text())["splits"]["train"]


def test_an_emptied_scene_keeps_everything_but_the_feet(egl) -> None:
    from footseg.data.synth.scene import without_feet

    worker = Worker(SynthSettings(n=8, size=64, seed=2, own_feet_prob=0.5))
    for i in range(8):
        scene = worker.scene(i)[3]
        empty = without_feet(scene)
        assert scene.feet and not empty.feet
        assert empty.mesh.n_vertices == sum(p.n_vertices for p in scene.props) < scene.mesh.n_vertices
        assert empty.surfaces == scene.surfaces and np.array_equal(empty.eye, scene.eye)
        assert not np.any(worker.renderer.render(empty)[1] >= 128), i


def test_old_manifests_mean_none_and_a_resume_with_another_share_refuses(egl, tmp_path: Path) -> None:
    out = tmp_path / "m"
    synthesize(out, SynthSettings(n=2, size=32, empty_prob=1.0), progress=False)
    stored = json.loads((out / "manifest.json").read_text())["settings"]
    assert stored["empty_prob"] == 1.0
    del stored["empty_prob"]  # a manifest from before empty scenes: rendered without them
    assert [d.split()[0] for d in setting_differences(stored, SynthSettings(n=2, size=32, empty_prob=1.0))] == [
        "empty_prob"]
    assert setting_differences(stored, SynthSettings(n=2, size=32)) == []
    with pytest.raises(FootsegError, match=r"empty_prob was 1\.0, now 0\.0"):
        synthesize(out, SynthSettings(n=2, size=32), resume=True, progress=False)


def test_the_command_line_sets_the_share(egl, tmp_path: Path) -> None:
    from footseg.cli import main

    assert main(["synth", str(tmp_path / "floors"), "--n", "10", "--size", "32", "--empty-prob", "1",
                 "--no-progress"]) == 0
    masks = sorted((tmp_path / "floors").glob("*/masks/*.png"))
    assert len(masks) == 10 and not any(read_mask(p).any() for p in masks)
    manifest = json.loads((tmp_path / "floors" / "manifest.json").read_text())
    assert {sp: d["empty_images"] for sp, d in manifest["splits"].items()} == manifest["counts"]
    assert not any(d["foot_ids"] or d["find_foot_ids"] for d in manifest["splits"].values())


def test_clips_of_empty_scenes_have_empty_masks(egl, tmp_path: Path) -> None:
    from footseg.data.synth.clips import ClipSettings, synthesize_clips

    synthesize_clips(tmp_path / "c", ClipSettings(n=1, frames=3, size=32, empty_prob=1.0), progress=False)
    masks = sorted((tmp_path / "c").glob("*/clip_*/masks/*.png"))
    assert len(masks) == 3 and not any(read_mask(p).any() for p in masks)
    manifest = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert [d["empty_clips"] for d in manifest["splits"].values()] == [1, 0, 0]


def test_a_merge_counts_the_empty_scenes_of_its_sources(egl, tmp_path: Path) -> None:
    from footseg.data.synth.merge import merge_renders

    synthesize(tmp_path / "a", SynthSettings(n=10, size=32, seed=1, empty_prob=1.0), progress=False)
    synthesize(tmp_path / "b", SynthSettings(n=10, size=32, seed=2), progress=False)
    manifest = merge_renders(tmp_path / "ab", {"a": tmp_path / "a", "b": tmp_path / "b"})
    assert {sp: d["empty_images"] for sp, d in manifest["splits"].items()} == {"train": 8, "val": 1, "test": 1}
    none = merge_renders(tmp_path / "bb", {"b": tmp_path / "b"})
    assert "empty_images" not in none["splits"]["train"]


def test_an_empty_scene_gets_no_cutout_pasted_on_it(egl, tmp_path: Path) -> None:
    import cv2

    from footseg.data.io import write_png

    for k, split in enumerate(("train", "val", "test")):  # three different files: copies would be left out
        mask = np.zeros((40, 56), np.uint8)
        cv2.ellipse(mask, (28, 20), (22, 10), 15 + 10 * k, 0, 360, 255, -1)
        image = np.zeros((40, 56, 3), np.uint8)
        image[mask > 0] = (20, 230, 40)
        write_png(tmp_path / "cut" / split / "images" / "a.png", image)
        write_png(tmp_path / "cut" / split / "masks" / "a.png", mask)
    for share, empty in ((0.0, False), (1.0, True)):
        out = tmp_path / f"composites{share}"
        synthesize(out, SynthSettings(n=10, size=32, seed=4, cutouts=str(tmp_path / "cut"), empty_prob=share),
                   progress=False)
        masks = sorted(out.glob("*/masks/*.png"))
        assert len(masks) == 10
        assert [not read_mask(p).any() for p in masks] == [empty] * 10

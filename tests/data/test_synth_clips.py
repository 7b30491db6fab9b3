"""``footseg synth --clips``: layout, exact masks that move smoothly, determinism (workers, shards), resume, manifest,
and the camera path and foot motions it films with."""

from __future__ import annotations

import itertools
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from footseg.data.check import check_dataset
from footseg.data.clips import find_clips
from footseg.data.io import read_image, read_mask
from footseg.data.synth.clips import CameraPath, ClipSettings, Curve, FootMotion, motion_blur, synthesize_clips
from footseg.data.synth.engine import setting_differences
from footseg.errors import FootsegError

SETTINGS = {"n": 3, "frames": 4, "size": 96, "seed": 2}


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def rendered(egl, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("clips") / "ds"
    synthesize_clips(out, ClipSettings(**SETTINGS), workers=1, progress=False)
    return out


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def test_layout_manifest_and_masks_that_move(rendered: Path) -> None:
    manifest = json.loads((rendered / "manifest.json").read_text())
    assert manifest["format"] == "footseg-synth-clips/1"
    assert manifest["clips"] == 3 and manifest["frames"] == 4
    assert manifest["counts"] == {"train": 3, "val": 0, "test": 0}
    assert manifest["frame_counts"] == {"train": 12, "val": 0, "test": 0}
    assert manifest["settings"]["frames"] == 4 and manifest["splits"]["train"]["clips"] == 3
    assert sorted(p.name for p in (rendered / "train").iterdir()) == ["clip_00000", "clip_00001", "clip_00002"]
    assert not (rendered / ".partial").exists()
    for clip in find_clips(rendered, "train"):
        assert [f.stem for f in clip.frames] == ["f000", "f001", "f002", "f003"]
        assert all(f.image.suffix == ".jpg" for f in clip.frames)
        masks = []
        for f in clip.frames:
            assert read_image(f.image).shape == (96, 96, 3)
            m = read_mask(f.mask)
            assert m.shape == (96, 96) and set(np.unique(m)) <= {0, 255}
            masks.append(m > 0)
        assert all(m.sum() > 20 for m in masks), clip.name  # the feet are in every frame
        for a, b in itertools.pairwise(masks):
            assert (a != b).any(), clip.name  # the phone moves: every frame's mask is another
            assert _iou(a, b) > 0.5, clip.name  # ... but smoothly
    assert check_dataset(rendered, ["train"]).ok


def test_same_bytes_for_any_workers_and_shards(rendered: Path, tmp_path: Path) -> None:
    expected = _files(rendered)
    two = tmp_path / "two"
    synthesize_clips(two, ClipSettings(**SETTINGS), workers=2, progress=False)
    assert _files(two) == expected
    sharded = tmp_path / "sharded"
    for index in (1, 0):
        synthesize_clips(sharded, ClipSettings(**SETTINGS), shard=(index, 2), progress=False)
    assert _files(sharded) == expected


def test_resume_completes_a_partial_clip(rendered: Path, tmp_path: Path) -> None:
    out = tmp_path / "r"
    shutil.copytree(rendered, out)
    expected = _files(out)
    (out / "train" / "clip_00001" / "images" / "f003.jpg").unlink()
    untouched = out / "train" / "clip_00002" / "images" / "f000.jpg"
    os.utime(untouched, ns=(1, 1))
    synthesize_clips(out, ClipSettings(**SETTINGS), resume=True, progress=False)
    assert _files(out) == expected
    assert untouched.stat().st_mtime_ns == 1  # complete clips are kept as they are
    with pytest.raises(FootsegError, match="frames was 4, now 5"):
        synthesize_clips(out, ClipSettings(**{**SETTINGS, "frames": 5}), resume=True, progress=False)


def test_clips_and_still_images_never_share_a_folder(rendered: Path, tmp_path: Path) -> None:
    from footseg.data.synth import SynthSettings, synthesize

    with pytest.raises(FootsegError, match="holds a clip dataset, not still-image"):
        synthesize(rendered, SynthSettings(n=3, size=96, seed=2), resume=True, progress=False)
    still = tmp_path / "still"
    synthesize(still, SynthSettings(n=1, size=32), progress=False)
    with pytest.raises(FootsegError, match="holds a still-image dataset, not clip"):
        synthesize_clips(still, ClipSettings(n=1, frames=2, size=32), progress=False)


def test_clip_settings_compare_like_still_settings() -> None:
    s = ClipSettings(n=2, frames=8)
    stored = json.loads(json.dumps(s.__dict__))
    assert setting_differences(stored, s) == []
    stored["fps"] = 15.0
    assert [d.split()[0] for d in setting_differences(stored, s)] == ["fps"]
    for bad in ({"n": 0}, {"frames": 0}, {"cutouts": "/tmp"}):
        with pytest.raises(FootsegError):
            ClipSettings(**{"n": 2, **bad}).validate()


def test_clips_have_no_own_feet_scenes_yet() -> None:
    # their camera paths walk up to feet seen from standing height; clip renders from before own-feet scenes resume
    s = ClipSettings(n=2, frames=8)
    assert s.own_feet_prob == 0.0
    old_manifest = {k: v for k, v in json.loads(json.dumps(s.__dict__)).items() if k != "own_feet_prob"}
    assert setting_differences(old_manifest, s) == []
    with pytest.raises(FootsegError, match="own-feet scenes are still images only"):
        ClipSettings(n=2, frames=8, own_feet_prob=0.2).validate()


def test_cli(egl, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from footseg.cli import main

    out = tmp_path / "c"
    assert main(["synth", str(out), "--clips", "2", "--frames", "2", "--size", "32", "--no-progress"]) == 0
    assert "clips of 2 frames" in capsys.readouterr().out
    assert sorted(p.name for p in (out / "train" / "clip_00001" / "masks").iterdir()) == ["f000.png", "f001.png"]
    assert main(["synth", str(out), "--frames", "2", "--n", "2"]) == 2  # --frames needs --clips
    assert main(["synth", str(tmp_path / "d"), "--clips", "2", "--cutouts", str(tmp_path)]) == 2
    with pytest.raises(SystemExit):
        main(["synth", str(out), "--clips", "2", "--n", "2"])  # one or the other


def test_camera_path_is_smooth_and_blur_follows_motion() -> None:
    from footseg.data.synth.scene import Scene, merge

    rng = np.random.default_rng(0)
    scene = Scene(width=64, height=64, eye=np.array([0.3, 0.0, 0.6]), target=np.array([0.0, 0.0, 0.04]),
                  up=np.array([-1.0, 0.0, 0.0]), fovy=1.1, light_dir=np.array([0, 0, 1.0]),
                  light_color=np.ones(3), ambient=np.ones(3), lamps=np.zeros((1, 3)), lamp_power=1.0,
                  mesh=merge([]), materials=np.zeros((8, 10), np.float32))
    path = CameraPath(rng, scene)
    eyes = np.array([path.at(f / 30).eye for f in range(60)])
    steps = np.linalg.norm(np.diff(eyes, axis=0), axis=1)
    assert steps.max() < 0.05 and steps.min() > 0  # moves every frame, never jumps
    still, _ = motion_blur(path, 0.5, 1e-6, 1.0, 256)
    longer, _ = motion_blur(path, 0.5, 1 / 30, 1.0, 256)
    assert still < 0.01 < longer  # blur grows with the motion during the exposure
    c = Curve(np.random.default_rng(1), 2, 0.2, 0.5)
    values = np.array([c(t) for t in np.linspace(0, 20, 2001)])
    assert 0.7 < values.std() < 1.3


def test_a_turning_foot_pivots_about_its_heel() -> None:
    from footseg.data.synth.foot import FootPose
    from footseg.data.synth.mesh import rotation_z
    from footseg.data.synth.scene import FOOT_LENGTH_GUESS, FootPlacement

    pose = FootPose.sample(np.random.default_rng(0))
    base = FootPlacement(np.array([0.1, 0.2]), False, 0.5, pose)
    motion = FootMotion(base, turn=Curve(np.random.default_rng(3), 1, 0.2, 0.7), turn_amp=0.1, pivot=0.0)
    assert motion.moving

    def heel(p: FootPlacement) -> np.ndarray:
        return p.center + rotation_z(p.yaw)[:2, :2] @ np.array([-0.5 * FOOT_LENGTH_GUESS, 0.0])

    moved = motion.at(0.7)
    assert abs(moved.yaw - base.yaw) > 1e-3
    assert np.allclose(heel(moved), heel(base))
    assert not FootMotion(base).moving and FootMotion(base).at(0.3) is base


def test_feet_step_in_and_move() -> None:
    from footseg.data.synth.clips import foot_motions
    from footseg.data.synth.foot import FootPose
    from footseg.data.synth.scene import FootPlacement

    pose = FootPose.sample(np.random.default_rng(0))
    pose.lean_forward = 0.1  # standing
    lone = [FootPlacement(np.zeros(2), False, 0.3, pose)]
    pair = [*lone, FootPlacement(np.array([0.0, -0.2]), True, 0.3, pose)]
    kinds = {"heel": 0, "turn": 0, "step in": 0, "pair step": 0}
    for seed in range(60):
        for feet in (lone, pair):
            motions = foot_motions(np.random.default_rng(seed), feet, 1.0)
            assert [m.base for m in motions[: len(feet)]] == feet
            kinds["heel"] += sum(m.heel is not None for m in motions)
            kinds["turn"] += sum(m.turn is not None for m in motions)
            stepping = [m for m in motions if m.step_from is not None]
            assert len(stepping) <= 1
            if not stepping:
                continue
            m = stepping[0]
            kinds["step in" if len(motions) > len(feet) else "pair step"] += 1
            t0, dur, lift = m.step
            start, end = (m.step_from, m.base) if m.arrive else (m.base, m.step_from)
            before, after, middle = m.at(t0 - 0.01), m.at(t0 + dur + 0.01), m.at(t0 + dur / 2)
            if m.turn is None:
                assert np.allclose(before.center, start.center) and np.allclose(after.center, end.center)
            assert before.height == 0 and after.height == 0 and middle.height == pytest.approx(lift)
            assert middle.pose.heel_raise > m.base.pose.heel_raise  # the heel leaves the floor first
    assert all(n > 0 for n in kinds.values()), kinds
    assert motions[0].at(0.2).right is False

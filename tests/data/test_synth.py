"""``footseg synth``: dataset layout, manifest split discipline, determinism (workers, shards), resume, masks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from footseg.data.io import read_image, read_mask, write_jpeg
from footseg.data.synth import SynthSettings, synthesize
from footseg.data.synth.engine import parse_shard
from footseg.data.synth.floors import SPLITS
from footseg.errors import FootsegError


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def small(egl, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "ds"
    synthesize(out, SynthSettings(n=12, size=64, seed=3), workers=1, progress=False)
    return out


def test_layout_masks_and_manifest(small: Path) -> None:
    manifest = json.loads((small / "manifest.json").read_text())
    assert manifest["counts"] == {"train": 10, "val": 1, "test": 1}
    n_fg = 0
    for split in SPLITS:
        images = sorted((small / split / "images").glob("*.jpg"))
        masks = sorted((small / split / "masks").glob("*.png"))
        assert [p.stem for p in images] == [p.stem for p in masks]
        assert len(images) == manifest["counts"][split]
        for img, msk in zip(images, masks, strict=True):
            assert read_image(img).shape == (64, 64, 3)
            m = read_mask(msk)
            assert m.shape == (64, 64)
            assert set(np.unique(m)) <= {0, 255}
            n_fg += bool((m > 0).sum() > 0)
    assert n_fg >= 9  # the feet are in most frames
    assert not (small / ".partial").exists()
    from footseg.data.check import check_dataset

    assert check_dataset(small).ok


def test_manifest_partitions_identities_and_floors(small: Path) -> None:
    splits = json.loads((small / "manifest.json").read_text())["splits"]
    for key in ("foot_ids", "procedural_floors"):
        seen: dict[int, str] = {}
        for split in SPLITS:
            for x in splits[split][key]:
                assert seen.setdefault(x, split) == split, f"{key} {x} in two splits"
    assert sum(len(splits[s]["foot_ids"]) for s in SPLITS) > 3


def test_same_bytes_for_workers_and_shards(small: Path, tmp_path: Path) -> None:
    s = SynthSettings(n=12, size=64, seed=3)
    synthesize(tmp_path / "w2", s, workers=2, progress=False)
    synthesize(tmp_path / "sh", s, shard=(0, 2), progress=False)
    half = _files(tmp_path / "sh")
    assert 1 <= sum(k.endswith(".png") for k in half) < 12
    synthesize(tmp_path / "sh", s, shard=(1, 2), progress=False)
    ref = _files(small)
    assert _files(tmp_path / "w2") == ref
    assert _files(tmp_path / "sh") == ref


def test_other_seed_other_images(small: Path, tmp_path: Path) -> None:
    synthesize(tmp_path / "s4", SynthSettings(n=2, size=64, seed=4), progress=False)
    ours = (tmp_path / "s4" / "train" / "images" / "0000000.jpg").read_bytes()
    assert ours != (small / "train" / "images" / "0000000.jpg").read_bytes()


def test_resume_keeps_finished_and_completes_missing(egl, tmp_path: Path) -> None:
    s = SynthSettings(n=10, size=48, seed=1)
    out = tmp_path / "r"
    synthesize(out, s, progress=False)
    images = sorted((out / "train" / "images").glob("*.jpg"))
    gone_img, gone_mask = images[0], out / "train" / "masks" / f"{images[0].stem}.png"
    half_done = out / "train" / "masks" / f"{images[1].stem}.png"  # image written, mask missing: redo
    before = gone_img.read_bytes()
    gone_img.unlink()
    gone_mask.unlink()
    half_done.unlink()
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.*") if p.suffix in (".jpg", ".png")}
    (out / ".partial").mkdir()
    (out / ".partial" / "15575-mask-0000091.png").write_bytes(b"")  # a worker killed before its rename
    synthesize(out, s, resume=True, progress=False)
    assert gone_img.read_bytes() == before and gone_mask.is_file() and half_done.is_file()
    assert not (out / ".partial").exists()  # the killed run's leftover went with the finished render
    for p, t in stamps.items():
        if p != images[1]:
            assert p.stat().st_mtime_ns == t, f"{p} was redone"


def test_resume_refuses_other_settings(egl, tmp_path: Path) -> None:
    synthesize(tmp_path / "x", SynthSettings(n=1, size=32), progress=False)
    with pytest.raises(FootsegError, match="other settings"):
        synthesize(tmp_path / "x", SynthSettings(n=1, size=48), resume=True, progress=False)


def test_trousers_are_background(egl) -> None:
    from footseg.data.synth.floors import procedural_floor
    from footseg.data.synth.foot import MAT_TROUSER, FootShape, ParametricFoot
    from footseg.data.synth.render import Renderer
    from footseg.data.synth.scene import sample_scene

    foot = ParametricFoot(FootShape.sample(np.random.default_rng(0)), np.random.default_rng(1))

    def trousered(pose, rng):
        pose.trouser_hem = 0.08
        return foot(pose, rng)

    renderer = Renderer()
    checked = 0
    for i in range(6):
        scene = sample_scene(np.random.default_rng(i), 96, trousered, procedural_floor(np.random.default_rng(i)),
                             distractors=False)
        _, coverage = renderer.render(scene)
        trouser = scene.mesh.material == MAT_TROUSER
        assert trouser.any() and np.all(scene.mesh.label[trouser] == 0)
        scene.mesh.label = np.where(trouser, 1.0, scene.mesh.label).astype(np.float32)
        _, with_cloth = renderer.render(scene)
        cloth = (with_cloth >= 128) & (coverage < 128)  # pixels where trousers are the visible surface
        checked += int(cloth.sum())
        assert not np.any(coverage[cloth] >= 128)
    assert checked > 100
    renderer.release()


def test_floor_photos_respect_splits(egl, tmp_path: Path) -> None:
    floors = tmp_path / "floors"
    rng = np.random.default_rng(0)
    for split in SPLITS:
        for k in range(2):
            write_jpeg(floors / split / f"{split}{k}.jpg", rng.integers(0, 255, (24, 32, 3), dtype=np.uint8))
    out = tmp_path / "f"
    synthesize(out, SynthSettings(n=20, size=32, floors=str(floors), photo_floor_prob=1.0), progress=False)
    splits = json.loads((out / "manifest.json").read_text())["splits"]
    for split in SPLITS:
        used = splits[split]["floor_photos"]
        assert used and all(Path(p).parts[0] == split for p in used)
        assert splits[split]["procedural_floors"] == []


def test_mesh_folder_feet(egl, tmp_path: Path) -> None:
    from footseg.data.synth.mesh import load_mesh_file

    folder = tmp_path / "meshes"
    folder.mkdir()
    # a crude foot-sized wedge, in millimetres, as OBJ (with vertex colours) and as ASCII PLY
    v = np.array([[0, -45, 0], [250, -45, 0], [250, 45, 0], [0, 45, 0], [0, -35, 120], [60, -35, 120],
                  [60, 35, 120], [0, 35, 120]], float)
    f = np.array([[0, 1, 2], [0, 2, 3], [4, 6, 5], [4, 7, 6], [0, 4, 5], [0, 5, 1], [1, 5, 6], [1, 6, 2],
                  [2, 6, 7], [2, 7, 3], [3, 7, 4], [3, 4, 0]])
    lines = [f"v {a} {b} {c} 0.8 0.6 0.5" for a, b, c in v] + [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in f]
    (folder / "a.obj").write_text("\n".join(lines) + "\n")
    ply = ["ply", "format ascii 1.0", f"element vertex {len(v)}", "property float x", "property float y",
           "property float z", f"element face {len(f)}", "property list uchar int vertex_indices", "end_header"]
    ply += [f"{a} {b} {c}" for a, b, c in v] + [f"3 {a} {b} {c}" for a, b, c in f]
    (folder / "b.ply").write_text("\n".join(ply) + "\n")
    for name in ("a.obj", "b.ply"):
        verts, _cols, tris = load_mesh_file(folder / name)
        assert verts.shape == (8, 3) and tris.shape == (12, 3)
    assert load_mesh_file(folder / "a.obj")[1] is not None
    out = tmp_path / "m"
    synthesize(out, SynthSettings(n=10, size=32, meshes=str(folder), mesh_prob=1.0), progress=False)
    splits = json.loads((out / "manifest.json").read_text())["splits"]
    used = [m for s in SPLITS for m in splits[s]["meshes"]]
    assert used and len(used) == len(set(used))


def test_mesh_folders_with_splits_keep_them(tmp_path: Path) -> None:
    """Meshes follow the split discipline of floor photos: train/, val/, test/ subfolders are the splits."""
    from footseg.data.synth.engine import _mesh_files

    for name in ("train/a.obj", "train/deep/b.ply", "val/c.obj", "test/d.obj", "test/notes.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name)  # distinct files: byte copies across splits are left out
    files = {s: [Path(p).relative_to(tmp_path).as_posix() for p in v] for s, v in _mesh_files(str(tmp_path)).items()}
    assert files == {"train": ["train/a.obj", "train/deep/b.ply"], "val": ["val/c.obj"], "test": ["test/d.obj"]}
    with pytest.raises(FootsegError, match=r"no \.obj or \.ply"):
        _mesh_files(str(tmp_path / "nowhere"))


def test_bad_arguments() -> None:
    assert parse_shard("1/4") == (1, 4)
    for bad in ("4/4", "x", "1/0"):
        with pytest.raises(FootsegError):
            parse_shard(bad)
    with pytest.raises(FootsegError):
        synthesize(Path("/nonexistent/x"), SynthSettings(n=0))
    with pytest.raises(FootsegError, match="folder not found"):
        synthesize(Path("/tmp/unused"), SynthSettings(n=2, floors="/nonexistent/floors"))


def test_a_folder_that_is_not_a_render_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    write_jpeg(photos / "images" / "a.jpg", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(FootsegError, match=r"not a footseg render \(images; no manifest.json\)"):
        synthesize(photos, SynthSettings(n=2, size=32))
    assert sorted(p.name for p in photos.iterdir()) == ["images"]
    # a hand-made dataset with splits, whose numbered files a render would write over
    hand = tmp_path / "hand"
    write_jpeg(hand / "train" / "images" / "0000000.jpg", np.full((8, 8, 3), 7, np.uint8))
    before = (hand / "train" / "images" / "0000000.jpg").read_bytes()
    with pytest.raises(FootsegError, match=r"not a footseg render \(train/images/0000000.jpg; no manifest.json\)"):
        synthesize(hand, SynthSettings(n=2, size=32))
    assert (hand / "train" / "images" / "0000000.jpg").read_bytes() == before and not (hand / "manifest.json").exists()
    (tmp_path / "afile").write_text("")
    with pytest.raises(FootsegError, match="exists and is not a folder"):
        synthesize(tmp_path / "afile", SynthSettings(n=2, size=32))


def test_cli_synth(egl, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from footseg.cli import main

    assert main(["synth", str(tmp_path / "c"), "--n", "3", "--size", "32", "--no-progress"]) == 0
    said = capsys.readouterr()
    assert said.out == f"synthetic dataset in {tmp_path / 'c'} (train 3, val 0, test 0)\n"
    assert "3 images leave val and test empty (each split gets every tenth image or more)" in said.err
    assert main(["synth", str(tmp_path / "s"), "--n", "4", "--size", "32", "--no-progress", "--shard", "1/2"]) == 0
    said = capsys.readouterr()  # what this shard wrote is its share; the counts are the dataset's
    assert said.out == (f"shard 1/2 of the synthetic dataset in {tmp_path / 's'} (train 4, val 0, test 0 in all its "
                        "shards)\n")
    assert "1 image leaves" not in said.err and "4 images leave val and test empty" in said.err
    assert main(["synth", str(tmp_path / "c"), "--n", "3", "--shard", "3/2"]) == 2
    capsys.readouterr()
    assert main(["synth", str(tmp_path / "d"), "--n", "-1"]) == 2
    assert capsys.readouterr().err == "footseg: error: --n must be at least 1 (got -1)\n"  # no note on -1 images first


def _leg_top(pose) -> np.ndarray:
    """The highest skin point of a posed left foot (heel at the origin, toes along +x)."""
    from footseg.data.synth.foot import FootShape, ParametricFoot

    foot = ParametricFoot(FootShape.sample(np.random.default_rng(0)), np.random.default_rng(1))
    pts = np.concatenate([m.positions[m.label > 0] for m in foot(pose, np.random.default_rng(2))])
    return pts[np.argmax(pts[:, 2])]


def test_seated_feet_have_shins_sloping_back_across_the_floor() -> None:
    from footseg.data.synth.foot import FootPose

    for seed in range(5):
        standing = FootPose.sample(np.random.default_rng(seed))
        seated = FootPose.sample(np.random.default_rng(seed), seated=True)
        assert seated.heel_raise == 0.0
        assert _leg_top(standing)[0] > -0.25  # the leg stands up from the ankle
        top = _leg_top(seated)
        assert top[0] < -0.3 and top[2] < 0.85  # the leg runs back from the heel, over the floor


def test_a_seated_scene_seats_every_foot() -> None:
    from footseg.data.synth import scene as scene_module
    from footseg.data.synth.floors import procedural_floor
    from footseg.data.synth.foot import FootShape, ParametricFoot

    foot = ParametricFoot(FootShape.sample(np.random.default_rng(0)), np.random.default_rng(1))
    leans: list[float] = []

    def recorded(pose, rng):
        leans.append(pose.lean_forward)
        return foot(pose, rng)

    for share, check in ((1.0, lambda a: a <= -0.45), (0.0, lambda a: a > -0.26)):
        leans.clear()
        for i in range(4):
            floor = procedural_floor(np.random.default_rng(i))
            scene_module.sample_scene(np.random.default_rng(i), 64, recorded, floor, seated_prob=share)
        assert leans and all(check(a) for a in leans)


def test_a_stopped_synth_says_how_to_continue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from footseg.cli import main
    from footseg.data import synth as synth_package

    def stopped(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # Ctrl-C part way

    monkeypatch.setattr(synth_package, "synthesize", stopped)
    assert main(["synth", str(tmp_path / "r"), "--n", "20", "--size", "32"]) == 130
    assert ("footseg synth: stopped; the same command with --resume renders what is missing, the images made are "
            "kept\n") in capsys.readouterr().err

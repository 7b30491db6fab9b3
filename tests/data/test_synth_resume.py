"""``footseg synth --resume`` on a folder rendered by an older footseg, whose manifest lacks settings added since: a
missing setting means the render was made without that feature, so resuming with today's defaults must refuse
instead of mixing the feature into the old dataset."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest

from footseg.data.synth import SynthSettings, synthesize
from footseg.errors import FootsegError


def _images(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.suffix in (".jpg", ".png")}


def _drop_settings(out: Path, *keys: str) -> None:
    """Make ``out``'s manifest look written by a footseg from before ``keys`` existed."""
    manifest = json.loads((out / "manifest.json").read_text())
    for key in keys:
        del manifest["settings"][key]
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


def test_resume_of_a_render_from_before_seated_scenes(egl, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "old"
    old = SynthSettings(n=4, size=32, seed=5)
    old.remove(["seated"])  # renders byte-identical to those of the footseg before seated scenes
    synthesize(out, old, progress=False)
    _drop_settings(out, "seated_prob")
    rendered = _images(out)
    missing = sorted((out / "train" / "images").glob("*.jpg"))[-1]
    missing_mask = out / "train" / "masks" / f"{missing.stem}.png"
    missing.unlink()
    missing_mask.unlink()

    with pytest.raises(FootsegError) as info:
        synthesize(out, SynthSettings(n=4, size=32, seed=5), resume=True, progress=False)
    message = str(info.value)
    assert info.value.path == out / "manifest.json" and "seated_prob" in message and "\n" not in message
    assert "cutout" not in message  # only the setting that differs is named
    assert not missing.exists(), "a refused resume must not render anything"

    from footseg.cli import main

    args = ["synth", str(out), "--n", "4", "--size", "32", "--seed", "5", "--resume", "--no-progress"]
    assert main(args) != 0
    assert "seated_prob" in capsys.readouterr().err
    assert not missing.exists()

    # the same run without seated scenes is the old one: it completes the folder with what the old code drew
    assert main([*args, "--without", "seated"]) == 0
    assert _images(out) == rendered


def test_missing_settings_mean_the_feature_was_off() -> None:
    from footseg.data.synth.engine import setting_differences

    new = SynthSettings(n=4)
    stored = json.loads(json.dumps(new.__dict__))
    assert setting_differences(stored, new) == []
    del stored["seated_prob"], stored["cutouts"], stored["cutout_prob"]
    assert [d.split()[0] for d in setting_differences(stored, new)] == ["seated_prob"]
    new.remove(["seated"])
    assert setting_differences(stored, new) == []
    stored["size"] = 128
    assert [d.split()[0] for d in setting_differences(stored, new)] == ["size"]
    del stored["size"]  # in every manifest ever written: missing means a broken manifest, not an old one
    assert [d.split()[0] for d in setting_differences(stored, new)] == ["size"]


# the settings of the first manifests; anything added since must say what a manifest without it means
_FIRST_SETTINGS = {"n", "seed", "size", "foot_ids", "floor_ids", "floors", "photo_floor_prob", "find", "find_prob",
                   "meshes", "mesh_prob", "distractors", "shadows", "paper", "camera_effects", "image_format", "extra"}


def test_settings_added_later_declare_their_old_value() -> None:
    from footseg.data.synth.engine import ABSENT_IN_OLD_MANIFESTS

    later = {f.name for f in fields(SynthSettings)} - _FIRST_SETTINGS
    undeclared = sorted(name for name in later if ABSENT_IN_OLD_MANIFESTS not in
                        next(f.metadata for f in fields(SynthSettings) if f.name == name))
    assert not undeclared, f"say in field metadata what an old manifest without {undeclared} was rendered with"


def test_one_folder_spelt_two_ways_is_one_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--floors ../shared/data/floors`` resumes a render made with ``--floors /work/shared/data/floors``."""
    from dataclasses import asdict

    from footseg.data.synth.engine import same_folder, setting_differences

    floors, other = tmp_path / "shared" / "floors", tmp_path / "other"
    floors.mkdir(parents=True)
    other.mkdir()
    (tmp_path / "main").mkdir()
    monkeypatch.chdir(tmp_path / "main")
    stored = json.loads(json.dumps(asdict(SynthSettings(n=4, floors=str(floors)))))
    assert setting_differences(stored, SynthSettings(n=4, floors="../shared/floors")) == []
    assert [d.split()[0] for d in setting_differences(stored, SynthSettings(n=4, floors=str(other)))] == ["floors"]
    assert [d.split()[0] for d in setting_differences(stored, SynthSettings(n=4))] == ["floors"]
    assert not same_folder(str(tmp_path / "gone"), str(tmp_path / "gone/../gone2"))
    assert same_folder(None, None) and not same_folder(str(floors), None)


def test_a_resume_by_another_spelling_completes_the_render_and_keeps_the_manifests(
    egl, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np

    from footseg.data.io import write_jpeg

    floors = tmp_path / "shared" / "floors"
    rng = np.random.default_rng(0)
    for split in ("train", "val", "test"):
        write_jpeg(floors / split / f"{split}.jpg", rng.integers(0, 255, (24, 32, 3), dtype=np.uint8))
    (tmp_path / "main").mkdir()
    monkeypatch.chdir(tmp_path / "main")
    out = tmp_path / "render"
    synthesize(out, SynthSettings(n=4, size=32, seed=3, floors=str(floors)), progress=False)
    rendered = _images(out)
    missing = sorted((out / "train" / "images").glob("*.jpg"))[-1]
    missing.unlink()

    synthesize(out, SynthSettings(n=4, size=32, seed=3, floors="../shared/floors"), resume=True, progress=False)
    assert _images(out) == rendered  # the same folder: the same images, the missing one made again
    assert json.loads((out / "manifest.json").read_text())["settings"]["floors"] == str(floors)

"""First-person scenes of ``footseg synth`` (``own_feet_prob``): one's own feet seen down the shins, no paper, walls
with skirting boards, outdoor ground, hard sunlight; and, at 0, exactly the scenes footseg drew before they existed."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from footseg.data.synth import SynthSettings, synthesize
from footseg.data.synth.engine import ABSENT_IN_OLD_MANIFESTS, INGREDIENTS, Worker, setting_differences
from footseg.errors import FootsegError


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.suffix in (".jpg", ".png")}


def test_the_setting_its_ingredient_and_its_old_value() -> None:
    field = next(f for f in dataclasses.fields(SynthSettings) if f.name == "own_feet_prob")
    assert field.default == 0.2 and field.metadata[ABSENT_IN_OLD_MANIFESTS] == 0.0
    assert INGREDIENTS["own-feet"] == ("own_feet_prob", 0.0)
    s = SynthSettings(n=4)
    s.remove(["own-feet"])
    assert s.own_feet_prob == 0.0
    for bad in (-0.1, 1.5):
        with pytest.raises(FootsegError, match="own_feet_prob must be between 0 and 1") as info:
            SynthSettings(n=4, own_feet_prob=bad).validate()
        assert "\n" not in str(info.value)


# (sum of the eye, fovy, vertices, surfaces, the generator's next draw) of scenes drawn with seeds [5, i] by the
# footseg before first-person scenes existed (e775b2f): at own_feet_prob 0 the same draws, in the same order
_BEFORE = [(1.431917, 0.994366, 9752, 3, 0.37431), (0.432991, 0.96856, 5064, 2, 0.312149),
           (0.143818, 1.108764, 4112, 4, 0.507524), (0.030737, 0.935216, 9200, 3, 0.481434)]


def _fingerprints(**kw: float) -> list[tuple]:
    from footseg.data.synth.floors import procedural_floor
    from footseg.data.synth.foot import FootShape, ParametricFoot
    from footseg.data.synth.scene import sample_scene

    foot = ParametricFoot(FootShape.sample(np.random.default_rng(0)), np.random.default_rng(1))
    out = []
    for i in range(4):
        rng = np.random.default_rng([5, i])
        sc = sample_scene(rng, 64, foot, procedural_floor(np.random.default_rng(i)), **kw)
        out.append((round(float(sc.eye.sum()), 6), round(float(sc.fovy), 6), sc.mesh.n_vertices, len(sc.surfaces),
                    round(float(rng.random()), 6)))
    return out


def test_at_zero_scenes_are_drawn_as_before() -> None:
    assert _fingerprints(own_feet_prob=0.0) == _BEFORE
    assert _fingerprints() == _BEFORE
    assert _fingerprints(own_feet_prob=1e-9) != _BEFORE  # any share draws once more: the check can fail


def test_at_zero_images_are_those_without_the_ingredient(egl, tmp_path: Path) -> None:
    off = SynthSettings(n=4, size=48, seed=9)
    off.remove(["own-feet"])
    synthesize(tmp_path / "off", off, progress=False)
    synthesize(tmp_path / "zero", SynthSettings(n=4, size=48, seed=9, own_feet_prob=0.0), progress=False)
    synthesize(tmp_path / "all", SynthSettings(n=4, size=48, seed=9, own_feet_prob=1.0), progress=False)
    assert _files(tmp_path / "zero") == _files(tmp_path / "off")
    assert _files(tmp_path / "all") != _files(tmp_path / "off")


@pytest.fixture(scope="module")
def own(egl) -> Worker:
    return Worker(SynthSettings(n=12, size=64, seed=0, own_feet_prob=1.0))


def test_first_person_scenes_have_no_paper_and_legs_from_the_bottom_edge(own: Worker) -> None:
    touching = 0
    for i in range(12):
        scene = own.scene(i)[3]
        assert scene.own_feet
        assert not any(q.what == "paper" for q in scene.surfaces), i
        _, mask, _ = own.make(i)
        assert mask.any(), i
        touching += bool(mask[-2:].any())  # the legs run out of the frame at its bottom edge
    assert touching >= 9  # trousers (not foot) may be what crosses the edge


def test_the_ingredients_of_first_person_scenes_all_occur(own: Worker) -> None:
    scenes = [own.scene(i)[3] for i in range(12)]
    assert any(s.outdoor for s in scenes) and any(not s.outdoor for s in scenes)
    assert any(s.sun for s in scenes) and any(not s.sun for s in scenes)
    assert any(any(q.what == "wall" for q in s.surfaces) for s in scenes)
    for s in scenes:
        if s.sun:  # hard light: crisp cast shadows on a fine map
            assert s.shadow_res and s.shadow_blur <= 0.005 and s.shadow_strength[1] >= 0.75


def test_a_wall_is_in_the_upper_part_of_the_frame_and_never_foot(own: Worker) -> None:
    walled = 0
    for i in range(12):
        scene = own.scene(i)[3]
        walls = [k for k, q in enumerate(scene.surfaces) if q.what == "wall"]
        if not walls:
            continue
        image, coverage = own.renderer.render(scene)
        k = walls[0]
        quad = scene.surfaces[k]
        recoloured = dataclasses.replace(quad, surface=dataclasses.replace(quad.surface,
                                                                           colors=1.0 - quad.surface.colors))
        other, _ = own.renderer.render(dataclasses.replace(scene, surfaces=[*scene.surfaces[:k], recoloured,
                                                                            *scene.surfaces[k + 1:]]))
        wall = np.abs(image.astype(int) - other.astype(int)).sum(-1) > 12  # where the wall is what is seen
        rows = np.nonzero(wall)[0]
        assert wall.mean() > 0.03, i
        assert rows.mean() < 0.5 * wall.shape[0], i
        assert not np.any(coverage[wall] >= 128), i
        walled += 1
    assert walled >= 2


def test_manifests_record_the_share_and_old_ones_mean_none(egl, tmp_path: Path) -> None:
    out = tmp_path / "m"
    synthesize(out, SynthSettings(n=2, size=32, own_feet_prob=1.0), progress=False)
    stored = json.loads((out / "manifest.json").read_text())["settings"]
    assert stored["own_feet_prob"] == 1.0
    del stored["own_feet_prob"]  # a manifest from before first-person scenes: rendered without them
    new = SynthSettings(n=2, size=32, own_feet_prob=1.0)
    assert [d.split()[0] for d in setting_differences(stored, new)] == ["own_feet_prob"]
    new.remove(["own-feet"])
    assert setting_differences(stored, new) == []
    with pytest.raises(FootsegError, match=r"own_feet_prob was 1\.0, now 0\.2"):
        synthesize(out, SynthSettings(n=2, size=32), resume=True, progress=False)


def test_the_command_line_sets_the_shares(egl, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from footseg.cli import main

    assert main(["synth", str(tmp_path / "own"), "--n", "4", "--size", "64", "--own-feet-prob", "1",
                 "--seated-prob", "0", "--no-progress"]) == 0
    settings = json.loads((tmp_path / "own" / "manifest.json").read_text())["settings"]
    assert (settings["own_feet_prob"], settings["seated_prob"]) == (1.0, 0.0)
    assert main(["synth", str(tmp_path / "bad"), "--n", "4", "--own-feet-prob", "2"]) == 2
    assert "own_feet_prob must be between 0 and 1" in capsys.readouterr().err
    assert main(["synth", str(tmp_path / "clips"), "--clips", "1", "--frames", "2", "--own-feet-prob", "0.5"]) == 2
    assert "own-feet scenes are still images only" in capsys.readouterr().err

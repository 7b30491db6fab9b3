"""Ablation switches of ``footseg synth --without``: each ingredient name turns one SynthSettings knob off."""

from pathlib import Path

import pytest

from footseg.data.synth.engine import INGREDIENTS, SynthSettings
from footseg.errors import FootsegError


def test_each_ingredient_switches_off_its_own_setting_only() -> None:
    base = SynthSettings(n=10, floors=None, find=None)
    for name, (field, off) in INGREDIENTS.items():
        s = SynthSettings(n=10)
        s.remove([name])
        changed = {k for k, v in vars(s).items() if v != vars(base)[k]}
        assert changed == {field} and getattr(s, field) == off, name


def test_an_unknown_ingredient_is_a_user_error_listing_the_names() -> None:
    with pytest.raises(FootsegError, match=r"unknown ingredient 'feet'; choose from distractors, shadows"):
        SynthSettings(n=10).remove(["feet"])


def test_floor_photos_skip_hidden_files_and_folders_named_like_photos(tmp_path: Path) -> None:
    from footseg.data.synth.floors import list_photos

    for name in ("train/wood/10.jpg", "train/wood/9.jpg", "train/wood/._9.jpg", "train/.cache/1.png", "val/a.PNG",
                 "test/b.jpeg", "test/notes.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(name.encode())  # distinct: copies across splits are left out
    (tmp_path / "test" / "c.jpg").mkdir()
    photos = list_photos(tmp_path)
    # by text, as renders have always indexed them (10 before 9): the order is part of what a render's seed means
    assert [p.removeprefix(str(tmp_path)) for p in photos["train"]] == ["/train/wood/10.jpg", "/train/wood/9.jpg"]
    assert [len(photos["val"]), len(photos["test"])] == [1, 1]
    with pytest.raises(FootsegError, match="floor photo folder not found"):
        list_photos(tmp_path / "absent")


def test_without_clothes_every_foot_and_leg_is_bare_and_the_rest_of_the_pose_is_the_same() -> None:
    import numpy as np

    from footseg.data.synth.foot import FootPose

    clothed = [FootPose.sample(np.random.default_rng(seed)) for seed in range(200)]
    bare = [FootPose.sample(np.random.default_rng(seed), clothes=False) for seed in range(200)]
    assert any(p.sock_height > 0 for p in clothed) and any(np.isfinite(p.trouser_hem) for p in clothed)
    assert all(p.sock_height == 0 and p.trouser_hem == np.inf for p in bare)
    for c, b in zip(clothed, bare, strict=True):
        assert (c.heel_raise, c.lean_forward, c.lean_side, c.trouser_gap) == (b.heel_raise, b.lean_forward,
                                                                              b.lean_side, b.trouser_gap)


def test_fewer_socks_take_socks_off_and_leave_every_other_draw_as_the_default() -> None:
    import numpy as np

    from footseg.data.synth.foot import SOCK_PROB, FootPose

    default = [FootPose.sample(np.random.default_rng(seed)) for seed in range(400)]
    stated = [FootPose.sample(np.random.default_rng(seed), sock_prob=SOCK_PROB) for seed in range(400)]
    bare = [FootPose.sample(np.random.default_rng(seed), sock_prob=0.0) for seed in range(400)]
    assert stated == default
    socked = sum(p.sock_height > 0 for p in default)
    assert 0.08 * 400 < socked < 0.22 * 400
    assert all(p.sock_height == 0 for p in bare)
    for d, b in zip(default, bare, strict=True):
        # trousers stay: a bare foot under a trouser hem is what real photos show
        assert (d.heel_raise, d.lean_forward, d.trouser_hem, d.trouser_gap, d.trouser_flare) == (
            b.heel_raise, b.lean_forward, b.trouser_hem, b.trouser_gap, b.trouser_flare)
    more = [FootPose.sample(np.random.default_rng(seed), sock_prob=0.6) for seed in range(400)]
    assert 0.5 * 400 < sum(p.sock_height > 0 for p in more) < 0.7 * 400


def test_sock_share_out_of_range_is_refused() -> None:
    with pytest.raises(FootsegError, match="sock_prob must be between 0 and 1"):
        SynthSettings(n=1, sock_prob=1.5).validate()


def test_the_sock_share_reaches_every_kind_of_scene() -> None:
    import numpy as np

    from footseg.data.synth import scene as scene_module
    from footseg.data.synth.floors import procedural_floor
    from footseg.data.synth.foot import FootShape, ParametricFoot

    foot = ParametricFoot(FootShape.sample(np.random.default_rng(0)), np.random.default_rng(1))
    socks: list[float] = []

    def recorded(pose, rng):
        socks.append(pose.sock_height)
        return foot(pose, rng)

    for kind in ({"seated_prob": 0.0}, {"seated_prob": 1.0}, {"own_feet_prob": 1.0}):
        for share, dressed in ((0.0, lambda h: h == 0), (1.0, lambda h: h > 0)):
            socks.clear()
            for i in range(3):
                floor = procedural_floor(np.random.default_rng(i))
                scene_module.sample_scene(np.random.default_rng(i), 64, recorded, floor, sock_prob=share, **kind)
            assert socks and all(dressed(h) for h in socks), (kind, share, socks)


def test_old_manifests_had_the_default_sock_share_and_socks_need_clothes() -> None:
    from footseg.data.synth.engine import setting_differences
    from footseg.data.synth.foot import SOCK_PROB

    assert SynthSettings(n=1).sock_prob == SOCK_PROB  # the engine keeps its own copy of the number
    stored = {k: v for k, v in vars(SynthSettings(n=2)).items() if k != "sock_prob"}  # before the setting existed
    assert setting_differences(stored, SynthSettings(n=2)) == []
    assert [d.split()[0] for d in setting_differences(stored, SynthSettings(n=2, sock_prob=0.0))] == ["sock_prob"]
    bare = SynthSettings(n=1, sock_prob=0.5)
    bare.remove(["clothes"])
    with pytest.raises(FootsegError, match="clothes are left out"):
        bare.validate()

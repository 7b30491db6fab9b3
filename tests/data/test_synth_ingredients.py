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
        (tmp_path / name).write_bytes(b"")
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

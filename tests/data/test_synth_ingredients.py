"""Ablation switches of ``footseg synth --without``: each ingredient name turns one SynthSettings knob off."""

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

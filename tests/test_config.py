"""``TrainConfig.validate``: every setting out of range is a one-line user error naming the option."""

from __future__ import annotations

import pytest

from footseg.config import TrainConfig
from footseg.errors import FootsegError


def test_the_defaults_are_valid() -> None:
    TrainConfig().validate()
    TrainConfig(steps_per_epoch=None).validate()


@pytest.mark.parametrize(("setting", "option"), [
    ({"lr": -1e-3}, "--lr"),
    ({"lr": float("nan")}, "--lr"),
    ({"weight_decay": -1e-4}, "--weight-decay"),
    ({"width": 0.0}, "--width"),
    ({"workers": -1}, "--workers"),
    ({"steps_per_epoch": 0}, "--steps-per-epoch"),
    ({"batch_size": 0}, "--batch-size"),
    ({"size": 100}, "--size"),
    ({"ema": 1.0}, "--ema"),
    ({"white_balance": -0.1}, "--white-balance"),
    ({"white_balance": 0.2, "augment": False}, "--white-balance"),
])
def test_a_setting_out_of_range_names_its_option(setting: dict, option: str) -> None:
    with pytest.raises(FootsegError, match=option):
        TrainConfig(**setting).validate()

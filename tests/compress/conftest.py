"""Compression's fine-tuning runs through the trainer (``footseg.train.trainer.finetune``) on the tiny dataset."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest
from torch import nn

from footseg.config import TrainConfig
from footseg.train.trainer import finetune


@pytest.fixture
def tune(tiny_dataset: Path, tmp_path: Path) -> Callable[..., list[dict]]:
    """``tune(model, steps, freeze_bn=False)``: that many one-batch epochs (batch 4, lr 1e-2) at 64 px, in place."""
    runs = itertools.count()

    def run(model: nn.Module, steps: int = 2, freeze_bn: bool = False) -> list[dict]:
        cfg = TrainConfig(data=str(tiny_dataset), out=str(tmp_path / f"tune{next(runs)}"), size=64, epochs=steps,
                          steps_per_epoch=1, batch_size=4, lr=1e-2, workers=0, progress=False, freeze_bn=freeze_bn,
                          device="cpu")
        return finetune(model, cfg)

    return run

"""Shared fixtures: a tiny procedural dataset that every test package can read (never write into it)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from footseg.data.procedural import make_procedural_dataset

torch.set_num_threads(1)  # the suite runs on 2 cores next to data-loader workers; extra threads only contend


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A procedural dataset with train/val/test splits of 8/4/4 images, 64x64, seed 0."""
    return make_procedural_dataset(tmp_path_factory.mktemp("tiny") / "data", n_train=8, n_val=4, n_test=4, size=64)

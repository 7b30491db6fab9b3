"""A briefly trained tiny FastLinkNet and its fp32 and int8 exports, shared by the deploy tests.

Untrained networks make weak quantization tests (their logits are near-constant, so any int8 error looks harmless or
any disagreement looks huge); a few dozen optimiser steps give real activation ranges and a non-trivial mask.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from footseg.data.dataset import SegmentationDataset, find_samples, split_folder
from footseg.data.io import read_image
from footseg.data.transforms import resize_image, to_tensor
from footseg.models import SavedModelInfo, create_model, save_model

SIZE = 64
STEPS = 40


@pytest.fixture(scope="session")
def test_images(tiny_dataset: Path) -> np.ndarray:
    """(N, 3, 64, 64) float32 batch of the test split, preprocessed exactly as inference does."""
    paths = [s.image for s in find_samples(split_folder(tiny_dataset, "test"))]
    return np.stack([to_tensor(resize_image(read_image(p), (SIZE, SIZE))).numpy() for p in paths])


@pytest.fixture(scope="session")
def trained_dir(tmp_path_factory: pytest.TempPathFactory, tiny_dataset: Path) -> Path:
    torch.manual_seed(0)
    model = create_model("fastlinknet", width=0.5)
    data = SegmentationDataset(tiny_dataset / "train", size=SIZE)
    images = torch.stack([data[i][0] for i in range(len(data))])
    masks = torch.stack([data[i][1] for i in range(len(data))])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(STEPS):
        opt.zero_grad()
        nn.functional.cross_entropy(model(images), masks).backward()
        opt.step()
    info = SavedModelInfo("fastlinknet", 0.5, 2, (SIZE, SIZE), extra={"note": "deploy test", "steps": STEPS})
    return save_model(model.eval(), tmp_path_factory.mktemp("deploy") / "model", info)


@pytest.fixture(scope="session")
def fp32_onnx(trained_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from footseg.deploy.export import export_onnx

    return export_onnx(trained_dir, tmp_path_factory.mktemp("fp32") / "model.onnx")


@pytest.fixture(scope="session")
def int8_onnx(trained_dir: Path, tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from footseg.deploy.quantize import export_int8

    return export_int8(trained_dir, tmp_path_factory.mktemp("int8") / "model.int8.onnx", calib=tiny_dataset, calib_n=8)

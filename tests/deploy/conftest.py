"""A briefly trained tiny FastLinkNet and its fp32 and int8 exports, shared by the deploy tests.

Untrained networks make weak quantization tests (their logits are near-constant, so any int8 error looks harmless or
any disagreement looks huge). Sixty optimiser steps on the eight training images fit them (foot IoU roughly 0.5-0.9):
real activation ranges and real masks to compare, on the images the model has learnt.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from footseg.data.dataset import SegmentationDataset, find_samples, split_folder
from footseg.data.io import read_image
from footseg.data.transforms import resize_image, to_tensor
from footseg.models import SavedModelInfo, create_model, save_model
from footseg.train.losses import build_loss

SIZE = 64
STEPS = 60


@pytest.fixture(scope="session")
def fitted_images(tiny_dataset: Path) -> np.ndarray:
    """(N, 3, 64, 64) float32 batch of the train split (what the fixture model fits), preprocessed as inference does."""
    paths = [s.image for s in find_samples(split_folder(tiny_dataset, "train"))]
    return np.stack([to_tensor(resize_image(read_image(p), (SIZE, SIZE))).numpy() for p in paths])


@pytest.fixture(scope="session")
def trained_dir(tmp_path_factory: pytest.TempPathFactory, tiny_dataset: Path) -> Path:
    torch.manual_seed(0)
    model = create_model("fastlinknet", width=0.5)
    data = SegmentationDataset(tiny_dataset / "train", size=SIZE)
    images = torch.stack([data[i][0] for i in range(len(data))])
    masks = torch.stack([data[i][1] for i in range(len(data))])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = build_loss("ce+iou")  # the IoU term keeps the small foot class from collapsing to background
    model.train()
    for _ in range(STEPS):
        opt.zero_grad()
        loss_fn(model(images), masks).backward()
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

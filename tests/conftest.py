"""Shared fixtures: a tiny procedural dataset that every test package can read (never write into it), red-blob photos
whose true mask is known with models to run on them, and a briefly trained tiny FastLinkNet with its fp32 and int8
exports.

The trained model: untrained networks make weak quantization tests (their logits are near-constant, so any int8 error
looks harmless or any disagreement looks huge). Sixty optimiser steps on the eight training images fit them (foot IoU
roughly 0.5-0.9): real activation ranges and real masks to compare, on the images the model has learnt.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from footseg.data.dataset import SegmentationDataset
from footseg.data.io import read_image, write_jpeg, write_png
from footseg.data.procedural import make_procedural_dataset
from footseg.data.samples import find_samples, split_folder
from footseg.data.transforms import resize_image, to_tensor
from footseg.models import SavedModelInfo, create_model, save_model
from footseg.train.losses import build_loss

torch.set_num_threads(1)  # the suite runs on 2 cores next to data-loader workers; extra threads only contend


@pytest.fixture(scope="session", autouse=True)
def _user_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The suite's own cache folder (training records the datasets that passed its check there), for every test and
    the processes they start."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A procedural dataset with train/val/test splits of 8/4/4 images, 64x64, seed 0."""
    return make_procedural_dataset(tmp_path_factory.mktemp("tiny") / "data", n_train=8, n_val=4, n_test=4, size=64)


TEST_MODEL = "fastlinknet"


class RedIsFoot(nn.Module):
    """A hand-built 'perfect' model for blob photos: a pixel is foot when red clearly exceeds green.

    It records the input shapes it sees, so tests can check what the network is fed.
    """

    def __init__(self, num_classes: int = 2):
        super().__init__()
        self.num_classes = num_classes
        self.seen: list[tuple[int, ...]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(tuple(x.shape))
        score = 40.0 * (x[:, 0] - x[:, 1] - 0.3)
        if self.num_classes == 1:
            return score[:, None]
        return torch.stack([torch.zeros_like(score), score], dim=1)


def blob_photo(h: int, w: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A grey noisy photo with one red ellipse, and its (H, W) uint8 mask (255 = the ellipse)."""
    rng = np.random.default_rng(seed)
    grey = rng.integers(90, 170, size=(h, w, 1))
    image = np.repeat(grey, 3, axis=2) + rng.integers(-8, 9, size=(h, w, 3))
    yy, xx = np.mgrid[0:h, 0:w]
    cy, cx = h * rng.uniform(0.35, 0.65), w * rng.uniform(0.35, 0.65)
    ry, rx = h * rng.uniform(0.2, 0.3), w * rng.uniform(0.15, 0.25)
    inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
    image[inside] = (205, 45, 40)
    return np.clip(image, 0, 255).astype(np.uint8), inside.astype(np.uint8) * 255


def write_blob_folder(
    folder: Path, sizes: list[tuple[int, int]], ext: str = ".png", seed: int = 0, prefix: str = "blob"
) -> Path:
    """A flat dataset folder: images/<prefix><i><ext> + masks/<prefix><i>.png, one per (height, width) in ``sizes``."""
    for i, (h, w) in enumerate(sizes):
        image, mask = blob_photo(h, w, seed + i)
        (write_jpeg if ext in (".jpg", ".jpeg") else write_png)(folder / "images" / f"{prefix}{i}{ext}", image)
        write_png(folder / "masks" / f"{prefix}{i}.png", mask)
    return folder


# Helpers reach tests as fixtures: two conftest modules cannot both be imported by the name ``conftest``.
@pytest.fixture
def make_photo() -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    return blob_photo


@pytest.fixture
def red_net() -> type[RedIsFoot]:
    return RedIsFoot


@pytest.fixture
def make_blob_folder() -> Callable[..., Path]:
    return write_blob_folder


def write_flat_folder(root: Path, stems: list[str], masks: list[str]) -> Path:
    """A flat dataset folder: a 30x40 JPEG photo per stem of ``stems``, a PNG mask per stem of ``masks``."""
    rng = np.random.default_rng(0)
    for s in stems:
        write_jpeg(root / "images" / f"{s}.jpg", rng.integers(0, 255, (40, 30, 3), dtype=np.uint8))
    for s in masks:
        m = np.zeros((40, 30), np.uint8)
        m[10:30, 5:20] = 255
        write_png(root / "masks" / f"{s}.png", m)
    return root


@pytest.fixture
def make_flat_folder() -> Callable[..., Path]:
    return write_flat_folder


@pytest.fixture
def red_model() -> tuple[RedIsFoot, SavedModelInfo]:
    return RedIsFoot(), SavedModelInfo(model="red-is-foot", input_size=(64, 64))


@pytest.fixture
def blob_folder(tmp_path: Path) -> Path:
    """Flat folder of photos with odd, non-square sizes (and one JPEG)."""
    write_blob_folder(tmp_path / "flat", [(45, 67), (80, 52), (64, 64)])
    write_blob_folder(tmp_path / "flat", [(37, 91)], ext=".jpg", seed=10, prefix="photo")
    return tmp_path / "flat"


@pytest.fixture(scope="session")
def saved_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small untrained real architecture saved as a model folder (weights are random but fixed by the seed)."""
    torch.manual_seed(0)
    model = create_model(TEST_MODEL, width=0.25)
    return save_model(model, tmp_path_factory.mktemp("model") / "best", SavedModelInfo(TEST_MODEL, 0.25, 2, (64, 64)))


@pytest.fixture
def blob_dataset(tmp_path: Path) -> Callable[..., Path]:
    """Factory for a dataset with train/val/test splits of blob photos."""

    def make(n: tuple[int, int, int] = (2, 2, 3), size: tuple[int, int] = (48, 72)) -> Path:
        root = tmp_path / "splits"
        for k, (split, count) in enumerate(zip(("train", "val", "test"), n, strict=True)):
            write_blob_folder(root / split, [size] * count, seed=100 * k)
        return root

    return make


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


def _icc_profile(description: str, gamma: float) -> bytes:
    """An ICC v2 display profile with sRGB's primaries and white (D50-adapted, as sRGB's own profile has them) and a
    plain power curve: the smallest profile that says "these RGB numbers are not sRGB" in a way with a known answer."""
    import struct

    def s15(*values: float) -> bytes:
        return b"".join(struct.pack(">i", round(v * 65536)) for v in values)

    text = description.encode("ascii") + b"\0"
    tags = {
        b"desc": b"desc\0\0\0\0" + struct.pack(">I", len(text)) + text + b"\0" * 4 + b"\0" * 4 + b"\0" * 3 + b"\0" * 67,
        b"wtpt": b"XYZ \0\0\0\0" + s15(0.9642, 1.0, 0.8249),
        b"rXYZ": b"XYZ \0\0\0\0" + s15(0.4361, 0.2225, 0.0139),
        b"gXYZ": b"XYZ \0\0\0\0" + s15(0.3851, 0.7169, 0.0971),
        b"bXYZ": b"XYZ \0\0\0\0" + s15(0.1431, 0.0606, 0.7141),
        b"cprt": b"text\0\0\0\0" + b"no copyright\0",
    }
    curve = b"curv\0\0\0\0" + struct.pack(">IH", 1, round(gamma * 256)) + b"\0\0"
    tags |= {b"rTRC": curve, b"gTRC": curve, b"bTRC": curve}
    offset = 128 + 4 + 12 * len(tags)
    table, body = [], b""
    for signature, data in tags.items():
        data += b"\0" * (-len(data) % 4)
        table.append(signature + struct.pack(">II", offset + len(body), len(data)))
        body += data
    size = offset + len(body)
    header = (struct.pack(">I", size) + b"\0" * 4 + struct.pack(">I", 0x02100000) + b"mntrRGB XYZ " + b"\0" * 12
              + b"acsp" + b"\0" * 24 + struct.pack(">I", 0) + s15(0.9642, 1.0, 0.8249) + b"\0" * 48)
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + b"".join(table) + body


@pytest.fixture(scope="session")
def make_icc_profile() -> Callable[[str, float], bytes]:
    """``make_icc_profile(description, gamma)``: a profile with sRGB's primaries and a power curve."""
    return _icc_profile


@pytest.fixture(scope="session")
def linear_rgb_profile() -> bytes:
    """A colour profile for linear-light RGB (sRGB's primaries, gamma 1.0): a value v there is sRGB's encoding of
    v / 255 in sRGB."""
    return _icc_profile("linear RGB", 1.0)


@pytest.fixture(scope="session")
def srgb_profile() -> bytes:
    """An sRGB profile as cameras embed one (LittleCMS's own, through Pillow)."""
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()

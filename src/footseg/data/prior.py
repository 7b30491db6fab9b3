"""Fake previous-frame masks, so a prior-mask network learns from still images (Google's 2018 mobile video
segmenter trained its previous-mask channel this way).

On video the network's 4th input channel is the foot probability it gave the previous frame. On a still image there
is no previous frame, so one is faked from the true mask, in the ways a real previous frame differs: the camera or
foot moved (a small affine warp), the last mask was a little fat or thin (dilated, eroded), it missed part of the
foot (a piece cut away), it marked floor as foot (spurious blobs), it was unsure (soft, lowered confidence), or there
was no previous frame at all (empty). Seeing good and bad priors, the network learns to follow a good one and to
overrule a bad one instead of copying it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset


@dataclass(frozen=True)
class PriorConfig:
    empty: float = 0.15  # share of samples with no previous frame: the first frame of every video
    shift: float = 0.06  # largest translation, as a fraction of the side
    rotate: float = 10.0  # largest rotation, degrees
    scale: float = 0.08  # largest relative zoom
    morph: float = 0.5  # chance of an erosion or dilation
    cut: float = 0.3  # chance of a missed piece of foot
    blobs: float = 0.3  # chance of spurious foot blobs on the floor
    soft: float = 0.5  # chance of a blurred, less confident prior


def fake_prior(mask: np.ndarray, rng: np.random.Generator, config: PriorConfig = PriorConfig()) -> np.ndarray:
    """A plausible previous-frame foot probability, float32 (H, W) in [0, 1], for a (H, W) label map (non-zero =
    foot), drawn with ``rng``."""
    h, w = mask.shape
    if rng.random() < config.empty:
        return np.zeros((h, w), np.float32)
    prior = (mask > 0).astype(np.float32)
    angle = rng.uniform(-config.rotate, config.rotate)
    zoom = 1.0 + rng.uniform(-config.scale, config.scale)
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, zoom)
    matrix[:, 2] += rng.uniform(-config.shift, config.shift, size=2) * (w, h)
    prior = cv2.warpAffine(prior, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    side = max(3, round(min(h, w) * rng.uniform(0.01, 0.04)) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))
    if rng.random() < config.morph:
        prior = (cv2.erode if rng.random() < 0.5 else cv2.dilate)(prior, kernel)
    if rng.random() < config.cut:
        prior *= 1.0 - _ellipse(h, w, rng, 0.08, 0.25)
    if rng.random() < config.blobs:
        for _ in range(int(rng.integers(1, 4))):
            prior = np.maximum(prior, _ellipse(h, w, rng, 0.04, 0.15))
    if rng.random() < config.soft:
        sigma = min(h, w) * rng.uniform(0.005, 0.03)
        prior = cv2.GaussianBlur(prior, (0, 0), sigma) * rng.uniform(0.6, 1.0)
    return np.clip(prior, 0.0, 1.0).astype(np.float32)


def _ellipse(h: int, w: int, rng: np.random.Generator, small: float, large: float) -> np.ndarray:
    """A filled ellipse anywhere in the frame, semi-axes ``small``..``large`` of the shorter side."""
    canvas = np.zeros((h, w), np.float32)
    centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
    axes = tuple(max(1, int(min(h, w) * rng.uniform(small, large))) for _ in range(2))
    cv2.ellipse(canvas, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
    return canvas


class PriorDataset(Dataset):
    """A segmentation dataset whose images get a 4th channel, a fake previous-frame mask made from their own mask.

    Draws come from ``np.random.default_rng([seed, epoch, index, 1])`` like the augmentation's, so a resumed run
    and every worker see the same priors; a validation set (no epochs) gets the same priors every time.
    """

    def __init__(self, base: Dataset, seed: int = 0, config: PriorConfig = PriorConfig()):
        self.base, self.seed, self.config = base, seed, config

    def __len__(self) -> int:
        return len(self.base)

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.base, "set_epoch"):
            self.base.set_epoch(epoch)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, mask = self.base[index]
        rng = np.random.default_rng([self.seed, int(getattr(self.base, "epoch", 0)), index, 1])
        prior = fake_prior(mask.numpy(), rng, self.config)
        return torch.cat([image, torch.from_numpy(prior)[None]]), mask

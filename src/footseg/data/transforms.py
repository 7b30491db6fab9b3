"""Resizing and tensor conversion shared by training, evaluation and prediction, so all three see the same pixels."""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    import torch


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an (H, W, 3) uint8 image to ``size`` = (height, width); area filter when shrinking avoids aliasing."""
    h, w = size
    if image.shape[:2] == (h, w):
        return image
    shrink = h < image.shape[0] or w < image.shape[1]
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a label map with nearest-neighbour sampling so no new label values appear."""
    h, w = size
    if mask.shape[:2] == (h, w):
        return mask
    return cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST)


def to_array(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (3, H, W) float32 in [0, 1], the input every footseg model expects."""
    out = np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32)
    out /= np.float32(255.0)
    return out


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """``to_array`` as a torch tensor (training's batches)."""
    import torch  # lazily: synth workers and runs of an ONNX export use this module and never need torch

    return torch.from_numpy(to_array(image))


def mask_to_tensor(mask: np.ndarray) -> torch.Tensor:
    """(H, W) raw mask -> (H, W) int64 labels, 0 = background and 1 = foot."""
    import torch

    return torch.from_numpy((mask > 0).astype(np.int64))

"""What a phone camera does to a rendered frame: exposure and white balance, defocus and motion blur, vignetting,
sensor noise and JPEG compression. Applied to the image only; the mask stays exact.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class CameraEffects:
    exposure: float
    white_balance: np.ndarray  # per-channel gains
    gamma: float
    vignette: float
    defocus: float  # Gaussian sigma, pixels of the rendered frame
    motion: float  # blur length, pixels
    motion_angle: float
    noise: float  # std of the sensor noise, 0..255 units
    jpeg_quality: int

    @staticmethod
    def sample(rng: np.random.Generator) -> CameraEffects:
        return CameraEffects(
            exposure=float(np.exp(rng.normal(0, 0.25))),
            white_balance=np.exp(rng.normal(0, 0.06, 3)),
            gamma=float(np.exp(rng.normal(0, 0.08))),
            vignette=float(rng.uniform(0, 0.35)),
            defocus=float(rng.uniform(0.3, 1.6)) if rng.random() < 0.3 else 0.0,
            motion=float(rng.uniform(1.5, 6)) if rng.random() < 0.15 else 0.0,
            motion_angle=float(rng.uniform(0, np.pi)),
            noise=float(rng.uniform(0.5, 6)),
            jpeg_quality=int(rng.integers(60, 96)),
        )


def _motion_kernel(length: float, angle: float) -> np.ndarray:
    n = int(np.ceil(length)) | 1
    k = np.zeros((n, n), np.float32)
    c = n // 2
    dx, dy = np.cos(angle), np.sin(angle)
    for t in np.linspace(-length / 2, length / 2, 2 * n):
        k[round(c + t * dy), round(c + t * dx)] = 1.0
    return k / k.sum()


@functools.lru_cache(maxsize=1)
def _noise_tile() -> np.ndarray:
    """Gaussian grain, drawn once per process (a fixed seed) and cropped at random offsets: drawing fresh normals
    for every pixel of every image costs more than rendering it. Per pixel: a luminance grain shared by the
    channels plus half as much colour grain per channel, pre-summed (the sensor noise scales both alike)."""
    g = np.random.default_rng(12345).standard_normal((1100, 1100, 4), dtype=np.float32)
    return np.ascontiguousarray(g[..., :1] + 0.5 * g[..., 1:])


@functools.lru_cache(maxsize=8)
def _radius2(h: int, w: int) -> np.ndarray:
    """Squared distance from the centre, 1 at the middle of each edge (the vignette's shape), (h, w, 1) float32."""
    y, x = np.ogrid[-1:1:h * 1j, -1:1:w * 1j]
    return (x * x + y * y).astype(np.float32)[..., None]


def apply_optics(image: np.ndarray, fx: CameraEffects) -> np.ndarray:
    """Defocus and motion blur, on the full rendered frame (before it is resized)."""
    if fx.defocus > 0:
        image = cv2.GaussianBlur(image, (0, 0), fx.defocus)
    if fx.motion > 0:
        image = cv2.filter2D(image, -1, _motion_kernel(fx.motion, fx.motion_angle))
    return image


def apply_sensor(image: np.ndarray, fx: CameraEffects, rng: np.random.Generator) -> np.ndarray:
    """Exposure, white balance, tone curve, vignetting and noise on the output-size image."""
    x = np.arange(256, dtype=np.float32) / 255.0
    lut = np.stack([np.clip(x * fx.exposure * g, 0, 1) ** fx.gamma * 255.0 for g in fx.white_balance], 1)
    img = cv2.LUT(image, lut.astype(np.float32).reshape(256, 1, 3))
    h, w = img.shape[:2]
    if fx.vignette > 0:
        img *= 1.0 - np.float32(fx.vignette * 0.5) * _radius2(h, w)
    tile = _noise_tile()
    oy, ox = (int(v) for v in rng.integers(0, [tile.shape[0] - h + 1, tile.shape[1] - w + 1]))
    img = cv2.scaleAdd(tile[oy:oy + h, ox:ox + w], fx.noise, img)  # noise * grain + img
    img += 0.5
    return np.clip(img, 0, 255, out=img).astype(np.uint8)

"""The thesis augmentation: a random corner-point perspective warp, a flip, and photometric noise.

The warp picks one random point inside each corner cell of a 3x3 grid over the source image and maps those four
points to the corners of the square output. One perspective matrix therefore gives random zoom (up to 3x), shear,
translation and aspect change at once, and the image is resampled only once (twice with ``antialias``: a shrink by
area first, where the warp would shrink it). Rotating the point set first lets the network see feet at every
orientation, since a phone can be held any way round.

Everything random comes from the ``np.random.Generator`` passed in, so a sample's augmentation is reproducible from
(seed, epoch, index) no matter which worker process produces it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from footseg.data.transforms import resize_image


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and ranges of each augmentation step; the defaults are what training uses (``antialias`` is a
    training setting of its own, on for a stage that trains on renders made at several times its side)."""

    # geometry
    rotate_p: float = 1.0  # rotate the four source points about their centre
    max_rotation: float = 180.0  # degrees; 180 covers every orientation
    flip_p: float = 0.5
    # photometric, image only
    brightness_p: float = 0.8
    brightness: float = 0.2  # additive shift, fraction of full scale
    contrast_p: float = 0.8
    contrast: float = 0.3  # factor in [1 - c, 1 + c] around the mean grey level
    saturation_p: float = 0.8
    saturation: float = 0.4  # factor in [1 - s, 1 + s]
    hue_p: float = 0.5
    hue: float = 0.04  # shift, fraction of the hue circle (skin tones must stay plausible)
    # A camera's white balance: red and blue gains each in [1 / (1 + w), 1 + w] (log-uniform), green kept. 0 = off,
    # the thesis's augmentation, which draws nothing for it (so runs without it augment as they always did).
    white_balance_p: float = 0.8
    white_balance: float = 0.0
    blur_p: float = 0.2
    blur_sigma: tuple[float, float] = (0.3, 1.5)
    noise_p: float = 0.3
    noise_std: tuple[float, float] = (2.0, 10.0)  # in 0..255 units
    jpeg_p: float = 0.3
    jpeg_quality: tuple[int, int] = (30, 95)
    # Where the warp shrinks the source on average, shrink it by area to that scale first: a bilinear warp of a render
    # made at several times the training side aliases its detail, where inference shrinks frames by area.
    antialias: bool = False


def corner_points(height: int, width: int, rng: np.random.Generator, config: AugmentConfig | None = None) -> np.ndarray:
    """Four source points (x, y) in order top-left, top-right, bottom-right, bottom-left, one per 3x3 corner cell.

    With ``config.rotate_p`` the quadrilateral is rotated about its centre; points may then fall outside the image,
    where the warp reflects the border.
    """
    config = config or AugmentConfig()
    cw, ch = width / 3.0, height / 3.0
    u = rng.random((4, 2))
    cells = np.array([[0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [0.0, 2.0]])  # cell origin in cell units
    pts = (cells + u) * np.array([cw, ch])
    if rng.random() < config.rotate_p and config.max_rotation > 0:
        angle = np.deg2rad(rng.uniform(-config.max_rotation, config.max_rotation))
        c, s = np.cos(angle), np.sin(angle)
        centre = pts.mean(axis=0)
        pts = (pts - centre) @ np.array([[c, s], [-s, c]]) + centre
    return pts.astype(np.float32)


def warp_matrix(points: np.ndarray, size: int) -> np.ndarray:
    """3x3 perspective matrix sending ``points`` (TL, TR, BR, BL) to the corners of a size x size image."""
    dst = np.array([[0, 0], [size - 1, 0], [size - 1, size - 1], [0, size - 1]], dtype=np.float32)
    return cv2.getPerspectiveTransform(np.asarray(points, dtype=np.float32), dst)


def warp_image(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """A perspective matrix applied to an image (bilinear), borders reflected."""
    return cv2.warpPerspective(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def warp_mask(mask: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """A perspective matrix applied to a label map (nearest, so no new label values appear), borders reflected."""
    return cv2.warpPerspective(mask, matrix, (size, size), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REFLECT)


def photometric(image: np.ndarray, rng: np.random.Generator, config: AugmentConfig | None = None) -> np.ndarray:
    """Colour, blur, noise and JPEG artefacts on an (H, W, 3) uint8 RGB image; the mask is never touched."""
    config = config or AugmentConfig()
    img = image.astype(np.float32)
    if config.white_balance > 0 and rng.random() < config.white_balance_p:
        red, blue = np.exp(rng.uniform(-1, 1, 2) * np.log1p(config.white_balance))
        img = img * np.array([red, 1.0, blue], dtype=np.float32)
    if rng.random() < config.contrast_p:
        factor = rng.uniform(1 - config.contrast, 1 + config.contrast)
        img = (img - img.mean()) * factor + img.mean()
    if rng.random() < config.brightness_p:
        img = img + 255.0 * rng.uniform(-config.brightness, config.brightness)
    if rng.random() < config.saturation_p:
        grey = img @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        factor = rng.uniform(1 - config.saturation, 1 + config.saturation)
        img = grey[..., None] + (img - grey[..., None]) * factor
    img = np.clip(img, 0, 255)
    if rng.random() < config.hue_p:
        hsv = cv2.cvtColor(img.astype(np.uint8), cv2.COLOR_RGB2HSV)
        shift = round(rng.uniform(-config.hue, config.hue) * 180)
        hsv[..., 0] = ((hsv[..., 0].astype(np.int16) + shift) % 180).astype(np.uint8)
        img = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB).astype(np.float32)
    if rng.random() < config.blur_p:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(*config.blur_sigma))
    if rng.random() < config.noise_p:
        img = img + rng.normal(0.0, rng.uniform(*config.noise_std), img.shape).astype(np.float32)
    out = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    if rng.random() < config.jpeg_p:
        quality = int(rng.integers(config.jpeg_quality[0], config.jpeg_quality[1] + 1))
        ok, buf = cv2.imencode(".jpg", out[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok:
            out = np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])
    return out


def shrink_to_warp(image: np.ndarray, points: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The image shrunk by area by the factor the warp of ``points`` to a ``size`` square shrinks it on average, and
    the points moved with it; unchanged where the warp enlarges. Only the image: the mask is warped from its own
    resolution with the points as drawn (a label map shrunk by nearest neighbour would land beside the image's)."""
    sides = np.linalg.norm(points - np.roll(points, -1, axis=0), axis=1)
    factor = (size - 1) / float(sides.mean())
    if factor >= 1.0:
        return image, points
    h, w = image.shape[:2]
    new_w, new_h = max(1, round(w * factor)), max(1, round(h * factor))
    scale = np.array([new_w / w, new_h / h], np.float32)
    shrunk = resize_image(image, (new_h, new_w))
    return shrunk, ((points + 0.5) * scale - 0.5).astype(np.float32)  # pixel centres stay on pixel centres


class ThesisAugment:
    """``(image, mask, rng) -> (image, mask)``: warp to size x size (with ``antialias``, after a shrink by area where
    the warp shrinks), maybe flip, then photometric noise on the image."""

    def __init__(self, size: int = 256, config: AugmentConfig | None = None):
        self.size = size
        self.config = config or AugmentConfig()

    def __call__(self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        h, w = image.shape[:2]
        points = corner_points(h, w, rng, self.config)
        matrix = warp_matrix(points, self.size)
        source, source_matrix = image, matrix
        if self.config.antialias:
            source, moved = shrink_to_warp(image, points, self.size)
            source_matrix = warp_matrix(moved, self.size)
        img, msk = warp_image(source, source_matrix, self.size), warp_mask(mask, matrix, self.size)
        if rng.random() < self.config.flip_p:
            img, msk = img[:, ::-1], msk[:, ::-1]
        img = photometric(np.ascontiguousarray(img), rng, self.config)
        return img, np.ascontiguousarray(msk)

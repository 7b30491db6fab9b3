"""A small built-in synthetic foot dataset, drawn procedurally, so training and tests need no downloaded data.

Each image shows one or two feet seen from above (sole outline, heel, five toes and the lower leg, which the real
masks also count as foot), in skin tones across the human range and sometimes in socks, over a procedural floor
(wood planks, tiles with grout, carpet, concrete, marble) with shadows and background distractors that look a bit
like feet: paper sheets (real photos often show a foot on an A4 sheet), skin-coloured blobs, shoes and trousers.

Shapes are drawn as polygons on a 4x supersampled canvas: the image gets anti-aliased edges from the area-averaged
coverage and the mask is exactly "coverage >= 1/2", so image and mask agree to the pixel. Every image has its own
random stream ``default_rng([seed, split, index])``: the output is byte-identical for a seed, splits never share
floors or feet, and the images can be drawn in any order or in parallel.
"""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from footseg.atomic import atomic_write_text
from footseg.data.io import write_jpeg, write_png
from footseg.errors import FootsegError

SS = 4  # supersampling factor for anti-aliased edges
SPLIT_KEYS = {"train": 1, "val": 2, "test": 3}
_MARKER = "procedural.json"

# Skin tones from very light to very dark (RGB), roughly spanning the Fitzpatrick scale.
_SKIN = np.array(
    [
        [255, 224, 200],
        [241, 194, 167],
        [224, 172, 135],
        [198, 140, 102],
        [165, 110, 76],
        [128, 80, 52],
        [92, 58, 40],
        [62, 40, 30],
    ],
    dtype=np.float32,
)


# ----------------------------------------------------------------------------------------------------------------
# noise and floors


def _noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth value noise in [0, 1] with about ``cells`` features across the image."""
    cells = max(2, int(cells))
    small = rng.random((cells + 1, cells + 1)).astype(np.float32)
    return np.clip(cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC), 0.0, 1.0)


def _fractal(rng: np.random.Generator, size: int, base: int, octaves: int = 4) -> np.ndarray:
    out = np.zeros((size, size), np.float32)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        out += amp * _noise(rng, size, base * 2**o)
        total += amp
        amp *= 0.5
    return out / total


def _coords(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates rotated by a random angle, so floor patterns run in any direction."""
    a = rng.uniform(0, np.pi)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    return x * np.cos(a) + y * np.sin(a), -x * np.sin(a) + y * np.cos(a)


def _random_colour(rng: np.random.Generator, lo: float = 30, hi: float = 230) -> np.ndarray:
    return rng.uniform(lo, hi, 3).astype(np.float32)


def _wood(rng: np.random.Generator, size: int) -> np.ndarray:
    u, v = _coords(rng, size)
    plank_w = rng.uniform(0.12, 0.3) * size
    plank = np.floor(v / plank_w)
    hue = rng.uniform(0.0, 1.0)
    base = np.array([150, 95, 55], np.float32) * (1 - hue) + np.array([215, 180, 130], np.float32) * hue
    base *= rng.uniform(0.6, 1.1)
    # per-plank brightness and grain phase, looked up by plank index
    ids = (plank - plank.min()).astype(np.int32)
    shade = rng.uniform(0.8, 1.15, ids.max() + 1).astype(np.float32)[ids]
    phase = rng.uniform(0, 100, ids.max() + 1).astype(np.float32)[ids]
    warp = _fractal(rng, size, 3) * rng.uniform(5, 20)
    grain = 0.5 + 0.5 * np.sin((v + warp) * rng.uniform(0.4, 1.2) + phase + u * 0.01)
    grain = 0.85 + 0.15 * grain**3
    seam = np.abs(((v / plank_w) % 1.0) - 0.5) * plank_w  # distance from the plank centre line
    seam = np.clip((plank_w / 2 - seam) / 1.2, 0.0, 1.0)  # 0 at the seam
    # plank ends: staggered joints along u
    plank_len = plank_w * rng.uniform(3, 8)
    end = np.abs(((u / plank_len + phase * 0.37) % 1.0) - 0.5) * plank_len
    end = np.clip((plank_len / 2 - end) / 1.2, 0.0, 1.0)
    lum = shade * grain * (0.55 + 0.45 * seam * end)
    return base[None, None, :] * lum[..., None]


def _tiles(rng: np.random.Generator, size: int) -> np.ndarray:
    u, v = _coords(rng, size)
    tile = rng.uniform(0.15, 0.5) * size
    grout_w = rng.uniform(1.0, 4.0)
    du = np.minimum(u % tile, tile - u % tile)
    dv = np.minimum(v % tile, tile - v % tile)
    grout = np.clip((np.minimum(du, dv) - grout_w / 2) / 1.0, 0.0, 1.0)[..., None]  # 0 in the grout
    colour = _random_colour(rng, 60, 245)
    grout_colour = colour * rng.uniform(0.4, 1.2) if rng.random() < 0.7 else _random_colour(rng)
    iu = np.floor(u / tile).astype(np.int32)
    iv = np.floor(v / tile).astype(np.int32)
    key = (iu - iu.min()) * 97 + (iv - iv.min())
    tile_shade = rng.uniform(0.9, 1.1, key.max() + 1).astype(np.float32)[key][..., None]
    pattern = 1.0
    if rng.random() < 0.4:  # patterned ceramic tiles
        second = _random_colour(rng, 30, 200)
        motif = 0.5 + 0.5 * np.sin(2 * np.pi * u / tile * rng.integers(1, 4)) * np.sin(2 * np.pi * v / tile * 2)
        mix = (motif > rng.uniform(0.5, 0.8)).astype(np.float32)[..., None]
        face = colour * (1 - mix) + second * mix
    else:
        face = colour[None, None, :] * pattern
    speck = 0.95 + 0.1 * _noise(rng, size, size // 8)[..., None]
    return (face * tile_shade * speck) * grout + grout_colour * (1 - grout)


def _carpet(rng: np.random.Generator, size: int) -> np.ndarray:
    colour = _random_colour(rng, 30, 220)
    fine = rng.random((size, size)).astype(np.float32)
    fine = cv2.GaussianBlur(fine, (0, 0), rng.uniform(0.6, 1.5))
    blotch = _fractal(rng, size, 4)
    lum = 0.7 + 0.5 * (fine - fine.mean()) / (fine.std() + 1e-6) * 0.15 + 0.3 * (blotch - 0.5)
    img = colour[None, None, :] * lum[..., None]
    if rng.random() < 0.3:  # patterned rug
        u, _ = _coords(rng, size)
        stripes = (np.sin(u * rng.uniform(0.05, 0.2)) > 0).astype(np.float32)[..., None]
        img = img * (1 - 0.5 * stripes) + _random_colour(rng) * 0.5 * stripes * lum[..., None]
    return img


def _concrete(rng: np.random.Generator, size: int) -> np.ndarray:
    grey = rng.uniform(90, 200)
    tint = rng.uniform(0.9, 1.1, 3).astype(np.float32)
    lum = 0.8 + 0.3 * (_fractal(rng, size, 3, 5) - 0.5) + 0.08 * (rng.random((size, size)).astype(np.float32) - 0.5)
    return grey * tint[None, None, :] * lum[..., None]


def _marble(rng: np.random.Generator, size: int) -> np.ndarray:
    u, _ = _coords(rng, size)
    turb = _fractal(rng, size, 3, 5)
    veins = np.abs(np.sin(u * rng.uniform(0.02, 0.06) + turb * rng.uniform(6, 14)))
    veins = veins ** rng.uniform(0.2, 0.6)
    base = rng.uniform(180, 245) * rng.uniform(0.92, 1.0, 3).astype(np.float32)
    vein_colour = _random_colour(rng, 40, 160)
    mix = (1 - veins)[..., None]
    return base * (1 - mix) + vein_colour * mix


_FLOORS = (_wood, _tiles, _carpet, _concrete, _marble)


def _floor(rng: np.random.Generator, size: int) -> np.ndarray:
    img = _FLOORS[rng.integers(len(_FLOORS))](rng, size).astype(np.float32)
    # uneven room light: a smooth gradient and a soft vignette
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    a = rng.uniform(0, 2 * np.pi)
    light = 1 + rng.uniform(0, 0.35) * ((x - 0.5) * np.cos(a) + (y - 0.5) * np.sin(a))
    light *= 1 - rng.uniform(0, 0.3) * ((x - 0.5) ** 2 + (y - 0.5) ** 2)
    return img * light[..., None]


# ----------------------------------------------------------------------------------------------------------------
# shapes, in foot-length units: toes point to -y, the heel is at +y, the big toe is on the -x side (a right foot)


def _circle(cx: float, cy: float, r: float, n: int = 24) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], axis=1)


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 32) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def _hull(points: np.ndarray) -> np.ndarray:
    return cv2.convexHull(points.astype(np.float32)).reshape(-1, 2)


def _capsule(p0: tuple[float, float], p1: tuple[float, float], r: float) -> np.ndarray:
    return _hull(np.concatenate([_circle(*p0, r, 16), _circle(*p1, r, 16)]))


def _foot_shapes(rng: np.random.Generator, sock: bool) -> tuple[list[np.ndarray], list[np.ndarray], float]:
    """Polygons of one right foot: (body parts, toe parts, toe tip y) in foot-length units."""
    width = rng.uniform(0.36, 0.44)  # ball width / length
    heel = _circle(0.01, 0.37, rng.uniform(0.11, 0.14))
    ball = _ellipse(0.0, -0.17, width / 2, 0.12)
    arch = _ellipse(0.03, 0.12, width * 0.38, 0.16)
    body = _hull(np.concatenate([heel, ball, arch]))
    # the medial arch is slightly concave: pull the inner mid-foot points inwards
    inner = (body[:, 0] < -0.05) & (body[:, 1] > -0.05) & (body[:, 1] < 0.3)
    body[inner, 0] += rng.uniform(0.0, 0.04)
    splay = rng.uniform(0.9, 1.1)
    toes_spec = [  # x, tip y, radius
        (-0.125, -0.46, 0.062),
        (-0.045, -0.455, 0.042),
        (0.025, -0.43, 0.039),
        (0.085, -0.395, 0.035),
        (0.14, -0.345, 0.032),
    ]
    toes = []
    for x, y, r in toes_spec:
        x, y = x * splay + rng.normal(0, 0.005), y + rng.normal(0, 0.008)
        toes.append(_capsule((x, y + r), (x * 0.95, -0.22), r))
    if sock:  # a sock wraps the toes into one rounded front
        toes = [_hull(np.concatenate([*toes, ball]))]
    tip = min(float(t[:, 1].min()) for t in toes)
    return [body], toes, tip


def _nails(rng: np.random.Generator) -> list[np.ndarray]:
    return [
        _ellipse(x, y + r * 0.9, r * 0.6, r * 0.55, 16)
        for x, y, r in [(-0.125, -0.46, 0.062), (-0.045, -0.455, 0.042), (0.025, -0.43, 0.039)]
    ]


def _leg(rng: np.random.Generator, reach: float) -> tuple[np.ndarray, float]:
    """The lower leg seen from above: a band from the ankle away behind the heel, widening towards the camera."""
    angle = np.deg2rad(rng.normal(0, 25))  # 0 = straight behind the heel
    d = np.array([np.sin(angle), np.cos(angle)])
    n = np.array([d[1], -d[0]])
    start = np.array([0.02, 0.18])
    w0 = rng.uniform(0.15, 0.19)
    w1 = w0 * rng.uniform(1.2, 1.8)
    end = start + d * reach
    poly = np.array([start + n * w0, end + n * w1, end - n * w1, start - n * w0])
    return poly, float(np.arctan2(d[0], d[1]))


class _Pose:
    """Maps foot-length units to supersampled canvas pixels."""

    def __init__(self, centre: np.ndarray, angle: float, length: float, mirror: bool):
        c, s = np.cos(angle), np.sin(angle)
        self.rot = np.array([[c, -s], [s, c]]) * length * SS
        self.sx = -1.0 if mirror else 1.0
        self.centre = centre * SS

    def __call__(self, poly: np.ndarray) -> np.ndarray:
        p = poly * np.array([self.sx, 1.0])
        return np.round(p @ self.rot.T + self.centre).astype(np.int32)


def _fill(canvas: np.ndarray, polys: list[np.ndarray], value: int = 255) -> None:
    # one call per polygon: fillPoly fills several contours with the even-odd rule, so overlaps would cut holes
    for p in polys:
        cv2.fillPoly(canvas, [p.reshape(-1, 1, 2)], value, lineType=cv2.LINE_8)


def _coverage(canvas: np.ndarray, size: int) -> np.ndarray:
    """Supersampled 0/255 layer -> float coverage in [0, 1] at output size."""
    return cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def _skin_colour(rng: np.random.Generator) -> np.ndarray:
    t = rng.uniform(0, len(_SKIN) - 1)
    i = int(t)
    j = min(i + 1, len(_SKIN) - 1)
    colour = _SKIN[i] * (1 - (t - i)) + _SKIN[j] * (t - i)
    return colour * rng.uniform(0.92, 1.05, 3).astype(np.float32)


def _over(img: np.ndarray, colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Composite ``colour`` (RGB or an image) over ``img`` in place, touching only the box where alpha > 0."""
    x, y, w, h = cv2.boundingRect((alpha > 0).astype(np.uint8))
    if w == 0:
        return img
    box = np.s_[y : y + h, x : x + w]
    a = alpha[box][..., None]
    c = colour[box] if np.ndim(colour) == 3 else colour
    img[box] = img[box] * (1 - a) + c * a
    return img


# ----------------------------------------------------------------------------------------------------------------
# distractors: background objects drawn on the floor


def _paper(rng: np.random.Generator, size: int, centre: np.ndarray, img: np.ndarray) -> np.ndarray:
    """An A4 sheet, often right under the foot as in foot-measuring photos."""
    long = rng.uniform(0.5, 1.1) * size
    rect = ((float(centre[0]), float(centre[1])), (long / 1.414, long), float(rng.uniform(0, 180)))
    box = cv2.boxPoints(rect) * SS
    canvas = np.zeros((size * SS, size * SS), np.uint8)
    _fill(canvas, [np.round(box).astype(np.int32)])
    colour = rng.uniform(215, 255) * rng.uniform(0.95, 1.0, 3).astype(np.float32)
    return _over(img, colour, _coverage(canvas, size))


def _blob(rng: np.random.Generator, size: int, img: np.ndarray) -> np.ndarray:
    """A skin-coloured blob (a hand, a knee, a wooden object) that is not a foot."""
    canvas = np.zeros((size * SS, size * SS), np.uint8)
    c = rng.uniform(0, size, 2) * SS
    axes = rng.uniform(0.05, 0.2, 2) * size * SS
    cv2.ellipse(canvas, (int(c[0]), int(c[1])), (int(axes[0]), int(axes[1])), rng.uniform(0, 180), 0, 360, 255, -1)
    shade = 0.8 + 0.3 * _noise(rng, size, 3)[..., None]
    return _over(img, _skin_colour(rng) * shade, _coverage(canvas, size))


def _shoe(rng: np.random.Generator, size: int, img: np.ndarray) -> np.ndarray:
    """A shoe: foot-like outline but no toes, a dark rim and shoe colours."""
    body, toes, _ = _foot_shapes(rng, sock=True)
    outline = _hull(np.concatenate(body + toes)) * rng.uniform(1.05, 1.15)
    pose = _Pose(rng.uniform(0, size, 2), rng.uniform(0, 2 * np.pi), rng.uniform(0.3, 0.7) * size, rng.random() < 0.5)
    canvas = np.zeros((size * SS, size * SS), np.uint8)
    _fill(canvas, [pose(outline)])
    outer = _coverage(canvas, size)
    inner = cv2.erode(outer, np.ones((3, 3), np.uint8), iterations=int(rng.integers(1, 4)))
    colour = _random_colour(rng, 10, 200) if rng.random() < 0.6 else np.full(3, rng.uniform(10, 60), np.float32)
    img = _over(img, _random_colour(rng, 150, 250), outer)  # the sole's rim
    opening = _ellipse(0.0, 0.15, 0.12, 0.2) * 1.0
    canvas[:] = 0
    _fill(canvas, [pose(opening)])
    img = _over(img, colour, inner)
    return _over(img, colour * 0.3, _coverage(canvas, size) * inner)


# ----------------------------------------------------------------------------------------------------------------
# one image


def render_sample(rng: np.random.Generator, size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic (image (size, size, 3) uint8 RGB, mask (size, size) uint8 in {0, 255})."""
    img = _floor(rng, size)
    length = rng.uniform(0.35, 0.85) * size
    centre = rng.uniform(0.2, 0.8, 2) * size
    angle = rng.uniform(0, 2 * np.pi)

    if rng.random() < 0.5:
        img = _paper(rng, size, centre + rng.normal(0, 0.1 * length, 2), img)
    for _ in range(rng.poisson(0.4)):
        img = _blob(rng, size, img)
    for _ in range(rng.poisson(0.3)):
        img = _shoe(rng, size, img)

    big = size * SS
    fg = np.zeros((big, big), np.uint8)  # foot, sock and leg: the mask
    sock_layer = np.zeros_like(fg)
    nails = np.zeros_like(fg)
    creases = np.zeros_like(fg)  # the lines between toes
    trousers = np.zeros_like(fg)
    sock = rng.random() < 0.2
    n_feet = 1 if rng.random() < 0.5 else 2
    side = np.array([np.cos(angle), np.sin(angle)])  # the foot's +x axis on the canvas
    first_mirror = rng.random() < 0.5
    trouser_at = rng.uniform(0.35, 1.2) if rng.random() < 0.35 else None
    for k in range(n_feet):
        mirror = first_mirror != (k == 1)
        offset = 0.0 if k == 0 else rng.uniform(0.35, 0.6) * length * (1 if mirror else -1)
        pose = _Pose(centre + side * offset, angle + rng.normal(0, 0.15) * k, length * rng.uniform(0.97, 1.03), mirror)
        body, toes, _ = _foot_shapes(rng, sock)
        leg, _ = _leg(rng, reach=3.0)
        polys = [pose(p) for p in [*body, *toes, leg]]
        _fill(nails, polys, 0)  # this foot hides the details of any foot under it
        _fill(creases, polys, 0)
        _fill(fg, polys)
        if not sock:  # toe outlines, only where the toes stick out in front of the sole
            lines = np.zeros_like(fg)
            cv2.polylines(lines, [pose(t).reshape(-1, 1, 2) for t in toes], True, 255, max(1, round(SS * size / 256)))
            _fill(lines, [pose(p) for p in body], 0)
            creases |= lines
        if sock:
            sock_len = rng.uniform(0.2, 0.9)
            cut = _leg_cut(leg, sock_len)
            _fill(sock_layer, [pose(p) for p in [*body, *toes, cut]])
        elif rng.random() < 0.8:
            _fill(nails, [pose(p) for p in _nails(rng)])
        if trouser_at is not None:
            _fill(trousers, [pose(_trouser(leg, trouser_at))])
    if trouser_at is not None:
        fg[trousers > 0] = 0
    if sock:
        sock_layer[fg == 0] = 0

    alpha = _coverage(fg, size)
    mask = (alpha >= 0.5).astype(np.uint8) * 255

    # contact shadow under the feet, offset away from the light
    shadow = cv2.GaussianBlur(alpha, (0, 0), rng.uniform(2, 8) * size / 256)
    shift = rng.normal(0, 0.03, 2) * size
    shadow = cv2.warpAffine(shadow, np.float32([[1, 0, shift[0]], [0, 1, shift[1]]]), (size, size))
    img = img * (1 - rng.uniform(0.25, 0.6) * shadow[..., None])

    # skin with soft shading: darker towards the silhouette edge, like a rounded limb
    dist = cv2.distanceTransform(mask, cv2.DIST_L2, 3)
    roundness = np.sqrt(np.clip(dist / (0.08 * length + 1e-6), 0, 1))
    light = (0.6 + 0.45 * roundness) * (0.9 + 0.2 * _noise(rng, size, 6))
    skin = _skin_colour(rng)[None, None, :] * light[..., None]
    skin *= 1 + 0.05 * (rng.random((size, size, 1)).astype(np.float32) - 0.5)
    img = _over(img, skin, alpha)
    img *= 1 - rng.uniform(0.15, 0.35) * (_coverage(creases, size) * alpha)[..., None]
    if nails.any():
        nail_colour = skin * 0.6 + np.array([235, 200, 200], np.float32) * 0.4
        if rng.random() < 0.2:  # painted nails
            nail_colour = np.broadcast_to(_random_colour(rng), skin.shape) * light[..., None]
        img = _over(img, nail_colour, _coverage(nails, size) * 0.85)
    if sock:
        u, _ = _coords(rng, size)
        ribs = 0.92 + 0.08 * np.sin(u * rng.uniform(0.5, 1.5))
        colour = _random_colour(rng, 20, 245) if rng.random() < 0.6 else np.full(3, rng.uniform(20, 245), np.float32)
        img = _over(img, colour * (light * ribs)[..., None], _coverage(sock_layer, size))
    if trouser_at is not None:
        tr = _coverage(trousers, size)
        denim = np.array([60, 80, 130], np.float32) if rng.random() < 0.5 else _random_colour(rng, 20, 200)
        img = _over(img, denim * (0.85 + 0.3 * _noise(rng, size, 20))[..., None], tr)

    # camera: a touch of blur and sensor noise
    img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 1.0))
    img = img + rng.normal(0, rng.uniform(1, 5), img.shape).astype(np.float32)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8), mask


def _leg_cut(leg: np.ndarray, fraction: float) -> np.ndarray:
    """The part of the leg band nearest the ankle, ``fraction`` foot lengths long (the sock's cuff)."""
    s0, s1 = (leg[0] + leg[3]) / 2, (leg[1] + leg[2]) / 2
    t = min(1.0, fraction / np.linalg.norm(s1 - s0))
    return np.array([leg[0], leg[0] + (leg[1] - leg[0]) * t, leg[3] + (leg[2] - leg[3]) * t, leg[3]])


def _trouser(leg: np.ndarray, start: float) -> np.ndarray:
    """A trouser leg covering the leg band from ``start`` foot lengths on, a little wider than the leg."""
    s0, s1 = (leg[0] + leg[3]) / 2, (leg[1] + leg[2]) / 2
    t = min(1.0, start / np.linalg.norm(s1 - s0))
    a, b = leg[0] + (leg[1] - leg[0]) * t, leg[3] + (leg[2] - leg[3]) * t
    mid, half = (a + b) / 2, (a - b) / 2 * 1.35
    far = s1 - s0
    return np.array([mid + half, mid + half + far * 1.5, mid - half + far * 1.5, mid - half])


# ----------------------------------------------------------------------------------------------------------------
# the dataset


def _write_one(folder: Path, stem: str, rng: np.random.Generator, size: int) -> None:
    image, mask = render_sample(rng, size)
    write_jpeg(folder / "images" / f"{stem}.jpg", image, quality=92)
    write_png(folder / "masks" / f"{stem}.png", mask)


def make_procedural_dataset(
    out: Path, n_train: int = 240, n_val: int = 40, n_test: int = 40, size: int = 256, seed: int = 0
) -> Path:
    """Write train/val/test splits of synthetic feet to ``out`` (JPEG images, PNG masks) and return ``out``.

    If ``out`` already holds a complete set made with the same settings it is reused as is.
    """
    out = Path(out)
    params = {"n_train": n_train, "n_val": n_val, "n_test": n_test, "size": size, "seed": seed, "version": 1}
    marker = out / _MARKER
    if marker.is_file():
        try:
            if json.loads(marker.read_text()) == params:
                return out
        except (OSError, json.JSONDecodeError):
            pass
    elif any((out / split).exists() for split in SPLIT_KEYS):
        # never delete a folder that this function did not write: it may be someone's real dataset
        raise FootsegError(f"holds a dataset not made by footseg (no {_MARKER}); choose another folder", out)
    marker.unlink(missing_ok=True)  # an interrupted rewrite must not look complete
    for split in SPLIT_KEYS:
        if (out / split).exists():
            shutil.rmtree(out / split)
    jobs = []
    for split, count in (("train", n_train), ("val", n_val), ("test", n_test)):
        folder = out / split
        (folder / "images").mkdir(parents=True, exist_ok=True)
        (folder / "masks").mkdir(parents=True, exist_ok=True)
        for i in range(count):
            rng = np.random.default_rng([seed, SPLIT_KEYS[split], i])
            jobs.append((folder, f"{split}_{i:05d}", rng, size))
    # numpy and OpenCV release the GIL in their heavy loops, so threads use both cores without pickling.
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda job: _write_one(*job), jobs))
    atomic_write_text(marker, json.dumps(params, indent=2) + "\n")
    return out

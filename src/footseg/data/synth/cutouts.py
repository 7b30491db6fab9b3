"""The thesis's own synthetic data: foreground photos with masks (as from a foot scanner) composited onto floors.

The background is a scene of the 3D mode rendered without a foot (``sample_scene`` with a foot model that makes no
meshes): the same phone camera, perspective, light, floor (procedural or photo), paper sheets and distractors. The
cutout is then pasted where the scene's feet would stand, at the size a 0.26 m foot has there (so floor texture and
foot agree in scale), rotated, maybe mirrored, and squashed by the phone frame's aspect like everything else. A
cutout whose mask runs into its photo's border (a leg cut off by the scanner's frame) is turned and pushed so that
the cut edge lies outside the output frame: the leg leaves the picture instead of ending in a straight line.

Colour: the foreground takes the tint of the scene's light (the floor's illuminant, which the renderer knows), then a
partial Lab statistics transfer towards the floor around it (mostly brightness, little chroma, so skin stays skin).
Shadows follow the renderer's floor shader: a contact shadow (the mask blurred by a few millimetres) and a cast
shadow (the mask offset away from the key light and blurred) remove ambient and key light from the floor. Edges get
a sub-pixel alpha blur; colours come from the premultiplied warp, so the cutout photo's own background never bleeds
in. The mask is the warped cutout mask thresholded at one half, the same warp as the pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from footseg.data.io import IMAGE_HINT, MASK_EXTENSION, read_image, read_mask
from footseg.data.samples import find_samples
from footseg.data.synth.floors import by_split
from footseg.data.synth.foot import FootPose
from footseg.data.synth.mesh import Mesh
from footseg.data.synth.render import look_at, perspective
from footseg.data.synth.scene import Scene
from footseg.errors import FootsegError, require_folder

FOOT_LENGTH = 0.26  # metres: the size a cutout foot is given in the scene


@dataclass(frozen=True)
class Cutout:
    image: str
    mask: str


def _cutouts_in(folder: Path) -> list[Cutout]:
    cutouts = []
    for smp in find_samples(folder):
        if smp.mask is None:
            raise FootsegError(f"cutout image without a mask (expected masks/{smp.stem}{MASK_EXTENSION})", smp.image)
        cutouts.append(Cutout(str(smp.image), str(smp.mask)))
    return cutouts


def list_cutouts(folder: str | Path) -> dict[str, list[Cutout]]:
    """Cutouts of each split, sorted. ``folder`` is a dataset folder (``images/`` + ``masks/``, partitioned by a
    crc32 of each image's relative path) or has ``train/``, ``val/``, ``test/`` dataset folders (kept as given)."""
    root = Path(folder)
    require_folder(root, "cutout folder")
    out = by_split(root, _cutouts_in, lambda c: Path(c.image))
    if not any(out.values()):
        raise FootsegError(f"no cutouts found (expected images/<stem>.{IMAGE_HINT} with masks/<stem>.png)", root)
    return out


@dataclass
class CutoutData:
    """A loaded cutout, cropped to its mask: RGB float32 in [0, 1], mask float32 in [0, 1] (soft after shrinking),
    and the border the mask was cut off at: outward normal and two end points (crop pixels), or None."""

    image: np.ndarray
    mask: np.ndarray
    cut_normal: np.ndarray | None
    cut_ends: np.ndarray | None
    length: float  # long side of the mask's minimum-area rectangle, pixels
    area: float  # mask pixels


def load_cutout(c: Cutout, max_side: int) -> CutoutData:
    image = read_image(c.image)
    mask = read_mask(c.mask) > 0
    if mask.shape != image.shape[:2]:
        raise FootsegError(f"mask size {mask.shape[1]}x{mask.shape[0]} differs from its image's "
                           f"{image.shape[1]}x{image.shape[0]}", c.mask)
    if not mask.any():
        raise FootsegError("empty mask: no foreground pixel to cut out", c.mask)
    h, w = mask.shape
    # the border the mask touches most, if it touches one for real (more than a few pixels)
    sides = [(mask[0].sum(), (0.0, -1.0), np.flatnonzero(mask[0]), "x", 0),
             (mask[-1].sum(), (0.0, 1.0), np.flatnonzero(mask[-1]), "x", h - 1),
             (mask[:, 0].sum(), (-1.0, 0.0), np.flatnonzero(mask[:, 0]), "y", 0),
             (mask[:, -1].sum(), (1.0, 0.0), np.flatnonzero(mask[:, -1]), "y", w - 1)]
    count, normal, idx, axis, at = max(sides, key=lambda t: t[0])
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    cut_normal = cut_ends = None
    if count >= max(3, 0.03 * (w if axis == "x" else h)):
        cut_normal = np.array(normal)
        ends = [(idx.min(), at), (idx.max(), at)] if axis == "x" else [(at, idx.min()), (at, idx.max())]
        cut_ends = np.array(ends, np.float64) - [x0, y0]
    image = image[y0:y1, x0:x1]
    mask_f = mask[y0:y1, x0:x1].astype(np.float32)
    k = min(1.0, max_side / max(image.shape[:2]))
    if k < 1.0:
        size = (max(1, round(image.shape[1] * k)), max(1, round(image.shape[0] * k)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        mask_f = cv2.resize(mask_f, size, interpolation=cv2.INTER_AREA)
        if cut_ends is not None:
            cut_ends = (cut_ends + 0.5) * k - 0.5
    pts = np.column_stack(np.nonzero(mask_f >= 0.5)[::-1]).astype(np.float32)
    length = float(max(cv2.minAreaRect(pts)[1])) + 1.0 if len(pts) >= 3 else float(max(mask_f.shape))
    return CutoutData(image.astype(np.float32) / 255.0, mask_f, cut_normal, cut_ends, length, float(mask_f.sum()))


def no_foot(pose: FootPose, rng: np.random.Generator) -> list[Mesh]:
    """A foot model that makes no meshes: the 3D scene around the cutout, without a foot of its own."""
    return []


class _Camera:
    """World -> phone-frame pixels (square pixels: width ``size * aspect``, height ``size``)."""

    def __init__(self, scene: Scene):
        self.aspect = scene.aspect or scene.width / scene.height
        self.h = float(scene.height)
        self.w = self.h * self.aspect
        self.m = perspective(scene.fovy, self.aspect, 0.02, 40.0) @ look_at(scene.eye, scene.target, scene.up)

    def __call__(self, p: np.ndarray) -> np.ndarray | None:
        q = self.m @ np.array([p[0], p[1], p[2], 1.0])
        if q[3] <= 1e-6:
            return None
        return np.array([(q[0] / q[3] + 1) / 2 * self.w, (1 - q[1] / q[3]) / 2 * self.h])


def _rot(a: float) -> np.ndarray:
    return np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])


def _exit_distance(q: np.ndarray, d: np.ndarray, w: float, h: float) -> float:
    """How far point ``q`` must move along unit ``d`` to leave the box [0, w] x [0, h] (0 if already out)."""
    if not (0 <= q[0] <= w and 0 <= q[1] <= h):
        return 0.0
    t = np.inf
    for k, hi in ((0, w), (1, h)):
        if d[k] > 1e-9:
            t = min(t, (hi - q[k]) / d[k])
        elif d[k] < -1e-9:
            t = min(t, -q[k] / d[k])
    return float(t)


def _lab_stats(rgb: np.ndarray, where: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)[where]
    return lab.mean(0), lab.std(0) + 1e-3


def composite(rng: np.random.Generator, background: np.ndarray, scene: Scene,
              cut: CutoutData) -> tuple[np.ndarray, np.ndarray]:
    """Paste ``cut`` into the rendered ``background`` of ``scene``: (image (H, W, 3) uint8, mask (H, W) uint8)."""
    out_h, out_w = background.shape[:2]
    cam = _Camera(scene)
    center = np.array([*scene.shadow_center[:2], 0.0])  # where the scene's feet would stand
    c = cam(center)
    view = scene.target - scene.eye
    side = np.cross(view, [0.0, 0.0, 1.0])
    side /= max(float(np.linalg.norm(side)), 1e-9)
    tip = cam(center + FOOT_LENGTH * side)
    if c is None or tip is None or not np.isfinite(c).all():
        c, foot_px = np.array([cam.w / 2, cam.h / 2]), 0.4 * cam.h
    else:
        foot_px = float(np.clip(np.linalg.norm(tip - c), 0.05 * cam.h, 2.0 * cam.h))
    px_per_m = foot_px / FOOT_LENGTH

    # geometry: mirror, turn, scale (phone-frame pixels), place; the cut edge of a leg goes out of the frame
    flip = np.diag([-1.0, 1.0]) if rng.random() < 0.5 else np.eye(2)
    if cut.cut_normal is not None:
        d0 = flip @ cut.cut_normal
        psi = np.pi / 2 + rng.normal(0, 0.45) if rng.random() < 0.7 else rng.uniform(0, 2 * np.pi)  # legs: mostly
        theta = psi - np.arctan2(d0[1], d0[0])  # from the bottom, towards the phone
    else:
        theta = rng.uniform(0, 2 * np.pi)
    scale = foot_px * float(np.exp(rng.normal(0.1, 0.3))) / cut.length
    frame_area = cam.w * cam.h
    scale = float(np.clip(scale, np.sqrt(0.015 * frame_area / cut.area), np.sqrt(0.8 * frame_area / cut.area)))
    lin = scale * _rot(theta) @ flip
    ys, xs = np.nonzero(cut.mask >= 0.5)
    anchor = np.array([xs.mean(), ys.mean()]) if len(xs) else np.array(cut.mask.shape[::-1]) / 2
    squash = np.diag([1.0 / cam.aspect, 1.0])
    k = min(1.0, 1.25 * scale * max(1.0, 1.0 / cam.aspect))  # shrink the source first, warp the rest
    src_img, src_mask = cut.image, cut.mask
    if k < 0.999:
        size = (max(1, round(src_img.shape[1] * k)), max(1, round(src_img.shape[0] * k)))
        src_img = cv2.resize(src_img, size, interpolation=cv2.INTER_AREA)
        src_mask = cv2.resize(src_mask, size, interpolation=cv2.INTER_AREA)
        k_x, k_y = size[0] / cut.image.shape[1], size[1] / cut.image.shape[0]
    else:
        k_x = k_y = 1.0
    unshrink = np.array([[1.0 / k_x, 0.0, 0.5 / k_x - 0.5], [0.0, 1.0 / k_y, 0.5 / k_y - 0.5], [0, 0, 1]])
    best = None
    for _ in range(6):
        t = c + rng.normal(0, 0.12, 2) * [cam.w, cam.h]
        t = np.clip(t, [0.1 * cam.w, 0.1 * cam.h], [0.9 * cam.w, 0.9 * cam.h])
        if cut.cut_normal is not None:
            d = lin @ cut.cut_normal
            d /= np.linalg.norm(d)
            ends = [lin @ (e - anchor) + t for e in (cut.cut_ends[0] + a * (cut.cut_ends[1] - cut.cut_ends[0])
                                                       for a in np.linspace(0, 1, 5))]
            t = t + d * (max(_exit_distance(q, d, cam.w, cam.h) for q in ends) + 2.0)
        a_phone = np.eye(3)
        a_phone[:2, :2], a_phone[:2, 2] = lin, t - lin @ anchor
        a_out = np.eye(3)
        a_out[:2] = squash @ a_phone[:2]
        m = (a_out @ unshrink)[:2]
        warped = cv2.warpAffine(src_mask, m, (out_w, out_h), flags=cv2.INTER_LINEAR, borderValue=0)
        visible = float((warped >= 0.5).sum())
        total = cut.area * scale * scale / cam.aspect
        good = visible >= 0.004 * out_w * out_h and (cut.cut_normal is not None or visible >= 0.5 * total)
        if best is None or visible > best[0]:
            best = (visible, m, warped)
        if good:
            best = (visible, m, warped)
            break
    assert best is not None
    _, m, alpha_hard = best
    label = alpha_hard >= 0.5

    # colour: the scene light's tint, then a partial Lab transfer towards the floor around the foot
    diff = max(float(scene.light_dir[2]), 0.0)
    illum = np.asarray(scene.ambient, np.float64) + np.asarray(scene.light_color, np.float64) * diff
    gains = (illum / illum.mean()) ** rng.uniform(0.5, 1.0)
    fg = np.clip(src_img * gains.astype(np.float32), 0, 1)
    src_on = src_mask >= 0.5
    bg = background.astype(np.float32) / 255.0
    if src_on.sum() >= 4:
        reach = max(3, int(0.08 * foot_px))
        ring = cv2.dilate(label.astype(np.uint8), np.ones((2 * reach + 1, 2 * reach + 1), np.uint8)) > 0
        ring &= ~label
        if ring.sum() < 50:
            ring = ~label if (~label).sum() >= 50 else np.ones_like(label)
        mb, sb = _lab_stats(bg, ring)
        mf, sf = _lab_stats(fg, src_on)
        lab = cv2.cvtColor(fg, cv2.COLOR_RGB2Lab)
        contrast = float(np.clip((sb[0] / sf[0]) ** rng.uniform(0.0, 0.3), 0.75, 1.33))
        lab[..., 0] = mf[0] + (lab[..., 0] - mf[0]) * contrast + rng.uniform(0.15, 0.5) * (mb[0] - mf[0])
        lab[..., 1:] += rng.uniform(0.0, 0.15) * (mb[1:] - mf[1:])
        lab[..., 0] = np.clip(lab[..., 0], 0, 100)
        fg = np.clip(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB), 0, 1)

    # shadows on the floor, as the renderer's floor shader darkens it
    s_contact, s_cast = (float(x) for x in scene.shadow_strength)
    if s_contact > 0 or s_cast > 0:
        sigma_c = max(0.7, 0.006 * px_per_m * rng.uniform(0.6, 1.6))
        contact = cv2.GaussianBlur(alpha_hard, (0, 0), sigma_c) * s_contact
        ld = np.asarray(scene.light_dir, np.float64)
        height = rng.uniform(0.02, 0.07)
        drop = cam(center - height * np.array([ld[0], ld[1], 0.0]) / max(ld[2], 0.2))
        off = np.zeros(2) if drop is None else np.clip(drop - c, -0.6 * foot_px, 0.6 * foot_px)
        shift = np.array([[1.0, 0.0, off[0] / cam.aspect], [0.0, 1.0, off[1]]])
        cast = cv2.warpAffine(alpha_hard, shift, (out_w, out_h), flags=cv2.INTER_LINEAR, borderValue=0)
        cast = cv2.GaussianBlur(cast, (0, 0), max(1.0, scene.shadow_blur * px_per_m)) * s_cast
        amb = np.asarray(scene.ambient, np.float32)
        key = np.asarray(scene.light_color, np.float32) * diff
        cc, ss = contact[..., None], cast[..., None]
        shade = (amb * (1 - cc) + key * (1 - ss) * (1 - 0.6 * cc)) / np.maximum(amb + key, 1e-4)
        bg = bg * shade

    # premultiplied warp (the cutout photo's own background never bleeds in), sub-pixel feathered edge
    pre = cv2.warpAffine(fg * src_mask[..., None], m, (out_w, out_h), flags=cv2.INTER_LINEAR, borderValue=0)
    feather = rng.uniform(0.3, 0.9)
    alpha = cv2.GaussianBlur(alpha_hard, (0, 0), feather)
    pre_b = cv2.GaussianBlur(pre, (0, 0), feather)
    colour = np.where(alpha_hard[..., None] >= 0.5, pre / np.maximum(alpha_hard, 1e-4)[..., None],
                      pre_b / np.maximum(alpha, 1e-4)[..., None])
    a = alpha[..., None]
    image = np.clip(colour, 0, 1) * a + bg * (1 - a)
    image = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return image, np.where(label, 255, 0).astype(np.uint8)

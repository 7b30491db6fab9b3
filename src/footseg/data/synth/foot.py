"""The project's parametric foot: heel, arch, ball, five toes with nails, ankle and lower leg, as numpy meshes.

A foot is built in a local frame (metres; x forward from the back of the heel, y to the left, z up; a left foot,
big toe on -y) from a ``FootShape`` (the person: sizes, proportions, skin) and a ``FootPose`` (this photo: heel
raise, leg lean, clothing). The body is a swept superellipse with a flat sole and a medial arch, the leg an
elliptic tube (ankle, calf bulge) rising from inside the body, each toe a tapered tube bending down to the floor
with its nail coloured on the vertices of its tip. Bending (heel raise, leg lean) blends rotations per vertex so
joints stay closed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from footseg.data.synth.mesh import Mesh, grid_mesh, rotation_x, rotation_y, tube_grid

# Material slots understood by the renderer's mesh shader (see render.py).
MAT_SKIN, MAT_SOCK, MAT_TROUSER = 0.0, 1.0, 2.0

SOCK_PROB = 0.15  # share of feet in socks (labelled foot) unless a render says otherwise
# Share of poses that draw a sock height, whatever share wears one: part of what a seed renders, so it never changes.
_SOCK_DRAWN = 0.15

# Skin tones from Fitzpatrick I to VI (sRGB, 0..1), interpolated with jitter.
_SKIN = np.array([[0.96, 0.82, 0.74], [0.91, 0.73, 0.62], [0.83, 0.62, 0.48], [0.68, 0.47, 0.33],
                  [0.48, 0.31, 0.21], [0.30, 0.19, 0.13]])


def sample_skin(rng: np.random.Generator) -> np.ndarray:
    t = rng.uniform(0, len(_SKIN) - 1)
    k = min(int(t), len(_SKIN) - 2)
    c = _SKIN[k] * (1 - (t - k)) + _SKIN[k + 1] * (t - k)
    c = c * rng.uniform(0.92, 1.08) + rng.normal(0, 0.02, 3)
    return np.clip(c, 0.05, 1.0)


@dataclass
class FootShape:
    """One person's feet (both feet of an image share it): the identity partitioned across splits."""

    length: float
    width: float
    instep: float  # top height of the instep, fraction of length
    arch: float  # medial arch lift (m)
    toe_tips: np.ndarray  # (5,) how far back each toe tip sits, fraction of length (big toe first)
    toe_radius: np.ndarray  # (5,) m
    toe_curl: float
    ankle_r: float
    calf_r: float
    skin: np.ndarray  # (3,)
    redness: float
    nail: np.ndarray  # (3,)

    @staticmethod
    def sample(rng: np.random.Generator) -> FootShape:
        length = float(np.clip(rng.normal(0.255, 0.02), 0.2, 0.3)) if rng.random() > 0.08 else rng.uniform(0.15, 0.2)
        s = length / 0.255
        kind = rng.choice(3, p=[0.55, 0.25, 0.2])  # Egyptian, Greek, square toe lines
        base = {0: [0.0, 0.02, 0.05, 0.09, 0.14], 1: [0.015, 0.0, 0.04, 0.085, 0.135],
                2: [0.0, 0.008, 0.025, 0.07, 0.12]}[int(kind)]
        tips = np.asarray(base) + rng.normal(0, 0.006, 5)
        radius = np.array([0.0115, 0.0078, 0.0074, 0.007, 0.0066]) * s * rng.uniform(0.88, 1.15)
        skin = sample_skin(rng)
        painted = rng.random() < 0.15
        nail = rng.uniform(0.1, 0.9, 3) if painted else np.clip(skin * [1.08, 0.98, 0.98] + 0.12, 0, 1)
        return FootShape(length=length, width=length * rng.uniform(0.35, 0.42), instep=rng.uniform(0.21, 0.28),
                         arch=rng.uniform(0.0, 0.018) * s, toe_tips=tips, toe_radius=radius,
                         toe_curl=rng.uniform(0, 0.006) * s, ankle_r=rng.uniform(0.029, 0.036) * s,
                         calf_r=rng.uniform(0.043, 0.062) * s, skin=skin, redness=rng.uniform(0.0, 0.35),
                         nail=nail)


@dataclass
class FootPose:
    """How the foot stands in this picture and what it wears."""

    heel_raise: float  # radians, about the ball
    lean_forward: float  # radians, leg about the ankle
    lean_side: float
    leg_height: float  # m, top of the modelled leg
    sock_height: float  # m; 0 = bare foot
    trouser_hem: float  # m above floor; inf = no trousers
    trouser_gap: float  # m between leg and cloth
    trouser_flare: float

    @staticmethod
    def sample(rng: np.random.Generator, seated: bool = False, clothes: bool = True,
               sock_prob: float = SOCK_PROB) -> FootPose:
        """A standing pose, or with ``seated`` a foot flat on the floor whose shin slopes back 25-60 degrees, towards
        the chair: the leg then lies across the floor in the photo, as in real photos taken sitting down. Without
        ``clothes`` the foot is bare and the leg too (no sock, no trousers), from the same draws as with them.
        ``sock_prob`` is the share of feet in socks; up to the default's 0.15 the other draws stay those of the
        default, so a render with fewer socks shows the same scenes with some socks taken off."""
        raise_ = 0.0 if rng.random() < 0.7 or seated else rng.uniform(0.08, 0.6)
        sock = 0.0
        u = rng.random()
        if u < max(sock_prob, _SOCK_DRAWN):
            height = float(rng.choice([rng.uniform(0.05, 0.09), rng.uniform(0.1, 0.25), rng.uniform(0.3, 0.42)]))
            if u < sock_prob:
                sock = height
        # trousers (hem near the ankle), shorts/skirt, or a bare leg
        u = rng.random()
        hem = rng.uniform(0.07, 0.3) if u < 0.25 else (rng.uniform(0.02, 0.07) if u < 0.3 else rng.uniform(0.3, 0.65))
        if rng.random() < 0.5:
            hem = np.inf  # bare to mid-thigh: the leg leaves the frame, as in most real photos
        if not clothes:
            sock, hem = 0.0, np.inf
        lean = rng.uniform(-0.25, 0.35) + 0.8 * raise_
        if seated:
            lean = -rng.uniform(0.45, 1.05)
        return FootPose(heel_raise=raise_, lean_forward=lean,
                        lean_side=rng.uniform(-0.15, 0.15), leg_height=_LEG_TOP,
                        sock_height=sock, trouser_hem=hem, trouser_gap=rng.uniform(0.008, 0.05),
                        trouser_flare=rng.uniform(0.0, 0.025))


def _interp(u: np.ndarray, knots: list[float], values: list[float]) -> np.ndarray:
    return np.interp(u, knots, values)


def _cap(u: np.ndarray, start: float, end: float) -> np.ndarray:
    """1 in the middle, falling to 0 like a circle towards u = 0 and u = 1 (rounded ends)."""
    a = np.clip(u / start, 0, 1)
    b = np.clip((1 - u) / end, 0, 1)
    return np.sqrt(1 - (1 - a) ** 2) * np.sqrt(1 - (1 - b) ** 2)


def _skin_colors(shape: FootShape, pts: np.ndarray, red: np.ndarray, rng_phase: np.ndarray) -> np.ndarray:
    """Skin with redder regions (``red`` in 0..1 per vertex) and a low-frequency mottle."""
    base = shape.skin[None, :]
    reddish = base * np.array([1.05, 0.82, 0.8])
    c = base + (reddish - base) * (shape.redness * red)[:, None]
    mottle = np.sin(pts @ rng_phase[:3] * 60 + rng_phase[3]) * np.sin(pts @ rng_phase[4:7] * 90)
    return np.clip(c * (1 + 0.035 * mottle[:, None]), 0, 1)


def _body(shape: FootShape, nu: int = 44, nv: int = 36) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    L, W = shape.length, shape.width
    lb = 0.8 * L
    u = np.linspace(0, 1, nu)[:, None]
    v = np.linspace(0, 2 * np.pi, nv, endpoint=False)[None, :]
    x = u * lb
    yc = -0.03 * L * u
    half = _interp(u, [0, 0.2, 0.5, 0.8, 1], [0.3, 0.32, 0.36, 0.5, 0.47]) * W
    top = _interp(u, [0, 0.12, 0.3, 0.55, 0.82, 1], [0.6, 0.85, 1.0, 0.78, 0.5, 0.42]) * shape.instep * L
    cs, sn = np.cos(v), np.sin(v)
    sn_shaped = np.where(sn < 0, -np.abs(sn) ** 0.35, sn)  # flat sole, round top
    cs_shaped = np.sign(cs) * np.abs(cs) ** 0.8
    medial = np.clip(-cs, 0, 1)  # the arch lifts the medial edge (-y) of the sole
    bottom = shape.arch * np.exp(-(((u - 0.48) / 0.17) ** 2)) * medial ** 1.5
    z = bottom + (top - bottom) * (0.5 + 0.5 * sn_shaped)
    cap = _cap(u, 0.13, 0.08)
    zc = 0.45 * top
    y = yc + half * cs_shaped * cap
    z = zc + (z - zc) * cap ** 0.6
    x = x - 0.015 * L * (1 - cap) * np.sign(0.5 - u)  # pull the rounded ends outwards a bit
    grid = np.stack(np.broadcast_arrays(x, y, z), -1)
    red = (np.exp(-((u / 0.15) ** 2)) + 0.6 * np.exp(-(((u - 0.92) / 0.1) ** 2))) * np.ones_like(v)
    sole = (sn < -0.5) * np.ones_like(u)
    return grid, red, sole


_LEG_TOP = 0.9  # the leg is modelled up to mid-thigh once per identity; a pose keeps the rows below its leg height


def _leg(shape: FootShape, nu: int = 44, nv: int = 32) -> tuple[np.ndarray, np.ndarray]:
    L = shape.length
    h = np.linspace(0.02, _LEG_TOP, nu)
    ax = 0.2 * L
    s = L / 0.255
    ry = _interp(h, [0.02, 0.07, 0.13, 0.3, 0.45, 0.62], [1.25, 1.1, 0.9, 1.0, 1.0, 1.0]) * shape.ankle_r
    ry = np.maximum(ry, shape.calf_r * np.exp(-(((h - 0.3 * s) / (0.13 * s)) ** 2)))
    thigh = _interp(h / s, [0.3, 0.5, 0.62, 0.9], [0.8, 0.8, 1.1, 1.5])  # knee, then the thigh widens
    ry = np.maximum(ry, shape.calf_r * np.where(h > 0.3 * s, thigh, 0))
    rx = _interp(h, [0.02, 0.06, 0.13, 0.3, 0.5], [1.7, 1.35, 1.05, 1.1, 1.0]) * ry
    cx = ax - 0.2 * _interp(h, [0.02, 0.1, 0.3], [0.5, 0.2, 0.25]) * rx
    centers = np.stack([cx, np.full_like(h, -0.02 * L), h], 1)
    grid = tube_grid(centers, ry, rx, nv, up_hint=(1.0, 0.0, 0.0))
    return grid, h


def _toe(shape: FootShape, k: int, nu: int = 16, nv: int = 14) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    L, W = shape.length, shape.width
    r = shape.toe_radius[k]
    y = -0.03 * L + np.array([-0.29, -0.07, 0.08, 0.22, 0.35])[k] * W
    tip = L * (1 - shape.toe_tips[k]) - (0.0 if k == 0 else 0.01 * L)
    start = 0.68 * L + 0.02 * L * (k == 0) - 0.04 * L * (k / 4)
    t = np.linspace(0, 1, nu)
    x = start + (tip - start) * t
    z0 = 0.42 * shape.instep * L * (0.9 - 0.25 * k / 4)
    z = z0 + (r * 0.85 - z0) * np.sin(t * np.pi / 2) + shape.toe_curl * np.sin(t * np.pi) * (k > 0)
    yy = y + (t * 0.012 * L * (k - 1.5) / 2.5)  # toes fan out slightly
    centers = np.stack([x, yy, z], 1)
    prof = np.sqrt(np.clip(1 - ((t - 0.72) / 0.28).clip(0, 1) ** 2, 0, 1))
    ra = r * (1.2 + 0.3 * (1 - t)) * prof + 1e-4
    rb = r * 0.85 * prof + 1e-4
    grid = tube_grid(centers, ra, rb, nv)
    v = np.linspace(0, 2 * np.pi, nv, endpoint=False)
    nail = (t[:, None] > 0.6) & (t[:, None] < 0.97) & (np.sin(v)[None, :] > 0.45)
    return grid, nail, np.broadcast_to(t[:, None], (nu, nv))


def _capped(grid: np.ndarray) -> np.ndarray:
    """Close the open last ring of a tube with its centre (the top of a cut leg, seen from above)."""
    return np.concatenate([grid, grid[-1:].mean(axis=1, keepdims=True).repeat(grid.shape[1], 1)])


class ParametricFoot:
    """A person's left foot: rest-pose geometry and colours built once, posed per image by ``__call__``."""

    def __init__(self, shape: FootShape, rng: np.random.Generator):
        self.shape = shape
        L = shape.length
        phase = rng.normal(0, 1, 7)
        self.body, red, sole = _body(shape)
        c = _skin_colors(shape, self.body.reshape(-1, 3), red.reshape(-1), phase).reshape(self.body.shape)
        dark = float(np.clip(1.2 - shape.skin.mean() * 1.6, 0, 1))  # darker skin: markedly paler soles
        self.body_col = c + (np.array([0.85, 0.7, 0.62]) - c) * (0.45 * dark * sole)[..., None]
        self.leg, self.heights = _leg(shape)
        red_leg = np.exp(-(((self.heights - 0.04) / 0.04) ** 2)).repeat(self.leg.shape[1]) * 0.5
        self.leg_col = _skin_colors(shape, self.leg.reshape(-1, 3), red_leg, phase).reshape(self.leg.shape)
        self.toes = []
        for k in range(5):
            toe, nail, t = _toe(shape, k)
            tc = _skin_colors(shape, toe.reshape(-1, 3), 0.7 * np.ones(toe.size // 3), phase).reshape(toe.shape)
            nailed = np.where(nail[..., None], shape.nail[None, None, :] * 0.9 + tc * 0.1, tc)
            self.toes.append((toe, tc, nailed, 1.0 - np.clip(t * 1.6, 0, 1)))
        self.pivot = np.array([0.7 * L, 0.0, 0.0])
        self.ankle = np.array([0.2 * L, -0.02 * L, 0.06])

    def __call__(self, pose: FootPose, rng: np.random.Generator) -> list[Mesh]:
        """Meshes of the posed foot + leg (label 1) and trousers (label 0) in the local frame."""
        r_heel = rotation_y(-pose.heel_raise)  # heel up: the body turns about the ball
        lean = rotation_y(pose.lean_forward) @ rotation_x(pose.lean_side)
        pivot = self.pivot

        def raise_points(p: np.ndarray, weight: np.ndarray | float) -> np.ndarray:
            q = (p - pivot) @ r_heel.T + pivot
            return p + (q - p) * (weight[..., None] if isinstance(weight, np.ndarray) else weight)

        sock = pose.sock_height > 0
        parts = [_textured(grid_mesh(raise_points(self.body, 1.0), self.body_col, MAT_SOCK if sock else MAT_SKIN,
                                     1.0), self.body)]
        rows = max(int(np.searchsorted(self.heights, pose.leg_height)), 4)
        leg, heights = self.leg[:rows], self.heights[:rows]
        w_lean = np.clip((heights - 0.04) / 0.1, 0, 1)[:, None, None]
        leg_lean = (leg - self.ankle) @ lean.T + self.ankle
        leg_posed = raise_points(leg + (leg_lean - leg) * w_lean, 1.0)
        leg_mat = np.where(heights[:, None] < pose.sock_height, MAT_SOCK, MAT_SKIN) * np.ones(leg.shape[:2])
        capped = _capped(leg_posed)
        leg_mat = np.concatenate([leg_mat, leg_mat[-1:]])
        parts.append(_textured(grid_mesh(capped, np.concatenate([self.leg_col[:rows], self.leg_col[rows - 1:rows]]),
                                         leg_mat, 1.0), _capped(leg)))
        for toe, tc, nailed, weight in self.toes:
            parts.append(_textured(grid_mesh(raise_points(toe, weight), tc if sock else nailed,
                                             MAT_SOCK if sock else MAT_SKIN, 1.0), toe))
        if np.isfinite(pose.trouser_hem) and pose.trouser_hem < pose.leg_height - 0.03:
            parts.append(_trousers(pose, leg, heights, leg_posed))
        return parts


def _textured(mesh: Mesh, rest: np.ndarray) -> Mesh:
    mesh.pattern = rest.reshape(-1, 3).astype(np.float32)
    return mesh


def _trousers(pose: FootPose, leg: np.ndarray, heights: np.ndarray, leg_posed: np.ndarray) -> Mesh:
    """A cloth tube around the posed leg from the hem up, a little wider than the leg and flared at the hem."""
    keep = heights >= pose.trouser_hem - 1e-9  # the cloth goes one row above the leg's cut so their caps never meet
    first = max(int(np.argmax(keep)) - 1, 0)
    sel = slice(first, None)
    ring = leg_posed[sel]
    centre = ring.mean(axis=1, keepdims=True)
    h = heights[sel]
    grow = pose.trouser_gap + pose.trouser_flare * np.clip(1 - (h - h[0]) / 0.12, 0, 1)
    radius = np.linalg.norm(ring - centre, axis=-1, keepdims=True)
    grid = centre + (ring - centre) * (1 + grow[:, None, None] / np.maximum(radius, 1e-3))
    grid = grid.copy()
    grid[0, :, 2] = grid[1, :, 2] - 0.002  # a clean hem edge at the requested height
    grid[-1] = centre[-1] + (grid[-1] - centre[-1]) * 1.05 + np.array([0, 0, 0.01])
    colors = np.ones((*grid.shape[:2], 3))  # the trouser material supplies colour
    grid = _capped(grid)
    return _textured(grid_mesh(grid, np.concatenate([colors, colors[-1:]]), MAT_TROUSER, 0.0), _capped(leg[sel]))

"""Things on the floor that are not feet (all label 0): paper sheets, rugs and mats (flat surfaces), cables, empty
shoes and slippers, boxes, and skin- or sock-coloured objects, so that "something on the floor" never means "foot".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from footseg.data.synth.floors import CONCRETE, Surface, procedural_floor, random_color
from footseg.data.synth.foot import FootShape, _body, sample_skin
from footseg.data.synth.mesh import Mesh, box_mesh, grid_mesh, merge, rotation_z, tube_grid

# Material slots for distractors (the renderer's 8 slots; 0-2 belong to the feet).
MAT_PLAIN, MAT_PAPER, MAT_PATTERN, MAT_SKINLIKE, MAT_SOCKLIKE = 3.0, 4.0, 5.0, 6.0, 7.0


@dataclass
class SurfaceQuad:
    surface: Surface
    corners: np.ndarray  # (4, 3) in triangle-strip order
    normal: np.ndarray
    shadowed: bool = True
    what: str = ""  # "paper", "wall": what the quad shows, for checks of a scene (the renderer ignores it)


def flat_quad(center: np.ndarray, size: tuple[float, float], angle: float, z: float, surface: Surface) -> SurfaceQuad:
    hx, hy = size[0] / 2, size[1] / 2
    local = np.array([[-hx, -hy, 0], [hx, -hy, 0], [-hx, hy, 0], [hx, hy, 0]])
    corners = local @ rotation_z(angle).T + np.array([center[0], center[1], z])
    return SurfaceQuad(surface, corners.astype(np.float32), np.array([0.0, 0.0, 1.0], np.float32))


def paper_sheet(rng: np.random.Generator, center: np.ndarray, angle: float, z: float) -> SurfaceQuad:
    """A4 most of the time (the real photos have feet standing on one), sometimes letter or A3."""
    size = [(0.21, 0.297), (0.216, 0.279), (0.297, 0.42)][int(rng.choice(3, p=[0.75, 0.1, 0.15]))]
    white = rng.uniform(0.86, 1.0) * np.array([1.0, 1.0, 1.0]) + rng.normal(0, 0.015, 3)
    p = np.zeros(8, np.float32)
    p[:2] = [rng.uniform(2, 8), 0.0]
    colors = np.stack([np.clip(white, 0, 1)] * 3).astype(np.float32)
    surf = Surface(CONCRETE, p, colors, angle=float(rng.uniform(0, 6)), offset=tuple(rng.uniform(-9, 9, 2)),
                   gloss=float(rng.uniform(0, 0.15)))
    quad = flat_quad(center, size, angle, z, surf)
    quad.what = "paper"
    return quad


def rug(rng: np.random.Generator, center: np.ndarray, z: float) -> SurfaceQuad:
    surf = procedural_floor(rng)
    size = (rng.uniform(0.4, 2.0), rng.uniform(0.4, 1.6))
    return flat_quad(center, size, float(rng.uniform(0, np.pi)), z, surf)


def _ellipsoid(r: tuple[float, float, float], nu: int = 14, nv: int = 14) -> np.ndarray:
    t = np.linspace(-1, 1, nu)
    prof = np.sqrt(np.clip(1 - t**2, 0, 1)) + 1e-4
    centers = np.stack([t * r[0], np.zeros(nu), np.full(nu, r[2])], 1)
    return tube_grid(centers, prof * r[1], prof * r[2], nv)


def cable(rng: np.random.Generator) -> Mesh:
    n = 40
    t = np.linspace(0, 1, n)
    length = rng.uniform(0.4, 1.5)
    k = rng.normal(0, 1, 4)
    x = t * length
    y = 0.08 * (k[0] * np.sin(t * 3 + k[1]) + k[2] * np.sin(t * 7 + k[3]))
    r = rng.uniform(0.002, 0.005)
    centers = np.stack([x - length / 2, y, np.full(n, r)], 1)
    color = random_color(rng) if rng.random() < 0.5 else np.full(3, rng.choice([0.05, 0.9]))
    return grid_mesh(tube_grid(centers, np.full(n, r), np.full(n, r), 8), color, MAT_PLAIN, 0.0)


def shoe(rng: np.random.Generator) -> Mesh:
    """An empty shoe: a foot-like body, wider, on a sole, with the dark opening on top."""
    shape = FootShape.sample(rng)
    grid, _, _sole = _body(shape, nu=28, nv=22)
    grid = grid * np.array([1.12, 1.15, 1.0]) + np.array([0, 0, 0.012])
    u = np.linspace(0, 1, grid.shape[0])[:, None]
    sn = np.sin(np.linspace(0, 2 * np.pi, grid.shape[1], endpoint=False))[None, :]
    base = random_color(rng)
    color = np.broadcast_to(base, grid.shape).copy()
    opening = (u < 0.45) & (sn > 0.6)
    color[opening] = base * 0.15
    upper = grid_mesh(grid, color, MAT_PLAIN, 0.0)
    sole_box = box_mesh((shape.length * 1.18, shape.width * 1.2, 0.013), np.full(3, rng.uniform(0.1, 0.95)), MAT_PLAIN)
    sole_box = sole_box.transformed(np.eye(3), np.array([shape.length * 0.5, -0.01, 0.0]))
    return merge([upper, sole_box]).transformed(np.eye(3), np.array([-shape.length / 2, 0, 0]))


def slipper(rng: np.random.Generator) -> Mesh:
    length = rng.uniform(0.24, 0.3)
    width = length * 0.38
    color = random_color(rng)
    sole = box_mesh((length, width, rng.uniform(0.008, 0.025)), color, MAT_PATTERN if rng.random() < 0.3 else MAT_PLAIN)
    n = 16
    t = np.linspace(0, np.pi, n)
    centers = np.stack([np.full(n, length * 0.12), np.cos(t) * width * 0.45, np.sin(t) * 0.035 + 0.012], 1)
    strap = grid_mesh(tube_grid(centers, np.full(n, 0.03), np.full(n, 0.004), 8, up_hint=(0, 0, 1)),
                      random_color(rng), MAT_PLAIN, 0.0)
    return merge([sole, strap])


def clutter_box(rng: np.random.Generator) -> Mesh:
    size = tuple(rng.uniform([0.05, 0.05, 0.02], [0.35, 0.3, 0.25]))
    return box_mesh(size, random_color(rng), MAT_PATTERN if rng.random() < 0.4 else MAT_PLAIN)


def skin_thing(rng: np.random.Generator) -> Mesh:
    """Skin-coloured but not a foot: a ball, a loaf-like blob or a bottle, in a skin tone."""
    skin = sample_skin(rng)
    r = rng.uniform(0.02, 0.09)
    if rng.random() < 0.5:
        grid = _ellipsoid((r * rng.uniform(1, 3), r, r * rng.uniform(0.5, 1)))
    else:
        n = 12
        h = rng.uniform(0.05, 0.25)
        centers = np.stack([np.zeros(n), np.zeros(n), np.linspace(0.001, h, n)], 1)
        grid = tube_grid(centers, np.full(n, r), np.full(n, r), 16, up_hint=(1, 0, 0))
        grid = np.concatenate([grid, np.broadcast_to(centers[-1], grid[:1].shape)])
    return grid_mesh(grid, skin, MAT_SKINLIKE, 0.0)


def lying_sock(rng: np.random.Generator) -> Mesh:
    r = rng.uniform(0.025, 0.04)
    n = 20
    t = np.linspace(0, 1, n)
    length = rng.uniform(0.15, 0.35)
    bend = rng.uniform(-0.5, 0.5)
    centers = np.stack([t * length - length / 2, bend * 0.1 * np.sin(t * np.pi), np.full(n, r * 0.35)], 1)
    prof = np.sqrt(np.clip(1 - ((t - 0.85) / 0.15).clip(0, 1) ** 2, 0, 1)) + 1e-3
    grid = tube_grid(centers, r * prof, r * 0.35 * prof, 12)
    return grid_mesh(grid, np.ones(3), MAT_SOCKLIKE, 0.0)


SOLID_MAKERS = (cable, shoe, slipper, clutter_box, skin_thing, lying_sock)
SOLID_WEIGHTS = np.array([0.15, 0.22, 0.15, 0.18, 0.18, 0.12])


def random_solid(rng: np.random.Generator) -> Mesh:
    k = int(rng.choice(len(SOLID_MAKERS), p=SOLID_WEIGHTS / SOLID_WEIGHTS.sum()))
    return SOLID_MAKERS[k](rng)

"""Triangle meshes as plain numpy arrays: grid surfaces (tubes and sweeps), merging, rigid transforms, OBJ/PLY files.

Every renderable object in a synthetic scene is a ``Mesh``. Vertices carry a colour, a material slot (which
procedural pattern the fragment shader applies: plain colour, sock knit, trouser cloth ...), a label (1 = foot,
0 = anything else; the mask is rendered from it) and pattern coordinates that stay glued to the surface when the
object is posed.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from plyfile import PlyData, PlyElementParseError, PlyListProperty, PlyParseError

from footseg.errors import FootsegError


@dataclass
class Mesh:
    positions: np.ndarray  # (V, 3) float32, metres, z up
    normals: np.ndarray  # (V, 3) float32 (orientation is irrelevant: the renderer lights both faces)
    colors: np.ndarray  # (V, 3) float32 RGB in [0, 1]
    material: np.ndarray  # (V,) float32 material slot index
    label: np.ndarray  # (V,) float32: 1 foot, 0 background
    pattern: np.ndarray  # (V, 3) float32 rest-pose coordinates for procedural patterns
    indices: np.ndarray  # (T, 3) uint32

    @property
    def n_vertices(self) -> int:
        return len(self.positions)

    def transformed(self, rotation: np.ndarray, translation: np.ndarray) -> Mesh:
        """Rigid transform ``p -> R p + t`` (normals rotate too)."""
        r = np.asarray(rotation, np.float32)
        return Mesh(
            (self.positions @ r.T + np.asarray(translation, np.float32)).astype(np.float32),
            (self.normals @ r.T).astype(np.float32),
            self.colors, self.material, self.label, self.pattern, self.indices,
        )

    def mirrored_y(self) -> Mesh:
        flip = np.array([1.0, -1.0, 1.0], np.float32)
        return Mesh(self.positions * flip, self.normals * flip, self.colors, self.material, self.label,
                    self.pattern * flip, self.indices[:, ::-1].copy())


def merge(meshes: list[Mesh]) -> Mesh:
    if not meshes:  # a scene with nothing standing on the floor (the cutout compositor's background)
        z3, z1 = np.zeros((0, 3), np.float32), np.zeros(0, np.float32)
        return Mesh(z3, z3, z3, z1, z1, z3, np.zeros((0, 3), np.uint32))
    offsets = np.cumsum([0] + [m.n_vertices for m in meshes[:-1]])
    return Mesh(
        np.concatenate([m.positions for m in meshes]).astype(np.float32),
        np.concatenate([m.normals for m in meshes]).astype(np.float32),
        np.concatenate([m.colors for m in meshes]).astype(np.float32),
        np.concatenate([m.material for m in meshes]).astype(np.float32),
        np.concatenate([m.label for m in meshes]).astype(np.float32),
        np.concatenate([m.pattern for m in meshes]).astype(np.float32),
        np.concatenate([m.indices + np.uint32(o) for m, o in zip(meshes, offsets, strict=True)]).astype(np.uint32),
    )


def rotation_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], np.float64)


def rotation_y(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]], np.float64)


def rotation_x(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]], np.float64)


@functools.lru_cache(maxsize=256)
def grid_indices(nu: int, nv: int, wrap_v: bool = True) -> np.ndarray:
    """Two triangles per quad of an (nu, nv) vertex grid, closing the v direction when ``wrap_v``."""
    i, j = np.meshgrid(np.arange(nu - 1), np.arange(nv if wrap_v else nv - 1), indexing="ij")
    a = i * nv + j
    b = i * nv + (j + 1) % nv
    c = (i + 1) * nv + j
    d = (i + 1) * nv + (j + 1) % nv
    out = np.stack([np.stack([a, c, b], -1), np.stack([b, c, d], -1)], 2).reshape(-1, 3).astype(np.uint32)
    out.flags.writeable = False  # shared by every mesh with this grid size
    return out


def cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.cross`` for (..., 3) arrays without its per-call overhead (meshes are built per image)."""
    a0, a1, a2 = a[..., 0], a[..., 1], a[..., 2]
    b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
    return np.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], -1)


def _diff(x: np.ndarray, axis: int, wrap: bool) -> np.ndarray:
    """Central differences along ``axis`` (one-sided at open ends)."""
    n = x.shape[axis]
    if n < 3:
        if wrap:
            return np.roll(x, -1, axis) - np.roll(x, 1, axis)
        x = np.moveaxis(x, axis, 0)
        d = np.empty_like(x)
        d[0], d[-1] = 2 * (x[1] - x[0]), 2 * (x[-1] - x[-2])
        return np.moveaxis(d, 0, axis)
    pre = (slice(None),) * axis
    d = np.empty_like(x)
    d[(*pre, slice(1, -1))] = x[(*pre, slice(2, None))] - x[(*pre, slice(None, -2))]
    if wrap:  # what np.roll(x, -1) - np.roll(x, 1) gives at the ends
        d[(*pre, 0)] = x[(*pre, 1)] - x[(*pre, -1)]
        d[(*pre, -1)] = x[(*pre, 0)] - x[(*pre, -2)]
    else:
        d[(*pre, 0)] = 2 * (x[(*pre, 1)] - x[(*pre, 0)])
        d[(*pre, -1)] = 2 * (x[(*pre, -1)] - x[(*pre, -2)])
    return d


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.sqrt((v * v).sum(-1, keepdims=True)), 1e-12)


def grid_normals(grid: np.ndarray, wrap_v: bool = True) -> np.ndarray:
    """Per-vertex normals of an (nu, nv, 3) surface grid from central differences."""
    return _unit(cross(_diff(grid, 0, False), _diff(grid, 1, wrap_v)))


def grid_mesh(grid: np.ndarray, colors: np.ndarray, material: float | np.ndarray, label: float,
              wrap_v: bool = True) -> Mesh:
    nu, nv, _ = grid.shape
    v = nu * nv
    mat = np.broadcast_to(np.asarray(material, np.float32), (nu, nv)).reshape(v)
    pos = grid.reshape(v, 3).astype(np.float32)
    return Mesh(pos, grid_normals(grid, wrap_v).reshape(v, 3).astype(np.float32),
                np.broadcast_to(colors, (nu, nv, 3)).reshape(v, 3).astype(np.float32), mat.copy(),
                np.full(v, label, np.float32), pos.copy(), grid_indices(nu, nv, wrap_v))


def tube_frames(centers: np.ndarray, up_hint: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(side, up) unit vectors perpendicular to a polyline, with ``up`` as close to ``up_hint`` as possible."""
    t = _unit(_diff(centers, 0, False))
    side = _unit(cross(t, np.broadcast_to(up_hint, t.shape)))
    return side, cross(side, t)


def tube_grid(centers: np.ndarray, ra: np.ndarray, rb: np.ndarray, nv: int,
              up_hint: tuple[float, float, float] = (0.0, 0.0, 1.0), squareness: float = 1.0) -> np.ndarray:
    """Sweep an elliptic (``squareness`` > 1: superelliptic) section with semi-axes (ra side, rb up) along centers."""
    side, up = tube_frames(np.asarray(centers, np.float64), np.asarray(up_hint, np.float64))
    v = np.linspace(0, 2 * np.pi, nv, endpoint=False)
    cs, sn = np.cos(v), np.sin(v)
    e = 1.0 / squareness
    cs, sn = np.sign(cs) * np.abs(cs) ** e, np.sign(sn) * np.abs(sn) ** e
    return (centers[:, None, :] + ra[:, None, None] * cs[None, :, None] * side[:, None, :]
            + rb[:, None, None] * sn[None, :, None] * up[:, None, :])


def box_mesh(size: tuple[float, float, float], color: np.ndarray, material: float = 0.0, label: float = 0.0) -> Mesh:
    """An axis-aligned box standing on z = 0, centred on the z axis (flat-shaded: 24 vertices)."""
    sx, sy, sz = (s / 2 for s in size)
    faces = []
    for axis in range(3):
        for sign in (-1.0, 1.0):
            n = np.zeros(3)
            n[axis] = sign
            a, b = [k for k in range(3) if k != axis]
            quad = []
            for ua, ub in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
                p = np.zeros(3)
                p[axis] = sign
                p[a], p[b] = ua, ub
                quad.append(p)
            faces.append((np.array(quad), n))
    pos = np.concatenate([q for q, _ in faces]) * np.array([sx, sy, sz]) + np.array([0, 0, sz])
    nrm = np.concatenate([np.repeat(n[None], 4, 0) for _, n in faces])
    idx = np.concatenate([np.array([[0, 1, 2], [0, 2, 3]]) + 4 * k for k in range(6)])
    v = len(pos)
    return Mesh(pos.astype(np.float32), nrm.astype(np.float32), np.tile(np.asarray(color, np.float32), (v, 1)),
                np.full(v, material, np.float32), np.full(v, label, np.float32), pos.astype(np.float32),
                idx.astype(np.uint32))


def _parse_obj(path: Path) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    verts, cols, faces = [], [], []
    for line in path.read_text(errors="replace").splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "v":
            verts.append([float(x) for x in parts[1:4]])
            if len(parts) >= 7:
                cols.append([float(x) for x in parts[4:7]])
        elif parts[0] == "f":
            idx = [int(p.split("/")[0]) for p in parts[1:]]
            idx = [k - 1 if k > 0 else len(verts) + k for k in idx]
            faces.extend([idx[0], idx[k], idx[k + 1]] for k in range(1, len(idx) - 1))
    v = np.asarray(verts, np.float64)
    c = np.asarray(cols, np.float64) if len(cols) == len(verts) and cols else None
    return v, c, np.asarray(faces, np.int64)


def _fan(polygons: list[np.ndarray] | np.ndarray) -> np.ndarray:
    """(T, 3) triangles of polygons given as index lists, each fanned from its first corner, in file order."""
    if isinstance(polygons, np.ndarray) and polygons.ndim == 2 and polygons.shape[1] == 3:
        return polygons.astype(np.int64)
    lens = np.fromiter((len(p) for p in polygons), np.int64, len(polygons))
    if not len(lens):
        return np.zeros((0, 3), np.int64)
    flat = np.concatenate([np.asarray(p, np.int64).reshape(-1) for p in polygons])
    start = np.cumsum(lens) - lens
    n_tri = np.maximum(lens - 2, 0)  # points and edges give no triangles
    first = np.repeat(start, n_tri)
    corner = np.arange(int(n_tri.sum())) - np.repeat(np.cumsum(n_tri) - n_tri, n_tri) + 1
    return np.stack([flat[first], flat[first + corner], flat[first + corner + 1]], 1)


# Index lists memory-map as one (F, 3) block when every face is a triangle (the usual scan export); otherwise
# plyfile reads faces one by one in Python, which is correct but slow on large meshes.
_TRIANGLE_LISTS = {"face": {"vertex_indices": 3, "vertex_index": 3}}


def _parse_ply(path: Path) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    try:
        ply = PlyData.read(str(path), known_list_len=_TRIANGLE_LISTS)
    except PlyElementParseError as exc:
        if exc.element is None or exc.element.name != "face":
            raise
        ply = PlyData.read(str(path))  # polygons, or triangles after a differently named list
    names = [e.name for e in ply.elements]
    if "vertex" not in names or "face" not in names:
        raise FootsegError("PLY file without vertices or faces", path)
    vertex, face = ply["vertex"], ply["face"]
    if not all(a in vertex for a in "xyz"):
        raise FootsegError("PLY vertices without x, y and z", path)
    verts = np.stack([np.asarray(vertex[a], np.float64) for a in "xyz"], 1)
    cols = None
    if all(c in vertex for c in ("red", "green", "blue")):
        cols = np.stack([np.asarray(vertex[c], np.float64) for c in ("red", "green", "blue")], 1)
    lists = [p.name for p in face.properties if isinstance(p, PlyListProperty)]
    if not lists:
        raise FootsegError("PLY faces without a vertex index list", path)
    # the index list's name varies between exporters, and some add other lists (per-face texture coordinates)
    name = next((n for n in ("vertex_indices", "vertex_index") if n in lists), lists[0])
    return verts, cols, _fan(face[name])


def load_mesh_file(path: Path) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """(vertices (V,3), colours (V,3) in [0,1] or None, triangles (T,3)) from an OBJ or PLY file."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".obj":
            v, c, f = _parse_obj(path)
        elif path.suffix.lower() == ".ply":
            v, c, f = _parse_ply(path)
        else:
            raise FootsegError("mesh files must be .obj or .ply", path)
    except (OSError, ValueError, IndexError, UnicodeDecodeError, PlyParseError) as exc:
        # one line, as FootsegError promises (plyfile's messages may hold the offending header line)
        raise FootsegError(f"unreadable mesh ({' '.join(str(exc).split())})", path) from exc
    if len(v) < 4 or len(f) < 1 or f.max() >= len(v) or f.min() < 0:
        raise FootsegError("mesh has no usable triangles", path)
    if c is not None and c.max() > 1.0:
        c = c / 255.0
    return v, c, f


def vertex_normals(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    fn = cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    n = np.zeros_like(v)
    for k in range(3):
        np.add.at(n, f[:, k], fn)
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)

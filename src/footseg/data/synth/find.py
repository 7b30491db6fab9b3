"""Feet from outside the parametric model: the FIND generative foot model (``--find DIR``: template.obj +
model.onnx decoder + latents.json, Boyne et al. 2022) and foot scans as OBJ/PLY files (``--meshes DIR``).

Both cover the foot and ankle only, so a lower leg (the parametric model's elliptic tube, with its calf) is
attached to the top ring of the mesh, then posed, clothed and labelled like the parametric foot.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from footseg.data.synth.foot import MAT_SKIN, MAT_SOCK, FootPose, _capped, _trousers, sample_skin
from footseg.data.synth.mesh import Mesh, grid_mesh, load_mesh_file, rotation_x, rotation_y, tube_grid, vertex_normals
from footseg.errors import FootsegError


class AttachedLegFoot:
    """A foot mesh in the local frame (heel at x = 0, toes along +x, sole at z = 0) plus an attached leg."""

    def __init__(self, verts: np.ndarray, faces: np.ndarray, colors: np.ndarray, rng: np.random.Generator):
        self.verts, self.faces, self.colors = verts, faces, np.clip(colors, 0, 1)
        top = verts[:, 2].max()
        ring = verts[verts[:, 2] > top - 0.015]
        self.ankle = np.array([ring[:, 0].mean(), ring[:, 1].mean(), top - 0.03])
        rx = max((ring[:, 0].max() - ring[:, 0].min()) / 2, 0.02)
        ry = max((ring[:, 1].max() - ring[:, 1].min()) / 2, 0.02)
        h = np.linspace(top - 0.03, 0.9, 40)
        calf = rng.uniform(1.3, 1.8)
        grow = np.interp(h, [top, 0.15, 0.3, 0.5, 0.62, 0.9], [1.0, 0.95, calf, 1.2, 1.5, 1.9])
        centers = np.stack([np.full_like(h, self.ankle[0]), np.full_like(h, self.ankle[1]), h], 1)
        self.leg = tube_grid(centers, ry * grow, rx * grow, 28, up_hint=(1.0, 0.0, 0.0))
        self.heights = h
        near = verts[:, 2] > top - 0.03
        self.leg_color = self.colors[near].mean(0) if near.any() else self.colors.mean(0)

    def __call__(self, pose: FootPose, rng: np.random.Generator) -> list[Mesh]:
        lean = rotation_y(pose.lean_forward) @ rotation_x(pose.lean_side)
        sock = pose.sock_height > 0
        nrm = vertex_normals(self.verts, self.faces)
        v = len(self.verts)
        foot = Mesh(self.verts.astype(np.float32), nrm.astype(np.float32), self.colors.astype(np.float32),
                    np.full(v, MAT_SOCK if sock else MAT_SKIN, np.float32), np.ones(v, np.float32),
                    self.verts.astype(np.float32), self.faces.astype(np.uint32))
        rows = max(int(np.searchsorted(self.heights, pose.leg_height)), 4)
        leg, heights = self.leg[:rows], self.heights[:rows]
        w = np.clip((heights - self.ankle[2] - 0.02) / 0.1, 0, 1)[:, None, None]
        posed = leg + ((leg - self.ankle) @ lean.T + self.ankle - leg) * w
        mat = np.where(heights[:, None] < pose.sock_height, MAT_SOCK, MAT_SKIN) * np.ones(leg.shape[:2])
        colors = np.broadcast_to(self.leg_color, (rows + 1, leg.shape[1], 3))
        leg_mesh = grid_mesh(_capped(posed), colors, np.concatenate([mat, mat[-1:]]), 1.0)
        leg_mesh.pattern = _capped(leg).reshape(-1, 3).astype(np.float32)
        parts = [foot, leg_mesh]
        if pose.trouser_hem < pose.leg_height - 0.03:
            parts.append(_trousers(pose, leg, heights, posed))
        return parts


def _to_foot_frame(v: np.ndarray) -> np.ndarray:
    """Heel at x = 0 and sole at z = 0, keeping the axes (x along the foot, z up)."""
    return v - np.array([v[:, 0].min(), (v[:, 1].min() + v[:, 1].max()) / 2, v[:, 2].min()])


class FindModel:
    """The FIND decoder: a random shape/texture/pose code per identity -> a textured foot + ankle mesh."""

    def __init__(self, folder: Path):
        import onnxruntime as ort

        folder = Path(folder)
        for name in ("template.obj", "model.onnx", "latents.json"):
            if not (folder / name).is_file():
                raise FootsegError(f"FIND model folder lacks {name}", folder)
        self.template, _, self.faces = load_mesh_file(folder / "template.obj")
        self.latents = json.loads((folder / "latents.json").read_text())
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(folder / "model.onnx"), opts, providers=["CPUExecutionProvider"])

    def _code(self, name: str, rng: np.random.Generator) -> np.ndarray:
        d = self.latents[name]
        z = np.clip(rng.normal(0, 1, len(d["stddev"])), -2.5, 2.5)
        code = np.asarray(d["mean"]) + (z * np.asarray(d["stddev"])) @ np.asarray(d["V"])
        return np.repeat(code[None].astype(np.float32), len(self.template), 0)

    def foot(self, rng: np.random.Generator) -> AttachedLegFoot:
        feeds = {"points": self.template.astype(np.float32), "shapevec": self._code("shape", rng),
                 "texvec": self._code("tex", rng), "posevec": self._code("pose", rng)}
        disp, col = self.session.run(["disp", "col"], feeds)
        verts = _to_foot_frame(self.template + disp)
        # FIND's scans span few skin tones: pull the texture towards a tone drawn across Fitzpatrick I-VI
        skin = sample_skin(rng)
        col = np.asarray(col, np.float64)
        col = 0.35 * col + 0.65 * col / np.maximum(col.mean(0), 1e-3) * skin
        return AttachedLegFoot(verts, self.faces, col, rng)


class MeshFoot(AttachedLegFoot):
    """An OBJ/PLY foot: z up and the longest horizontal axis along the foot (mm are detected and converted)."""

    def __init__(self, path: Path, rng: np.random.Generator):
        v, c, f = load_mesh_file(path)
        if np.ptp(v, axis=0).max() > 3.0:
            v = v * 0.001  # millimetres
        if np.ptp(v[:, 1]) > np.ptp(v[:, 0]):
            v = v[:, [1, 0, 2]] * np.array([1.0, -1.0, 1.0])
            f = f[:, ::-1]
        v = _to_foot_frame(v)
        # the ankle sits over the heel: put the taller end at x = 0
        high = v[:, 2] > 0.6 * v[:, 2].max()
        if high.any() and v[high, 0].mean() > v[:, 0].mean():
            v = _to_foot_frame(v * np.array([-1.0, -1.0, 1.0]))
        colors = c if c is not None else np.broadcast_to(sample_skin(rng), v.shape)
        super().__init__(v, f, np.asarray(colors, np.float64), rng)

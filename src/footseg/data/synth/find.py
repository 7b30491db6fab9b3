"""Feet from outside the parametric model: the FIND generative foot model (``--find DIR``: template.obj +
model.onnx decoder + latents.json, Boyne et al. 2022) and foot scans as OBJ/PLY files (``--meshes DIR``).

Both cover the foot and ankle only, so a lower leg (the parametric model's elliptic tube, with its calf) is
attached to the top ring of the mesh, then posed, clothed and labelled like the parametric foot.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from footseg.data.synth.foot import MAT_SKIN, MAT_SOCK, FootPose, _capped, _trousers, sample_skin
from footseg.data.synth.mesh import Mesh, grid_mesh, load_mesh_file, rotation_x, rotation_y, tube_grid, vertex_normals
from footseg.errors import FootsegError

if TYPE_CHECKING:
    import onnx


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


_CODES = ("shapevec", "texvec", "posevec")


def _split_decoder(
    model: onnx.ModelProto,
) -> tuple[object, object, dict[str, tuple[np.ndarray, list[tuple[str, np.ndarray]]]]] | None:
    """Split FIND's decoder into the part that sees only the points and the part that sees the codes, or None.

    The decoder is an MLP on the (positionally encoded) template points whose features are concatenated with the
    codes, repeated for every point, before the displacement and colour heads. The features are the same for every
    identity: compute them once. Each head's first layer ``concat(features, codes) @ W.T + b`` becomes
    ``features @ W_f.T + (W_c @ code + b)``, with the bracket (one vector per identity) a graph input. This is about
    2.5 times less arithmetic per identity than running the whole decoder; the results agree to float rounding.
    """
    import onnx
    from onnx import helper, numpy_helper
    from onnx.utils import Extractor

    g = model.graph
    producer = {o: n for n in g.node for o in n.output}
    inits = {i.name: i for i in g.initializer}

    def leaves(name: str) -> list[str]:
        node = producer.get(name)
        if node is not None and node.op_type == "Concat":
            axis = next((a.i for a in node.attribute if a.name == "axis"), None)
            if axis in (-1, 1):
                return [x for i in node.input for x in leaves(i)]
        return [name]

    heads = []
    for node in g.node:
        if node.op_type != "Gemm" or len(node.input) != 3:
            continue
        parts = leaves(node.input[0])
        if len(parts) < 2 or parts[0] in _CODES or not all(x in _CODES for x in parts[1:]):
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if (attrs.get("transA", 0), attrs.get("transB", 0), attrs.get("alpha", 1.0), attrs.get("beta", 1.0)) != (
                0, 1, 1.0, 1.0) or node.input[1] not in inits or node.input[2] not in inits:
            return None
        heads.append((node, parts))
    feats = {parts[0] for _, parts in heads}
    used = {c for _, parts in heads for c in parts[1:]}
    if not heads or len(feats) != 1 or used != set(_CODES):
        return None
    feat = feats.pop()
    inferred = onnx.shape_inference.infer_shapes(model)
    width = next((vi.type.tensor_type.shape.dim[-1].dim_value for vi in inferred.graph.value_info if vi.name == feat),
                 0)
    if width <= 0:
        return None
    base = Extractor(inferred).extract_model(["points"], [feat])
    code_len = {i.name: i.type.tensor_type.shape.dim[-1].dim_value for i in g.input}
    head_model = onnx.ModelProto()
    head_model.CopyFrom(model)
    hg = head_model.graph
    biases: dict[str, tuple[np.ndarray, list[tuple[str, np.ndarray]]]] = {}
    for k, (node, parts) in enumerate(heads):
        w = numpy_helper.to_array(inits[node.input[1]]).astype(np.float64)
        b = numpy_helper.to_array(inits[node.input[2]]).astype(np.float64)
        blocks, col = [], width
        for code in parts[1:]:
            blocks.append((code, w[:, col:col + code_len[code]]))
            col += code_len[code]
        if col != w.shape[1]:
            return None
        hnode = next(n for n in hg.node if list(n.output) == list(node.output))
        w_name, b_name = f"_feat_weight_{k}", f"_code_bias_{k}"
        hg.initializer.append(numpy_helper.from_array(np.ascontiguousarray(w[:, :width], np.float32), w_name))
        hg.input.append(helper.make_tensor_value_info(b_name, onnx.TensorProto.FLOAT, [w.shape[0]]))
        hnode.input[0], hnode.input[1], hnode.input[2] = feat, w_name, b_name
        biases[b_name] = (b, blocks)
    hg.value_info.extend(vi for vi in inferred.graph.value_info if vi.name == feat)
    head = Extractor(head_model).extract_model([feat, *biases], ["disp", "col"])
    return base, head, biases


FIND_FILES = ("template.obj", "model.onnx", "latents.json")
LATENT_NAMES = ("shape", "tex", "pose")


def _find_files(folder: str | Path) -> Path:
    folder = Path(folder)
    for name in FIND_FILES:
        if not (folder / name).is_file():
            raise FootsegError(f"FIND model folder lacks {name}", folder)
    return folder


def check_find_folder(folder: str | Path) -> Path:
    """``folder`` as a FIND model folder: ``FIND_FILES`` in it, each readable as what it is. A one-line
    ``FootsegError`` names what it lacks or the file that is not what it should be, before a render writes anything
    (a render that failed on it would leave a folder made with other settings)."""
    import onnx
    from google.protobuf.message import DecodeError

    folder = _find_files(folder)
    load_mesh_file(folder / "template.obj")  # its own one-line errors
    try:
        latents = json.loads((folder / "latents.json").read_text())
        for name in LATENT_NAMES:  # what FindModel._code reads
            for key in ("mean", "stddev", "V"):
                np.asarray(latents[name][key], dtype=np.float64)
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise FootsegError(f"not FIND's latent codes ({type(exc).__name__}: {exc})", folder / "latents.json") from exc
    try:
        onnx.load(str(folder / "model.onnx"))
    except (DecodeError, OSError, ValueError) as exc:
        raise FootsegError(f"not FIND's ONNX decoder ({type(exc).__name__})", folder / "model.onnx") from exc
    return folder


class FindModel:
    """The FIND decoder: a random shape/texture/pose code per identity -> a textured foot + ankle mesh."""

    def __init__(self, folder: Path):
        import onnx
        import onnxruntime as ort

        folder = _find_files(folder)  # what they hold was checked before the render began (check_find_folder)
        self.template, _, self.faces = load_mesh_file(folder / "template.obj")
        self.latents = json.loads((folder / "latents.json").read_text())
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1

        def session(m: onnx.ModelProto) -> object:
            return ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])

        model = onnx.load(str(folder / "model.onnx"))
        try:
            split = _split_decoder(model)
        except Exception:  # an export of another shape: run it whole
            split = None
        self.session = self.features = self.head = None
        if split is None:
            self.session = session(model)
        else:
            base, head, self.biases = split
            feat = base.graph.output[0].name
            self.features = session(base).run([feat], {"points": self.template.astype(np.float32)})[0]
            self.feat_name = feat
            self.head = session(head)

    def _code(self, name: str, rng: np.random.Generator) -> np.ndarray:
        d = self.latents[name]
        z = np.clip(rng.normal(0, 1, len(d["stddev"])), -2.5, 2.5)
        return np.asarray(d["mean"]) + (z * np.asarray(d["stddev"])) @ np.asarray(d["V"])

    def decode(self, codes: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(displacement (V, 3), colour (V, 3)) of the template's vertices for one shape/tex/pose code."""
        if self.head is None:
            n = len(self.template)
            feeds = {"points": self.template.astype(np.float32)}
            feeds.update({k: np.repeat(v[None].astype(np.float32), n, 0) for k, v in codes.items()})
            disp, col = self.session.run(["disp", "col"], feeds)
        else:
            feeds = {self.feat_name: self.features}
            for name, (b, blocks) in self.biases.items():
                # the code as the first layer sees it: float32, as the whole decoder would be fed it
                feeds[name] = (b + sum(w @ codes[c].astype(np.float32).astype(np.float64) for c, w in blocks)
                               ).astype(np.float32)
            disp, col = self.head.run(["disp", "col"], feeds)
        return disp, col

    def foot(self, rng: np.random.Generator) -> AttachedLegFoot:
        codes = {"shapevec": self._code("shape", rng), "texvec": self._code("tex", rng),
                 "posevec": self._code("pose", rng)}
        disp, col = self.decode(codes)
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

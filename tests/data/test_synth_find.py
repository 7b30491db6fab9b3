"""``FindModel`` runs FIND's decoder split in two: the points-only MLP once, the code heads per identity. A small
decoder of FIND's shape checks that the split gives what the whole graph gives."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from footseg.data.synth.engine import SynthSettings, synthesize
from footseg.data.synth.find import FindModel
from footseg.errors import FootsegError

N, F, C, H = 6, 8, 4, 5  # template vertices, point features, code length, hidden width


def _fake_find(folder: Path) -> None:
    rng = np.random.default_rng(0)

    def w(name: str, *shape: int) -> onnx.TensorProto:
        return numpy_helper.from_array(rng.normal(0, 0.5, shape).astype(np.float32), name)

    nodes = [
        helper.make_node("Gemm", ["points", "w0", "b0"], ["h0"], transB=1),
        helper.make_node("Relu", ["h0"], ["feat"]),
        helper.make_node("Concat", ["feat", "shapevec"], ["c1"], axis=-1),
        helper.make_node("Concat", ["c1", "posevec"], ["c2"], axis=-1),
        helper.make_node("Concat", ["feat", "texvec"], ["c3"], axis=-1),
        helper.make_node("Gemm", ["c2", "wd", "bd"], ["d0"], transB=1),
        helper.make_node("Relu", ["d0"], ["d1"]),
        helper.make_node("Gemm", ["d1", "wd2", "bd2"], ["disp"], transB=1),
        helper.make_node("Gemm", ["c3", "wc", "bc"], ["k0"], transB=1),
        helper.make_node("Relu", ["k0"], ["k1"]),
        helper.make_node("Gemm", ["k1", "wc2", "bc2"], ["k2"], transB=1),
        helper.make_node("Sigmoid", ["k2"], ["col"]),
    ]
    inits = [w("w0", F, 3), w("b0", F), w("wd", H, F + 2 * C), w("bd", H), w("wd2", 3, H), w("bd2", 3),
             w("wc", H, F + C), w("bc", H), w("wc2", 3, H), w("bc2", 3)]
    inputs = [helper.make_tensor_value_info("points", TensorProto.FLOAT, [N, 3])] + [
        helper.make_tensor_value_info(k, TensorProto.FLOAT, [N, C]) for k in ("shapevec", "texvec", "posevec")]
    outputs = [helper.make_tensor_value_info(k, TensorProto.FLOAT, [N, 3]) for k in ("disp", "col")]
    graph = helper.make_graph(nodes, "find", inputs, outputs, inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), folder / "model.onnx")
    verts = rng.uniform(0, 0.1, (N, 3))
    (folder / "template.obj").write_text("".join(f"v {x} {y} {z}\n" for x, y, z in verts)
                                         + "f 1 2 3\nf 1 3 4\nf 2 5 6\nf 3 4 6\n")
    latents = {k: {"mean": rng.normal(0, 1, C).tolist(), "V": rng.normal(0, 1, (3, C)).tolist(),
                   "stddev": [1.0, 0.5, 0.2]} for k in ("shape", "tex", "pose")}
    (folder / "latents.json").write_text(json.dumps(latents))


def test_split_decoder_matches_the_whole_graph(tmp_path: Path) -> None:
    _fake_find(tmp_path)
    model = FindModel(tmp_path)
    assert model.head is not None  # the split applied
    whole = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    for _ in range(3):
        codes = {k: model._code(n, rng) for k, n in (("shapevec", "shape"), ("texvec", "tex"), ("posevec", "pose"))}
        feeds = {"points": model.template.astype(np.float32)}
        feeds.update({k: np.repeat(v[None].astype(np.float32), N, 0) for k, v in codes.items()})
        want = whole.run(["disp", "col"], feeds)
        got = model.decode(codes)
        for a, b in zip(want, got, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    foot = model.foot(np.random.default_rng(2))
    assert foot.verts.shape == (N, 3)


@pytest.mark.parametrize("broken", ["model.onnx", "latents.json", "template.obj", "missing"])
def test_a_find_folder_that_is_not_find_is_refused_before_a_render_writes(tmp_path: Path, broken: str) -> None:
    """A wrong or damaged --find is one line naming the file, and leaves no folder behind: a render that failed on it
    left one that the corrected command refused as made with other settings."""
    find = tmp_path / "find"
    find.mkdir()
    _fake_find(find)
    if broken == "missing":
        (find / "model.onnx").unlink()
    elif broken == "latents.json":
        (find / broken).write_text(json.dumps({"shape": 1}))
    else:
        (find / broken).write_bytes(b"\x08\x96\xff\xff garbage")
    out = tmp_path / "render"
    with pytest.raises(FootsegError) as caught:
        synthesize(out, SynthSettings(n=4, size=64, find=str(find)), progress=False)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(str(find)), message
    assert {"missing": "FIND model folder lacks model.onnx", "latents.json": "not FIND's latent codes",
            "model.onnx": "not FIND's ONNX decoder", "template.obj": "mesh has no usable triangles"}[broken] in message
    assert not out.exists()

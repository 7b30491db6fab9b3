"""PyTorch -> ONNX (fp32): a saved model folder becomes one self-describing ``.onnx`` file.

The TorchScript-based exporter (``dynamo=False``) is used on purpose: with torch 2.13 it needs nothing beyond torch
and onnx, folds BatchNorm into the convolutions and gives a flat Conv/Relu/Add/Resize graph, while the dynamo
exporter needs the separate ``onnxscript`` package for the same graph.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import onnx
import torch
from torch import nn

from footseg.atomic import atomic_path
from footseg.deploy.onnx_model import INPUT_NAME, OUTPUT_NAME, info_to_metadata
from footseg.errors import FootsegError
from footseg.models.saved import PRETRAINED_DIR, SavedModelInfo, load_model, resolve_model_folder

DEFAULT_OPSET = 17
FP32_NAME = "model.onnx"


def set_metadata(model: onnx.ModelProto, meta: dict[str, str]) -> None:
    """Replace the footseg entries of ``model.metadata_props`` with ``meta``."""
    kept = [p for p in model.metadata_props if p.key not in meta]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)


def drop_initializer_identities(model: onnx.ModelProto) -> None:
    """Bypass the Identity nodes the TorchScript exporter inserts where folded weights are equal (e.g. zero biases).

    They cost nothing at run time, but they stand between a Conv and its weights, which quantization tools and
    people reading the graph both trip over.
    """
    inits = {i.name for i in model.graph.initializer}
    outputs = {o.name for o in model.graph.output}
    alias = {
        n.output[0]: n.input[0]
        for n in model.graph.node
        if n.op_type == "Identity" and n.input[0] in inits and n.output[0] not in outputs
    }
    if not alias:
        return
    kept = [n for n in model.graph.node if not (n.op_type == "Identity" and n.output[0] in alias)]
    for node in kept:
        for i, name in enumerate(node.input):
            node.input[i] = alias.get(name, name)
    del model.graph.node[:]
    model.graph.node.extend(kept)


def compact_names(model: onnx.ModelProto) -> None:
    """Give every internal tensor and node a short name; the graph's input and output keep theirs.

    Exported names spell out module paths ("/stages.2/stages.2.1/body/...") and quantization appends suffixes to
    them; in an int8 file they take about as many bytes as the weights. Shape annotations (value_info) go too:
    ONNX Runtime infers them again at load time.
    """
    graph = model.graph
    keep = {v.name for v in graph.input} | {v.name for v in graph.output} | {""}
    rename: dict[str, str] = {}

    def short(name: str) -> str:
        if name in keep:
            return name
        if name not in rename:
            rename[name] = f"t{len(rename):x}"
        return rename[name]

    for init in graph.initializer:
        init.name = short(init.name)
    for i, node in enumerate(graph.node):
        node.name = f"n{i:x}"
        node.ClearField("doc_string")
        for j, name in enumerate(node.input):
            node.input[j] = short(name)
        for j, name in enumerate(node.output):
            node.output[j] = short(name)
    del graph.value_info[:]


def save_onnx(model: onnx.ModelProto, out: Path) -> Path:
    """Check ``model`` and write it to ``out`` atomically (a half-written file never carries the final name)."""
    onnx.checker.check_model(model, full_check=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        onnx.save_model(model, str(tmp))
    return out


def export_module(
    model: nn.Module,
    info: SavedModelInfo,
    out: str | Path,
    opset: int = DEFAULT_OPSET,
    dynamic_batch: bool = False,
) -> Path:
    """Export an in-memory model to fp32 ONNX at ``out``: input "image" (1 or N, 3, H, W), output "logits"."""
    out = Path(out)
    if opset < 13:
        raise FootsegError(f"opset must be at least 13 (per-channel quantization needs it), got {opset}")
    h, w = info.input_size
    model = model.cpu().eval()
    dummy = torch.rand(1, 3, h, w)
    axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if dynamic_batch else None
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / FP32_NAME
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning)  # the TorchScript exporter is chosen
            torch.onnx.export(
                model,
                (dummy,),
                str(raw),
                dynamo=False,
                opset_version=opset,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes=axes,
                do_constant_folding=True,
            )
        proto = onnx.load(str(raw))
    drop_initializer_identities(proto)
    proto.producer_name = "footseg"
    set_metadata(proto, info_to_metadata(info, "fp32"))
    return save_onnx(proto, out)


def default_export_path(model_ref: str | Path, file_name: str) -> Path:
    """Where an export goes without --out: inside the model folder, or in the working directory for a shipped model
    (the installed package is no place to write, and a folder named after the model would shadow it)."""
    folder = resolve_model_folder(model_ref)
    if folder.parent == PRETRAINED_DIR:
        return Path(f"{folder.name}.{file_name.removeprefix('model.')}")
    return folder / file_name


def export_onnx(
    model_dir: str | Path, out: str | Path | None = None, opset: int = DEFAULT_OPSET, dynamic_batch: bool = False
) -> Path:
    """Export the saved model folder ``model_dir`` to fp32 ONNX (default ``model_dir/model.onnx``)."""
    model, info = load_model(model_dir)
    out = Path(out) if out else default_export_path(model_dir, FP32_NAME)
    return export_module(model, info, out, opset, dynamic_batch)

"""PyTorch -> ONNX (fp32): a saved model folder becomes one self-describing ``.onnx`` file.

The TorchScript-based exporter (``dynamo=False``) is used on purpose: with torch 2.13 it needs nothing beyond torch
and onnx, folds BatchNorm into the convolutions and gives a flat Conv/Relu/Add/Resize graph, while the dynamo
exporter needs the separate ``onnxscript`` package for the same graph.

A two-class model is exported with a one-channel output, the foreground margin ``m = l1 - l0`` (metadata
``footseg.output = "margin"``): softmax([l0, l1]) = [sigmoid(-m), sigmoid(m)], so the margin carries the whole
prediction, and because every registered model ends in a linear head (a 1x1/3x3 conv or a transposed conv, then at
most a bilinear resize, which acts on each channel alone), the head itself is folded to one output channel
(weights W1 - W0, bias b1 - b0): the last, full-resolution layers then compute one map instead of two. ``OnnxModel``
turns the margin back into logits [0, m], which have the softmax and argmax of the original ones.

ONNX Runtime's CPU provider runs convolutions and resizes in a channel-blocked layout (NCHWc, blocks of 8 channels
with AVX2), padding a one-channel map to a full block; a final bilinear upsampling of the margin would cost as much
as one of eight channels. ``unblock_output_resize`` makes that last Resize run in plain NCHW on the one real
channel (FastLinkNet at 256x256, one thread: ~0.4 ms -> ~0.15 ms for upsampling plus layout conversion).
"""

from __future__ import annotations

import copy
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper
from torch import nn

from footseg import __version__
from footseg.atomic import atomic_copy, atomic_path
from footseg.errors import FootsegError
from footseg.models.info import WEIGHTS_NAME, SavedModelInfo
from footseg.provenance import sha256_file
from footseg.runtime.onnx_model import (
    DEFAULT_OPSET,
    FP32_NAME,
    INPUT_NAME,
    KEY_PREFIX,
    MARGIN,
    MAX_OPSET,
    OUTPUT_NAME,
    PRIOR_NAME,
    info_to_metadata,
    own_export_as_is,
)
from footseg.runtime.resolve import ModelRef, resolve_model


class PriorInput(nn.Module):
    """A prior-mask network with its two inputs apart, as apps feed them: the image and the previous frame's mask."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        return self.model(torch.cat([image, prior], dim=1))


class MarginOutput(nn.Module):
    """``model``'s two logits reduced to the foreground margin ``l1 - l0`` (N, 1, H, W), by a subtraction."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.model(x)
        return logits[:, 1:2] - logits[:, 0:1]


_HEAD_TYPES = (nn.Conv2d, nn.ConvTranspose2d)


def _last_head(model: nn.Module, x: torch.Tensor) -> str | None:
    """Name of the last convolution run in ``model(x)`` that outputs two channels, or None."""
    order: list[str] = []
    hooks = [
        module.register_forward_hook(lambda *_, name=name: order.append(name))
        for name, module in model.named_modules()
        if isinstance(module, _HEAD_TYPES) and module.out_channels == 2 and module.groups == 1
    ]
    try:
        model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return order[-1] if order else None


def _margin_conv(conv: nn.Conv2d | nn.ConvTranspose2d) -> nn.Module:
    """A copy of the two-output ``conv`` computing output 1 minus output 0 as its one output channel."""
    single = copy.deepcopy(conv)
    dim = 1 if isinstance(conv, nn.ConvTranspose2d) else 0  # (in, out, kh, kw) vs (out, in, kh, kw)
    weight = conv.weight.narrow(dim, 1, 1) - conv.weight.narrow(dim, 0, 1)
    single.weight = nn.Parameter(weight.detach().clone())
    if conv.bias is not None:
        single.bias = nn.Parameter((conv.bias[1:2] - conv.bias[0:1]).detach().clone())
    single.out_channels = 1
    return single


@torch.no_grad()
def margin_module(model: nn.Module, example: torch.Tensor) -> nn.Module:
    """A copy of the two-class ``model`` (eval mode) whose output is the margin ``l1 - l0``, (N, 1, H, W).

    The last two-output convolution is replaced by its one-output difference when that reproduces the margin on
    ``example`` (everything after it is then linear and channel-wise, as a bilinear resize); otherwise the copy
    subtracts the two logits at the end. ``model`` itself is left unchanged.
    """
    model = model.eval()
    want = model(example)
    want = want[:, 1:2] - want[:, 0:1]
    name = _last_head(model, example)
    if name is not None:
        folded = copy.deepcopy(model)
        parent, _, child = name.rpartition(".")
        setattr(folded.get_submodule(parent), child, _margin_conv(folded.get_submodule(name)))
        try:
            got = folded(example)
        except RuntimeError:  # a later layer needed both channels
            got = None
        tolerance = 1e-4 * (1.0 + float(want.abs().max()))
        if got is not None and got.shape == want.shape and float((got - want).abs().max()) <= tolerance:
            return folded
    return MarginOutput(copy.deepcopy(model)).eval()


def set_metadata(model: onnx.ModelProto, meta: dict[str, str]) -> None:
    """Replace the footseg entries of ``model.metadata_props`` with ``meta`` (every one: a decision ``meta`` leaves
    out, a region peak of none, is not left over from before)."""
    kept = [p for p in model.metadata_props if not p.key.startswith(KEY_PREFIX)]
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


def unblock_output_resize(model: onnx.ModelProto) -> bool:
    """Put a no-op Reshape (target shape all zeros: copy every dimension) before a Resize producing the output.

    ONNX Runtime's NCHWc transformer does not handle Reshape, so it converts the resize's low-resolution input back
    to plain NCHW and runs the Resize there instead of on 8-channel blocks (see the module doc). Any other runtime
    sees an identity. Returns whether the graph changed.
    """
    graph = model.graph
    outputs = {o.name for o in graph.output}
    resizes = [n for n in graph.node if n.op_type == "Resize" and n.output[0] in outputs]
    for i, resize in enumerate(resizes):
        shape, unblocked = f"unblock_shape_{i}", f"unblock_{i}"
        graph.initializer.append(numpy_helper.from_array(np.zeros(4, dtype=np.int64), shape))
        reshape = helper.make_node("Reshape", [resize.input[0], shape], [unblocked], name=f"unblock_reshape_{i}")
        graph.node.insert(list(graph.node).index(resize), reshape)
        resize.input[0] = unblocked
    return bool(resizes)


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
    margin: bool = True,
    weights_sha256: str | None = None,
) -> Path:
    """Export an in-memory model to fp32 ONNX at ``out``: input "image" (1 or N, 3, H, W), output "logits".

    A prior-mask network (``info.in_channels`` 4) has a second input, "prior" (1 or N, 1, H, W): the previous frame's
    foot probability at the network's input size, zeros on a first frame. With ``margin`` (the default) a two-class
    model's output is the one-channel foreground margin ``l1 - l0`` (see the module doc); without it, or with more
    classes, the output is the model's own logits. ``weights_sha256``, the digest of the weights file ``model`` was
    loaded from, goes into the file's metadata (``WEIGHTS_KEY``), so it is known for an export of those weights.
    """
    out = Path(out)
    if not 13 <= opset <= MAX_OPSET:
        raise FootsegError(f"opset must be 13 to {MAX_OPSET} (per-channel quantization needs 13; torch.onnx's "
                           f"TorchScript exporter writes at most {MAX_OPSET}), got {opset}")
    h, w = info.input_size
    model = copy.deepcopy(model).cpu().eval()  # the caller's network keeps its device and training mode
    dummy = torch.rand(1, info.in_channels, h, w)
    margin = margin and info.num_classes == 2
    if margin:
        model = margin_module(model, dummy)
    names, args = [INPUT_NAME], (dummy,)
    if info.in_channels == 4:
        model, names, args = PriorInput(model), [INPUT_NAME, PRIOR_NAME], (dummy[:, :3], dummy[:, 3:])
    elif info.in_channels != 3:
        raise FootsegError(f"cannot export a model with {info.in_channels} input channels (3, or 4 with a prior)")
    axes = {name: {0: "batch"} for name in (*names, OUTPUT_NAME)} if dynamic_batch else None
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / FP32_NAME
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning)  # the TorchScript exporter is chosen
            # ENet's zero-channel padding (F.pad) exports as a reversed Slice, which the exporter leaves unfolded and
            # says so at every pass, for every such layer; the graph is correct (tests/deploy check ONNX against
            # PyTorch) and the note is noise
            warnings.filterwarnings("ignore", message="Constant folding - Only steps=1", category=UserWarning)
            torch.onnx.export(
                model,
                args,
                str(raw),
                dynamo=False,
                opset_version=opset,
                input_names=names,
                output_names=[OUTPUT_NAME],
                dynamic_axes=axes,
                do_constant_folding=True,
            )
        proto = onnx.load(str(raw))
    drop_initializer_identities(proto)
    unblock_output_resize(proto)
    proto.producer_name, proto.producer_version = "footseg", __version__  # not torch's version, which it had
    set_metadata(proto, info_to_metadata(info, "fp32", MARGIN if margin else None, weights_sha256))
    return save_onnx(proto, out)


def default_export_path(model: ModelRef, file_name: str) -> Path:
    """Where an export goes without --out: inside the model folder, or in the working directory for a shipped model
    (the installed package is no place to write, and a folder named after the model would shadow it). An export at
    another side (``ModelRef.size``) says so in its name, so it never replaces the file of the model's own side."""
    if model.size is not None:
        file_name = file_name.replace("model.", f"model.{model.size}px.", 1)
    if model.shipped:
        return Path(f"{model.folder.name}.{file_name.removeprefix('model.')}")
    return model.folder / file_name


def export_onnx(
    model: str | Path | ModelRef | None, out: str | Path | None = None, opset: int = DEFAULT_OPSET,
    dynamic_batch: bool = False,
) -> Path:
    """Export a model (anything ``resolve_model`` takes; None = the default) to fp32 ONNX (default
    ``MODEL/model.onnx``)."""
    ref = resolve_model(model)
    out = Path(out) if out else default_export_path(ref, FP32_NAME)
    if not ref.onnx and ref.size is None and (own := own_export_as_is(ref.folder, opset, None if dynamic_batch else 1)
                                               ) is not None and out.resolve() != own.resolve():
        # the file this export would write, already made (a shipped model's ships): copied, not traced again; an
        # export to that file itself traces it again, which is how a folder's own export is made anew
        atomic_copy(own, out)
        return out
    net, info, digest = load_for_export(ref)
    return export_module(net, info, out, opset, dynamic_batch, weights_sha256=digest)


def load_for_export(ref: ModelRef) -> tuple[nn.Module, SavedModelInfo, str]:
    """``ref``'s network, its info and the sha256 of the weights file it was loaded from, which an export records
    (``WEIGHTS_KEY``) so that the file is known for those weights."""
    weights = ref.folder / WEIGHTS_NAME
    digest = sha256_file(weights)
    net, info = ref.load()
    if sha256_file(weights) != digest:  # replaced while loading (a training run saving): the record would be false
        raise FootsegError("changed while it was loaded for export; export it again", weights)
    return net, info, digest

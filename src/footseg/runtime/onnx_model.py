"""Running an exported footseg ONNX file with ONNX Runtime, and the metadata that makes the file self-describing.

An exported file carries the ``SavedModelInfo`` of the model it came from in its ``metadata_props``, so an ``.onnx``
file alone is enough to evaluate or predict: the runner knows the input size to resize photos to and the classes.

Two-class models are exported with one output channel, the foreground margin ``m = l1 - l0`` (``footseg.output`` is
"margin"; files without the key output the logits themselves). ``OnnxModel.run`` returns the file's raw output;
calling the model returns logits in either case, [0, m] for a margin file, whose softmax and argmax are those of the
original logits.

``footseg export`` of a model folder also records the sha256 of the weights file it exported (``WEIGHTS_KEY``), so a
folder's own ``model.onnx`` can be known for an export of exactly those weights (``own_export``) and run in their
place: ONNX Runtime runs these networks about three times as fast as PyTorch eager on a CPU.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnxruntime as ort

from footseg.errors import FootsegError
from footseg.models.info import LAYER_SHAPES_KEY, WEIGHTS_NAME, SavedModelInfo, info_from_dict, info_to_dict, read_info
from footseg.provenance import sha256_file

if TYPE_CHECKING:
    import onnx

INPUT_NAME = "image"
PRIOR_NAME = "prior"  # a prior-mask network's second input: the previous frame's foot probability (N, 1, H, W)
OUTPUT_NAME = "logits"
KEY_PREFIX = "footseg."  # of every metadata key footseg writes
PRECISION_KEY = KEY_PREFIX + "precision"  # "fp32" or "int8"
OUTPUT_KEY = KEY_PREFIX + "output"  # MARGIN, or absent: the output is the logits
MARGIN = "margin"
WEIGHTS_KEY = KEY_PREFIX + "weights_sha256"  # of the model.safetensors exported; absent for one exported from memory
FP32_NAME = "model.onnx"  # a model folder's fp32 export, where ``footseg export`` writes it
DEFAULT_OPSET = 17  # what ``footseg export`` writes unless asked
# torch.onnx's TorchScript exporter (dynamo=False) knows opsets up to 20 in torch 2.13: above, it warns and then fails,
# or writes a file whose opset is not what was asked. Here, not in deploy.export, so a recipe is checked without torch.
MAX_OPSET = 20


def info_to_metadata(info: SavedModelInfo, precision: str, output: str | None = None,
                     weights_sha256: str | None = None) -> dict[str, str]:
    """The ``metadata_props`` an exported file carries (ONNX metadata values are strings), in the order an export
    writes them: ``info``, its ``precision``, its ``output`` (``MARGIN``) and the ``weights_sha256`` it was exported
    from, where given."""
    meta = {KEY_PREFIX + key: json.dumps(value) for key, value in info_to_dict(info).items()}
    meta[PRECISION_KEY] = precision
    if output is not None:
        meta[OUTPUT_KEY] = output
    if weights_sha256 is not None:
        meta[WEIGHTS_KEY] = weights_sha256
    return meta


def read_onnx(path: str | Path, load_external_data: bool = True) -> onnx.ModelProto:
    """The ONNX graph in ``path``; a one-line ``FootsegError`` naming it for a truncated file or no ONNX at all."""
    import onnx  # only where a graph is read or edited: running a file needs ONNX Runtime alone
    from google.protobuf.message import DecodeError

    try:
        return onnx.load(str(path), load_external_data=load_external_data)
    except (DecodeError, OSError, ValueError) as exc:
        raise FootsegError(f"unreadable ONNX model ({type(exc).__name__})", path) from exc


def info_from_metadata(meta: dict[str, str], path: str | Path) -> SavedModelInfo:
    """Rebuild the ``SavedModelInfo`` stored by ``info_to_metadata``; ``FootsegError`` naming ``path`` if absent."""
    if KEY_PREFIX + "model" not in meta:
        raise FootsegError("not a footseg ONNX file (no footseg metadata; export it with `footseg export`)", path)
    try:
        raw = {f.name: json.loads(meta[KEY_PREFIX + f.name])
               for f in fields(SavedModelInfo) if KEY_PREFIX + f.name in meta}
        if "input_size" not in raw:  # no default size for an exported file: it fixes what the network is fed
            raise KeyError("input_size")
        info = info_from_dict(raw)
        if len(info.input_size) != 2:
            raise ValueError(f"input_size {list(info.input_size)} is not (height, width)")
        return info
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise FootsegError(f"invalid footseg metadata ({type(exc).__name__}: {exc})", path) from exc


def session_options(threads: int = 1) -> ort.SessionOptions:
    """Pinned thread counts (one model call never fans out beyond ``threads``; 0: ONNX Runtime's default, one per
    physical core) and full graph optimisation."""
    if threads < 0:
        raise FootsegError(f"threads must be at least 1 (or 0 for ONNX Runtime's default), got {threads}")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads == 1:
        # One thread never waits for others, so spinning would only burn a core another process could use.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


class OnnxModel:
    """An exported footseg model: ``OnnxModel(path)(batch)`` maps an (N, 3, H, W) float32 batch to logits.

    ``info`` is the ``SavedModelInfo`` of the model it was exported from; ``precision`` is "fp32" or "int8".
    Files exported with a fixed batch of one still accept any N: the images run one after the other.
    """

    def __init__(self, path: str | Path, threads: int = 1):
        self.path = Path(path)
        if not self.path.is_file():
            raise FootsegError("ONNX file not found", self.path)
        try:
            self.session = ort.InferenceSession(
                str(self.path), session_options(threads), providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # ORT raises its own exception types (InvalidProtobuf, Fail, ...) for bad files
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise FootsegError(f"unreadable ONNX model ({first})", self.path) from exc
        meta = dict(self.session.get_modelmeta().custom_metadata_map)
        self.info = info_from_metadata(meta, self.path)
        self.precision = meta.get(PRECISION_KEY, "fp32")
        self.weights_sha256 = meta.get(WEIGHTS_KEY)  # None: not known which weights file it came from
        output = meta.get(OUTPUT_KEY, "logits")
        if output not in ("logits", MARGIN) or (output == MARGIN and self.info.num_classes != 2):
            raise FootsegError(
                f"invalid footseg metadata (output '{output}' for {self.info.num_classes} classes)", self.path
            )
        self.margin = output == MARGIN  # the file outputs (N, 1, H, W) foreground margins l1 - l0
        inputs = self.session.get_inputs()
        names = [i.name for i in inputs]
        wanted = [INPUT_NAME, PRIOR_NAME] if self.info.in_channels == 4 else [INPUT_NAME]
        if len(inputs) == 1 and self.info.in_channels == 3 and len(inputs[0].shape) == 4:
            wanted = names  # files exported before inputs were named by footseg's constants
        if names != wanted or any(len(i.shape) != 4 for i in inputs):
            raise FootsegError(f"expected (N, C, H, W) inputs {wanted}, found {names}", self.path)
        # The graph must take what its metadata says it takes: else ONNX Runtime fails at the first frame instead.
        channels = [3, 1] if len(inputs) == 2 else [self.info.in_channels]  # a prior network's image, then prior
        for given, c in zip(inputs, channels, strict=True):
            says = [c, *self.info.input_size]
            if given.type != "tensor(float)" or any(
                    isinstance(d, int) and d != w for d, w in zip(given.shape[1:], says, strict=True)):
                raise FootsegError(f"its graph takes {given.name} as {given.type} {given.shape} where its footseg "
                                   f"metadata says float (N, {', '.join(map(str, says))}): export it again with "
                                   "`footseg export`", self.path)
        self.input_names = names
        batch = inputs[0].shape[0]
        self.fixed_batch = batch if isinstance(batch, int) else None
        self.threads = threads

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """(N, in_channels, H, W) float32 at ``info.input_size`` -> (N, num_classes, H, W) float32 logits: RGB in
        [0, 1], then for a prior-mask network the previous frame's foot probability as a 4th channel.

        For a margin file the logits are [0, m]: the same softmax and argmax as the model's own.
        """
        out = self.run(batch)
        if not self.margin:
            return out
        logits = np.zeros((out.shape[0], 2, *out.shape[2:]), dtype=out.dtype)
        logits[:, 1:] = out
        return logits

    def run(self, batch: np.ndarray) -> np.ndarray:
        """The file's raw output for ``batch``: logits, or (N, 1, H, W) foreground margins if ``margin``."""
        batch = np.asarray(batch, dtype=np.float32)
        expected = (self.info.in_channels, *self.info.input_size)
        if batch.ndim != 4 or tuple(batch.shape[1:]) != expected:
            raise ValueError(f"{self.path}: expected an (N, {', '.join(map(str, expected))}) batch, got {batch.shape}")
        if self.fixed_batch is None or batch.shape[0] == self.fixed_batch:
            return self.session.run(None, self.feeds(batch))[0]
        step = self.fixed_batch
        parts = [self.session.run(None, self.feeds(batch[i : i + step]))[0] for i in range(0, len(batch), step)]
        return np.concatenate(parts)

    def feeds(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """The session's inputs for an (N, C, H, W) float32 batch: the image, and a prior-mask model's prior apart."""
        if len(self.input_names) == 1:
            return {self.input_names[0]: np.ascontiguousarray(batch)}
        return {INPUT_NAME: np.ascontiguousarray(batch[:, :3]), PRIOR_NAME: np.ascontiguousarray(batch[:, 3:])}


def own_export(folder: str | Path, threads: int = 1) -> tuple[OnnxModel | None, str]:
    """A model folder's ``model.onnx`` in ONNX Runtime, where ``footseg export`` made it in fp32 from this folder's very
    weights file (``WEIGHTS_KEY``) and network (``same_network``), and ""; else None and why not, in words that follow
    the folder's name. None sends the weights to PyTorch: no export, one of weights trained again since, or an
    unreadable one. The threshold, region peak and presence are applied outside the graph: the folder's config's count,
    whatever the export's metadata says."""
    folder = Path(folder)
    path = folder / FP32_NAME
    if not path.is_file():
        return None, f"holds no {FP32_NAME}"
    try:
        model = OnnxModel(path, threads=threads)
        why = not_current_export(folder, path, "fp32", model.precision, model.weights_sha256, model.info)
    except (FootsegError, OSError) as exc:
        return None, f"its {FP32_NAME} cannot be run ({str(exc).removeprefix(f'{path}: ')})"
    return (None, why) if why else (model, "")


def own_export_as_is(folder: str | Path, opset: int, batch: int | str | None = "any") -> Path | None:
    """A model folder's own ``model.onnx`` (``own_export``: both shipped models ship one) where it is the file
    ``footseg export`` would write of the folder now: at its side and ``opset``, its metadata the folder's config as it
    is (the threshold and the rest), and, unless ``batch`` is "any", with that fixed batch (None: a dynamic one). An
    export then copies it rather than tracing the network again in PyTorch; else None."""
    model, _ = own_export(folder)
    if model is None or info_to_dict(model.info) != info_to_dict(read_info(folder)):
        return None
    if model.info.num_classes == 2 and not model.margin:  # an export from before margins: today's is another graph
        return None
    if batch != "any" and model.fixed_batch != batch:
        return None
    opsets = [o.version for o in read_onnx(model.path, load_external_data=False).opset_import
              if o.domain in ("", "ai.onnx")]
    return model.path if opsets == [opset] else None


def not_current_export(folder: Path, path: Path, wanted: str, precision: str, weights_sha256: str | None,
                       info: SavedModelInfo) -> str:
    """Why the export ``path`` (of ``precision``, naming ``weights_sha256``, describing ``info``) is not the
    ``wanted``-precision export of ``folder``'s weights file and network as they are now; "" where it is."""
    if precision != wanted:
        return f"its {path.name} is {precision}, where footseg runs an {wanted} export in the weights' place"
    if weights_sha256 != sha256_file(folder / WEIGHTS_NAME):
        return (f"its {path.name} was exported from other weights (trained again since?)"
                if weights_sha256 else f"its {path.name} does not name the weights it was exported from")
    own = read_info(folder)
    if not same_network(info, own):
        if same_network(dataclasses.replace(info, input_size=own.input_size), own):
            side, ours = "x".join(map(str, info.input_size)), "x".join(map(str, own.input_size))
            return f"its {path.name} takes {side} frames where its config.json says {ours}"
        return f"its {path.name} is of another network than its config.json describes"
    return ""


def same_network(a: SavedModelInfo, b: SavedModelInfo) -> bool:
    """Whether two infos describe one graph: architecture, width, classes, inputs, side and pruned layer shapes (not the
    decisions applied to its output, nor notes such as scores)."""
    def graph(info: SavedModelInfo) -> tuple:
        return (info.model, info.width, info.num_classes, info.in_channels, tuple(info.input_size),
                info.extra.get(LAYER_SHAPES_KEY))

    return graph(a) == graph(b)

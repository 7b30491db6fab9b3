"""Static post-training int8 quantization of an exported model with ONNX Runtime (QDQ, per-channel weights).

Activation ranges are calibrated on training images run through exactly the preprocessing of inference (read,
resize to the model's input size, scale to [0, 1]), so the ranges match what the model sees in use.

By default the model is *mixed*: only layers at 1/16 of the input resolution or coarser run in int8, the
high-resolution ends of the network stay fp32 (``min_stride``; a model may record its own in config.json, see
``MIN_STRIDE_KEY``). Profiling FastLinkNet at 256x256 on one thread of an
x86-64 CPU with AVX2 but no VNNI showed that int8 loses there, at no gain in file size:
- QLinearConv on few channels at high resolution is ~2x slower than ORT's fp32 NCHWc convs (first conv 0.64 vs
  0.28 ms; the 8- and 24-channel depthwise convs of the decoder miss MLAS's symmetric depthwise kernel, which needs
  a multiple of 16 channels: 0.47 vs ~0.1 ms);
- uint8 bilinear Resize is ~3x slower than fp32, and int8 residual Adds run as separate QLinearAdd nodes where
  fp32 fuses them into the preceding Conv;
- the deep layers, which hold most of the weights, are about as fast in int8 as in fp32; the entry to and exit
  from the int8 region cost layout conversions, so the fewer boundaries the better.
On the shipped (channel-pruned) FastLinkNet, interleaved timing at 256x256, 1 thread: int8 from 1/8 on took 1.11x
the fp32 time, from 1/16 on 1.04x (its 1/8 stage has 48 channels, but the quantize/transpose at the region's entry
costs more there than int8 saves); the file is 199 KB instead of 171 KB, well under 300 KB. Hence 16.
The high-resolution ends -- the first conv on raw pixels, the last layers and the 2-class head whose logit sign is
the mask -- are also where int8 rounding moves the mask most, so keeping them fp32 is good by construction for
accuracy too. ``min_stride=1`` quantizes every layer (what a CPU with fast int8, e.g. ARM dot-product, wants).
Where the int8 region meets fp32 layers, the fp32 side reads fp32 tensors (``read_fp32_sources``) and every fp32
Resize is fed by an fp32 conv (``fp32_resize_feeders``), so ONNX Runtime keeps its fused, channel-blocked fp32 kernels.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    create_calibrator,
    quantize_static,
)
from onnxruntime.quantization.calibrate import save_tensors_data
from onnxruntime.quantization.shape_inference import quant_pre_process

from footseg import __version__
from footseg.atomic import atomic_copy
from footseg.data.io import read_image, read_mask
from footseg.data.prior import fake_prior
from footseg.data.samples import Sample, find_samples, split_folder, spread
from footseg.data.transforms import resize_image, resize_mask, to_array
from footseg.deploy.export import (
    DEFAULT_OPSET,
    FP32_NAME,
    compact_names,
    default_export_path,
    export_module,
    load_for_export,
    save_onnx,
    set_metadata,
)
from footseg.errors import FootsegError
from footseg.models.info import MIN_STRIDE_KEY, SavedModelInfo, read_info
from footseg.runtime.onnx_model import (
    INPUT_NAME,
    PRECISION_KEY,
    PRIOR_NAME,
    WEIGHTS_KEY,
    info_from_metadata,
    not_current_export,
    read_onnx,
)
from footseg.runtime.resolve import ModelRef, resolve_model

INT8_NAME = "model.int8.onnx"
CALIB_METHODS = {
    "minmax": CalibrationMethod.MinMax,
    "entropy": CalibrationMethod.Entropy,
    "percentile": CalibrationMethod.Percentile,
}
# quantize_static builds Entropy's histogram with as many bins as it quantizes to (128), which leaves the KL search
# a single candidate -- the full min/max range. Calibrating here with a finer histogram makes "entropy" mean entropy.
_CALIB_OPTIONS: dict[str, dict] = {
    "minmax": {},
    "entropy": {"num_bins": 512, "num_quantized_bins": 128},
    "percentile": {"num_bins": 2048, "percentile": 99.99},
}
# Aliases for the layers that usually suffer most from int8: the first conv sees raw pixels, the last one
# produces the logits whose sign is the mask.
FIRST_CONV = "first-conv"
LAST_CONV = "last-conv"
# Layers whose output is finer than 1/DEFAULT_MIN_STRIDE of the input resolution stay fp32 (see the module doc).
DEFAULT_MIN_STRIDE = 16
# A model whose int8 export wants another setting records it in its config.json ``extra`` (a recipe's result gets its
# onnx-int8 export stage's), so every int8 export of it -- footseg export, the web page, bench -- quantizes the same
# layers. Pruning drops it (the setting was chosen for the unpruned widths); quantize_onnx on a file does not read it.
# Its key, ``MIN_STRIDE_KEY``, is config.json's (``footseg.models.info``).


def model_min_stride(info: SavedModelInfo, folder: Path | None = None) -> int:
    """The ``min_stride`` a model's int8 export uses unless told otherwise: its own, else ``DEFAULT_MIN_STRIDE``; a
    ``FootsegError`` naming ``folder``'s config.json when the recorded value is not a whole number of at least 1."""
    value = info.extra.get(MIN_STRIDE_KEY, DEFAULT_MIN_STRIDE)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise FootsegError(f"extra.{MIN_STRIDE_KEY} must be a whole number of at least 1, got {value!r}",
                           None if folder is None else folder / "config.json")
    return value


def calibration_images(calib: str | Path, n: int) -> list[Sample]:
    """Up to ``n`` images of the dataset ``calib`` (its train split if it has splits), spread evenly over it, each
    with its mask where it has one."""
    if n < 1:
        raise FootsegError(f"calibration needs at least one image, got --calib-n {n}")
    folder = split_folder(Path(calib), "train")
    samples = find_samples(folder)
    if not samples:
        raise FootsegError("no calibration images found", folder / "images")
    return spread(samples, n)


class ImageCalibrationReader(CalibrationDataReader):
    """Feeds calibration images one at a time as {"image": (1, 3, H, W) float32}, preprocessed as in inference.

    With ``priors`` (a prior-mask network) each also gets {"prior": (1, 1, H, W)}, a fake previous-frame mask made
    from the image's own mask (``footseg.data.prior``, seeded by position), so the prior input is calibrated on the
    range it sees on video; an image without a mask gets the empty prior of a first frame.
    """

    def __init__(self, samples: Sequence[Sample], input_size: tuple[int, int], priors: bool = False):
        self.samples = list(samples)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.priors = priors
        self._iter: Iterator[dict[str, np.ndarray]] | None = None

    def _prior(self, sample: Sample, index: int) -> np.ndarray:
        if sample.mask is None:
            return np.zeros((1, 1, *self.input_size), np.float32)
        mask = resize_mask(read_mask(sample.mask), self.input_size)
        return fake_prior(mask, np.random.default_rng([index, 1]))[None, None]

    def _batches(self) -> Iterator[dict[str, np.ndarray]]:
        for index, sample in enumerate(self.samples):
            image = to_array(resize_image(read_image(sample.image), self.input_size))
            feeds = {INPUT_NAME: image[None]}
            if self.priors:
                feeds[PRIOR_NAME] = self._prior(sample, index)
            yield feeds

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._iter is None:
            self._iter = self._batches()
        return next(self._iter, None)

    def rewind(self) -> None:
        self._iter = None

    def __len__(self) -> int:
        return len(self.samples)


def resolve_nodes(model: onnx.ModelProto, names: Sequence[str]) -> list[str]:
    """Node names to keep in fp32: exact graph node names, or the aliases ``first-conv`` / ``last-conv``."""
    convs = [n.name for n in model.graph.node if n.op_type == "Conv"]
    all_names = {n.name for n in model.graph.node}
    resolved: list[str] = []
    for name in names:
        if name == FIRST_CONV and convs:
            resolved.append(convs[0])
        elif name == LAST_CONV and convs:
            resolved.append(convs[-1])
        elif name in all_names:
            resolved.append(name)
        else:
            raise FootsegError(
                f"no node named '{name}' to keep in fp32 (use {FIRST_CONV}, {LAST_CONV} or a node name such as "
                f"'{convs[0] if convs else '?'}')"
            )
    return list(dict.fromkeys(resolved))


def _spatial_sizes(model: onnx.ModelProto) -> dict[str, int]:
    """H*W of every 4-D (N, C, H, W) tensor of ``model`` whose spatial size shape inference knows."""
    inferred = onnx.shape_inference.infer_shapes(model)
    sizes: dict[str, int] = {}
    for value in (*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output):
        dims = value.type.tensor_type.shape.dim
        if len(dims) == 4 and all(d.HasField("dim_value") for d in dims[2:]):
            sizes[value.name] = dims[2].dim_value * dims[3].dim_value
    return sizes


def high_resolution_nodes(model: onnx.ModelProto, min_stride: int) -> list[str]:
    """Nodes with an output finer than 1/``min_stride`` of the input image's resolution (none for min_stride 1).

    With ``min_stride`` 8 on a 256x256 input, every node producing a map larger than 32x32 is listed: the first
    conv, the 1/2 and 1/4 resolution encoder and decoder layers, the head and the final upsampling.
    """
    if min_stride < 1:
        raise FootsegError(f"min_stride must be at least 1, got {min_stride}")
    if min_stride == 1:
        return []
    sizes = _spatial_sizes(model)
    image = sizes.get(INPUT_NAME) or next((sizes[i.name] for i in model.graph.input if i.name in sizes), None)
    if image is None:
        raise FootsegError("cannot tell the input resolution of the model (expected a fixed (N, 3, H, W) input)")
    limit = image / (min_stride * min_stride)
    return [n.name for n in model.graph.node if any(sizes.get(o, 0) > limit for o in n.output)]


def fp32_resize_feeders(model: onnx.ModelProto, fp32_nodes: Sequence[str]) -> list[str]:
    """The Conv (+Relu) feeding each Resize in ``fp32_nodes`` from outside them: they must stay fp32 too.

    ONNX Runtime runs an fp32 Resize in its fast channel-blocked layout (NCHWc) only when a float Conv feeds it; fed
    by a DequantizeLinear at the edge of the int8 region it runs in plain NCHW, 2-3x slower (FastLinkNet's first
    1/8 -> 1/4 upsampling: ~0.1 ms of ~2.5). One 1x1 conv at 1/8 resolution in fp32 costs far less.
    """
    keep = set(fp32_nodes)
    producer = {o: n for n in model.graph.node for o in n.output}
    feeders: list[str] = []
    for node in model.graph.node:
        if node.name not in keep or node.op_type != "Resize":
            continue
        src = producer.get(node.input[0])
        while src is not None and src.name not in keep and src.op_type in ("Relu", "Conv"):
            feeders.append(src.name)
            if src.op_type == "Conv":
                break
            src = producer.get(src.input[0])
    return feeders


def read_fp32_sources(model: onnx.ModelProto, fp32_nodes: Sequence[str]) -> int:
    """Let nodes left in fp32 read an fp32 tensor itself instead of its DequantizeLinear(QuantizeLinear(tensor)).

    The quantizer rounds a tensor that feeds both int8 and fp32 layers (FastLinkNet's 1/4-resolution skip, read by
    the int8 encoder and by the fp32 decoder's residual Add) for every reader. For an fp32 reader the round trip
    only loses precision, and in ONNX Runtime it also blocks the Conv+Add fusion: the Add then runs alone after a
    layout conversion. Returns how many inputs were rewired; DequantizeLinear nodes left unread are removed.
    """
    keep = set(fp32_nodes)
    producer = {o: n for n in model.graph.node for o in n.output}
    float_made = {o for n in model.graph.node if n.name in keep for o in n.output}
    float_made |= {i.name for i in model.graph.input}
    rewired = 0
    for node in model.graph.node:
        if node.name not in keep:
            continue
        for j, name in enumerate(node.input):
            dq = producer.get(name)
            q = producer.get(dq.input[0]) if dq is not None and dq.op_type == "DequantizeLinear" else None
            if q is not None and q.op_type == "QuantizeLinear" and q.input[0] in float_made:
                node.input[j] = q.input[0]
                rewired += 1
    read = {i for n in model.graph.node for i in n.input} | {o.name for o in model.graph.output}
    nodes = [n for n in model.graph.node if n.op_type != "DequantizeLinear" or n.output[0] in read]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return rewired


def quantize_onnx(
    fp32: str | Path,
    out: str | Path,
    calib: str | Path,
    calib_n: int = 64,
    method: str = "minmax",
    keep_fp32: Sequence[str] = (),
    activation_type: QuantType = QuantType.QUInt8,
    weight_type: QuantType = QuantType.QInt8,
    reduce_range: bool = True,
    min_stride: int = DEFAULT_MIN_STRIDE,
) -> Path:
    """Quantize the footseg fp32 ONNX file ``fp32`` to int8 QDQ at ``out``, calibrated on ``calib``'s images.

    Nodes named in ``keep_fp32`` and, unless ``min_stride`` is 1, every node whose output is finer than
    1/``min_stride`` of the input resolution stay fp32 (see the module doc for why 16 is the default).

    The defaults (uint8 activations, 7-bit symmetric int8 weights) suit x86 CPUs without VNNI, whose int8 kernels
    (VPMADDUBSW) add pairs of u8*s8 products in int16 and saturate with full 8-bit weights; without
    ``reduce_range`` the first convolution, fed raw pixels, visibly degrades the mask there. uint8 weights (U8U8)
    avoid the saturation but take ORT's slower generic kernels (1.7x the fp32 time instead of 1.35x when every
    layer is int8), and int8 activations (S8S8) have no fast AVX2 kernel at all.
    """
    fp32, out = Path(fp32), Path(out)
    if method not in CALIB_METHODS:
        raise FootsegError(f"unknown calibration method '{method}'; choose one of: {', '.join(CALIB_METHODS)}")
    source = read_onnx(fp32)
    meta = {p.key: p.value for p in source.metadata_props}
    info = info_from_metadata(meta, fp32)
    reader = ImageCalibrationReader(calibration_images(calib, calib_n), info.input_size, priors=info.in_channels == 4)
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        # Shape inference plus ORT's graph optimisations, so calibration sees the graph that will be quantized.
        quant_pre_process(str(fp32), str(prepared))
        graph = onnx.load(str(prepared))
        exclude = list(dict.fromkeys([*resolve_nodes(graph, keep_fp32), *high_resolution_nodes(graph, min_stride)]))
        exclude += [n for n in fp32_resize_feeders(graph, exclude) if n not in exclude]
        if len(exclude) == len(graph.graph.node):
            # about the options, not a file: fp32 may be a temporary export of the model asked for
            raise FootsegError(f"min_stride {min_stride} and keep_fp32 {list(keep_fp32)} leave no layer to quantize: "
                               "give a smaller min_stride, or keep fewer layers in fp32")
        ranges = Path(tmp) / "ranges.json"
        calibrator = create_calibrator(
            prepared,
            augmented_model_path=str(Path(tmp) / "augmented.onnx"),
            calibrate_method=CALIB_METHODS[method],
            extra_options=_CALIB_OPTIONS[method],
        )
        with contextlib.redirect_stdout(io.StringIO()):  # the histogram calibrators print progress to stdout
            calibrator.collect_data(reader)
            save_tensors_data(calibrator.compute_data(), ranges)
        del calibrator  # releases its ONNX Runtime session before the temporary folder goes
        quantized = Path(tmp) / INT8_NAME
        quantize_static(
            str(prepared),
            str(quantized),
            None,
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range=reduce_range,
            activation_type=activation_type,
            weight_type=weight_type,
            nodes_to_exclude=exclude,
            calibrate_method=CALIB_METHODS[method],
            calibration_cache_path=ranges,
        )
        proto = onnx.load(str(quantized))
    read_fp32_sources(proto, exclude)
    compact_names(proto)
    meta[PRECISION_KEY] = "int8"
    set_metadata(proto, meta)
    proto.producer_name, proto.producer_version = "footseg", __version__  # not ONNX Runtime's quantizer's
    return save_onnx(proto, out)


# What a shipped int8 file was made with: its recipe's export stage, at export_int8's defaults (calib_n, method,
# opset, no --keep-fp32, the model's own min_stride); tests/models/test_shipped.py holds the recipes to them.
SHIPPED_CALIB_N = 64
SHIPPED_METHOD = "minmax"


def shipped_int8(ref: ModelRef) -> Path | None:
    """The int8 file a shipped model's recipe made (its export stage, calibrated on the recipe's own renders; its
    sha256 is in the model card), where the model ships one and is asked for at its own side; else None."""
    path = _int8_beside(ref)
    if path is None or "--size" in unlike_shipped(ref):  # asked for at another side than its own
        return None
    return path


def own_int8(ref: ModelRef) -> Path | None:
    """The int8 file that runs ``ref`` at its own side without calibrating one: a shipped model's recipe file
    (``shipped_int8``), or a model folder's ``model.int8.onnx`` that ``footseg export`` made from the folder's very
    weights file (its ``WEIGHTS_KEY``) and network, as a folder's ``model.onnx`` runs in its weights' place; else None
    (no such file, one of weights trained again since, or ``ref`` asked for at another side)."""
    return own_int8_or_why(ref)[0]


def own_int8_or_why(ref: ModelRef) -> tuple[Path | None, str]:
    """``own_int8``'s file, or None and why a model folder's ``model.int8.onnx`` is not its own, in words to follow
    the folder's path (the weights were trained again since, ...); "" where there is no such file, or where ``ref``
    is asked for at another side (which no file of its own serves)."""
    if ref.shipped or ref.onnx:
        return shipped_int8(ref), ""
    path = ref.folder / INT8_NAME
    if not path.is_file():
        return None, ""
    try:
        if ref.size is not None and (ref.size, ref.size) != tuple(read_info(ref.folder).input_size):
            return None, ""
        meta = {p.key: p.value for p in read_onnx(path, load_external_data=False).metadata_props}
        why = not_current_export(ref.folder, path, "int8", meta.get(PRECISION_KEY, "fp32"), meta.get(WEIGHTS_KEY),
                                 info_from_metadata(meta, path))
    except (FootsegError, OSError):  # unreadable: one made anew from the weights serves instead
        return None, f"its {INT8_NAME} cannot be read"
    return (None, why) if why else (path, "")


def _int8_beside(ref: ModelRef) -> Path | None:
    """The int8 file a shipped model has beside its weights, at whatever side it is asked for; else None."""
    if not ref.shipped or ref.onnx:
        return None
    path = ref.folder / INT8_NAME
    return path if path.is_file() else None


def unlike_shipped(ref: ModelRef, calib_n: int = SHIPPED_CALIB_N, method: str = SHIPPED_METHOD,
                   keep_fp32: Sequence[str] = (), opset: int = DEFAULT_OPSET, dynamic_batch: bool = False,
                   min_stride: int | None = None) -> list[str]:
    """The options asked for that would make another int8 file than the one ``ref`` ships (``shipped_int8``)."""
    info = read_info(ref.folder)
    return [option for option, differs in (
        ("--size", ref.size is not None and (ref.size, ref.size) != info.input_size),
        ("--calib-n", calib_n != SHIPPED_CALIB_N),
        ("--calib-method", method != SHIPPED_METHOD),
        ("--keep-fp32", bool(keep_fp32)),
        ("--opset", opset != DEFAULT_OPSET),
        ("--dynamic-batch", dynamic_batch),
        ("--min-stride", min_stride not in (None, model_min_stride(info, ref.folder))),
    ) if differs]


def own_int8_as_asked(ref: ModelRef, calib_n: int = SHIPPED_CALIB_N, method: str = SHIPPED_METHOD,
                      keep_fp32: Sequence[str] = (), opset: int = DEFAULT_OPSET, dynamic_batch: bool = False,
                      min_stride: int | None = None) -> Path:
    """The int8 file ``ref`` has of its own where no option asks for another (``unlike_shipped``): the one a shipped
    model ships, or a model folder's current ``footseg export --format onnx-int8`` (``own_int8``; what it was
    calibrated with is not recorded, so any option given rules it out); else the one-line error that int8 needs
    images to calibrate on, naming the options that rule the file out."""
    own, stale = (_int8_beside(ref), "") if ref.shipped else own_int8_or_why(ref)
    unlike = unlike_shipped(ref, calib_n, method, keep_fp32, opset, dynamic_batch, min_stride) if own else []
    if own is None or unlike:
        given = ", ".join(unlike)
        if stale:
            why = f" ({ref.folder}: {stale})"
        elif not unlike:
            why = ""
        elif ref.shipped:
            why = f" (the int8 file {ref.name} ships does not match the {given} given)"
        else:
            why = (f" (the folder's own {INT8_NAME} was made with options it does not record, so the {given} given "
                   "rule it out)")
        raise FootsegError("int8 export needs --calib DIR, images like those the model will see (e.g. a "
                           f"`footseg synth` render), to calibrate activation ranges on{why}")
    return own


def export_int8(
    model_dir: str | Path | ModelRef | None,
    out: str | Path | None = None,
    calib: str | Path | None = None,
    calib_n: int = SHIPPED_CALIB_N,
    method: str = SHIPPED_METHOD,
    keep_fp32: Sequence[str] = (),
    opset: int = DEFAULT_OPSET,
    dynamic_batch: bool = False,
    min_stride: int | None = None,
) -> Path:
    """Export a model (anything ``resolve_model`` takes) to int8 ONNX (default ``MODEL/model.int8.onnx``).

    ``calib`` is the dataset whose images (its train split, if it has splits) calibrate the activation ranges: images
    like those the model will see, never the photos it is judged on. ``min_stride`` as in ``quantize_onnx``: 8
    keeps the high-resolution layers fp32, 1 quantizes every layer; None: the model's own (``model_min_stride``).
    Without ``calib``, a model with an int8 file of its own (``own_int8_as_asked``: a shipped model's recipe file, or
    a model folder's current int8 export) gets a copy of that file, where no option asked for would make another.
    """
    if calib is None:
        ref = resolve_model(model_dir)
        own = own_int8_as_asked(ref, calib_n, method, keep_fp32, opset, dynamic_batch, min_stride)
        out = Path(out) if out else default_export_path(ref, INT8_NAME)
        if out.resolve() != own.resolve():  # a folder's own file, asked for where it is: already written
            atomic_copy(own, out)
        return out
    calibration_images(calib, calib_n)  # a bad calibration set fails before the export
    ref = resolve_model(model_dir)
    model, info, digest = load_for_export(ref)  # the weights' digest recorded, as an fp32 export records it
    out = Path(out) if out else default_export_path(ref, INT8_NAME)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_module(model, info, Path(tmp) / FP32_NAME, opset=opset, dynamic_batch=dynamic_batch,
                             weights_sha256=digest)
        return quantize_onnx(
            fp32, out, Path(calib), calib_n=calib_n, method=method, keep_fp32=keep_fp32,
            min_stride=model_min_stride(info, ref.folder) if min_stride is None else min_stride,
        )

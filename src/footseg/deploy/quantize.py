"""Static post-training int8 quantization of an exported model with ONNX Runtime (QDQ, per-channel weights).

Activation ranges are calibrated on training images run through exactly the preprocessing of inference (read,
resize to the model's input size, scale to [0, 1]), so the ranges match what the model sees in use.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import onnx
from google.protobuf.message import DecodeError
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

from footseg.data.io import read_image
from footseg.data.transforms import resize_image, to_tensor
from footseg.deploy.export import FP32_NAME, compact_names, default_export_path, export_module, save_onnx, set_metadata
from footseg.deploy.onnx_model import INPUT_NAME, PRECISION_KEY, info_from_metadata
from footseg.errors import FootsegError
from footseg.models.saved import SavedModelInfo, load_model

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


def calibration_images(calib: str | Path, n: int) -> list[Path]:
    """Up to ``n`` images of the dataset ``calib`` (its train split if it has splits), spread evenly over it."""
    from footseg.data.dataset import find_samples, split_folder

    if n < 1:
        raise FootsegError(f"calibration needs at least one image, got --calib-n {n}")
    folder = split_folder(Path(calib), "train")
    paths = [s.image for s in find_samples(folder)]
    if not paths:
        raise FootsegError("no calibration images found", folder / "images")
    if len(paths) <= n:
        return paths
    picks = np.linspace(0, len(paths) - 1, n).round().astype(int)  # evenly spread, not the first n stems
    return [paths[i] for i in picks]


class ImageCalibrationReader(CalibrationDataReader):
    """Feeds calibration images one at a time as {"image": (1, 3, H, W) float32}, preprocessed as in inference."""

    def __init__(self, paths: Sequence[Path], input_size: tuple[int, int]):
        self.paths = list(paths)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self._iter: Iterator[dict[str, np.ndarray]] | None = None

    def _batches(self) -> Iterator[dict[str, np.ndarray]]:
        for path in self.paths:
            image = to_tensor(resize_image(read_image(path), self.input_size)).numpy()
            yield {INPUT_NAME: image[None]}

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._iter is None:
            self._iter = self._batches()
        return next(self._iter, None)

    def rewind(self) -> None:
        self._iter = None

    def __len__(self) -> int:
        return len(self.paths)


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
) -> Path:
    """Quantize the footseg fp32 ONNX file ``fp32`` to int8 QDQ at ``out``, calibrated on ``calib``'s images.

    The defaults (uint8 activations, 7-bit int8 weights) suit x86 CPUs without VNNI, whose int8 kernels
    (VPMADDUBSW) add pairs of u8*s8 products in int16 and saturate with full 8-bit weights; without
    ``reduce_range`` the first convolution, fed raw pixels, visibly degrades the mask there.
    """
    fp32, out = Path(fp32), Path(out)
    if method not in CALIB_METHODS:
        raise FootsegError(f"unknown calibration method '{method}'; choose one of: {', '.join(CALIB_METHODS)}")
    try:
        source = onnx.load(str(fp32))
    except (OSError, ValueError, DecodeError) as exc:
        raise FootsegError(f"unreadable ONNX model ({type(exc).__name__})", fp32) from exc
    meta = {p.key: p.value for p in source.metadata_props}
    info = info_from_metadata(meta, fp32)
    reader = ImageCalibrationReader(calibration_images(calib, calib_n), info.input_size)
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        # Shape inference plus ORT's graph optimisations, so calibration sees the graph that will be quantized.
        quant_pre_process(str(fp32), str(prepared))
        exclude = resolve_nodes(onnx.load(str(prepared)), keep_fp32)
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
    compact_names(proto)
    meta[PRECISION_KEY] = "int8"
    set_metadata(proto, meta)
    proto.producer_name = "footseg"
    return save_onnx(proto, out)


def _procedural_calibration(folder: Path, n: int, info: SavedModelInfo) -> Path:
    from footseg.data.procedural import make_procedural_dataset

    return make_procedural_dataset(folder, n_train=n, n_val=0, n_test=0, size=max(info.input_size), seed=0)


def export_int8(
    model_dir: str | Path,
    out: str | Path | None = None,
    calib: str | Path | None = None,
    calib_n: int = 64,
    method: str = "minmax",
    keep_fp32: Sequence[str] = (),
    opset: int = 17,
    dynamic_batch: bool = False,
) -> Path:
    """Export the saved model folder ``model_dir`` to int8 ONNX (default ``model_dir/model.int8.onnx``).

    Without ``calib`` the built-in procedural dataset is generated in a temporary folder and used for calibration.
    """
    model, info = load_model(model_dir)
    out = Path(out) if out else default_export_path(model_dir, INT8_NAME)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_module(model, info, Path(tmp) / FP32_NAME, opset=opset, dynamic_batch=dynamic_batch)
        data = Path(calib) if calib else _procedural_calibration(Path(tmp) / "calib", calib_n, info)
        return quantize_onnx(fp32, out, data, calib_n=calib_n, method=method, keep_fp32=keep_fp32)

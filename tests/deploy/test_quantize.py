"""int8 static quantization: a much smaller QDQ file whose masks agree with fp32, calibrated as inference runs."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, numpy_helper

from footseg.data.samples import Sample
from footseg.deploy.quantize import (
    DEFAULT_MIN_STRIDE,
    MIN_STRIDE_KEY,
    ImageCalibrationReader,
    calibration_images,
    export_int8,
    high_resolution_nodes,
    quantize_onnx,
    resolve_nodes,
)
from footseg.errors import FootsegError
from footseg.runtime.onnx_model import OnnxModel


def _agreement(ref: np.ndarray, other: np.ndarray, min_margin: float = 0.0) -> float:
    """Share of pixels whose class agrees, among those where ``ref``'s two logits differ by more than min_margin."""
    sure = np.abs(ref[:, 1] - ref[:, 0]) > min_margin
    return float((ref.argmax(1) == other.argmax(1))[sure].mean())


def _conv_weights(model: onnx.ModelProto) -> list[onnx.TensorProto]:
    """Each Conv's weight initializer (the weight itself, or the one its DequantizeLinear reads)."""
    inits = {i.name: i for i in model.graph.initializer}
    producers = {o: n for n in model.graph.node for o in n.output}
    weights = []
    for conv in (n for n in model.graph.node if n.op_type == "Conv"):
        name = conv.input[1]
        if name not in inits:
            name = producers[name].input[0]
        weights.append(inits[name])
    return weights


def _conv_weight_types(model: onnx.ModelProto) -> list[int]:
    return [w.data_type for w in _conv_weights(model)]


@pytest.fixture(scope="module")
def all_int8_onnx(fp32_onnx: Path, tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every layer int8 (min_stride 1), as for a CPU with fast int8 kernels."""
    return quantize_onnx(fp32_onnx, tmp_path_factory.mktemp("all") / "all.int8.onnx", tiny_dataset, calib_n=8,
                         min_stride=1)


def test_all_int8_is_smaller_quantized_and_agrees_with_fp32(
    fp32_onnx: Path, all_int8_onnx: Path, fitted_images: np.ndarray
) -> None:
    assert all_int8_onnx.stat().st_size < 0.55 * fp32_onnx.stat().st_size  # 4-byte weights -> 1 byte, plus scales
    model = onnx.load(str(all_int8_onnx))
    ops = Counter(n.op_type for n in model.graph.node)
    assert ops["QuantizeLinear"] > 0 and ops["DequantizeLinear"] > 0
    assert set(_conv_weight_types(model)) == {TensorProto.INT8}  # every conv weight stored as int8
    assert any(len(i.dims) == 1 and i.dims[0] > 1 for i in model.graph.initializer if i.data_type == TensorProto.FLOAT)
    consumers = [n for n in model.graph.node if "image" in n.input]
    assert [n.op_type for n in consumers] == ["QuantizeLinear"]  # even the raw pixels
    fp32, int8 = OnnxModel(fp32_onnx)(fitted_images), OnnxModel(all_int8_onnx)(fitted_images)
    assert _agreement(fp32, int8) >= 0.95
    assert _agreement(fp32, int8, min_margin=2.0) >= 0.98
    assert np.abs(fp32 - int8).max() > 0


def test_default_int8_is_mixed_smaller_and_agrees_with_fp32(
    fp32_onnx: Path, int8_onnx: Path, fitted_images: np.ndarray
) -> None:
    # By default only the layers at 1/16 resolution or coarser (where most weights are) are int8; the first conv,
    # the higher-resolution encoder and decoder, the head and the final upsampling stay fp32.
    assert DEFAULT_MIN_STRIDE == 16
    assert int8_onnx.stat().st_size < 0.6 * fp32_onnx.stat().st_size
    model = onnx.load(str(int8_onnx))
    ops = Counter(n.op_type for n in model.graph.node)
    assert ops["QuantizeLinear"] > 0 and ops["DequantizeLinear"] > 0
    types = _conv_weight_types(model)
    assert types[0] == types[-1] == TensorProto.FLOAT  # first conv and 2-class head
    sizes = [(w.data_type, int(np.prod(w.dims))) for w in _conv_weights(model)]
    assert sum(n for t, n in sizes if t == TensorProto.INT8) > 0.6 * sum(n for _, n in sizes)  # most weights
    consumers = [n for n in model.graph.node if "image" in n.input]
    assert [n.op_type for n in consumers] == ["Conv"]  # the raw pixels are not quantized
    producer = {o: n for n in model.graph.node for o in n.output}["logits"]
    assert producer.op_type == "Resize"  # the output comes straight out of fp32 layers, no DequantizeLinear
    fp32, int8 = OnnxModel(fp32_onnx)(fitted_images), OnnxModel(int8_onnx)(fitted_images)
    ref_fg = fp32.argmax(1).mean()
    assert 0.05 < ref_fg < 0.95  # the trained fixture predicts a real mask, not all one class
    # Pixels near the decision boundary may flip under int8 noise; those the fp32 model is sure about must not.
    assert _agreement(fp32, int8) >= 0.95
    assert _agreement(fp32, int8, min_margin=2.0) >= 0.98
    assert np.abs(fp32 - int8).max() > 0  # it really runs in int8


def test_fp32_layers_at_the_edges_of_the_int8_region_read_fp32_tensors(int8_onnx: Path) -> None:
    model = onnx.load(str(int8_onnx))
    producer = {o: n for n in model.graph.node for o in n.output}
    readers: dict[str, list[onnx.NodeProto]] = {}
    for n in model.graph.node:
        for name in n.input:
            readers.setdefault(name, []).append(n)

    def int8_side(node: onnx.NodeProto) -> bool:  # in QDQ form a quantized op reads DequantizeLinear, writes Quantize
        inputs = [producer[i] for i in node.input if i in producer]
        outputs = readers.get(node.output[0], [])
        return (bool(inputs) and all(p.op_type == "DequantizeLinear" for p in inputs)
                and bool(outputs) and all(r.op_type == "QuantizeLinear" for r in outputs))

    fp32_side = [n for n in model.graph.node
                 if n.op_type not in ("QuantizeLinear", "DequantizeLinear") and not int8_side(n)]
    resizes = [n for n in fp32_side if n.op_type == "Resize"]
    assert len(resizes) >= 2  # the decoder's upsamplings at 1/4 and 1/2, and the output's
    for resize in resizes:  # fed by a float Conv, so ONNX Runtime runs it channel-blocked
        assert producer[resize.input[0]].op_type != "DequantizeLinear", resize.name
    round_trips = 0
    for node in fp32_side:
        for name in node.input:
            dq = producer.get(name)
            q = producer.get(dq.input[0]) if dq is not None and dq.op_type == "DequantizeLinear" else None
            if q is not None:  # an activation from the int8 region: it must really have been computed in int8
                source = producer.get(q.input[0])
                assert source is not None and int8_side(source), f"{node.name} reads a rounded fp32 tensor"
                round_trips += 1
    assert round_trips >= 1  # the int8 region does hand its result back to fp32 layers


def test_int8_metadata(int8_onnx: Path, fp32_onnx: Path) -> None:
    runner = OnnxModel(int8_onnx)
    assert runner.precision == "int8"
    assert runner.info == OnnxModel(fp32_onnx).info


def test_calibration_reads_train_split_evenly(tiny_dataset: Path) -> None:
    train = sorted((tiny_dataset / "train" / "images").iterdir())
    picked = calibration_images(tiny_dataset, 3)
    assert [s.image for s in picked] == [train[0], train[4], train[7]]  # spread over the whole split
    assert all(s.mask == tiny_dataset / "train" / "masks" / f"{s.stem}.png" for s in picked)
    val = calibration_images(tiny_dataset / "val", 100)
    assert [s.image for s in val] == sorted((tiny_dataset / "val" / "images").iterdir())
    reader = ImageCalibrationReader(picked, (64, 96))
    feeds = [reader.get_next() for _ in range(4)]
    assert feeds[3] is None
    assert feeds[0]["image"].shape == (1, 3, 64, 96) and feeds[0]["image"].dtype == np.float32
    assert feeds[0]["image"].min() >= 0.0 and feeds[0]["image"].max() <= 1.0
    reader.rewind()
    np.testing.assert_array_equal(reader.get_next()["image"], feeds[0]["image"])
    with pytest.raises(FootsegError, match="at least one"):
        calibration_images(tiny_dataset, 0)


def test_calibration_priors_come_from_each_image_s_own_mask(tiny_dataset: Path) -> None:
    with_mask = calibration_images(tiny_dataset, 1)[0]
    without = Sample(with_mask.stem, with_mask.image, None)
    feeds = ImageCalibrationReader([with_mask, without], (64, 96), priors=True)
    first, second = feeds.get_next(), feeds.get_next()
    assert first["prior"].shape == (1, 1, 64, 96) and first["prior"].max() > 0  # a fake previous-frame foot
    assert not second["prior"].any()  # no mask: the empty prior of a first frame


def test_keep_fp32_aliases_leave_first_and_last_conv_unquantized(
    fp32_onnx: Path, tiny_dataset: Path, tmp_path: Path, fitted_images: np.ndarray
) -> None:
    out = quantize_onnx(
        fp32_onnx, tmp_path / "k.onnx", tiny_dataset, calib_n=8, keep_fp32=["first-conv", "last-conv"], min_stride=1
    )
    model = onnx.load(str(out))
    producers = {o: n for n in model.graph.node for o in n.output}
    consumers = [n for n in model.graph.node if "image" in n.input]
    assert [n.op_type for n in consumers] == ["Conv"]  # the raw pixels are not quantized
    inits = {i.name: i for i in model.graph.initializer}
    assert inits[consumers[0].input[1]].data_type == TensorProto.FLOAT
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    last = convs[-1]
    assert last.input[1] in inits and inits[last.input[1]].data_type == TensorProto.FLOAT
    assert producers[last.input[0]].op_type == "DequantizeLinear"  # its input still comes out of int8
    assert _agreement(OnnxModel(fp32_onnx)(fitted_images), OnnxModel(out)(fitted_images), min_margin=2.0) >= 0.98


def test_high_resolution_nodes_follow_the_output_resolution(fp32_onnx: Path) -> None:
    model = onnx.load(str(fp32_onnx))  # 64x64 input: 1/8 is 8x8
    assert high_resolution_nodes(model, 1) == []
    inferred = onnx.shape_inference.infer_shapes(model)
    hw = {
        v.name: v.type.tensor_type.shape.dim[2].dim_value * v.type.tensor_type.shape.dim[3].dim_value
        for v in (*inferred.graph.value_info, *inferred.graph.output)
        if len(v.type.tensor_type.shape.dim) == 4
    }
    for stride in (2, 8, 32):
        kept = set(high_resolution_nodes(model, stride))
        expected = {n.name for n in model.graph.node if any(hw.get(o, 0) > 64 * 64 / stride**2 for o in n.output)}
        assert kept == expected and kept
    assert set(high_resolution_nodes(model, 2)) < set(high_resolution_nodes(model, 8))
    convs = [n.name for n in model.graph.node if n.op_type == "Conv"]
    assert high_resolution_nodes(model, 2) == ["/Resize"]  # only the final upsampling is at full resolution
    assert convs[0] in high_resolution_nodes(model, 4) and convs[-1] in high_resolution_nodes(model, 4)
    with pytest.raises(FootsegError, match="min_stride must be at least 1"):
        high_resolution_nodes(model, 0)


def test_unknown_node_and_method(fp32_onnx: Path, tiny_dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(FootsegError, match="no node named 'nope'"):
        quantize_onnx(fp32_onnx, tmp_path / "x.onnx", tiny_dataset, calib_n=2, keep_fp32=["nope"])
    with pytest.raises(FootsegError, match="unknown calibration method 'kl'"):
        quantize_onnx(fp32_onnx, tmp_path / "x.onnx", tiny_dataset, method="kl")
    with pytest.raises(FootsegError, match="min_stride 1024 and keep_fp32 \\[\\] leave no layer to quantize"):
        quantize_onnx(fp32_onnx, tmp_path / "x.onnx", tiny_dataset, calib_n=1, min_stride=1024)
    assert not (tmp_path / "x.onnx").exists()
    model = onnx.load(str(fp32_onnx))
    assert resolve_nodes(model, ["first-conv", model.graph.node[0].name]) == [model.graph.node[0].name]


@pytest.mark.slow  # ORT's entropy search is pure Python over every activation's histogram
def test_calibration_methods_give_their_own_ranges(
    fp32_onnx: Path, tiny_dataset: Path, tmp_path: Path, fitted_images: np.ndarray
) -> None:
    ref = OnnxModel(fp32_onnx)(fitted_images)
    scales = {}
    for method in ("minmax", "entropy", "percentile"):
        out = tmp_path / f"{method}.onnx"
        quantize_onnx(fp32_onnx, out, tiny_dataset, calib_n=4, method=method, min_stride=1)
        model = onnx.load(str(out))
        scales[method] = sorted(
            float(numpy_helper.to_array(i))
            for i in model.graph.initializer
            if i.data_type == TensorProto.FLOAT and not i.dims
        )
        agreement = _agreement(ref, OnnxModel(out)(fitted_images), min_margin=2.0)
        # Entropy (KL) clips ReLU activations hard and is measurably worse on this network; it must still run.
        assert agreement >= (0.5 if method == "entropy" else 0.95), (method, agreement)
    # Activation scales come from each method's own ranges (entropy used to fall back to plain min/max).
    assert scales["entropy"] != scales["minmax"] and scales["percentile"] != scales["minmax"]


def test_fp32_input_must_be_a_footseg_export(tmp_path: Path, tiny_dataset: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00\x01garbage")
    with pytest.raises(FootsegError, match=str(bad)):
        quantize_onnx(bad, tmp_path / "out.onnx", tiny_dataset)


def _recording_min_stride(model_dir: Path, out: Path, value: object) -> Path:
    """A copy of ``model_dir`` whose config.json records ``value`` as its int8 min_stride."""
    shutil.copytree(model_dir, out)
    config = json.loads((out / "config.json").read_text())
    config["extra"][MIN_STRIDE_KEY] = value
    (out / "config.json").write_text(json.dumps(config))
    return out


def test_a_model_recording_its_min_stride_is_exported_with_it(
    trained_dir: Path, int8_onnx: Path, tiny_dataset: Path, tmp_path: Path
) -> None:
    own = _recording_min_stride(trained_dir, tmp_path / "own", 1)
    recorded = export_int8(own, tmp_path / "recorded.onnx", calib=tiny_dataset, calib_n=8)
    assert set(_conv_weight_types(onnx.load(str(recorded)))) == {TensorProto.INT8}  # as min_stride=1 makes it
    assert TensorProto.FLOAT in _conv_weight_types(onnx.load(str(int8_onnx)))  # the default keeps some fp32
    told = export_int8(own, tmp_path / "told.onnx", calib=tiny_dataset, calib_n=8, min_stride=DEFAULT_MIN_STRIDE)
    assert TensorProto.FLOAT in _conv_weight_types(onnx.load(str(told)))  # an explicit setting still wins


@pytest.mark.parametrize("bad", [0, "8", 8.5, True, None])
def test_a_bad_recorded_min_stride_is_one_line_naming_the_config(
    trained_dir: Path, tiny_dataset: Path, tmp_path: Path, bad: object
) -> None:
    own = _recording_min_stride(trained_dir, tmp_path / "own", bad)
    with pytest.raises(FootsegError, match=f"{MIN_STRIDE_KEY} must be a whole number") as caught:
        export_int8(own, tmp_path / "x.onnx", calib=tiny_dataset, calib_n=2)
    assert str(own / "config.json") in str(caught.value)

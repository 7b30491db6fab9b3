"""The ONNX runner: metadata encoding, pinned threads, and clear errors for files that are not footseg models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from footseg.errors import FootsegError
from footseg.models import SavedModelInfo
from footseg.runtime.onnx_model import OnnxModel, info_from_metadata, info_to_metadata, session_options


def test_metadata_encoding_round_trip() -> None:
    info = SavedModelInfo("linknet", 0.75, 3, (96, 160), extra={"val_iou": 0.91, "note": "a,b"})
    meta = info_to_metadata(info, "int8")
    assert all(isinstance(v, str) for v in meta.values())
    assert meta["footseg.precision"] == "int8"
    assert info_from_metadata(meta, "m.onnx") == info


def test_missing_or_broken_metadata_names_the_file() -> None:
    with pytest.raises(FootsegError, match=r"^m\.onnx: not a footseg ONNX file"):
        info_from_metadata({"producer": "x"}, "m.onnx")
    meta = info_to_metadata(SavedModelInfo("fastlinknet"), "fp32")
    meta["footseg.input_size"] = "[256]"
    with pytest.raises(FootsegError, match=r"^m\.onnx: invalid footseg metadata"):
        info_from_metadata(meta, "m.onnx")


def test_unreadable_and_missing_files(tmp_path: Path) -> None:
    bad = tmp_path / "garbage.onnx"
    bad.write_bytes(b"this is not a protobuf" * 10)
    with pytest.raises(FootsegError) as exc:
        OnnxModel(bad)
    assert str(exc.value).startswith(f"{bad}: unreadable ONNX model")
    assert "\n" not in str(exc.value)
    with pytest.raises(FootsegError, match="ONNX file not found"):
        OnnxModel(tmp_path / "absent.onnx")


def test_plain_onnx_without_footseg_metadata_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plain.onnx"
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 32, 32])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "plain", [x], [y])
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with pytest.raises(FootsegError, match=f"^{path}: not a footseg ONNX file"):
        OnnxModel(path)


def test_batches_of_any_size_and_shape_check(fp32_onnx: Path) -> None:
    runner = OnnxModel(fp32_onnx, threads=2)
    assert runner.fixed_batch == 1
    batch = np.random.default_rng(0).random((3, 3, 64, 64), dtype=np.float32)
    together = runner(batch)
    apart = np.concatenate([runner(batch[i : i + 1]) for i in range(3)])
    assert together.shape == (3, 2, 64, 64)
    np.testing.assert_array_equal(together, apart)
    with pytest.raises(ValueError, match="expected an"):
        runner(batch[:, :, :32])


def test_session_options_pin_threads() -> None:
    opts = session_options(3)
    assert opts.intra_op_num_threads == 3 and opts.inter_op_num_threads == 1
    assert session_options(0).intra_op_num_threads == 0  # ONNX Runtime's own default (cpu_threads with nothing set)
    with pytest.raises(FootsegError, match="threads must be at least 1"):
        session_options(-1)


@pytest.mark.parametrize(("key", "value"), [("footseg.input_size", "[96, 96]"), ("footseg.in_channels", "1")])
def test_metadata_that_the_graph_contradicts_is_refused_at_load(fp32_onnx: Path, tmp_path: Path, key: str,
                                                                value: str) -> None:
    model = onnx.load(fp32_onnx)
    helper.set_model_props(model, {**{p.key: p.value for p in model.metadata_props}, key: value})
    edited = tmp_path / "edited.onnx"
    onnx.save(model, edited)
    with pytest.raises(FootsegError, match="where its footseg metadata says float") as err:
        OnnxModel(edited)  # not at the first frame, in ONNX Runtime's words
    assert str(err.value).startswith(f"{edited}: ")
    OnnxModel(fp32_onnx)  # the file as exported agrees with itself

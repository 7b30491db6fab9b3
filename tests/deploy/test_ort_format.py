"""The shipped exports convert to ONNX Runtime's ORT format (what its reduced mobile builds load), as README.md says:
the same output, the metadata kept, and only operators every CPU build has."""

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from onnxruntime.tools.convert_onnx_models_to_ort import OptimizationStyle, convert_onnx_models_to_ort

from footseg.models.info import PRETRAINED_DIR
from footseg.runtime.resolve import DEFAULT_MODEL

SHIPPED = PRETRAINED_DIR / DEFAULT_MODEL


@pytest.mark.parametrize("name", ["model.onnx", "model.int8.onnx"])
def test_a_shipped_export_converts_to_the_ort_format_and_runs_the_same(name: str, tmp_path: Path) -> None:
    source = tmp_path / "in" / name
    source.parent.mkdir()
    source.write_bytes((SHIPPED / name).read_bytes())
    convert_onnx_models_to_ort(source.parent, output_dir=tmp_path / "out",
                               optimization_styles=[OptimizationStyle.Fixed])
    converted = tmp_path / "out" / name.replace(".onnx", ".ort")
    sessions = [ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in (source, converted)]
    height, width = json.loads(sessions[0].get_modelmeta().custom_metadata_map["footseg.input_size"])
    frame = np.random.default_rng(0).random((1, 3, height, width), dtype=np.float32)
    onnx_out, ort_out = (s.run(None, {"image": frame})[0] for s in sessions)
    np.testing.assert_allclose(ort_out, onnx_out, atol=1e-4)
    meta = [s.get_modelmeta().custom_metadata_map for s in sessions]
    assert meta[1] == meta[0]  # the settings an app reads: side, threshold, region peak
    operators = (tmp_path / "out" / "required_operators.config").read_text()
    assert "nchwc" not in operators.lower()  # no layout of one CPU family's own: the file runs on an ARM phone's build

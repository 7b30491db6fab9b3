"""The shipped exports convert to ONNX Runtime's ORT format (what its reduced mobile builds load) by the command
README.md gives: the same output, the metadata kept, and the operator list a reduced build is configured from."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from footseg.models.info import PRETRAINED_DIR
from footseg.runtime.resolve import DEFAULT_MODEL

SHIPPED = PRETRAINED_DIR / DEFAULT_MODEL


@pytest.mark.parametrize(("shipped", "name"), [("model.onnx", "fastlinknet_ctx"),
                                               ("model.int8.onnx", "fastlinknet_ctx.int8")])
def test_a_shipped_export_converts_to_the_ort_format_and_runs_the_same(shipped: str, name: str,
                                                                       tmp_path: Path) -> None:
    shutil.copyfile(SHIPPED / shipped, tmp_path / f"{name}.onnx")  # as `footseg export` names it
    done = subprocess.run([sys.executable, "-m", "onnxruntime.tools.convert_onnx_models_to_ort", f"{name}.onnx",
                           "--optimization_style", "Fixed", "--target_platform", "arm"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    sessions = [ort.InferenceSession(str(tmp_path / f"{name}{suffix}"), providers=["CPUExecutionProvider"])
                for suffix in (".onnx", ".ort")]
    height, width = json.loads(sessions[0].get_modelmeta().custom_metadata_map["footseg.input_size"])
    frame = np.random.default_rng(0).random((1, 3, height, width), dtype=np.float32)
    onnx_out, ort_out = (s.run(None, {"image": frame})[0] for s in sessions)
    np.testing.assert_allclose(ort_out, onnx_out, atol=1e-4)
    meta = [s.get_modelmeta().custom_metadata_map for s in sessions]
    assert meta[1] == meta[0]  # the settings an app reads: side, threshold, region peak
    operators = (tmp_path / f"{name}.required_operators.config").read_text()
    assert "Conv" in operators and ("QLinearConv" in operators) == ("int8" in name)

"""FastLinkNet, plain and with its context gate, exports to ONNX (opset 17); ONNX Runtime gives PyTorch's logits."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from footseg.models import create_model


@pytest.mark.parametrize("name", ["fastlinknet", "fastlinknet_ctx"])
def test_fastlinknet_onnx_matches_torch(tmp_path: Path, name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name).eval()
    # random BN statistics so the comparison exercises more than the init values
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    x = torch.rand(1, 3, 128, 96)
    path = tmp_path / "fastlinknet.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(model, (x,), str(path), opset_version=17, dynamo=False, input_names=["image"])
    onnx.checker.check_model(onnx.load(str(path)))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"image": x.numpy()})[0]
    with torch.no_grad():
        want = model(x).numpy()
    assert got.shape == want.shape == (1, 2, 128, 96)
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)

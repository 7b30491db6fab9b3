"""PyTorch -> TFLite (fp32) with Google's maintained converter, ``litert-torch``, for Android/iOS runtimes.

The file takes the same input as the ONNX export, (1, 3, H, W) RGB in [0, 1] at the model's input size, and gives the
same output: for a two-class model the one-channel foreground margin ``l1 - l0`` (``footseg.deploy.export``), so a pixel
is foot where ``sigmoid(margin)`` exceeds the model's threshold (``threshold`` in its config.json; at 0.5, where the
margin is positive). The file itself carries no metadata, so the export writes its config beside it
(``model.tflite.json``: threshold, input size, classes, and the region peak and presence gate where the model has
them, which an app applies as ``footseg.runtime.predictor`` does), which an app ships with the file. ``litert-torch``
0.10 installs on Python 3.11 with torch 2.13, but it brings JAX, transformers and the LiteRT converter along, so it is
an optional extra (``pip install 'footseg[tflite]'``), not a dependency of footseg. Checked here: the shipped
fastlinknet converts in seconds and its TFLite output matches PyTorch to 3e-5 (max absolute margin difference at
256x256).
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import torch

from footseg.atomic import atomic_path, atomic_write_text
from footseg.deploy.export import default_export_path, margin_module
from footseg.errors import FootsegError
from footseg.models.info import info_to_dict
from footseg.runtime.resolve import ModelRef, resolve_model

TFLITE_NAME = "model.tflite"
INSTALL_HINT = "pip install 'footseg[tflite]' (litert-torch; it brings JAX and transformers, a large download)"


def _converter():
    try:
        return importlib.import_module("litert_torch")
    except ImportError as exc:
        raise FootsegError(f"TFLite export needs the litert-torch converter, which is not installed: {INSTALL_HINT}") \
            from exc


def export_tflite(model_dir: str | Path | ModelRef | None, out: str | Path | None = None) -> Path:
    """Export a model (anything ``resolve_model`` takes) to fp32 TFLite (default ``MODEL/model.tflite``)."""
    ref = resolve_model(model_dir)
    model, info = ref.load()
    if info.in_channels != 3:
        raise FootsegError(f"TFLite export takes RGB models; this one has {info.in_channels} inputs (a prior-mask "
                           "network: export it to ONNX)", ref.path)
    converter = _converter()  # before any conversion work, so a missing converter fails at once
    out = Path(out) if out else default_export_path(ref, TFLITE_NAME)
    h, w = info.input_size
    example = torch.rand(1, 3, h, w)
    module = margin_module(model, example) if info.num_classes == 2 else model.eval()
    try:
        edge = converter.convert(module, (example,))
    except Exception as exc:  # the converter raises many types; the user needs the model and the reason
        raise FootsegError(f"litert-torch could not convert {info.model} ({type(exc).__name__}: {exc})",
                           ref.path) from exc
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        edge.export(str(tmp))
    atomic_write_text(config_path(out), json.dumps(info_to_dict(info), indent=2) + "\n")
    return out


def config_path(tflite_file: str | Path) -> Path:
    """Where the export writes a TFLite file's config (``model.tflite.json``): the file has no metadata of its own."""
    tflite_file = Path(tflite_file)
    return tflite_file.with_name(tflite_file.name + ".json")

"""A model's exports carried to a model folder of the same weights and network with other decisions (threshold,
region peak, presence gate: what ``footseg threshold`` changes), so that folder runs in ONNX Runtime and keeps the
default's recipe-made int8 file without exporting or calibrating anything again.

The threshold, region peak and presence are applied outside the graph, so an export serves every such folder; its
metadata is rewritten to the folder's config, which an app reading the file alone (``examples/onnx_app.py``) applies,
and names the folder's weights, by which footseg knows it for theirs (``not_current_export``).
"""

from __future__ import annotations

from pathlib import Path

from footseg.deploy.export import save_onnx, set_metadata
from footseg.deploy.quantize import INT8_NAME, own_int8
from footseg.errors import FootsegError
from footseg.models.info import WEIGHTS_NAME, read_info
from footseg.provenance import sha256_file
from footseg.runtime.onnx_model import (
    FP32_NAME,
    OUTPUT_KEY,
    PRECISION_KEY,
    WEIGHTS_KEY,
    info_from_metadata,
    info_to_metadata,
    not_current_export,
    read_onnx,
    same_network,
)
from footseg.runtime.resolve import ModelRef


def carry_exports(source: ModelRef, folder: Path) -> list[Path]:
    """``source``'s own exports (its current ``model.onnx``; its int8 file, ``own_int8``) written into ``folder``,
    which holds the same weights file and network with other decisions: each with ``folder``'s config and weights'
    sha256 as its metadata. An export of another side than ``folder``'s (an export fixes its side) is not carried.
    Returns the files written."""
    digest = sha256_file(folder / WEIGHTS_NAME)
    if digest != sha256_file(source.folder / WEIGHTS_NAME):
        raise FootsegError(f"holds other weights than {source.folder}: exports are carried only between folders of "
                           "one weights file", folder)
    info = read_info(folder)
    fp32 = source.folder / FP32_NAME
    exports = [(fp32, "fp32")] if fp32.is_file() else []
    if (int8 := own_int8(source)) is not None:  # a shipped model's, or a folder's current export
        exports.append((int8, "int8"))
    carried = []
    for path, precision in exports:
        try:  # each read once: its metadata says whether it is the source's, its graph is what is written
            proto = read_onnx(path)
            had = {p.key: p.value for p in proto.metadata_props}
            exported = info_from_metadata(had, path)
        except FootsegError:  # unreadable: a later `footseg export` of the folder makes it anew
            continue
        stale = precision == "fp32" and not_current_export(source.folder, path, "fp32", had.get(PRECISION_KEY, "fp32"),
                                                           had.get(WEIGHTS_KEY), exported)
        if stale or had.get(PRECISION_KEY) != precision or not same_network(exported, info):
            continue
        set_metadata(proto, info_to_metadata(info, precision, had.get(OUTPUT_KEY), digest))
        carried.append(save_onnx(proto, folder / (FP32_NAME if precision == "fp32" else INT8_NAME)))
    return carried

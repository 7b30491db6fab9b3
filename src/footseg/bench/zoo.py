"""The model zoo table: each shipped model's int8 cost against MediaPipe's selfie segmenter, and its foot IoU.

Cost is one ``benchmark`` run of every model's ONNX Runtime int8 export (``footseg export --format onnx-int8``'s
defaults) at 1 thread with the peer, all timed in the same interleaved rounds: each model at its own input size (a
frame's cost where it is used) and the peer at 256x256 (``PEER_SIDE``), the setting footseg's cost targets are stated
in, so ``x_peer`` is the ratio they name. Accuracy is ``evaluate`` (``footseg eval``) of the PyTorch weights at the
model's own input size on each dataset's test split. ``benchmarks/zoo.py`` is the command line.
"""

from __future__ import annotations

from pathlib import Path

from footseg.bench.table import PEER_REFERENCE, benchmark, format_cell
from footseg.errors import FootsegError, require_folder
from footseg.eval.evaluate import evaluate
from footseg.runtime.resolve import DEFAULT_MODEL, resolve_model

RUNTIME = "onnx-int8"  # the file for a phone (footseg export --format onnx-int8); the web page defaults to fp32
ACCURACY = (("synth_iou", "synthetic test"), ("own_feet_iou", "own-feet test"), ("real_iou", "real photos (report)"))


def zoo_rows(models: list[str], synth: Path, own_feet: Path | None = None, real: Path | None = None, rounds: int = 5,
             min_time: float = 10.0) -> tuple[list[dict], str | None]:
    """One row per model (params, int8 size, the side it was timed at, latency, ``x_peer``, IoU per dataset as a
    fraction), then the peer's row; and why the peer is missing, if it is. Each model is timed at its own input size
    and the peer at 256x256, so a latency is one frame where the model is used. ``synth`` also calibrates the int8
    export (its train split).

    Every model and folder is checked before anything is timed: models must have weights (a saved or shipped model,
    not an architecture name or an exported file, which the int8 export and ``evaluate`` both need)."""
    for name in models:
        if resolve_model(name).onnx:
            raise FootsegError("the zoo exports and scores a model's weights; give its folder or shipped name", name)
    for data in (synth, own_feet, real):
        if data is not None:
            require_folder(data, "dataset folder")
    cost, why = benchmark(models, runtimes=[RUNTIME], threads=[1], size=None, data=synth, rounds=rounds,
                          min_time=min_time, peer=True)
    ours = [r for r in cost if r.get("runtime") == RUNTIME]  # in the order of ``models`` (one row each)
    rows = []
    for name, bench in zip(models, ours, strict=True):
        row = {"model": name, "default": name == DEFAULT_MODEL, "params": bench.get("params"),
               "size_mb": bench.get("size_mb"), "side": bench.get("size"), "latency_ms": bench.get("latency_ms"),
               "x_peer": bench.get("x_peer")}
        for (column, _), data in zip(ACCURACY, (synth, own_feet, real), strict=True):
            row[column] = None if data is None else evaluate(name, data)["iou"]
        rows.append(row)
    peer = next((r for r in cost if r.get("runtime") == PEER_REFERENCE), None)
    if peer is not None:
        rows.append({"model": f"{peer['model']} ({PEER_REFERENCE})", "default": False, "params": peer["params"],
                     "size_mb": peer["size_mb"], "side": peer.get("size"), "latency_ms": peer["latency_ms"],
                     "x_peer": peer["x_peer"]})
    return rows, why


def format_zoo(rows: list[dict]) -> str:
    """A Markdown table, foot IoU in percent; the file is footseg's int8 ONNX file, or the peer's TFLite file, and
    the latency is at the row's side (its input is side x side)."""
    header = ["model", "params", "file (KB)", "side", "ms, 1 thread", "x MediaPipe", *(title for _, title in ACCURACY)]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for r in rows:
        name = f"`{r['model']}`" + (" (default)" if r["default"] else "")
        size_kb = None if r.get("size_mb") is None else r["size_mb"] * 1000
        cells = [name, format_cell(r.get("params"), ","), format_cell(size_kb, ".0f"), format_cell(r.get("side"), "d"),
                 format_cell(r.get("latency_ms"), ".2f"), format_cell(r.get("x_peer"), ".2f")]
        cells += [format_cell(None if r.get(k) is None else 100 * r[k], ".1f")
                  for k, _ in ACCURACY]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)

"""``footseg bench``: one row per model x runtime x thread count (the thesis's speed table), as Markdown and JSON.

Each model is prepared for its runtimes (exported to ONNX, quantized to int8), optionally scored on a dataset, and
then every row -- and with ``peer`` MediaPipe's selfie segmenter -- is timed in the same interleaved rounds
(``footseg.bench.cost``), so rows measured in one run compare fairly on a shared machine.
"""

from __future__ import annotations

import math
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import onnx
from onnx import numpy_helper
from torch import nn

from footseg.bench.cost import (
    PEAK_REPEATS,
    PEAK_SIZE,
    Sampler,
    add_roofline,
    available_threads,
    count_flops,
    count_params,
    interleaved,
    onnx_sampler,
    parse_threads,
    peak_gflops,
    torch_sampler,
    warn_oversubscribed,
)
from footseg.bench.peer import PEER_RUNTIMES, peer_rows
from footseg.deploy.export import export_onnx
from footseg.deploy.quantize import export_int8, own_int8, own_int8_or_why
from footseg.errors import FootsegError, require_folder
from footseg.eval.evaluate import evaluate
from footseg.models.info import WEIGHTS_NAME, SavedModelInfo, pretrained_models
from footseg.models.registry import create_model, list_models
from footseg.models.saved import build_model, save_model
from footseg.runtime.device import cpu_model
from footseg.runtime.onnx_model import OnnxModel
from footseg.runtime.predictor import ModelLike
from footseg.runtime.resolve import DEFAULT_MODEL, check_input_side, resolve_model
from footseg.runtime.timing import WARMUP_RUNS, latency_stats

RUNTIMES = ("torch", "onnx", "onnx-int8")
# What int8 rows can run without --data, in the words of the refusal: a file of the model's own (``own_int8``)
CALIBRATION_HINT = ("(a render, `footseg synth DIR --n 200`, or the photos a model was trained on), or the model "
                    "folder's own int8 file, exported from its weights as they are: `footseg export MODEL --format "
                    "onnx-int8 --calib DIR`")
PEER_REFERENCE = "litert"  # MediaPipe's network alone in its own runtime: what a footseg row is compared with
# The side the cost target is stated at (issue 4/12: "ONNX Runtime against its TFLite network, 256x256, 1 thread"),
# which is also MediaPipe's network's own, fixed in its file: the peer always runs at it, whatever side the models do.
PEER_SIDE = 256
UNTRAINED_SIDE = 256  # an architecture without weights has no side of its own; the peer's keeps it comparable


def default_runtimes(peer: bool, data: str | Path | None, models: Sequence[str] | None = None,
                     size: int | None = None) -> tuple[list[str], str | None]:
    """The runtimes timed when none are named, and a note on one left out.

    Alone, PyTorch (quick: the cost of a network as trained). Against the peer, the runtimes footseg deploys with,
    as MediaPipe is timed in its own (issue 12's target: "ONNX Runtime against its TFLite network"): ONNX fp32, and
    int8 where ``data`` has a train split to calibrate on or every model brings its int8 file (an ``.onnx`` file, or
    a model's own at its side: ``own_int8``); PyTorch eager is no on-device runtime to compare.
    """
    if not peer:
        return ["torch"], None
    if data is not None and (Path(data) / "train").is_dir():
        return ["onnx", "onnx-int8"], None
    if all(_brings_int8(ref, size) for ref in (models or list_models())):
        return ["onnx", "onnx-int8"], None
    return ["onnx"], ("onnx-int8 rows left out: they need --data DIR with a train/ split to calibrate on "
                      f"{CALIBRATION_HINT}")


def _brings_int8(ref: str, size: int | None) -> bool:
    """Whether bench MODEL ``ref`` runs in int8 at ``size`` without calibrating: an .onnx file (at its own size), or
    a model with its own int8 file at its own side (``own_int8``: a shipped model's, or a folder's current export)."""
    if ref in list_models() and ref not in pretrained_models() and not Path(ref).exists():
        return False  # an untrained architecture (resolve_target's case)
    resolved = resolve_model(ref)
    return resolved.onnx or own_int8(resolved.at_size(size)) is not None


def parse_runtimes(spec: str | Sequence[str]) -> list[str]:
    names = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    for name in names:
        if name not in RUNTIMES:
            raise FootsegError(f"unknown runtime '{name}'; choose from: {', '.join(RUNTIMES)}")
    if not names:
        raise FootsegError("no runtime given")
    return list(dict.fromkeys(names))


@dataclass
class Target:
    """One model to benchmark: a PyTorch network (with the info to export it), or an exported ``.onnx`` file."""

    name: str
    weights: str  # "random" (a registry name, cost only), "trained" (a model folder) or "shipped"
    module: nn.Module | None = None
    info: SavedModelInfo | None = None
    onnx_file: Path | None = None
    int8_file: Path | None = None  # the model's own int8 file (``own_int8``), timed at its own side
    int8_stale: str = ""  # its folder and why its int8 file is not its own (``own_int8_or_why``), for a refusal

    def own_int8(self, side: int | None) -> Path | None:
        """The int8 file to time at ``side`` without calibrating one: its own, at the model's own side."""
        if self.int8_file is None or self.info is None or side != self.info.input_size[0]:
            return None
        return self.int8_file


def resolve_target(ref: str) -> Target:
    """A bench MODEL: whatever ``footseg.runtime.resolve_model`` resolves, or the name of an architecture.

    An architecture without shipped weights (``enet``) is built untrained at width 1, which is enough to measure its
    cost; every other reference means what it means to every verb.
    """
    if ref in list_models() and ref not in pretrained_models() and not Path(ref).exists():
        return Target(name=ref, weights="random", module=create_model(ref), info=SavedModelInfo(model=ref))
    resolved = resolve_model(ref)
    weights = "shipped" if resolved.shipped else "trained"
    if resolved.onnx:
        return Target(name=resolved.name, weights=weights, onnx_file=resolved.path)
    module, info = resolved.load()
    int8_file, why = own_int8_or_why(resolved)
    return Target(name=resolved.name, weights=weights, module=module, info=info, int8_file=int8_file,
                  int8_stale=f"{resolved.folder}: {why}" if why else "")


def target_side(target: Target, size: int | None = None) -> int | None:
    """The side ``target`` is prepared and timed at: ``size`` where given, else a saved or shipped model's own input
    size (what it costs per frame where it is used), ``UNTRAINED_SIDE`` for an untrained architecture; None for an
    ``.onnx`` file, which always runs at the size it was exported at."""
    if target.onnx_file is not None:
        return None
    if size is not None:
        return size
    if target.weights == "random" or target.info is None:
        return UNTRAINED_SIDE
    h, w = target.info.input_size
    if h != w:  # the timing and FLOP count take one side
        raise FootsegError(f"benchmark needs a square input size, got {h}x{w}; give one with --size", target.name)
    return int(h)


def _onnx_params(path: Path) -> int:
    """Weights of an ONNX file: constant tensors, less the scales and zero points that quantization adds and int64
    shape tensors (e.g. the target shape of the Reshape before the output upsampling)."""
    model = onnx.load(str(path))
    quant_side = {
        name
        for node in model.graph.node
        if node.op_type in ("QuantizeLinear", "DequantizeLinear")
        for name in node.input[1:]
    }
    return int(
        sum(
            numpy_helper.to_array(t).size
            for t in model.graph.initializer
            if t.name not in quant_side and t.data_type != onnx.TensorProto.INT64
        )
    )


def _iou(model: ModelLike, data: Path) -> float:
    return float(evaluate(model, data)["iou"])


def calibration_data(data: Path | None, runtimes: Sequence[str], targets: Sequence[Target],
                     sides: Sequence[int | None]) -> Path | None:
    """The dataset int8 rows are calibrated on: ``data``'s train split, which int8 needs (and IoU does not), unless
    every target is an ``.onnx`` file or brings its own int8 file at its side."""
    if "onnx-int8" not in runtimes or all(t.onnx_file is not None or t.own_int8(side) is not None
                                          for t, side in zip(targets, sides, strict=True)):
        return None
    if data is None or not (data / "train").is_dir():
        stale = "".join(f" ({t.int8_stale})" for t in targets if t.int8_stale)
        raise FootsegError(f"onnx-int8 rows need --data DIR with a train/ split to calibrate on {CALIBRATION_HINT}; "
                           f"photos kept to judge a model are no calibration set{stale}")
    return data


@dataclass
class _Prepared:
    """A target made ready for one runtime: how to run it once, and its static numbers."""

    name: str
    runtime: str
    weights: str
    size: int
    params: int
    gflops: float
    size_mb: float
    iou: float | None
    module: nn.Module | None = None
    onnx_file: Path | None = None


def _prepare(
    target: Target, runtimes: Sequence[str], size: int | None, data: Path | None, calib: Path | None, workdir: Path,
    calib_n: int,
) -> list[_Prepared]:
    """Export and quantize as the runtimes need, and score each variant on ``data`` (IoU does not depend on threads).
    ``size``: the side of a PyTorch model (``target_side``'s); None only for an ``.onnx`` file, which has its own."""
    if target.onnx_file is not None:  # an exported file runs in its own runtime at its own input size
        onnx_model = OnnxModel(target.onnx_file)
        info = onnx_model.info
        h, w = info.input_size
        if h != w:
            raise FootsegError(f"benchmark needs a square input size, got {h}x{w}", target.onnx_file)
        runtime = "onnx-int8" if onnx_model.precision == "int8" else "onnx"
        return [
            _Prepared(
                name=target.name,
                runtime=runtime,
                weights=target.weights,
                size=h,
                params=_onnx_params(target.onnx_file),
                gflops=count_flops(build_model(info), h) / 1e9,
                size_mb=target.onnx_file.stat().st_size / 1e6,
                iou=_iou(target.onnx_file, data) if data is not None else None,
                onnx_file=target.onnx_file,
            )
        ]

    if size is None:
        raise ValueError(f"{target.name}: a PyTorch model needs a side")  # target_side gives every one of them one
    module = target.module.eval()
    info = replace(target.info, input_size=(size, size))
    params, gflops = count_params(module), count_flops(module, size) / 1e9
    folder = save_model(module, workdir / "model", info)  # the fp32 safetensors file is the torch row's size on disk
    prepared = []
    for runtime in runtimes:
        common = {"name": target.name, "runtime": runtime, "weights": target.weights, "size": size, "params": params,
                  "gflops": gflops}
        if runtime == "torch":
            iou = _iou((module, info), data) if data is not None else None
            prepared.append(_Prepared(**common, size_mb=(folder / WEIGHTS_NAME).stat().st_size / 1e6, iou=iou,
                                      module=module))
            continue
        if runtime == "onnx":
            path = export_onnx(folder, workdir / "model.onnx")
        else:
            path = target.own_int8(size) or export_int8(folder, workdir / "model.int8.onnx", calib=calib,
                                                        calib_n=calib_n)
        iou = _iou(path, data) if data is not None else None
        prepared.append(_Prepared(**common, size_mb=path.stat().st_size / 1e6, iou=iou, onnx_file=path))
    return prepared


def _sampler(p: _Prepared, threads: int) -> Sampler:
    if p.module is not None:
        return torch_sampler(p.module, p.size, threads)
    return onnx_sampler(p.onnx_file, threads, fresh_process=True)  # as the peer: each round in a new process


def benchmark(
    models: list[str] | None = None,
    size: int | None = None,
    threads: int | Sequence[int] = 1,
    runs: int = 20,
    runtimes: Sequence[str] = ("torch",),
    warmup: int = WARMUP_RUNS,
    min_time: float = 0.0,
    data: str | Path | None = None,
    calib_n: int = 64,
    rounds: int = 1,
    peer: bool = False,
) -> tuple[list[dict], str | None]:
    """One row per model x runtime x thread count, grouped by thread count, and why the peer rows are missing.

    ``models`` are registry names (untrained unless footseg ships weights for them), saved model folders or
    ``.onnx`` files; all registered models by default. With ``data``, each row also has the foot IoU on its test
    split (or the flat folder); int8 rows need it to have a train split, which they are calibrated on, but for a
    model at its own side with its own int8 file (``own_int8``: the default's recipe's, or a model folder's export of
    its current weights), which is timed instead.

    ``size`` is the input side of every PyTorch model. Without it each model runs at its own side (``target_side``: a
    saved model's input size, ``UNTRAINED_SIDE`` for an architecture), so each row is the per-frame cost where the
    model is used; an ``.onnx`` file always has its own, and the peer ``PEER_SIDE``.

    Timing is interleaved: in each of ``rounds`` rounds every row (and, with ``peer``, MediaPipe's selfie
    segmenter) is timed for ``min_time / rounds`` seconds and at least ``runs / rounds`` forwards, and a row's
    median is taken over all its samples. A burst of load on a shared machine then slows every row a little instead
    of one row a lot, so rows measured in the same run compare fairly.
    """
    if rounds < 1:
        raise FootsegError(f"rounds must be at least 1, got {rounds}")  # before the slow preparation
    if not (math.isfinite(min_time) and min_time >= 0) or runs < 1 or warmup < 0:
        raise FootsegError(f"runs must be at least 1, warmup and min_time at least 0 (got {runs}, {warmup}, "
                           f"{min_time})")
    names = list(models) if models else list_models()
    runtimes = parse_runtimes(runtimes)
    thread_counts = parse_threads(threads)
    warn_oversubscribed(thread_counts)
    if size is not None:
        check_input_side(size)
    data = Path(data) if data is not None else None
    if data is not None:
        require_folder(data, "dataset folder")
    targets = [resolve_target(name) for name in names]  # fail on a bad name before timing anything
    shared = {name for name, n in Counter(t.name for t in targets).items() if n > 1}
    for target, given in zip(targets, names, strict=True):
        # any two of one name (two folders' model.onnx): each named as it was typed, but a shipped model, whose name
        # is the one the table marks as the default
        if target.name in shared and target.weights != "shipped":
            target.name = str(given)
    sides = [target_side(target, size) for target in targets]  # and on a side that cannot be timed
    calib = calibration_data(data, runtimes, targets, sides)
    with tempfile.TemporaryDirectory(prefix="footseg-bench-") as tmp:
        prepared = [
            p
            for i, (target, side) in enumerate(zip(targets, sides, strict=True))
            for p in _prepare(target, runtimes, side, data, calib, Path(tmp) / str(i), calib_n)
        ]
        for count in thread_counts:
            peak_gflops(count)  # measured before the models, on the same quiet-as-possible machine
        peers: dict[tuple[int, str], dict] = {}  # (threads, runtime) -> the peer's row, samples pooled over rounds
        why = None
        samples: dict[int, list[list[float]]] = {}
        # One thread count at a time: the idle workers of a multi-threaded session spin for a while after each run
        # and would steal the core a 1-thread row runs next to (the two cores here may be hyperthread siblings).
        for count in thread_counts:

            def time_peer(share_runs: int, share_time: float, count: int = count) -> None:  # between footseg's rounds
                nonlocal why
                if peer and why is None:
                    got, why = peer_rows([count], PEER_SIDE, share_runs, warmup, share_time)
                    for row in got:
                        peers.setdefault((count, row["runtime"]), {**row, "samples_ms": []})["samples_ms"] += (
                            row["samples_ms"])

            samplers = [_sampler(p, count) for p in prepared]
            samples[count] = interleaved(samplers, rounds, runs, warmup, min_time, time_peer)
            del samplers  # release the sessions (and their spinning threads) before the next thread count
    rows = []
    for count in thread_counts:
        for p, times in zip(prepared, samples[count], strict=True):
            timing = latency_stats(times)
            row = {
                "model": p.name,
                "runtime": p.runtime,
                "threads": count,
                "size": p.size,
                "weights": p.weights,
                "params": p.params,
                "gflops": p.gflops,
                "size_mb": p.size_mb,
                "latency_ms": timing["latency_ms"],
                "p90_ms": timing["p90_ms"],
                "fps": timing["fps"],
                "runs": timing["runs"],
                "iou": p.iou,
            }
            rows.append(add_roofline(row))
        if why is None:  # the peer goes under each thread count's table, next to the rows it is compared with
            for (threads, _), row in peers.items():
                if threads == count:
                    pooled = row.pop("samples_ms")
                    rows.append(add_roofline({**row, **(latency_stats(pooled) if pooled else {})}))
    return add_peer_ratio(rows), why


def add_peer_ratio(rows: list[dict]) -> list[dict]:
    """``x_peer``: each row's median latency over the peer's network alone (``PEER_REFERENCE``) at the same thread
    count in the same run, the cost ratio footseg's targets are stated in; absent where the run has no peer."""
    reference = {r["threads"]: r["latency_ms"] for r in rows if r.get("runtime") == PEER_REFERENCE}
    for r in rows:
        if reference.get(r.get("threads")):
            r["x_peer"] = r["latency_ms"] / reference[r["threads"]]
    return rows


def format_cell(value: float | None, fmt: str) -> str:
    """A table cell: ``value`` formatted, or a dash where it is missing."""
    return "–" if value is None else format(value, fmt)


def format_table(rows: list[dict]) -> str:
    """Markdown: one table per thread count (``benchmark`` and peer rows), then how everything was measured."""
    if not rows:
        return "(no rows)"
    with_iou = any(r.get("iou") is not None for r in rows)
    header = "| model | runtime | params | GFLOPs | size (MB) | latency (ms) | p90 (ms) | FPS | GFLOP/s | % of peak |"
    rule = "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    sides = sorted({r.get("size", PEER_SIDE) for r in rows})
    # Rows at different sides (each model at its own, the peer at 256) are not one setting: each says its side
    with_side = len(sides) > 1
    if with_side:
        header = header.replace("| runtime |", "| runtime | side |", 1)
        rule = rule.replace("|---|---|", "|---|---|---:|", 1)
    with_ratio = any(r.get("x_peer") is not None for r in rows)
    if with_ratio:
        header, rule = header + " x MediaPipe |", rule + "---:|"
    if with_iou:
        header, rule = header + " IoU |", rule + "---:|"
    lines: list[str] = []
    for count in dict.fromkeys(r.get("threads", 1) for r in rows):
        group = [r for r in rows if r.get("threads", 1) == count]
        peak = group[0].get("peak_gflops_per_s")
        title = f"### {count} thread{'s' if count != 1 else ''}"
        if peak:
            title += f" (fp32 peak {peak:.1f} GFLOP/s)"
        lines += [title, "", header, rule]
        for r in group:
            name = r["model"] + ("*" if r.get("weights") == "random" else "")
            if r["model"] == DEFAULT_MODEL and r.get("weights") == "shipped":
                name += " (default)"  # what `footseg bench default` names, and what the README calls it
            fraction = r.get("roofline_fraction")
            cells = [
                name,
                r.get("runtime", "torch"),
                *([format_cell(r.get("size", PEER_SIDE), "d")] if with_side else []),
                format_cell(r.get("params"), ","),
                format_cell(r.get("gflops"), ".3f"),
                format_cell(r.get("size_mb"), ".3f"),
                format_cell(r["latency_ms"], ".2f"),
                format_cell(r.get("p90_ms"), ".2f"),
                format_cell(r.get("fps", 1000 / r["latency_ms"]), ".0f"),
                format_cell(r.get("gflops_per_s"), ".1f"),
                format_cell(None if fraction is None else 100 * fraction, ".1f"),
            ]
            if with_ratio:
                cells.append(format_cell(r.get("x_peer"), ".2f"))
            if with_iou:
                cells.append(format_cell(r.get("iou"), ".4f"))
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    shape = "SxS input, S the row's side" if with_side else f"{sides[0]}x{sides[0]} input"
    notes = [
        f"FLOPs: torch.utils.flop_counter.FlopCounterMode on one 1xCx{shape} (C: 3, or 4 with a prior), "
        "1 multiply-add = 2 FLOPs (convolutions and matmuls only).",
        "Latency: median and 90th percentile of batch-1 forwards after warm-up, with the thread count pinned "
        "(torch.set_num_threads; ONNX Runtime intra_op_num_threads, inter_op 1); FPS = 1000 / median. "
        "torch = PyTorch eager, eval mode; onnx = ONNX Runtime fp32; onnx-int8 = ONNX Runtime, static int8 (QDQ, "
        "per-channel weights; layers finer than 1/16 of the input resolution stay fp32 unless the model records "
        "its own int8_min_stride); a model with its own int8 file (the default's recipe's, a model folder's "
        "`footseg export` of its current weights) is timed in that file at its own side, the others calibrated on "
        "--data.",
        "Size: the file on disk (fp32 model.safetensors for torch, the .onnx file otherwise), in MB of 10^6 bytes.",
        f"Roofline: GFLOP/s = GFLOPs / median latency; % of peak divides it by the fp32 peak, the best of "
        f"{PEAK_REPEATS} torch.mm of two {PEAK_SIZE}x{PEAK_SIZE} fp32 matrices at the same thread count in the same "
        "run (int8 rows are compared with that fp32 peak too).",
        f"Measured on: {cpu_model()}, {available_threads()} usable core{'s' * (available_threads() != 1)}; each "
        "ONNX row in a fresh process each round, as MediaPipe's peer (a process's own speed differs by up to a "
        "third here: benchmarks/README.md, \"A process's own speed\").",
    ]
    if any(r.get("runtime") in PEER_RUNTIMES for r in rows):
        notes.append(
            "mediapipe-selfie: MediaPipe's selfie segmenter from the mediapipe==0.10.21 wheel (benchmarks/"
            "mediapipe_peer.py, in .venv-bench); litert = the network alone in the TFLite interpreter (XNNPACK, "
            "num_threads pinned), mediapipe-tasks = its ImageSegmenter end to end on a 256x256 RGB image "
            "(pre-processing and mask included; threads bounded by CPU affinity)."
        )
    if any(r.get("weights") == "random" for r in rows):
        notes.append("* untrained weights (a registry name without shipped weights): cost only, IoU meaningless.")
    if with_ratio:
        notes.append(f"x MediaPipe: latency over the {PEER_REFERENCE} row's at the same thread count, same run: the "
                     "networks alone (a model's region peak adds 3 to 9 % a frame, benchmarks/README.md \"Region "
                     "peak\").")
    if with_iou:
        notes.append("IoU: foreground IoU on the --data test split (or flat folder), at the benchmarked input size.")
    return "\n".join(lines + [f"- {note}" for note in notes])

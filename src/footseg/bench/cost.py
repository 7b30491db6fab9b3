"""Model cost: parameters, GFLOPs, size on disk and CPU latency per runtime (the thesis's speed table).

FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` on one (1, 3, size, size) input; it counts
convolutions and matrix products only (not BatchNorm, activations or resizes) and one multiply-add as 2 FLOPs.
Latency is one batch-1 forward with a pinned thread count: PyTorch eager (eval mode, ``torch.inference_mode``) or
ONNX Runtime (fp32 export, or its static int8 quantization). The roofline column divides the achieved GFLOP/s by
this CPU's fp32 peak at the same thread count, estimated from a large ``torch.mm`` measured in the same run.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from footseg.errors import FootsegError
from footseg.eval.timing import WARMUP_RUNS, latency_stats, time_runs
from footseg.models.registry import create_model, list_models
from footseg.models.saved import SavedModelInfo

RUNTIMES = ("torch", "onnx", "onnx-int8")
PEER_RUNTIMES = ("litert", "mediapipe-tasks")  # what benchmarks/mediapipe_peer.py reports
PEAK_SIZE = 2048  # side of the square fp32 matmul whose speed stands for the CPU's peak
PEAK_REPEATS = 3
PEER_TIMEOUT_S = 900
REPO_ROOT = Path(__file__).resolve().parents[3]
# The MediaPipe peer runs in its own environment: mediapipe pins numpy<2 and protobuf<5, which footseg must not inherit.
PEER_VENV = REPO_ROOT / ".venv-bench"
PEER_SCRIPT = REPO_ROOT / "benchmarks" / "mediapipe_peer.py"


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, size: int = 256) -> int:
    """FLOPs (2 per multiply-add) of one forward on a (1, 3, size, size) input."""
    was_training = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as counter, torch.inference_mode():
            model(torch.rand(1, 3, size, size))
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def _check_threads(threads: int) -> None:
    if threads < 1:
        raise FootsegError(f"threads must be at least 1, got {threads}")


def measure_model(
    model: nn.Module,
    size: int = 256,
    threads: int = 1,
    runs: int = 20,
    warmup: int = WARMUP_RUNS,
    min_time: float = 0.0,
) -> dict:
    """Cost of ``model`` on one (1, 3, size, size) input in PyTorch eager.

    Keys: params, gflops, size_mb (parameters and buffers as fp32), latency_ms (median), p90_ms, fps, runs.
    """
    _check_threads(threads)  # before the FLOP count, so a bad setting fails at once (time_runs checks runs)
    size_mb = sum(t.numel() for t in (*model.parameters(), *model.buffers())) * 4 / 1e6  # every value as fp32
    gflops = count_flops(model, size) / 1e9
    timing = time_torch(model, size=size, threads=threads, runs=runs, warmup=warmup, min_time=min_time)
    return {"params": count_params(model), "gflops": gflops, "size_mb": size_mb, **timing}


def time_torch(
    model: nn.Module,
    size: int = 256,
    threads: int = 1,
    runs: int = 20,
    warmup: int = WARMUP_RUNS,
    min_time: float = 0.0,
) -> dict:
    """Latency of PyTorch eager on one (1, 3, size, size) input at ``threads`` threads (model mode restored)."""
    return latency_stats(_torch_samples(model, size, threads, runs, warmup, min_time))


def _torch_samples(model: nn.Module, size: int, threads: int, runs: int, warmup: int, min_time: float) -> list[float]:
    _check_threads(threads)
    was_training = model.training
    previous_threads = torch.get_num_threads()
    model.eval()
    torch.set_num_threads(threads)
    try:
        x = torch.rand(1, 3, size, size)
        with torch.inference_mode():
            return time_runs(lambda: model(x), runs=runs, warmup=warmup, min_time=min_time)
    finally:
        torch.set_num_threads(previous_threads)
        model.train(was_training)


def peak_gflops(threads: int) -> float:
    """This CPU's fp32 peak GFLOP/s at ``threads`` threads: the best of a few ``torch.mm`` of PEAK_SIZE matrices.

    A large square matmul runs at close to the machine's FMA throughput (it is compute-bound), so it stands for
    the roofline's flat part. Cached per process: one estimate per thread count and matrix size.
    """
    _check_threads(threads)
    return _peak_gflops(threads, PEAK_SIZE)


@functools.cache
def _peak_gflops(threads: int, n: int) -> float:
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a, b = torch.rand(n, n), torch.rand(n, n)
        torch.mm(a, b)  # first call allocates and warms the caches
        best = min(time_runs(lambda: torch.mm(a, b), runs=PEAK_REPEATS, warmup=0))
    finally:
        torch.set_num_threads(previous)
    return 2 * n**3 / (best / 1000) / 1e9


def available_threads() -> int:
    """Cores this process may run on (what "all" threads means)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def parse_threads(spec: str | int | Sequence[int | str]) -> list[int]:
    """"1,all" -> [1, N] (N = usable cores), duplicates dropped, order kept."""
    items = spec.split(",") if isinstance(spec, str) else [spec] if isinstance(spec, int) else list(spec)
    counts: list[int] = []
    for item in items:
        text = str(item).strip()
        if text == "all":
            count = available_threads()
        else:
            try:
                count = int(text)
            except ValueError:
                raise FootsegError(f"thread counts are positive integers or 'all', got '{text}'") from None
        _check_threads(count)
        counts.append(count)
    if not counts:
        raise FootsegError("no thread count given")
    return list(dict.fromkeys(counts))


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


def resolve_target(ref: str) -> Target:
    """A bench MODEL: an ``.onnx`` file, a saved model folder, a shipped model's name, or a registry name.

    Names resolve as everywhere else in footseg (an existing path wins, then shipped weights); a registered
    architecture without shipped weights is built untrained at width 1, which is enough to measure its cost.
    """
    from footseg.models.saved import load_model, pretrained_models

    path = Path(ref)
    if path.suffix.lower() == ".onnx":
        if not path.is_file():
            raise FootsegError("ONNX file not found", path)
        return Target(name=path.name, weights="trained", onnx_file=path)
    if path.exists():
        module, info = load_model(path)
        return Target(name=path.name if path.name != "best" else path.parent.name, weights="trained", module=module,
                      info=info)
    if ref in list_models() and ref in pretrained_models():
        module, info = load_model(ref)
        return Target(name=ref, weights="shipped", module=module, info=info)
    return Target(name=ref, weights="random", module=create_model(ref), info=SavedModelInfo(model=ref))


def _onnx_params(path: Path) -> int:
    """Weights of an ONNX file: constant tensors, less the scales and zero points that quantization adds and int64
    shape tensors (e.g. the target shape of the Reshape before the output upsampling)."""
    import onnx
    from onnx import numpy_helper

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


def _architecture(info: SavedModelInfo) -> nn.Module:
    """The (untrained) PyTorch network an exported file came from, for counting its FLOPs."""
    from footseg.models.layer_shapes import LAYER_SHAPES_KEY, apply_layer_shapes

    module = create_model(info.model, width=info.width, num_classes=info.num_classes)
    if LAYER_SHAPES_KEY in info.extra:
        apply_layer_shapes(module, info.extra[LAYER_SHAPES_KEY])
    return module


def _iou(model: object, data: Path) -> float:
    from footseg.eval.evaluate import evaluate

    return float(evaluate(model, data)["iou"])


def _calibration_data(data: Path | None) -> Path | None:
    """--data when it has a train split (int8 is calibrated on training images), else None: the procedural set."""
    from footseg.data.dataset import has_splits

    if data is not None and has_splits(data) and (Path(data) / "train").is_dir():
        return Path(data)
    return None


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
    target: Target, runtimes: Sequence[str], size: int, data: Path | None, workdir: Path, calib_n: int
) -> list[_Prepared]:
    """Export and quantize as the runtimes need, and score each variant on ``data`` (IoU does not depend on threads)."""
    from footseg.deploy.onnx_model import OnnxModel

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
                gflops=count_flops(_architecture(info), h) / 1e9,
                size_mb=target.onnx_file.stat().st_size / 1e6,
                iou=_iou(target.onnx_file, data) if data is not None else None,
                onnx_file=target.onnx_file,
            )
        ]

    from footseg.deploy.export import export_onnx
    from footseg.deploy.quantize import export_int8
    from footseg.models.saved import WEIGHTS_NAME, save_model

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
            path = export_int8(folder, workdir / "model.int8.onnx", calib=_calibration_data(data), calib_n=calib_n)
        iou = _iou(path, data) if data is not None else None
        prepared.append(_Prepared(**common, size_mb=path.stat().st_size / 1e6, iou=iou, onnx_file=path))
    return prepared


Sampler = Callable[[int, int, float], list[float]]  # (runs, warmup, min_time) -> latencies in ms


def torch_sampler(model: nn.Module, size: int, threads: int) -> Sampler:
    """Times PyTorch eager forwards of ``model`` on one (1, 3, size, size) input at ``threads`` threads."""
    return lambda runs, warmup, min_time: _torch_samples(model, size, threads, runs, warmup, min_time)


def onnx_sampler(path: str | Path, threads: int) -> Sampler:
    """Times ONNX Runtime forwards of the exported ``path`` on one input of its own size; one session for all calls."""
    import numpy as np

    from footseg.deploy.onnx_model import OnnxModel

    _check_threads(threads)
    session = OnnxModel(path, threads=threads)
    h, w = session.info.input_size
    x = np.random.default_rng(0).random((1, 3, h, w), dtype=np.float32)
    return lambda runs, warmup, min_time: time_runs(lambda: session.run(x), runs=runs, warmup=warmup,
                                                    min_time=min_time)


def interleaved(
    samplers: Sequence[Sampler], rounds: int, runs: int, warmup: int, min_time: float,
    between: Callable[[int, float], None] | None = None,
) -> list[list[float]]:
    """Latencies of every sampler, timed in ``rounds`` interleaved rounds of ``runs / rounds`` forwards and
    ``min_time / rounds`` seconds each (``between(runs, min_time)`` gets the same share after each round). A burst
    of load on a shared machine then slows every row a little instead of one row a lot, so rows compare fairly."""
    if rounds < 1:
        raise FootsegError(f"rounds must be at least 1, got {rounds}")
    share_runs, share_time = -(-runs // rounds), min_time / rounds
    samples: list[list[float]] = [[] for _ in samplers]
    for r in range(rounds):
        for i, sample in enumerate(samplers):
            samples[i] += sample(share_runs, warmup if r == 0 else 1, share_time)
        if between is not None:
            between(share_runs, share_time)
    return samples


def time_onnx(
    path: str | Path, threads: int = 1, runs: int = 20, warmup: int = WARMUP_RUNS, min_time: float = 0.0
) -> dict:
    """Latency of the exported ``path`` in ONNX Runtime (CPU) on one input of its own size at ``threads`` threads."""
    return latency_stats(onnx_sampler(path, threads)(runs, warmup, min_time))


def _sampler(p: _Prepared, threads: int) -> Sampler:
    if p.module is not None:
        return torch_sampler(p.module, p.size, threads)
    return onnx_sampler(p.onnx_file, threads)


def add_roofline(row: dict) -> dict:
    """Fill gflops_per_s, peak_gflops_per_s and roofline_fraction of a row with gflops, latency_ms and threads."""
    peak = peak_gflops(row["threads"])
    achieved = row["gflops"] / (row["latency_ms"] / 1000) if row.get("gflops") is not None else None
    row["gflops_per_s"] = achieved
    row["peak_gflops_per_s"] = peak
    row["roofline_fraction"] = achieved / peak if achieved is not None else None
    return row


def benchmark(
    models: list[str] | None = None,
    size: int = 256,
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
    split (or the flat folder); int8 is calibrated on its train split when it has one, else on the procedural set.

    Timing is interleaved: in each of ``rounds`` rounds every row (and, with ``peer``, MediaPipe's selfie
    segmenter) is timed for ``min_time / rounds`` seconds and at least ``runs / rounds`` forwards, and a row's
    median is taken over all its samples. A burst of load on a shared machine then slows every row a little instead
    of one row a lot, so rows measured in the same run compare fairly.
    """
    if rounds < 1:
        raise FootsegError(f"rounds must be at least 1, got {rounds}")  # before the slow preparation
    names = list(models) if models else list_models()
    runtimes = parse_runtimes(runtimes)
    thread_counts = parse_threads(threads)
    if size < 32 or size % 32:
        raise FootsegError(f"--size {size} is not a multiple of 32")
    data = Path(data) if data is not None else None
    if data is not None and not data.is_dir():
        raise FootsegError("dataset folder not found", data)
    targets = [resolve_target(name) for name in names]  # fail on a bad name before timing anything
    with tempfile.TemporaryDirectory(prefix="footseg-bench-") as tmp:
        prepared = [
            p
            for i, target in enumerate(targets)
            for p in _prepare(target, runtimes, size, data, Path(tmp) / str(i), calib_n)
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
                    got, why = peer_rows([count], size, share_runs, warmup, share_time)
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
    return rows, why


def peer_hint() -> str:
    return (
        f"{PEER_VENV}: no benchmark environment, so no MediaPipe peer rows; create it with `make bench` "
        f"(a separate venv with mediapipe==0.10.21)"
    )


def peer_rows(
    threads: int | Sequence[int] = 1,
    size: int = 256,
    runs: int = 20,
    warmup: int = WARMUP_RUNS,
    min_time: float = 0.0,
) -> tuple[list[dict], str | None]:
    """Rows of the MediaPipe selfie segmenter, measured by ``benchmarks/mediapipe_peer.py`` in ``.venv-bench``.

    Returns (rows, None), or ([], why) when the peer cannot run here: the peer is a comparison, never a reason for
    the rest of the benchmark to fail.
    """
    python = PEER_VENV / "bin" / "python"
    if not python.is_file():
        return [], peer_hint()
    if not PEER_SCRIPT.is_file():
        return [], f"{PEER_SCRIPT}: peer script not found, so no MediaPipe peer rows"
    counts = parse_threads(threads)
    command = [str(python), str(PEER_SCRIPT), "--threads", ",".join(map(str, counts)), "--size", str(size),
               "--runs", str(runs), "--warmup", str(warmup), "--min-time", str(min_time)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PEER_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [], f"{PEER_SCRIPT}: MediaPipe peer did not run ({type(exc).__name__}: {exc})"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        return [], f"{PEER_SCRIPT}: MediaPipe peer failed (exit {done.returncode}): {last}"
    try:
        rows = json.loads(done.stdout)
        for row in rows:
            row.setdefault("samples_ms", [])
        return [add_roofline(dict(row)) for row in rows], None
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        return [], f"{PEER_SCRIPT}: unreadable peer output ({type(exc).__name__}: {exc})"


def _num(value: float | None, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def format_table(rows: list[dict]) -> str:
    """Markdown: one table per thread count (``benchmark`` and peer rows), then how everything was measured."""
    if not rows:
        return "(no rows)"
    with_iou = any(r.get("iou") is not None for r in rows)
    header = "| model | runtime | params | GFLOPs | size (MB) | latency (ms) | p90 (ms) | FPS | GFLOP/s | % of peak |"
    rule = "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
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
            fraction = r.get("roofline_fraction")
            cells = [
                name,
                r.get("runtime", "torch"),
                _num(r.get("params"), ","),
                _num(r.get("gflops"), ".3f"),
                _num(r.get("size_mb"), ".3f"),
                _num(r["latency_ms"], ".2f"),
                _num(r.get("p90_ms"), ".2f"),
                _num(r.get("fps", 1000 / r["latency_ms"]), ".0f"),
                _num(r.get("gflops_per_s"), ".1f"),
                _num(None if fraction is None else 100 * fraction, ".1f"),
            ]
            if with_iou:
                cells.append(_num(r.get("iou"), ".4f"))
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    sizes = sorted({r.get("size", 256) for r in rows})
    side = "/".join(str(s) for s in sizes)
    notes = [
        f"FLOPs: torch.utils.flop_counter.FlopCounterMode on one 1x3x{side}x{side} input, 1 multiply-add = 2 FLOPs "
        "(convolutions and matmuls only).",
        "Latency: median and 90th percentile of batch-1 forwards after warm-up, with the thread count pinned "
        "(torch.set_num_threads; ONNX Runtime intra_op_num_threads, inter_op 1); FPS = 1000 / median. "
        "torch = PyTorch eager, eval mode; onnx = ONNX Runtime fp32; onnx-int8 = ONNX Runtime, static int8 (QDQ, "
        "per-channel weights; by default layers finer than 1/16 of the input resolution stay fp32).",
        "Size: the file on disk (fp32 model.safetensors for torch, the .onnx file otherwise), in MB of 10^6 bytes.",
        f"Roofline: GFLOP/s = GFLOPs / median latency; % of peak divides it by the fp32 peak, the best of "
        f"{PEAK_REPEATS} torch.mm of two {PEAK_SIZE}x{PEAK_SIZE} fp32 matrices at the same thread count in the same "
        "run (int8 rows are compared with that fp32 peak too).",
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
    if with_iou:
        notes.append("IoU: foreground IoU on the --data test split (or flat folder), at the benchmarked input size.")
    return "\n".join(lines + [f"- {note}" for note in notes])

"""The peer in ``footseg bench --peer``: MediaPipe's selfie segmenter, timed through Google's own runtimes.

Runs in its own environment (``make bench`` creates .venv-bench with mediapipe==0.10.21 and ai-edge-litert), never in
footseg's: mediapipe pins numpy<2 and protobuf<5. From footseg it imports only footseg.runtime.timing (standard library
only), straight from this checkout's src/, so both sides time the same way.

    .venv-bench/bin/python benchmarks/mediapipe_peer.py --threads 1,all --runs 20 --min-time 2

Prints a JSON list of rows with footseg bench's keys. The model is the 256x256 selfie segmentation network bundled in
the mediapipe wheel (mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite), timed two ways:

- runtime "litert": the network alone in the TFLite interpreter (ai_edge_litert, XNNPACK, ``num_threads`` pinned),
  the same thing footseg's rows time (one forward on a ready float tensor);
- runtime "mediapipe-tasks": the mediapipe Tasks ImageSegmenter on a 256x256 RGB image, end to end (its
  pre-processing, the network, and the category mask). Tasks has no thread setting, so the process is pinned to
  that many cores with sched_setaffinity.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from footseg.runtime.timing import latency_stats, time_runs

MODEL_NAME = "mediapipe-selfie"
NATIVE_SIZE = 256
WEIGHT_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "FULLY_CONNECTED"}


def model_path() -> Path:
    import mediapipe

    path = Path(mediapipe.__file__).parent / "modules" / "selfie_segmentation" / "selfie_segmentation.tflite"
    if not path.is_file():
        raise SystemExit(f"{path}: the selfie segmentation model is not in this mediapipe install")
    return path


def graph_cost(interpreter) -> tuple[int, float]:
    """(parameters, GFLOPs) of a TFLite graph, counted like footseg: weights of conv/dense ops, 2 FLOPs per MAC."""
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    ops = interpreter._get_ops_details()  # the interpreter's only view of the graph's ops
    produced = {i for op in ops for i in op["outputs"]}
    # Weights are stored as fp16 constants that a DEQUANTIZE op turns into fp32 at load time: count the stored ones.
    source = {op["outputs"][0]: op["inputs"][0] for op in ops if op["op_name"] == "DEQUANTIZE"}

    def const(index: int) -> int:
        return source.get(index, index)

    params: set[int] = set()
    macs = 0
    for op in ops:
        name = op["op_name"]
        if name not in WEIGHT_OPS:
            continue
        inputs = [i for i in op["inputs"] if i >= 0]
        weights = [const(i) for i in inputs[1:]]
        params.update(w for w in weights if w not in produced)
        out = np.prod(tensors[op["outputs"][0]]["shape"])
        kernel = tensors[inputs[1]]["shape"]  # conv: (out, kh, kw, in); depthwise: (1, kh, kw, out); dense: (out, in)
        if name == "CONV_2D":
            macs += out * kernel[1] * kernel[2] * kernel[3]
        elif name == "DEPTHWISE_CONV_2D":
            macs += out * kernel[1] * kernel[2]
        elif name == "TRANSPOSE_CONV":  # every input pixel scatters a full kernel
            inp = np.prod(tensors[inputs[2]]["shape"])
            macs += inp * kernel[0] * kernel[1] * kernel[2]
        else:
            macs += out * kernel[1]
    n_params = int(sum(np.prod(tensors[i]["shape"]) for i in params))
    return n_params, 2 * float(macs) / 1e9


def litert_row(path: Path, threads: int, args: argparse.Namespace) -> dict:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=threads)
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    x = np.random.default_rng(0).random(tuple(inp["shape"]), dtype=np.float32)
    interpreter.set_tensor(inp["index"], x)
    params, gflops = graph_cost(interpreter)
    times = time_runs(interpreter.invoke, args.runs, args.warmup, args.min_time)
    return {"runtime": "litert", "params": params, "gflops": gflops, **latency_stats(times), "samples_ms": times}


def tasks_row(path: Path, threads: int, args: argparse.Namespace) -> dict:
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    everything = os.sched_getaffinity(0)
    os.sched_setaffinity(0, sorted(everything)[:threads])
    try:
        options = vision.ImageSegmenterOptions(
            base_options=BaseOptions(model_asset_path=str(path)), output_category_mask=True
        )
        with vision.ImageSegmenter.create_from_options(options) as segmenter:
            pixels = np.random.default_rng(0).integers(0, 256, (NATIVE_SIZE, NATIVE_SIZE, 3), dtype=np.uint8)
            image = mp.Image(image_format=mp.ImageFormat.SRGB, data=pixels)
            times = time_runs(lambda: segmenter.segment(image), args.runs, args.warmup, args.min_time)
    finally:
        os.sched_setaffinity(0, everything)
    return {"runtime": "mediapipe-tasks", **latency_stats(times), "samples_ms": times}


def parse_threads(spec: str) -> list[int]:
    cores = len(os.sched_getaffinity(0))
    counts = [cores if s.strip() == "all" else int(s) for s in spec.split(",") if s.strip()]
    if not counts or min(counts) < 1:
        raise SystemExit(f"--threads: positive integers or 'all', got '{spec}'")
    return list(dict.fromkeys(counts))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", default="1", help="comma-separated thread counts; 'all' = every usable core")
    p.add_argument("--size", type=int, default=NATIVE_SIZE, help=f"requested input side (the model is {NATIVE_SIZE})")
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--min-time", type=float, default=2.0)
    p.add_argument("--runtimes", default="litert,mediapipe-tasks")
    args = p.parse_args(argv)
    if args.size != NATIVE_SIZE:
        print(f"mediapipe_peer: the selfie segmenter takes {NATIVE_SIZE}x{NATIVE_SIZE}; timing it at that size, "
              f"not {args.size}", file=sys.stderr)
    path = model_path()
    runtimes = [r.strip() for r in args.runtimes.split(",") if r.strip()]
    rows = []
    static = {"model": MODEL_NAME, "size": NATIVE_SIZE, "weights": "trained", "size_mb": path.stat().st_size / 1e6,
              "iou": None}
    cost: dict = {}
    for threads in parse_threads(args.threads):
        for runtime in runtimes:
            if runtime == "litert":
                row = litert_row(path, threads, args)
                cost = {"params": row["params"], "gflops": row["gflops"]}
            elif runtime == "mediapipe-tasks":
                row = tasks_row(path, threads, args)
            else:
                raise SystemExit(f"--runtimes: unknown runtime '{runtime}' (litert, mediapipe-tasks)")
            rows.append({**static, "params": None, "gflops": None, **cost, **row, "threads": threads})
    # the same network in both runtimes: give the Tasks rows the counts taken from the interpreter
    for row in rows:
        row.update({k: v for k, v in cost.items() if row.get(k) is None})
    print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

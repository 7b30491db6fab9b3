"""``footseg`` command line: one verb per job (check, train, eval, threshold, predict, video, live, bench, export,
serve, compress, report, synth, recipe, study, run).

Heavy imports happen inside each verb so ``footseg --help`` is instant.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import select
import shutil
import signal
import sys
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from footseg.atomic import atomic_write_text, check_writable
from footseg.errors import FootsegError, FootsegWarning, Interrupted

if TYPE_CHECKING:
    from footseg.runtime.predictor import Predictor
    from footseg.runtime.resolve import ModelRef


def _cmd_check(args: argparse.Namespace) -> int:
    from footseg.data.check import check_dataset

    result = check_dataset(Path(args.data))
    for problem in result.problems:
        print(problem, file=sys.stderr)
    print(result.summary())
    return 1 if result.problems else 0


def _cmd_train(args: argparse.Namespace) -> int:
    from footseg.config import TrainConfig
    from footseg.train.trainer import StopAfterTheRun, train

    # Only the options given are in ``args`` (the parser's defaults are suppressed): each named like a TrainConfig field
    # sets it, the --no-* switches negated. The rest come from the run's own config.json where --resume continues
    # one (so `footseg train --out RUN --resume` is the whole command), else from --init's model for the network
    # (architecture, width, side), else TrainConfig's defaults.
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    given = {k: v for k, v in vars(args).items() if k in names}
    for switch, name in (("no_progress", "progress"), ("no_distill_anneal", "distill_anneal"),
                         ("no_augment", "augment")):
        if getattr(args, switch, False):
            given[name] = False
    if given.get("data"):  # kept as where it is, so `--resume` finds it from any working folder
        given["data"] = str(Path(given["data"]).absolute())
    resume = getattr(args, "resume", False)
    stored = Path(args.out) / "config.json"
    if resume and stored.is_file():
        cfg = dataclasses.replace(TrainConfig.load(stored), **given)
    else:
        cfg = TrainConfig(**{**_network_of_init(given), **given})
    try:
        best = train(cfg, resume=resume)
    except StopAfterTheRun:
        raise  # complete: nothing to continue
    except KeyboardInterrupt:
        if os.environ.get("RANK", "0") == "0" and (Path(cfg.out) / "checkpoint.pt").is_file():
            print(f"footseg train: continue with: {_command()} train --out {cfg.out} --resume", file=sys.stderr)
        raise
    if os.environ.get("RANK", "0") == "0":  # under torchrun every process returns here; say it once
        print(f"best model: {best}")
    return 0


def _command() -> str:
    """How this footseg was started, to name in a command to run next: `footseg` where that is on PATH, else the
    path typed (`.venv/bin/footseg`), else `python -m footseg`."""
    typed = sys.argv[0]
    if Path(typed).name != "footseg":
        return "python -m footseg"
    on_path = shutil.which("footseg")
    return "footseg" if on_path and Path(on_path).resolve() == Path(typed).resolve() else typed


def _network_of_init(given: dict) -> dict:
    """The network of ``--init``'s model (architecture, width, side) for those of --model, --width and --size not
    given: a fine-tune is of the model it starts from, at the side it runs at, unless told otherwise."""
    if given.get("init") is None or {"model", "width", "size"} <= given.keys():
        return {}
    from footseg.models.info import read_info
    from footseg.runtime.resolve import resolve_model

    ref = resolve_model(given["init"])
    if ref.onnx:  # refused by the trainer, which names the problem
        return {}
    info = read_info(ref.folder)
    # a side it runs at, or, for a hand-made config that is not square, the side it was trained at
    side = info.input_size[0] if info.input_size[0] == info.input_size[1] else max(info.trained_size)
    network = {"model": info.model, "width": info.width, "size": side}
    filled = {k: v for k, v in network.items() if k not in given}
    if filled and os.environ.get("RANK", "0") == "0":
        print(f"footseg train: --init {given['init']}: " + " ".join(f"--{k} {v:g}" if isinstance(v, float) else
                                                                 f"--{k} {v}" for k, v in filled.items()))
    return filled


def _cmd_eval(args: argparse.Namespace) -> int:
    if args.data is not None and args.clips is not None:
        raise FootsegError("eval takes one of --data DIR (photos) and --clips DIR (video clips), not both")
    if args.data is None and args.clips is None:
        raise FootsegError("eval needs one of --data DIR (photos) or --clips DIR (video clips)")
    if args.clips is None and (args.mode is not None or args.smooth is not None):  # else silently not applied
        raise FootsegError("--mode and --smooth pick a video mode: they go with --clips, not --data")
    if args.worst_figure is not None:
        if args.clips is not None:
            raise FootsegError("--worst-figure draws photos: it goes with --data, not --clips")
        if args.worst < 1:
            raise FootsegError(f"--worst must be at least 1, got {args.worst}")
        if Path(args.worst_figure).suffix.lower() not in (".png", ".jpg", ".jpeg"):  # checked before the scoring
            raise FootsegError("--worst-figure is a picture: name a .png (or .jpg) file", args.worst_figure)
        check_writable(args.worst_figure)
    if args.json:
        check_writable(args.json)
    if args.split is None:
        args.split = "test"
    else:
        from footseg.data.samples import has_splits

        root = Path(args.data if args.data is not None else args.clips)
        if root.is_dir() and not has_splits(root):  # a missing folder is named by the scoring itself
            raise FootsegError(f"--split {args.split}: this dataset has no split folders (train/, val/, test/); it is "
                               "scored whole without --split", root)
    if args.size is not None or args.region_peak is not None or args.presence is not None or args.runtime != "auto":
        from footseg.runtime.predictor import Predictor

        args.model = (Predictor(args.model, runtime=args.runtime).at_size(args.size).at_region_peak(args.region_peak)
                      .at_presence(args.presence))
    if args.clips is not None:
        from footseg.eval.clips import evaluate_clips
        from footseg.runtime.temporal import describe_mode, video_mode

        mode, ratio = video_mode(args.mode, args.smooth)
        scores = evaluate_clips(args.model, Path(args.clips), split=args.split, mode=mode, ratio=ratio,
                                threshold=args.threshold)
        print(f"accuracy {scores['accuracy']:.4f}  iou {scores['iou']:.4f}  flicker {scores['flicker']:.2f}%  "
              f"clips {scores['n_clips']}  frames {scores['n_frames']}  "
              f"mode {describe_mode(scores['mode'], scores['ratio'])}  "
              f"threshold {scores['threshold']:g}  {_peak_text(scores)}"
              f"{scores['latency_ms']:.1f} ms/frame  runtime {scores['runtime']}")
        _warn_unlike_labels(scores["unlike_labels"], f"{scores['n_clips']} clips", args.clips)
    else:
        from footseg.eval.evaluate import evaluate

        scores = evaluate(args.model, Path(args.data), split=args.split, batch_size=args.batch_size,
                          threshold=args.threshold)
        print(
            f"accuracy {scores['accuracy']:.4f}  iou {scores['iou']:.4f}{_interval_text(scores)}  "
            f"miou {scores['miou']:.4f}  n {scores['n']}  "
            f"threshold {scores['threshold']:g}  {_peak_text(scores)}size {scores['input_size'][0]}  "
            f"runtime {scores['runtime']}"
            + (f"  a blob on {100 * scores['blob_rate']:.1f} % of {scores['empty']} frames with no foot"
               if scores["empty"] else "")
        )
        _warn_unlike_labels(scores["unlike_labels"], f"{scores['n']} images", args.data)
        _warn_grey(scores["grey"])
    if args.json:
        atomic_write_text(args.json, json.dumps(scores, indent=2) + "\n")
    if args.worst_figure and args.data is not None:
        from footseg.eval.figures import worst_cases_figure

        out = worst_cases_figure(args.model, Path(args.data), args.worst_figure, k=args.worst, split=args.split,
                                 scores=scores, threshold=args.threshold)
        print(f"the {args.worst} worst images: {out}")
    return 0


def _warn_grey(grey: list) -> None:
    """One stderr line naming photos without colour (``is_grey``), whose masks are far less accurate."""
    if grey:  # real-dev's 20 photos made grey: foot IoU 0.13, against 0.95 in colour (`footseg eval`, default)
        named = ", ".join(str(p) for p in grey[:3]) + (", ..." if len(grey) > 3 else "")
        print(f"footseg: warning: {len(grey)} photo{'s' * (len(grey) != 1)} without colour ({named}): the models "
              "learnt foot from colour, and their masks of grey photos are far less accurate", file=sys.stderr)


def _warn_unlike_labels(odd: list[str], among: str, data: str) -> None:
    """One stderr line when masks are not 0 and one foot value (``odd``: their paths, or their clips' names): their
    scores count every non-zero pixel as foot."""
    if odd:
        print(f"footseg: warning: {len(odd)} of {among} have masks with values other than 0 and one foot value (soft "
              f"edges?), e.g. {odd[0]}: every non-zero pixel was scored as foot (`footseg check {data}` lists them)",
              file=sys.stderr)


def _interval_text(scores: dict) -> str:
    """The foot IoU's bootstrap interval over the images, as the line prints it; nothing for a single image."""
    interval = scores.get("iou_interval")
    return "" if interval is None else f" (95 % interval {interval[0]:.4f}-{interval[1]:.4f} over the images)"


def _peak_text(scores: dict) -> str:
    peak, presence = scores.get("region_peak"), scores.get("presence")
    return (("" if peak is None else f"region peak {peak:g}  ")
            + ("" if presence is None else f"presence {presence:g}  "))


def _model_and_inputs(items: list[str]) -> tuple[str | None, list[str]]:
    """``[MODEL] INPUT...``: the first item is the model when more follow and it names one, else all are inputs."""
    from footseg.data.io import IMAGE_EXTENSIONS
    from footseg.eval.video_io import VIDEO_EXTENSIONS
    from footseg.models.info import pretrained_models
    from footseg.runtime.resolve import DEFAULT_NAME, resolve_model

    if len(items) > 1:
        first = Path(items[0])
        try:
            resolve_model(items[0])
            return items[0], items[1:]
        except FootsegError:
            # A typo in a model name, or a broken model folder, is reported as such, not as a missing image; a
            # missing file named like an image or a video is an input and reported as one.
            named_like_input = first.suffix.lower() in IMAGE_EXTENSIONS + VIDEO_EXTENSIONS
            if (first / "config.json").is_file() or first.suffix.lower() == ".onnx":
                raise
            if not first.exists() and not named_like_input:  # a mistyped model, or a mistyped folder of photos
                shipped = ", ".join([*pretrained_models(), DEFAULT_NAME])
                model = f"no shipped model so named ({shipped})" if len(first.parts) == 1 else "no model there"
                raise FootsegError(f"no such file or folder, and {model}: MODEL, where given, comes first, then the "
                                   "inputs", first) from None
    return None, items


def _at_runtime(model: str | None, runtime: str) -> str | Predictor | None:
    """MODEL as given, for the verb to load, or loaded in the runtime asked for (``Predictor``'s ``runtime``)."""
    if runtime == "auto":
        return model
    from footseg.runtime.predictor import Predictor

    return Predictor(model, runtime=runtime)


def _cmd_predict(args: argparse.Namespace) -> int:
    from footseg.data.io import IMAGE_EXTENSIONS
    from footseg.eval.predict import predict

    model, inputs = _model_and_inputs(args.items)
    result = predict(_at_runtime(model, args.runtime), [Path(p) for p in inputs], Path(args.out),
                     overwrite=args.overwrite)
    for path, why in result.failed:
        print(f"footseg: error: {path}: {why}", file=sys.stderr)
    _warn_grey(result.grey)
    print((f"wrote masks and overlays for {result.done} image{'s' * (result.done != 1)} to {args.out}" if result.done
           else "wrote no masks")
          + (f"; {len(result.failed)} could not be read" if result.failed else "")
          + (f"; kept the {result.kept} a stopped run of this model had finished" if result.kept else "")
          + (f"; left out {result.not_photos} other file{'s' * (result.not_photos != 1)} in the folders (not "
             f"{', '.join(IMAGE_EXTENSIONS)})" if result.not_photos else "")
          + (f"; left out an earlier run's masks and overlays beside their photos ({result.skipped} files)"
             if result.skipped else "")
          + (f"; did not look into {result.subfolders} subfolder{'s' * (result.subfolders != 1)} with photos (give "
             f"{'them' if result.subfolders != 1 else 'it'} too)" if result.subfolders else ""))
    return 1 if result.failed else 0


def _cmd_video(args: argparse.Namespace) -> int:
    from footseg.eval.video import segment_video
    from footseg.eval.video_io import MAX_FPS, is_frame_rate
    from footseg.runtime.temporal import video_mode

    model, inputs = _model_and_inputs(args.items)
    if len(inputs) != 1:
        raise FootsegError(f"footseg video takes one video file or folder of frames, got {len(inputs)}: "
                           + " ".join(inputs))
    if args.fps is not None and not is_frame_rate(args.fps):  # before the model loads and --out is made
        raise FootsegError(f"--fps must be above 0 and up to {MAX_FPS}, got {args.fps}")
    mode, ratio = video_mode(args.mode, args.smooth)
    result = segment_video(_at_runtime(model, args.runtime), Path(inputs[0]), Path(args.out), masks=args.masks,
                           mode=mode, ratio=ratio, fps=args.fps, overwrite=args.overwrite)
    print(result.summary())
    return 0


def _cmd_live(args: argparse.Namespace) -> int:
    from footseg.eval.live import live
    from footseg.runtime.temporal import video_mode

    mode, ratio = video_mode(args.mode, args.smooth)
    stats = live(_at_runtime(args.model, args.runtime), camera=args.camera, mode=mode, ratio=ratio)
    print(f"showed {stats.frames} frames in {stats.seconds:.1f} s ({stats.fps:.1f} FPS)")
    return 0


def _bench_output(rows: list[dict], why: str | None, table: str, json_path: str | None) -> int:
    """What every bench verb ends with: why rows are missing (stderr), the table, and the rows as JSON if asked."""
    if why:
        print(f"footseg bench: {why}", file=sys.stderr)
    print(table)
    if json_path:
        from footseg.bench.cost import available_threads
        from footseg.provenance import versions
        from footseg.runtime.device import cpu_model

        # each row with where and when it was measured: rows of several runs, put together, still say
        measured_on = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                       "cpu": cpu_model(), "cores": available_threads(), **versions()}
        atomic_write_text(json_path, json.dumps([{**row, "measured_on": measured_on} for row in rows], indent=2)
                          + "\n")
        print(f"wrote {len(rows)} row{'s' * (len(rows) != 1)} to {json_path}", file=sys.stderr)
    return 0


def _cmd_bench_browser(args: argparse.Namespace) -> int:
    from footseg.bench.browser import browser_benchmark, format_browser_table

    if len(args.models) > 1:
        raise FootsegError(f"bench --browser takes one model, got {len(args.models)}: {' '.join(args.models)}")
    rows, why = browser_benchmark(args.models[0] if args.models else None, clips=args.clips,
                                  threads=args.threads or "1,all", seconds=args.min_time, max_clips=args.max_clips,
                                  log=lambda line: print(line, file=sys.stderr, flush=True))
    return _bench_output(rows, why, format_browser_table(rows), args.json)


def _cmd_bench(args: argparse.Namespace) -> int:
    from footseg.bench.table import benchmark, default_runtimes, format_table

    if args.json:  # before minutes of timing, not after them
        check_writable(args.json)
    if args.browser:
        return _cmd_bench_browser(args)
    runtimes, left_out = args.runtimes, None
    if runtimes is None:
        runtimes, left_out = default_runtimes(args.peer, args.data, args.models, args.size)
    rows, why = benchmark(
        args.models or None,
        size=args.size,
        threads=args.threads or "1",
        runs=args.runs,
        runtimes=runtimes,
        warmup=args.warmup,
        min_time=args.min_time,
        data=args.data,
        calib_n=args.calib_n,
        rounds=args.rounds,
        peer=args.peer,
    )
    if left_out:
        print(f"footseg bench: {left_out}", file=sys.stderr)
    for model in (m for m in args.models or () if Path(m).suffix.lower() == ".onnx"):
        _say_what_an_onnx_file_leaves_aside(Path(model), args.runtimes, args.size)
    return _bench_output(rows, why, format_table(rows), args.json)


def _say_what_an_onnx_file_leaves_aside(path: Path, runtimes: str | None, size: int | None) -> None:
    """An exported file is timed as it was exported: a line naming the ``--runtimes`` other than its own and a
    ``--size`` other than its side, which it leaves to models with weights; none where they name only its own."""
    from footseg.bench.table import parse_runtimes
    from footseg.runtime.onnx_model import PRECISION_KEY, info_from_metadata, read_onnx

    meta = {p.key: p.value for p in read_onnx(path, load_external_data=False).metadata_props}
    runtime = "onnx-int8" if meta.get(PRECISION_KEY) == "int8" else "onnx"
    side = info_from_metadata(meta, path).input_size[0]
    others = [r for r in parse_runtimes(runtimes) if r != runtime] if runtimes is not None else []
    aside = ([f"--runtimes {','.join(others)}"] if others else []) + (
        [f"--size {size}"] if size is not None and size != side else [])
    if aside:
        print(f"footseg bench: {path} runs as it was exported, {runtime} at {side} px: {' and '.join(aside)} "
              f"appl{'y' if len(aside) > 1 else 'ies'} to models with weights", file=sys.stderr)


def _cmd_export(args: argparse.Namespace) -> int:
    keep = [name for group in args.keep_fp32 for name in group.split(",") if name]
    int8 = args.format == "onnx-int8" or (args.format == "web" and args.precision == "int8")
    if args.precision != "fp32" and args.format != "web":
        raise FootsegError(f"--precision is the web page's; for an int8 {args.format} file give --format onnx-int8"
                           if args.format == "onnx" else f"--precision is the web page's, not --format {args.format}'s")
    if (keep or args.min_stride is not None or args.calib is not None) and not int8:  # else silently unused
        raise FootsegError("--calib, --min-stride and --keep-fp32 shape an int8 file: give --format onnx-int8, or "
                           "--format web --precision int8")
    if args.out is not None and args.format == "web" and Path(args.out).suffix.lower() in (".onnx", ".tflite"):
        raise FootsegError("--format web writes a folder (the page and its model): name --out so", args.out)
    if args.out is not None and args.format != "web":  # a web site's folder is checked by export_web
        check_writable(args.out)
        suffix = ".tflite" if args.format == "tflite" else ".onnx"
        if Path(args.out).suffix.lower() != suffix:  # a file named for what it is not would be opened as that
            raise FootsegError(f"--format {args.format} writes a {suffix} file: name --out so", args.out)
    from footseg.runtime.resolve import resolve_model

    model = resolve_model(args.model).at_size(args.size)
    if args.format == "web":
        from footseg.deploy.web import export_web, site_size

        site = export_web(model, args.out, precision=args.precision, calib=args.calib, calib_n=args.calib_n,
                          opset=args.opset, min_stride=args.min_stride, keep_fp32=keep, method=args.calib_method)
        made = f" (the model: {_own_int8_words(model)})" if (
            args.precision == "int8" and args.calib is None and not model.onnx) else ""
        print(f"wrote {site}/ ({site_size(site) / 2**20:.1f} MiB){made}: serve it with `footseg serve {site}`, or "
              "from any HTTPS host")
        return 0
    if args.format == "onnx":
        from footseg.deploy.export import export_onnx

        out = export_onnx(model, args.out, opset=args.opset, dynamic_batch=args.dynamic_batch)
    elif args.format == "tflite":
        from footseg.deploy.tflite import export_tflite

        out = export_tflite(model, args.out)
    else:
        from footseg.deploy.quantize import export_int8

        out = export_int8(
            model,
            args.out,
            calib=args.calib,
            calib_n=args.calib_n,
            method=args.calib_method,
            keep_fp32=keep,
            opset=args.opset,
            dynamic_batch=args.dynamic_batch,
            min_stride=args.min_stride,
        )
    made = f" ({_own_int8_words(model)}: --calib DIR calibrates another)" if (
        args.format == "onnx-int8" and args.calib is None) else ""
    print(f"wrote {out} ({out.stat().st_size / 1024:.1f} KiB){made}")
    return 0


def _own_int8_words(model: ModelRef) -> str:
    """Which int8 file an export without --calib took (``own_int8_as_asked``)."""
    return ("the shipped recipe's own int8 file, calibrated on its renders" if model.shipped else
            "the folder's own int8 export, as it is")


def _cmd_threshold(args: argparse.Namespace) -> int:
    from footseg.deploy.carry import carry_exports
    from footseg.eval.operating_point import PointSearch, threshold_model
    from footseg.runtime.resolve import resolve_model

    peaks = _recipe_region_peaks() if args.region_peaks is None else args.region_peaks
    search = PointSearch(sizes=args.sizes, region_peaks=peaks, presences=args.presences,
                         max_blob_rate=args.max_blob_rate)
    out, _ = threshold_model(args.model, args.data, args.out, search)
    carried = carry_exports(resolve_model(args.model), out)
    if carried:
        print(f"carried {' and '.join(p.name for p in carried)}, their metadata the point saved: it runs in ONNX "
              "Runtime")
    judge = f"`{_command()} eval {out} --data {args.data}` scores it on test/" if (
        Path(args.data) / "test").is_dir() else ""
    export = "" if any(p.name == "model.onnx" for p in carried) else f"`{_command()} export {out}` writes its ONNX file"
    if judge or export:
        print("; ".join(filter(None, (judge, export))))
    return 0


def _recipe_region_peaks() -> list[float]:
    """The region peaks the default model's recipe tries, read from it: `footseg threshold`'s, so they never drift."""
    from footseg.models.info import PRETRAINED_DIR
    from footseg.recipe.schema import RECIPE_NAME, parse_recipe
    from footseg.runtime.resolve import DEFAULT_MODEL

    recipe = parse_recipe(PRETRAINED_DIR / DEFAULT_MODEL / RECIPE_NAME)
    return [peak for stage in recipe.stages if stage.kind == "threshold" for peak in stage.settings["region_peaks"]]


def _levels(kind: type, none: bool = False) -> Callable[[str], list]:
    """A comma-separated list of ``kind`` for argparse (with ``none``, the word none: an empty list)."""
    def parse(text: str) -> list:
        if none and text.strip().lower() == "none":
            return []
        try:
            values = [kind(part) for part in text.split(",")]
        except ValueError:
            values = []
        if not values:
            raise argparse.ArgumentTypeError(f"not a comma-separated list of {kind.__name__}s"
                                             f"{' (or none)' if none else ''}: {text!r}")
        return values
    return parse


def _cmd_serve(args: argparse.Namespace) -> int:
    from footseg.deploy.serve import serve

    try:
        serve(args.target, port=args.port, lan=args.lan)
    except KeyboardInterrupt:  # how a server is stopped: not a failure
        print("footseg serve: stopped", file=sys.stderr)
    return 0


def _cmd_compress(args: argparse.Namespace) -> int:
    from footseg.compress.pipeline import CompressSettings, compress

    settings = CompressSettings(
        prune_amount=args.prune_amount,
        channel_ratio=args.channel_ratio,
        clusters=args.clusters,
        channel_scales=not args.layer_codebooks,
        finetune_steps=args.finetune_steps,
        importance=args.importance,
        channel_multiple=args.channel_multiple,
        workers=args.workers,
    )
    from footseg.runtime.resolve import resolve_model

    model = resolve_model(args.model)
    # Next to the model folder, or in the working directory for a shipped model (the package is no place to write).
    out = Path(args.out) if args.out else (Path.cwd() if model.shipped else model.folder.parent) / (
        f"{model.name}-compressed")
    result = compress(model, Path(args.data), out, real=args.real, settings=settings)
    for row in result["rows"]:
        real = f"  real IoU {row['real_iou']:.4f}" if row["real_iou"] is not None else ""
        size = f"{row['bytes'] / 1024:.1f} KiB ({row['ratio']:.1f}x)"
        print(f"{row['step']}: {size}  test IoU {row['test_iou']:.4f}{real}")
    print(f"report: {out / 'compress.md'}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from footseg.report import write_report

    real = Path(args.real) if args.real else None
    check_writable(args.out, folder=True)
    out = write_report(args.runs, Path(args.out), test_data=args.data, real_data=real)
    print(f"report: {out}")
    return 0


# footseg synth's render options and their defaults: --merge takes none of them (it renders nothing)
_RENDER_ONLY = {"frames": None, "seed": 0, "size": 256, "workers": 1, "resume": False, "shard": "0/1", "floors": None,
                "find": None, "meshes": None, "cutouts": None, "cutout_prob": 1.0, "format": "jpg", "without": "",
                "seated_prob": None, "own_feet_prob": None, "sock_prob": None, "empty_prob": None}


def _cmd_synth_merge(args: argparse.Namespace) -> int:
    from footseg.data.synth.merge import merge_renders, parse_sources

    given = [f"--{k.replace('_', '-')}" for k, default in _RENDER_ONLY.items() if getattr(args, k) != default]
    if given:
        raise FootsegError(f"--merge renders nothing, so it takes no {', '.join(given)}")
    manifest = merge_renders(Path(args.out), parse_sources(args.merge))
    counts = ", ".join(f"{k} {v}" for k, v in manifest["counts"].items())
    print(f"merged {len(manifest['sources'])} render{'s' * (len(manifest['sources']) != 1)} into {args.out} "
          f"({counts})")
    return 0


def _cmd_synth(args: argparse.Namespace) -> int:
    from footseg.data.synth import SynthSettings, synthesize
    from footseg.data.synth.clips import ClipSettings, synthesize_clips
    from footseg.data.synth.engine import parse_shard
    from footseg.data.synth.floors import SPLITS, split_of

    if args.merge is not None:
        return _cmd_synth_merge(args)
    if args.frames is not None and args.clips is None:
        raise FootsegError("--frames sets the length of each clip: it needs --clips K")
    common = dict(seed=args.seed, size=args.size, floors=args.floors, find=args.find, meshes=args.meshes,
                  image_format=args.format, cutouts=args.cutouts, cutout_prob=args.cutout_prob)
    # shares of scene kinds: given, they override the defaults (e.g. --own-feet-prob 1 for a test set of that kind)
    common.update({k: getattr(args, k) for k in ("seated_prob", "own_feet_prob", "sock_prob", "empty_prob")
                   if getattr(args, k) is not None})
    if args.clips is not None:
        settings = ClipSettings(n=args.clips, frames=24 if args.frames is None else args.frames, **common)
    else:
        settings = SynthSettings(n=args.n, **common)
    settings.remove(args.without.split(",") if args.without else [])
    settings.validate()  # a bad setting is the one line printed, without the note below
    empty = [sp for sp in SPLITS if all(split_of(i) != sp for i in range(settings.n))]
    if empty:  # said before the render, not after: without a val split the dataset cannot train
        unit = "clip" if args.clips is not None else "image"
        print(f"footseg: note: {settings.n} {unit}{'s' * (settings.n != 1)} leave{'s' * (settings.n == 1)} "
              f"{' and '.join(empty)} empty (each split gets every tenth {unit} or more)"
              f"{'; training needs a val split' if 'val' in empty else ''}", file=sys.stderr)
    run = synthesize_clips if args.clips is not None else synthesize
    shard = parse_shard(args.shard)
    try:
        manifest = run(Path(args.out), settings, workers=args.workers, resume=args.resume, shard=shard,
                       progress=not args.no_progress)
    except KeyboardInterrupt:
        again = "the same command" + ("" if args.resume else " with --resume")
        print(f"footseg synth: stopped; {again} renders what is missing, the images made are kept", file=sys.stderr)
        raise
    counts = ", ".join(f"{k} {v}" for k, v in manifest["counts"].items())
    what = f"clips of {manifest['frames']} frames" if args.clips is not None else "dataset"
    if shard == (0, 1):
        print(f"synthetic {what} in {args.out} ({counts})")
    else:  # its share: every shard-th unit from the shard's index on
        print(f"shard {shard[0]}/{shard[1]} of the synthetic {what} in {args.out} ({counts} in all its shards)")
    return 0


def _cmd_recipe(args: argparse.Namespace) -> int:
    from footseg.recipe.runner import RecipeRun
    from footseg.recipe.schema import find_recipe, parse_recipe

    recipe = parse_recipe(find_recipe(args.recipe))
    if args.out is None and not args.dry_run:
        raise FootsegError("recipe run needs --out DIR (one folder per stage, the result in DIR/model)")
    run = RecipeRun(recipe, args.out, floors=args.floors, find=args.find, device=args.device, workers=args.workers)
    if args.dry_run:
        print("\n".join(run.plan()))
        return 0
    print(f"model: {run.run()}")
    return 0


def _cmd_study(args: argparse.Namespace) -> int:
    from footseg.recipe.runner import RecipeRun
    from footseg.recipe.study import budget, run_study, study_recipe

    if args.dry_run:
        recipe = study_recipe(args.recipe)
        print("\n".join(RecipeRun(recipe, args.out, floors=args.floors, find=args.find).plan()))
        print(f"budget: {budget(recipe)}")
        return 0
    if args.out is None:
        raise FootsegError("study needs --out DIR (one folder per stage, the tables in DIR/report)")
    readme = run_study(args.out, args.recipe, args.floors, args.find, args.real, args.device,
                       report_only=args.report_only, workers=args.workers)
    print(f"report: {readme}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from footseg.pipeline import run_main

    try:
        report = run_main(Path(args.out), quick=args.quick)
    except KeyboardInterrupt:
        command = f"footseg run --out {args.out}" + (" --quick" if args.quick else "")
        again = " (or `make run`)" if args.out == RUN_OUT and not args.quick else ""
        print(f"footseg run: stopped; `{command}`{again} continues where it stopped", file=sys.stderr)
        raise
    print(f"report: {report}")
    return 0


RUN_OUT = "runs/main"  # footseg run's folder, as `make run` names it


MODEL_HELP = ("a saved model folder, a run folder (its best/), an exported .onnx file, a shipped model's name, or "
              "'default' (the default shipped model, also what an omitted MODEL means)")


def build_parser() -> argparse.ArgumentParser:
    from footseg import __version__

    p = argparse.ArgumentParser(prog="footseg", description="Real-time segmentation of feet on a smartphone.")
    p.add_argument("--version", action="version", version=f"footseg {__version__}")
    sub = p.add_subparsers(dest="verb", required=True, metavar="VERB")

    # Spelt out, not imported from footseg.runtime.temporal: the parser is built without loading torch.
    video_modes = ["per-frame", "smooth", "prior"]
    mode_help = ("per-frame (each frame alone), smooth (blend unsure pixels with the frame before) or prior (a "
                 "model trained with --prior); default: prior for such a model, else smooth")
    runtimes = ["auto", "torch", "onnx"]  # footseg.runtime.predictor.RUNTIMES, spelt out as video_modes are
    runtime_help = ("what runs the network: onnx (ONNX Runtime), torch, or auto (the default): ONNX Runtime for an "
                    ".onnx file and for a model folder holding its own export (both shipped models do; `footseg "
                    "export` writes one), about three times as fast on a CPU, else PyTorch")
    s = sub.add_parser("predict", help="write masks and overlays for images or folders of images")
    s.add_argument("items", nargs="+", metavar="[MODEL] INPUT",
                   help=f"the model ({MODEL_HELP}), then image files or folders")
    s.add_argument("--out", required=True, help="folder for <stem>_mask.png (0 and 255) and <stem>_overlay.jpg")
    s.add_argument("--overwrite", action="store_true",
                   help="replace masks and overlays already in --out (refused without it: they may be your own)")
    s.add_argument("--runtime", default="auto", choices=runtimes, help=runtime_help)
    s.set_defaults(func=_cmd_predict)

    s = sub.add_parser("video", help="segment a video file or a folder of frames: overlay video, masks per frame",
                       usage="footseg video [-h] [MODEL] INPUT --out OUT [--masks] [--mode MODE] [--smooth R] "
                             "[--fps FPS] [--overwrite] [--runtime R]")
    s.add_argument("items", nargs="+", metavar="[MODEL] INPUT",
                   help=f"the model ({MODEL_HELP}), then one video (.mp4 .m4v .mov .webm .avi .mkv) or folder of "
                        "frames (images in name order, or a clip folder with images/)")
    s.add_argument("--out", required=True, help="output folder: overlay.mp4, and masks/ with --masks")
    s.add_argument("--masks", action="store_true",
                   help="also write OUT/masks/<frame>.png (0/255) per frame, into an OUT/masks/ that is empty or new "
                        "(never over masks there before)")
    s.add_argument("--mode", default=None, choices=video_modes, help=mode_help)
    s.add_argument("--smooth", type=float, default=None, metavar="R",
                   help="mode smooth with ratio R in [0, 1] (default ratio 1.0)")
    s.add_argument("--fps", type=float, default=None,
                   help="frame rate of overlay.mp4 (default: the video's; 30 for a folder of frames)")
    s.add_argument("--overwrite", action="store_true",
                   help="replace an overlay.mp4 already in --out (refused without it; masks/ never is)")
    s.add_argument("--runtime", default="auto", choices=runtimes, help=runtime_help)
    s.set_defaults(func=_cmd_video)

    s = sub.add_parser("live", help="segment a camera's frames live and show them in a window (needs a display)")
    s.add_argument("model", nargs="?", default=None, help=MODEL_HELP)
    s.add_argument("--camera", type=int, default=0, help="camera number for OpenCV (0: the first)")
    s.add_argument("--mode", default=None, choices=video_modes, help=mode_help)
    s.add_argument("--smooth", type=float, default=None, metavar="R", help="mode smooth with ratio R in [0, 1]")
    s.add_argument("--runtime", default="auto", choices=runtimes, help=runtime_help)
    s.set_defaults(func=_cmd_live)

    s = sub.add_parser("serve", help="serve the web page to a browser (localhost) or, with --lan, to a phone (HTTPS)")
    s.add_argument("target", nargs="?", default=None, metavar="DIR|MODEL",
                   help=f"a folder from `footseg export --format web`, or a model to build one for ({MODEL_HELP})")
    s.add_argument("--port", type=_port, default=8000, help="port to listen on (0: any free one)")
    s.add_argument("--lan", action="store_true",
                   help="listen on this machine's LAN address over HTTPS (self-signed certificate) and print a QR "
                        "code for a phone; default: 127.0.0.1 only")
    s.set_defaults(func=_cmd_serve)

    s = sub.add_parser("export", help="export a saved model to ONNX (fp32), int8 ONNX (static quantization), TFLite "
                                      "or a web page (static site: the camera or a photo, segmented in the browser)")
    s.add_argument("model", nargs="?", default=None, help=MODEL_HELP)
    s.add_argument("--format", default="onnx", choices=["onnx", "onnx-int8", "tflite", "web"],
                   help="tflite (fp32) needs the optional litert-torch converter: pip install 'footseg[tflite]'; web "
                        "needs onnxruntime-web (npm ci --prefix web)")
    s.add_argument("--out", default=None,
                   help="output file (default: MODEL/model.onnx, MODEL/model.int8.onnx or MODEL/model.tflite for a "
                        "model folder, ./NAME.onnx, ./NAME.int8.onnx or ./NAME.tflite for a shipped model), or for "
                        "web a folder (default: NAME-web)")
    s.add_argument("--precision", default="fp32", choices=["fp32", "int8"],
                   help="web: the model's precision (fp32, the default, is faster in the browser; int8 needs --calib, "
                        "but for a model with an int8 file of its own, as --calib says)")
    s.add_argument("--opset", type=int, default=17, help="ONNX opset of the export (default 17)")
    s.add_argument("--dynamic-batch", action="store_true", help="accept any batch size instead of 1")
    s.add_argument("--calib", default=None,
                   help="int8: dataset for calibration (its train split if it has splits); without it, a model with "
                        "an int8 file of its own gets that file: the default's, which ships, or a model folder's "
                        "current model.int8.onnx")
    s.add_argument("--calib-n", type=int, default=64,
                   help="int8: number of calibration images (default 64, or all there are where fewer)")
    s.add_argument("--calib-method", default="minmax", choices=["minmax", "entropy", "percentile"],
                   help="int8: how ONNX Runtime's calibrator sets each tensor's range (default minmax)")
    s.add_argument(
        "--keep-fp32",
        action="append",
        default=[],
        metavar="NODES",
        help="int8: comma-separated node names left in fp32; first-conv and last-conv name the first and last conv",
    )
    s.add_argument("--min-stride", type=int, default=None, metavar="S",
                   help="int8: layers finer than 1/S of the input resolution stay fp32 (default: the model's own, "
                        "else 16: fastest on x86 without VNNI); 1 quantizes every layer (for CPUs with fast int8, "
                        "e.g. ARM dot-product)")
    s.add_argument("--size", type=int, default=None, metavar="S",
                   help="the side the exported network takes, S x S, a multiple of 32 (default: the model's own, its "
                        "config's input_size); smaller is faster, and the threshold stays the model's own")
    s.set_defaults(func=_cmd_export)

    s = sub.add_parser("eval", help="score a model on photos (accuracy, IoU, mIoU) or video clips (also flicker)")
    s.add_argument("model", nargs="?", default=None, help=MODEL_HELP)
    s.add_argument("--data", default=None, help="dataset folder (uses its test split if it has splits)")
    s.add_argument("--clips", default=None, metavar="DIR",
                   help="clip dataset (folders of frames with masks): per-frame IoU and accuracy, flicker, latency")
    s.add_argument("--mode", default=None, choices=video_modes, help=f"video mode for --clips: {mode_help}")
    s.add_argument("--smooth", type=float, default=None, metavar="R",
                   help="video mode smooth: MediaPipe's uncertainty-weighted blend with ratio R in [0, 1]")
    s.add_argument("--split", default=None,
                   help="split to score, of a dataset with train/ val/ test/ folders (default: test); a dataset "
                        "without them is scored whole")
    s.add_argument("--batch-size", type=int, default=8, help="photos run through the network at once")
    s.add_argument("--threshold", type=float, default=None, metavar="T",
                   help="foot where the probability exceeds T (default: the model's own, from its config.json)")
    s.add_argument("--region-peak", type=float, default=None, metavar="P",
                   help="keep a region of foot only if some pixel of it exceeds P, or it is the frame's most "
                        "confident (default: the model's own region_peak; 0 keeps every region)")
    s.add_argument("--presence", type=float, default=None, metavar="P",
                   help="a frame shows foot only if some pixel of it exceeds P (default: the model's own presence; "
                        "0 turns the gate off)")
    s.add_argument("--size", type=int, default=None, metavar="S",
                   help="run the network at SxS, not its own input size (saved PyTorch models; default: its own)")
    s.add_argument("--runtime", default="auto", choices=runtimes, help=runtime_help)
    s.add_argument("--json", default=None, help="also write the scores to this JSON file")
    s.add_argument("--worst-figure", default=None, metavar="PNG", help="draw the worst images and their predictions")
    s.add_argument("--worst", type=int, default=5, help="how many images --worst-figure shows")
    s.set_defaults(func=_cmd_eval)

    s = sub.add_parser("threshold", help="choose a model's threshold (and region peak, side, presence gate) on a "
                                         "dataset's val split and save the model with it")
    s.add_argument("model", nargs="?", default=None,
                   help="a saved model folder, a run folder (its best/), a shipped model's name, or 'default' (also "
                        "what an omitted MODEL means): its weights, run in PyTorch")
    s.add_argument("--data", required=True, help="dataset with a val/ split, where the point is chosen (and a test/ "
                                                 "split, where `footseg eval` can then judge it)")
    s.add_argument("--out", required=True, help="new model folder: MODEL's weights with the chosen point in its "
                                                "config.json, and choice.json, every score it was chosen from")
    s.add_argument("--sizes", type=_levels(int), default=[], metavar="S,S,...",
                   help="input sides to try, multiples of 32 (default: the model's own only; listed, its own is "
                        "tried only if it is listed)")
    s.add_argument("--region-peaks", type=_levels(float, none=True), default=None, metavar="P,P,...|none",
                   help="region peaks to try beside none, after the threshold (default: those the default model's "
                        "recipe tries; none: no region peak)")
    s.add_argument("--presences", type=_levels(float), default=[], metavar="P,P,...",
                   help="presence gates to try beside none, after the region peak (default: none tried; a gate pays "
                        "only on frames with no foot)")
    s.add_argument("--max-blob-rate", type=float, default=None, metavar="R",
                   help="choose threshold, region peak and gate together: the best IoU of those marking a foot "
                        "region on at most this share of val's frames with no foot (it needs some)")
    s.set_defaults(func=_cmd_threshold)

    s = sub.add_parser("bench", help="parameters, GFLOPs, size, latency, FPS and roofline per model and runtime")
    s.add_argument(
        "models", nargs="*",
        help=f"models ({MODEL_HELP}), or architecture names (untrained, cost only); default: every architecture",
    )
    s.add_argument("--runtimes", default=None,
                   help="comma-separated: torch, onnx, onnx-int8 (default: torch; with --peer the runtimes footseg "
                        "deploys with, as MediaPipe runs in its own: onnx, and onnx-int8 where every model brings "
                        "its int8 file (the default ships its recipe's) or --data has a train split)")
    s.add_argument("--threads", default=None,
                   help="comma-separated thread counts; 'all' = every usable core (default: 1; --browser: 1,all)")
    s.add_argument("--size", type=int, default=None,
                   help="input side for PyTorch models (default: a saved model's own input size, 256 for an "
                        "untrained architecture; MediaPipe's peer at 256); an .onnx file has its own")
    s.add_argument("--runs", type=int, default=20,
                   help="at least this many timed runs per row (after warm-up; default 20)")
    s.add_argument("--min-time", type=float, default=2.0,
                   help="and keep timing for at least this many seconds (default 2)")
    s.add_argument("--warmup", type=int, default=5, help="untimed runs before timing, in each round (default 5)")
    s.add_argument("--rounds", type=int, default=5,
                   help="timing is split into this many interleaved rounds over all rows, each ONNX row and the "
                        "peer in a fresh process each round (fair under bursts of load; default 5)")
    s.add_argument("--data", default=None,
                   help="dataset: adds the IoU on its test split; onnx-int8 rows calibrate on its train/ split, "
                        "except a model's that ships its int8 file (the default's, at its own side)")
    s.add_argument("--calib-n", type=int, default=64,
                   help="int8: number of calibration images (default 64, or all there are where fewer)")
    s.add_argument("--peer", action="store_true", help="add MediaPipe's selfie segmenter, run in .venv-bench")
    s.add_argument("--json", default=None, help="also write the rows to this JSON file")
    s.add_argument("--browser", action="store_true",
                   help="instead: MODEL's web page and MediaPipe's selfie segmenter live in headless Chromium, on "
                        "--clips (--min-time: seconds per row per clip); see benchmarks/README.md")
    s.add_argument("--clips", default=None, metavar="DIR",
                   help="--browser: clips for the fake camera (DIR's test split, or a flat folder of clips); "
                        "default: a small synthetic render")
    s.add_argument("--max-clips", type=int, default=None, metavar="N", help="--browser: the first N clips only")
    s.set_defaults(func=_cmd_bench)

    s = sub.add_parser("synth", help="render a synthetic dataset: 3D feet on floors seen by a phone camera")
    s.add_argument("out", help="output folder (train/val/test splits + manifest.json)")
    how_many = s.add_mutually_exclusive_group(required=True)
    how_many.add_argument("--n", type=int, help="number of images in the whole dataset (all shards)")
    how_many.add_argument("--clips", type=int, metavar="K",
                          help="render K video clips instead of still images: OUT/<split>/clip_NNNNN/images/fNNN.jpg "
                               "+ masks/fNNN.png, a hand-held phone moving over each scene")
    how_many.add_argument("--merge", nargs="+", metavar="[NAME=]SRC",
                          help="render nothing: merge these renders into OUT, each split the union of theirs (hard "
                               "links, stems prefixed NAME_; NAME defaults to the folder's name)")
    s.add_argument("--frames", type=int, default=None, metavar="F", help="frames per clip with --clips (default 24)")
    s.add_argument("--seed", type=int, default=0, help="the render's seed: the same seed, the same images")
    s.add_argument("--size", type=int, default=256, help="square output side in pixels")
    s.add_argument("--workers", type=int, default=1, help="worker processes, one OpenGL context each")
    s.add_argument("--resume", action="store_true", help="keep images already written, make the missing ones")
    s.add_argument("--shard", default="0/1", help="I/N: make only images (or clips) i with i %% N == I")
    s.add_argument("--floors", default=None, help="folder of floor photos (train/val/test subfolders, or flat)")
    s.add_argument("--find", default=None, help="FIND foot model folder (template.obj, model.onnx, latents.json)")
    s.add_argument("--meshes", default=None, help="folder of .obj/.ply foot meshes (vertex colours if present)")
    s.add_argument("--cutouts", default=None, metavar="DIR",
                   help="the thesis's mode: composite foreground photos with masks (DIR/images + DIR/masks, or "
                        "train/val/test subfolders of them) onto the floors, with shadows and colour matching")
    s.add_argument("--cutout-prob", type=float, default=1.0, metavar="P",
                   help="share of composites when --cutouts is given (the rest are 3D renders; default 1)")
    s.add_argument("--seated-prob", type=float, default=None, metavar="P",
                   help="share of scenes photographed sitting down (default 0.2)")
    s.add_argument("--own-feet-prob", type=float, default=None, metavar="P",
                   help="share of first-person scenes of one's own feet, no paper (default 0.2; clips: 0)")
    s.add_argument("--sock-prob", type=float, default=None, metavar="P",
                   help="share of feet in socks, which are foot (default 0.15; 0: bare feet, trousers kept)")
    s.add_argument("--empty-prob", type=float, default=None, metavar="P",
                   help="share of scenes with no foot or leg, the mask empty (default 0; 1: floors only)")
    s.add_argument("--format", default="jpg", choices=["jpg", "png"], help="image file format")
    s.add_argument("--without", default="", metavar="A,B",
                   help="leave ingredients out (for ablations): distractors, shadows, paper, camera-effects, "
                        "photo-floors, find, seated, own-feet, clothes (socks and trousers)")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.set_defaults(func=_cmd_synth)

    # Defaults are TrainConfig's, left out of ``args`` so that _cmd_train knows what was given (see there).
    s = sub.add_parser("train", help="train a model (single process, or under torchrun for DDP)",
                       argument_default=argparse.SUPPRESS)
    s.add_argument("--model",
                   help="the architecture: enet, linknet, mobileseg, fastlinknet, fastlinknet_ctx or emilseg "
                        "(default fastlinknet, or --init's)")
    s.add_argument("--data", help="dataset with train/ and val/ splits (e.g. from footseg synth); with --resume, the "
                                  "run's")
    s.add_argument("--out", required=True, help="run folder; RUN/best/ holds the best model")
    s.add_argument("--width", type=float, help="channel width multiplier (default 1, or --init's)")
    s.add_argument("--size", type=int, help="training image side, a multiple of 32; the side the model runs at "
                                            "(default 256, or the side --init's model runs at)")
    s.add_argument("--epochs", type=int, help="epochs of --steps-per-epoch batches (default 10)")
    s.add_argument("--batch-size", type=int, help="per process (default 8)")
    s.add_argument("--lr", type=float, help="peak learning rate of the cosine schedule (default 2e-3)")
    s.add_argument("--loss", choices=["ce", "iou", "ce+iou"],
                   help="cross entropy, soft IoU, or their sum (the default)")
    s.add_argument("--seed", type=int, help="initial weights, image order and augmentation (default 0)")
    s.add_argument("--workers", type=int, help="data loader worker processes (default 2)")
    s.add_argument("--steps-per-epoch", type=int,
                   help="batches per epoch, at most one pass over the training split (the default)")
    s.add_argument("--init", metavar="MODEL",
                   help="start from a saved model's weights (folder or shipped name, e.g. fastlinknet): fine-tune")
    s.add_argument("--ema", type=float, metavar="DECAY",
                   help="validate and save a moving average of the weights with this decay per step, e.g. 0.999 "
                        "(default 0: off)")
    s.add_argument("--teacher", metavar="MODEL",
                   help="distil from this saved model (folder or shipped name): Hinton's softened outputs")
    s.add_argument("--distill-weight", type=float,
                   help="share of the distillation term in the loss at the first step (default 0.5; FitNets: falls "
                        "to 0)")
    s.add_argument("--distill-temperature", type=float, help="softmax temperature T of the teacher (default 4)")
    s.add_argument("--no-distill-anneal", action="store_true", help="keep --distill-weight constant all run")
    s.add_argument("--attention-weight", type=float, metavar="BETA",
                   help="add attention transfer from the teacher's encoder stages with this weight (e.g. 1000; "
                        "default 0: off)")
    s.add_argument("--no-augment", action="store_true",
                   help="train on the images as they are (no warp, flip or colour noise): only to check a model fits")
    s.add_argument("--antialias", action="store_true",
                   help="shrink each image with an area filter before a warp that shrinks it (renders made at several "
                        "times --size)")
    s.add_argument("--white-balance", type=float, metavar="W",
                   help="colour casts in the augmentation, on 80%% of the images: red and blue gains each up to "
                        "1 + W either way, as cameras' white balance differs (W in [0, 1], e.g. 0.25; default 0: off)")
    s.add_argument("--prior", action="store_true",
                   help="train a prior-mask network for video: a 4th input, the previous frame's mask (faked from "
                        "each image's mask); with --init a still-image model gets that input added")
    s.add_argument("--self-prior", type=float, metavar="SHARE",
                   help="with --prior: this share of images gets the network's own output as prior (e.g. 0.5; "
                        "default 0)")
    s.add_argument("--device", choices=["auto", "cpu", "cuda"],
                   help="where training runs (auto: a CUDA GPU where there is one)")
    s.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last checkpoint, with its options: those that define the "
                        "run (--data, --lr, --size, ...) must match if given; a larger --epochs trains on, and "
                        "--workers, --device and --no-progress may change")
    s.add_argument("--no-progress", action="store_true", help="no progress bar (log lines only)")
    s.set_defaults(func=_cmd_train)

    s = sub.add_parser("recipe", help="make a model from nothing as its recipe file says: renders, training stages, "
                                      "pruning, export")
    actions = s.add_subparsers(dest="action", required=True, metavar="ACTION", help="what to do with the recipe")
    r = actions.add_parser("run", help="run a recipe's stages into a folder, resuming where an earlier run stopped")
    r.add_argument("recipe", help="a recipe file (TOML), or the name of a shipped model (its recipe.toml; "
                                  "'default': the default model's)")
    r.add_argument("--out", default=None, help="output folder: one subfolder per stage, the result in OUT/model")
    r.add_argument("--floors", default=None, metavar="DIR", help="floor photos, for renders with floors = true")
    r.add_argument("--find", default=None, metavar="DIR", help="the FIND foot model, for renders with find = true")
    r.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where training stages run")
    r.add_argument("--workers", type=int, default=None, metavar="N",
                   help="processes (at least 1) for every render and data loader instead of the recipe's; the "
                        "results do not depend on it (e.g. 8 on a GPU machine)")
    r.add_argument("--dry-run", action="store_true", help="print the stages, one line each, and do nothing")
    r.set_defaults(func=_cmd_recipe)

    s = sub.add_parser("study", help="the thesis's Tables 4.1 and 4.2 and Figure 4.1: all five networks and "
                                     "distillation at one budget, from the study recipe")
    s.add_argument("--recipe", default=None, help="another study recipe (default: footseg's study.toml)")
    s.add_argument("--out", default=None, help="output folder: one subfolder per stage, the tables in OUT/report")
    s.add_argument("--floors", default=None, metavar="DIR", help="floor photos, for renders with floors = true")
    s.add_argument("--find", default=None, metavar="DIR", help="the FIND foot model, for renders with find = true")
    s.add_argument("--real", default=None, metavar="DIR", help="real photos with masks to report on (never to "
                                                              "choose by)")
    s.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where training runs")
    s.add_argument("--workers", type=int, default=None, metavar="N",
                   help="processes for every render and data loader instead of the recipe's (as for recipe run)")
    s.add_argument("--dry-run", action="store_true", help="print the stages and the budget, and do nothing")
    s.add_argument("--report-only", action="store_true", help="train nothing: write OUT/report from the networks "
                                                              "finished so far, naming the stages still to run")
    s.set_defaults(func=_cmd_study)

    s = sub.add_parser("compress", help="channel/magnitude pruning, weight sharing and Huffman coding, step by step")
    s.add_argument("model", nargs="?", default=None, help=MODEL_HELP)
    s.add_argument("--data", required=True, help="dataset with train/, val/ (fine-tuning) and test/ (scoring) splits")
    s.add_argument("--real", default=None, help="flat folder of real photos with masks, also scored")
    s.add_argument("--out", default=None,
                   help="output folder (default: MODEL-compressed beside MODEL's folder; for a shipped model, "
                   "in the working folder)")
    s.add_argument("--prune-amount", type=float, default=0.5, help="fraction of weights zeroed (0 skips; default 0.5)")
    s.add_argument("--channel-ratio", type=float, default=0.25,
                   help="fraction of channels removed (0 skips; default 0.25)")
    s.add_argument("--clusters", type=int, default=16, help="shared weight values per layer (default 16 = 4 bits)")
    s.add_argument("--layer-codebooks", action="store_true",
                   help="share weights as the paper did, one plain codebook per layer, instead of in units of each "
                        "output channel's scale (one float per channel; without them one channel's range can leave "
                        "the others two or three values)")
    s.add_argument("--finetune-steps", type=int, default=100,
                   help="fine-tuning steps after each step (at least; the trainer runs whole epochs; default 100; "
                        "without them, pruning and sharing lose most of the network's IoU)")
    s.add_argument("--importance", default="l1", choices=["l1", "bn"],
                   help="channel score: L1 norm or BN |gamma| (default l1)")
    s.add_argument("--channel-multiple", type=int, default=8,
                   help="kept channel counts are multiples of this (default 8: full SIMD blocks; 1: exact ratio)")
    s.add_argument("--workers", type=int, default=0, help="data loader worker processes for fine-tuning (default 0)")
    s.set_defaults(func=_cmd_compress)

    s = sub.add_parser("check", help="validate a dataset folder and report every problem by file")
    s.add_argument("data", help="dataset folder (with train/val/test splits, or flat images/ + masks/)")
    s.set_defaults(func=_cmd_check)

    s = sub.add_parser("report", help="thesis tables 4.1 and 4.2 and a prediction grid from trained runs")
    s.add_argument("runs", nargs="+", help="run folders (each with best/), saved model folders or shipped names")
    s.add_argument("--out", required=True, help="folder for README.md, report.json and the figures")
    s.add_argument("--data", default=None, help="synthetic dataset with a test split")
    s.add_argument("--real", default=None, help="flat folder of real photos with masks")
    s.set_defaults(func=_cmd_report)

    s = sub.add_parser("run", help="the main job: synthetic data, train all five models, benchmark, report")
    s.add_argument("--out", default=RUN_OUT, help=f"the job's folder: data/, runs/ and report/ (default {RUN_OUT})")
    s.add_argument("--quick", action="store_true", help="tiny settings, for smoke tests")
    s.set_defaults(func=_cmd_run)
    return p


def _stop_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # `kill PID` stops a verb as Ctrl-C does: cleanly, and the same command continues


def _port(text: str) -> int:
    """argparse type of --port: a TCP port number, 0 to 65535."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0 to 65535 (0: any free one), got {port}")
    return port


def _os_error_line(exc: OSError) -> str:
    """``PATH: what the system said`` (both paths of a rename or link), as FootsegError's lines read."""
    if exc.filename is None:
        return str(exc)
    paths = f"{exc.filename} -> {exc.filename2}" if exc.filename2 is not None else str(exc.filename)
    if isinstance(exc, FileExistsError) and Path(exc.filename).is_file():  # mkdir, of a file where a folder goes
        return f"{paths}: exists and is not a folder"
    return f"{paths}: {exc.strerror or exc}"


def _show_warning(message: Warning | str, category: type[Warning], *args: object, **kwargs: object) -> None:
    """A ``FootsegWarning`` as one line, as errors are; any other warning as Python shows it."""
    if issubclass(category, FootsegWarning):
        print(f"footseg: warning: {message}", file=sys.stderr)
    else:
        _python_show_warning(message, category, *args, **kwargs)


_python_show_warning = warnings.showwarning


def _stdout_gone() -> bool:
    """Whether standard output is a pipe whose reader has closed it (its write end then polls as an error on Linux,
    as hung up on the BSDs and macOS)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no file descriptor (a test's captured output), or no poll
        return False


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    main_thread = threading.current_thread() is threading.main_thread()  # signal handlers can only be set there
    previous = signal.signal(signal.SIGTERM, _stop_on_sigterm) if main_thread else None
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        return _run(args, main_thread, previous)


def _run(args: argparse.Namespace, main_thread: bool, previous: object) -> int:
    try:
        if getattr(args, "out", None) == "":  # Path("") is the working folder, which an empty value never meant
            raise FootsegError("--out is empty: name a path, or leave --out out for the default")
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # here, where a reader gone is caught: output to a pipe waits in a buffer until the exit
        return code
    except FootsegError as exc:
        print(f"footseg: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError as exc:
        if not _stdout_gone():
            print(f"footseg: error: {_os_error_line(exc)}", file=sys.stderr)
            return 2
        # what reads the output stopped (`footseg recipe run R --dry-run | head -3`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so Python's exit flushes nowhere
        return 128 + signal.SIGPIPE
    except OSError as exc:  # what the system refused, e.g. an --out under a file or in a read-only folder
        print(f"footseg: error: {_os_error_line(exc)}", file=sys.stderr)
        return 2
    except Interrupted as exc:
        print(f"footseg: interrupted: {exc}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("footseg: interrupted", file=sys.stderr)
        return 130
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    raise SystemExit(main())

"""``footseg export --format web``: a static site that segments feet live from a phone's camera, in the browser.

The folder holds the page (``index.html``, ``style.css`` and four plain ES modules, no bundler: ``app.js`` draws,
``segmenter.js`` mirrors footseg's pre-processing and ``footseg.runtime.temporal``, ``view.js`` holds the camera,
canvas and latency helpers it shares with the MediaPipe peer's page, ``png.js`` writes a mask as PNG at a photo's own
size), the model (``model.onnx``,
exported by ``export_module`` or ``export_int8`` with its one-channel foreground margin), ``model.json`` (what the
page needs to know about it) and ONNX Runtime Web's WASM backend: its ES module API, the Emscripten loader and the
SIMD + threads ``.wasm`` (the same binary runs on one thread where the page is not cross-origin isolated). Nothing
is fetched from anywhere but the site itself. Any HTTPS host serves it; ``footseg serve`` adds the COOP/COEP
headers that let it use threads.

The runtime files come from the npm project in the repository's ``web/`` folder (``npm ci --prefix web``), or from
the ``dist/`` folder named by ``FOOTSEG_ORT_DIST``.

fp32 is the default precision because it is the faster one in the browser. Measured on the page itself (median
``window.footseg.latency`` over 100 frames: frame drawn to the network's size, network run, mask made), headless
Chromium 156, onnxruntime-web 1.30 WASM SIMD, the shipped fastlinknet (pruned, 96K) at 192x192, one thread, x86-64
with AVX2, four interleaved rounds on a 2-core machine: fp32 4.6 ms, int8 as ``export_int8`` makes it by default
(layers from 1/16 of the resolution on) 5.2 ms, int8 in every layer (``min_stride`` 1) 10.5 ms (``WEB_TIMINGS``).
ORT's WASM int8 kernels gain nothing on a network this small, and the quantize/dequantize steps at the int8 region's
edges cost. The default, fastlinknet_ctx at 256x256 (int8 from 1/8 on, its recipe's export; its 22-epoch weights, the
same network): fp32 16.8 ms, int8 22.9 ms, median over 5 real clips in ``footseg bench --browser`` (2026-12-03,
benchmarks/README.md).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from footseg import __version__
from footseg.atomic import atomic_path
from footseg.errors import FootsegError
from footseg.runtime.onnx_model import (
    DEFAULT_OPSET,
    FP32_NAME,
    INPUT_NAME,
    MARGIN,
    OUTPUT_KEY,
    OUTPUT_NAME,
    PRECISION_KEY,
    PRIOR_NAME,
    info_from_metadata,
    own_export_as_is,
    read_onnx,
)
from footseg.runtime.resolve import ModelRef, resolve_model
from footseg.runtime.temporal import DEFAULT_RATIOS, default_mode

PAGE_DIR = Path(__file__).resolve().parent / "web_page"
PAGE_FILES = ("index.html", "style.css", "app.js", "segmenter.js", "view.js", "png.js")
# ONNX Runtime Web's WASM backend and nothing else: the API module, the Emscripten loader it imports and its binary.
ORT_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
ORT_LICENSE = "LICENSE"
META_NAME = "model.json"
PRECISIONS = ("fp32", "int8")
DEFAULT_PRECISION = "fp32"  # faster in the browser; see the module doc and WEB_TIMINGS
# Median ms per frame on the page (see the module doc): shipped FastLinkNet 192x192, 1 thread, headless Chromium.
WEB_TIMINGS = {"fp32": 4.6, "int8": 5.2, "int8-every-layer": 10.5}
ENV_DIST = "FOOTSEG_ORT_DIST"
REPO_WEB = Path(__file__).resolve().parents[3] / "web"
NPM_HINT = ("run `npm ci --prefix web` in the footseg repository (or `make test`, which does it), or name an "
            f"onnxruntime-web dist/ folder in {ENV_DIST}")


def ort_dist() -> Path:
    """The ``dist/`` folder of onnxruntime-web holding ``ORT_FILES``; a one-line FootsegError where it is missing."""
    candidates = [Path(os.environ[ENV_DIST])] if os.environ.get(ENV_DIST) else []
    candidates += [web / "node_modules" / "onnxruntime-web" / "dist" for web in (REPO_WEB, Path.cwd() / "web")]
    for dist in candidates:
        if all((dist / name).is_file() for name in ORT_FILES):
            return dist
    raise FootsegError(f"onnxruntime-web is not installed (no {ORT_FILES[-1]} in {candidates[0]}): {NPM_HINT}")


def ort_version(dist: Path) -> str | None:
    """The onnxruntime-web version of ``dist`` (its package.json), or None."""
    try:
        return str(json.loads((dist.parent / "package.json").read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


def _metadata(onnx_path: Path) -> dict[str, str]:
    """An ONNX file's metadata_props, read without its weights' external data."""
    return {p.key: p.value for p in read_onnx(onnx_path, load_external_data=False).metadata_props}


def site_meta(onnx_path: Path, runtime_version: str | None) -> dict:
    """``model.json``: what the page needs to know about ``onnx_path`` (read from its footseg metadata)."""
    meta = _metadata(onnx_path)
    info = info_from_metadata(meta, onnx_path)
    if meta.get(OUTPUT_KEY) != MARGIN:
        raise FootsegError("the web page needs a two-class model exported with a one-channel margin output "
                           "(re-export it with this footseg)", onnx_path)
    prior = info.in_channels == 4
    return {
        "footseg_version": __version__,
        "model": info.model,
        "file": FP32_NAME,
        "precision": meta.get(PRECISION_KEY, "fp32"),
        "input_size": [int(s) for s in info.input_size],
        "in_channels": info.in_channels,
        "prior": prior,
        "default_mode": default_mode(prior),
        "default_ratios": DEFAULT_RATIOS,  # the smoothing of each video mode, as footseg.runtime.temporal runs it
        "inputs": {"image": INPUT_NAME, **({"prior": PRIOR_NAME} if prior else {})},
        "output": {"name": OUTPUT_NAME, "channels": 1, "kind": MARGIN,
                   "meaning": "l1 - l0; foot probability sigmoid(l1 - l0), foot where it exceeds threshold"},
        "threshold": info.threshold,  # the model's operating point, as footseg's Predictor applies it
        "region_peak": info.region_peak,  # null: every region of foot is kept (footseg.runtime.keep_confident_regions)
        "presence": info.presence,  # null: no frame is cleared (footseg.runtime.gate_presence)
        "layout": "NCHW float32 RGB in [0, 1], the frame resized to input_size",
        "onnxruntime_web": runtime_version,
    }


def _export_model(ref: ModelRef, out: Path, precision: str, opset: int, int8: dict[str, Any]) -> None:
    """Write ``ref`` as ``out``; ``int8``: ``export_int8``'s calibration and layer options, used for int8 only."""
    if ref.onnx:
        shutil.copyfile(ref.path, out)  # already exported by footseg (site_meta checks it)
        return
    if precision == "int8":
        from footseg.deploy.quantize import export_int8

        export_int8(ref, out, opset=opset, **int8)
    elif ref.size is None and (own := own_export_as_is(ref.folder, opset)) is not None:
        # the very file Python runs, without tracing the network again (nor importing torch: `footseg serve` starts
        # in about a second); a batch left dynamic changes nothing on the page
        shutil.copyfile(own, out)
    else:
        from footseg.deploy.export import export_onnx  # torch: tracing the network

        export_onnx(ref, out, opset=opset)  # the file `footseg export` writes, so the page runs what Python runs


def default_web_out(ref: ModelRef) -> Path:
    """Where a site goes without --out: ``<model name>-web`` in the working directory (``-<size>px-web`` at another
    side than the model's own)."""
    side = f"-{ref.size}px" if ref.size is not None else ""
    return Path(f"{ref.name.removesuffix('.onnx')}{side}-web")


def export_web(
    model: str | Path | ModelRef | None = None,
    out: str | Path | None = None,
    precision: str = DEFAULT_PRECISION,
    calib: str | Path | None = None,
    calib_n: int = 64,
    opset: int = DEFAULT_OPSET,
    min_stride: int | None = None,
    keep_fp32: Sequence[str] = (),
    method: str = "minmax",
) -> Path:
    """Write the static site for ``model`` (anything ``resolve_model`` takes) to ``out`` and return that folder.

    ``precision`` "int8" needs ``calib``, but for a model with an int8 file of its own (``own_int8_as_asked``);
    ``min_stride``, ``keep_fp32`` and ``method`` are ``export_int8``'s (None: the model's own ``min_stride``). An
    ``.onnx`` MODEL is copied as it is. An existing ``out`` is replaced only when it is an earlier site (it has
    ``model.json``) or empty.
    """
    if precision not in PRECISIONS:
        raise FootsegError(f"unknown precision '{precision}'; choose one of: {', '.join(PRECISIONS)}")
    ref = resolve_model(model)
    # a broken or foreign file is named as given, before any work (not as the staging copy)
    given = site_meta(ref.path, None) if ref.onnx else None
    if given is not None and precision == "int8" and given["precision"] != "int8":
        # an .onnx file is served as it is: asking for int8 would otherwise give an fp32 site without a word
        raise FootsegError("an ONNX file goes on the page as it is, and this one is not int8: export the model "
                           "folder with --precision int8, or give an int8 file", ref.path)
    if precision == "int8" and calib is None and not ref.onnx:
        from footseg.deploy.quantize import own_int8_as_asked

        # the model's own int8 file (shipped, or a folder's current export), or the error that int8 needs images
        # to calibrate on, before any work
        own_int8_as_asked(ref, calib_n=calib_n, method=method, keep_fp32=keep_fp32, opset=opset, min_stride=min_stride)
    dist = ort_dist()  # fails before the slow export
    out = Path(out) if out else default_web_out(ref)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / META_NAME).is_file())):
        raise FootsegError("exists and is not a footseg web site (no model.json); choose another --out", out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Built next to ``out`` and swapped in whole: a failed export never leaves half a site behind.
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        int8 = {"calib": calib, "calib_n": calib_n, "method": method, "min_stride": min_stride, "keep_fp32": keep_fp32}
        _export_model(ref, staging / FP32_NAME, precision, opset, int8)
        for name in PAGE_FILES:
            shutil.copyfile(PAGE_DIR / name, staging / name)
        for name in ORT_FILES:
            shutil.copyfile(dist / name, staging / name)
        if (dist.parent / ORT_LICENSE).is_file():
            shutil.copyfile(dist.parent / ORT_LICENSE, staging / "onnxruntime-web.LICENSE.txt")
        meta = site_meta(staging / FP32_NAME, ort_version(dist))
        (staging / META_NAME).write_text(json.dumps(meta, indent=2) + "\n")
        staging.chmod(0o755)  # mkdtemp makes 0700 folders; a web server run by another user must read it
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
            staging.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def write_y4m(frames: Sequence[np.ndarray], out: str | Path, fps: int = 30) -> Path:
    """Write (H, W, 3) uint8 RGB frames (even sides) as a YUV4MPEG2 4:2:0 clip: what Chromium's fake camera plays
    (``--use-file-for-fake-video-capture``), so browser tests and screenshots see known pictures, looped."""
    out = Path(out)
    if not frames:
        raise FootsegError("no frames to write", out)
    h, w = frames[0].shape[:2]
    if h % 2 or w % 2:
        raise FootsegError(f"4:2:0 video needs even sides, got {w}x{h}", out)
    with atomic_path(out) as tmp, tmp.open("wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            if frame.shape != (h, w, 3) or frame.dtype != np.uint8:
                raise FootsegError(f"frames must all be ({h}, {w}, 3) uint8 RGB, got {frame.shape} {frame.dtype}", out)
            f.write(b"FRAME\n")
            f.write(cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420).tobytes())  # Y plane, then U and V at half size
    return out


def site_size(folder: Path) -> int:
    """Bytes in the site's files."""
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())

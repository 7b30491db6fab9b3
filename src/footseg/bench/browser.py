"""``footseg bench --browser``: footseg's web page next to MediaPipe's selfie segmenter, live in headless Chromium.

Both run as a phone runs them: a page with the camera, segmenting each new frame when idle, timed by the page itself
(``performance.now()`` from the frame to its mask). The camera is Chromium's fake capture device playing a clip as
Y4M (``footseg.deploy.web.write_y4m``), looped, so every row sees the same frames; each clip gets its own browser,
and on each clip the rows run in turn (the order rotating from clip to clip), so a slow phase of a shared machine
hits every row alike.

Rows: footseg's model in onnxruntime-web (the page of ``footseg export --format web``, served by
``footseg.deploy.serve`` with COOP/COEP, ``?threads=N`` for each thread count) and MediaPipe's selfie segmenter in
@mediapipe/tasks-vision (``web_page/peer.html``, CPU delegate, VIDEO running mode; its WASM build has no threads, so
it has one row). The peer needs tasks-vision in ``web/node_modules`` and the ``.tflite`` from the mediapipe wheel in
``.venv-bench`` (``make bench``); without either its row is skipped with the reason, never a failure.

A row is measured in three steps in a fresh browser context (an empty cache):

1. load: every HTTP response body until the first mask, summed (``first_mask_bytes``: Playwright's
   ``request.sizes()["responseBodySize"]`` over the requests that finished before it; documents, scripts, workers,
   WASM and the model alike), and the time to it;
2. speed, after a warm-up: each frame's latency as the page measured it, and the frames done per second of wall time
   (``performance.now()`` in the page at both ends);
3. masks, where the clip has them: each frame's network input and output are read back, the frame is identified as
   the clip frame closest to that input (mean absolute difference at the network's resolution, against the clip
   frame resized as footseg resizes it: the camera loops the clip, and frames are skipped whenever the page is
   busy), until every clip frame has been seen once. Masks are compared at the clip's size: footseg's probability
   is resized back bilinearly and thresholded at the page's threshold (the model's, from its ``model.json``) as
   ``footseg.runtime.predictor`` does, MediaPipe's confidence
   mask (already at the camera's size) is thresholded at 0.5. IoU and flicker are then computed exactly as
   ``footseg.eval.clips`` does (ConfusionMeter, FlickerMeter, clip frames in order; a clip frame the page never
   showed is left out, and flicker then restarts after it). footseg's rows also carry ``python_iou`` and
   ``python_flicker``: ``evaluate_clips`` in Python on the same clips with the same ``model.onnx``.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from footseg.bench.cost import parse_threads, warn_oversubscribed
from footseg.bench.peer import PEER_SCRIPT, PEER_VENV, peer_hint
from footseg.bench.table import format_cell
from footseg.data.clips import Clip, clips_in, find_clips
from footseg.data.transforms import resize_image, resize_mask
from footseg.deploy import web
from footseg.deploy.serve import SiteServer, running
from footseg.errors import FootsegError
from footseg.eval.clips import FlickerMeter, evaluate_clips
from footseg.metrics import ConfusionMeter
from footseg.runtime.predictor import resize_proba, to_mask
from footseg.runtime.resolve import resolve_model
from footseg.runtime.timing import latency_stats

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Request

CHROMIUM = Path("/usr/bin/chromium")
# The flags of tests/deploy/test_web.py: no GPU, nothing phoning home. MediaPipe still gets WebGL (it takes camera
# frames through a WebGL texture even on its CPU delegate): Chromium's software GL, a cost a phone's GPU would carry.
BASE_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run"]
# The fake camera's frame rate. Pages get frames through requestVideoFrameCallback, at most once per compositor frame
# (60 Hz in headless Chromium), so FPS tops out at 60 whatever the camera; a 60 fps camera lets it reach that.
CAMERA_FPS = 60
PEER_MODEL = "mediapipe-selfie"  # footseg.bench.peer's name for it
FOOTSEG_RUNTIME = "onnxruntime-web"
PEER_RUNTIME = "mediapipe-tasks-vision"
TASKS_VISION = Path("@mediapipe") / "tasks-vision"
# The bundle, and the SIMD build of its WASM (the page names it directly; Chromium has SIMD).
PEER_RUNTIME_FILES = ("vision_bundle.mjs", "wasm/vision_wasm_internal.js", "wasm/vision_wasm_internal.wasm")
PEER_PAGE_FILES = ("peer.html", "peer.js", "view.js")
PEER_MODEL_FILE = "selfie_segmentation.tflite"
PEER_MODEL_GLOB = f"lib/python*/site-packages/mediapipe/modules/selfie_segmentation/{PEER_MODEL_FILE}"
LOAD_TIMEOUT_S = 90  # first mask: the WASM compiles on two busy cores here
MATCH_LIMIT = 12.0  # mean absolute difference (0-255) above which a page frame is no clip frame (a blank start)
DRAIN_EVERY_S = 0.3
QUEUE_LIMIT = 64  # frames the page holds between drains in the mask step (each up to ~1 MB)
DEFAULT_CLIPS = {"n": 3, "frames": 36, "size": 256, "seed": 0}  # `footseg synth --clips 3 --frames 36 --size 256`

READ_ERRORS = "() => (window.footseg ? window.footseg.errors : [])"
# Time from navigation to the first mask, noted by a probe on every animation frame (as fine as the page's own loop).
FIRST_MASK_PROBE = """(() => {
  const probe = () => {
    if (window.footseg && window.footseg.frames >= 1) window.__firstMaskMs = performance.now();
    else requestAnimationFrame(probe);
  };
  requestAnimationFrame(probe);
})();"""
START_TIMING = """() => {
  const f = window.footseg;
  const latencies = [];
  window.__benchLatencies = latencies;
  f.onFrame = (s) => { latencies.push(s.latency.last); };
  return { frames: f.frames, now: performance.now() };
}"""
STOP_TIMING = """() => {
  const f = window.footseg;
  f.onFrame = null;
  return { frames: f.frames, now: performance.now(), latencies: window.__benchLatencies };
}"""
# The mask step: the page keeps each frame's input and output (references: both pages make new arrays every frame);
# a drain turns them into bytes. A page with maskSize (the peer) reports a mask at that size, footseg's page its
# probability at the network's size.
START_RECORDING = """(limit) => {
  const f = window.footseg;
  const queue = [];
  window.__benchQueue = queue;
  f.record = true;
  f.onFrame = (s) => {
    if (!s.lastInput || queue.length >= limit) return;
    const common = { frame: s.frames, input: s.lastInput, size: s.inputSize };
    queue.push(s.maskSize ? { ...common, mask: s.lastMask, maskSize: s.maskSize }
      : { ...common, prob: s.lastProb, maskSize: s.inputSize, threshold: s.threshold });
  };
}"""
DRAIN = """() => {
  const b64 = (a) => {
    const u = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    let s = '';
    for (let i = 0; i < u.length; i += 0x8000) s += String.fromCharCode.apply(null, u.subarray(i, i + 0x8000));
    return btoa(s);
  };
  const queue = window.__benchQueue.splice(0);
  return queue.map((e) => {
    const input = new Uint8Array(e.input.length);
    for (let i = 0; i < input.length; i += 1) input[i] = Math.round(e.input[i] * 255);
    return { frame: e.frame, input: b64(input), size: e.size, maskSize: e.maskSize,
             prob: e.prob ? b64(e.prob) : null, mask: e.mask ? b64(e.mask) : null, threshold: e.threshold };
  });
}"""
STOP_RECORDING = "() => { window.footseg.onFrame = null; window.footseg.record = false; }"


class PeerUnavailableError(Exception):
    """The peer cannot run here; its message is the one-line reason its row is skipped."""


def browser_problem() -> str | None:
    """Why the browser benchmark cannot run here (no Chromium, Playwright or onnxruntime-web), or None."""
    if not CHROMIUM.is_file():
        return f"no {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Python Playwright is not installed (pip install -e '.[dev]')"
    try:
        web.ort_dist()
    except FootsegError as exc:
        return str(exc)
    return None


def tasks_vision_dir() -> Path:
    """The installed @mediapipe/tasks-vision package (``npm ci --prefix web``); PeerUnavailableError if absent."""
    for root in (web.REPO_WEB, Path.cwd() / "web"):
        folder = root / "node_modules" / TASKS_VISION
        if all((folder / name).is_file() for name in PEER_RUNTIME_FILES):
            return folder
    raise PeerUnavailableError(f"@mediapipe/tasks-vision is not installed in {web.REPO_WEB / 'node_modules'}, so "
                               f"no MediaPipe row: {web.NPM_HINT}")


def peer_model_file() -> Path:
    """The selfie segmenter's ``.tflite`` from the mediapipe wheel in ``.venv-bench`` (benchmarks/mediapipe_peer.py's
    ``model_path()``); PeerUnavailableError when there is none."""
    found = sorted(PEER_VENV.glob(PEER_MODEL_GLOB))
    if found:
        return found[0]
    python = PEER_VENV / "bin" / "python"
    if not python.is_file():
        raise PeerUnavailableError(peer_hint())
    # A wheel laid out some other way: ask mediapipe itself, through the peer script's own lookup.
    code = (f"import sys; sys.path.insert(0, {str(PEER_SCRIPT.parent)!r}); "
            "from mediapipe_peer import model_path; print(model_path())")
    try:
        done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PeerUnavailableError(f"{python}: could not ask mediapipe for its model ({exc})") from exc
    path = Path(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 and done.stdout.strip() else None
    if path is None or not path.is_file():
        raise PeerUnavailableError(f"{PEER_VENV}: mediapipe has no {PEER_MODEL_FILE} here, so no MediaPipe row "
                                   "(recreate it with `make bench`)")
    return path


def tasks_vision_version(folder: Path) -> str | None:
    try:
        return str(json.loads((folder / "package.json").read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


def build_peer_site(out: Path) -> tuple[Path, str | None]:
    """A folder serving MediaPipe's page: peer.html/peer.js, the tasks-vision bundle and WASM, and the model, all
    local (no CDN). Returns (folder, tasks-vision version); PeerUnavailableError when a part is missing."""
    package = tasks_vision_dir()
    model = peer_model_file()
    out.mkdir(parents=True, exist_ok=True)
    for name in PEER_PAGE_FILES:
        shutil.copyfile(web.PAGE_DIR / name, out / name)
    for name in PEER_RUNTIME_FILES:
        shutil.copyfile(package / name, out / Path(name).name)
    shutil.copyfile(model, out / PEER_MODEL_FILE)
    return out, tasks_vision_version(package)


# --- clips -------------------------------------------------------------------------------------------------------


@dataclass
class BrowserClip:
    """A clip as the fake camera plays it: frames cropped to even sides (4:2:0 video needs them), masks alike."""

    name: str
    folder: Path
    frames: list[np.ndarray]
    masks: list[np.ndarray] | None  # (H, W) uint8 {0, 1}; None when the clip has no masks
    y4m: Path | None = None
    _resized: dict[tuple[int, int], np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def size(self) -> tuple[int, int]:
        return self.frames[0].shape[:2]

    def at(self, size: tuple[int, int]) -> np.ndarray:
        """The frames resized to ``size`` as footseg resizes them for a network, (F, h, w, 3) float32."""
        if size not in self._resized:
            self._resized[size] = np.stack([resize_image(f, size) for f in self.frames]).astype(np.float32)
        return self._resized[size]


def load_clip(clip: Clip) -> BrowserClip:
    frames, masks = [], []
    for index in range(len(clip)):
        image, mask = clip.read(index)
        h, w = image.shape[:2]
        h2, w2 = h - h % 2, w - w % 2
        frames.append(np.ascontiguousarray(image[:h2, :w2]))
        masks.append(None if mask is None else (mask[:h2, :w2] > 0).astype(np.uint8))
    if any(f.shape != frames[0].shape for f in frames):
        raise FootsegError("frames of one clip differ in size; the camera needs one size", clip.folder)
    return BrowserClip(clip.name, clip.folder, frames, None if any(m is None for m in masks) else masks)


def render_default_clips(out: Path) -> list[Clip]:
    """A small synthetic clip set (``footseg synth --clips``) for a benchmark given no clips: every clip of it, in
    whatever split it fell (a small render may have no test split)."""
    from footseg.data.synth.clips import ClipSettings, synthesize_clips
    from footseg.data.synth.render import headless_gl_problem

    if problem := headless_gl_problem():
        raise FootsegError(f"no clips given and none can be rendered here (no headless OpenGL: {problem}); pass "
                           "--clips DIR")
    s = DEFAULT_CLIPS
    synthesize_clips(out, ClipSettings(n=s["n"], frames=s["frames"], size=s["size"], seed=s["seed"]), progress=False)
    clips = [c for split in ("train", "val", "test") for c in clips_in(out / split)]
    if not clips:
        raise FootsegError("the synthetic clip render came out empty", out)
    return clips


# --- one page ----------------------------------------------------------------------------------------------------


@dataclass
class RowSpec:
    model: str
    runtime: str
    threads: int
    url: str
    version: str | None
    peer: bool = False


@dataclass
class RowRun:
    """What one row measured on one clip."""

    latencies: list[float]
    frames: int
    seconds: float
    first_mask_bytes: int
    first_mask_ms: float | None
    requests: int
    masks: dict[int, np.ndarray]  # clip frame index -> predicted mask at the clip's size
    match_errors: list[float]
    threads: int | None
    mode: str | None = None  # the page's video mode, and its smoothing ratio
    ratio: float | None = None


def _decode(raw: str, dtype: type, shape: Sequence[int]) -> np.ndarray:
    return np.frombuffer(base64.b64decode(raw), dtype=dtype).reshape(tuple(shape))


def _identify(clip: BrowserClip, input_chw: np.ndarray) -> tuple[int, float]:
    """(index of the clip frame the page's input shows, its mean absolute difference in 0-255 levels)."""
    h, w = input_chw.shape[1:]
    seen = input_chw.transpose(1, 2, 0).astype(np.float32)
    errors = np.abs(clip.at((h, w)) - seen[None]).mean(axis=(1, 2, 3))
    best = int(errors.argmin())
    return best, float(errors[best])


def _mask_at_clip_size(entry: dict, size: tuple[int, int]) -> np.ndarray:
    mh, mw = entry["maskSize"]
    if entry.get("prob"):  # footseg: the probability at the network's size, made a mask as the Predictor makes it
        return to_mask(resize_proba(_decode(entry["prob"], np.float32, (mh, mw)).copy(), size), entry["threshold"])
    mask = _decode(entry["mask"], np.uint8, (mh, mw)).copy()
    return mask if (mh, mw) == size else resize_mask(mask, size)


def _page_errors(page: Page) -> list[str]:
    try:
        return list(page.evaluate(READ_ERRORS))
    except Exception as exc:  # a crashed page answers nothing
        return [f"{type(exc).__name__}: {exc}"]


def measure_row(browser: Browser, spec: RowSpec, clip: BrowserClip, seconds: float, warmup: float,
                masks: bool = True) -> RowRun:
    """One row on one clip: load (bytes and time to the first mask), speed, then the masks of every clip frame."""
    from playwright.sync_api import Error as PlaywrightError

    context = browser.new_context(permissions=["camera"])
    try:
        page = context.new_page()
        finished: list[Request] = []
        context.on("requestfinished", lambda request: finished.append(request))
        crashes: list[str] = []
        page.on("pageerror", lambda error: crashes.append(str(error)))
        page.add_init_script(FIRST_MASK_PROBE)
        page.goto(spec.url)
        try:
            page.wait_for_function("window.footseg && (window.footseg.frames >= 1 || window.footseg.errors.length)",
                                   timeout=LOAD_TIMEOUT_S * 1000)
        except PlaywrightError as exc:
            problem = _page_errors(page) or crashes or [str(exc).splitlines()[0]]
            raise FootsegError(f"{spec.model} page made no mask in {LOAD_TIMEOUT_S} s ({problem[0]})") from None
        if errors := _page_errors(page):
            raise FootsegError(f"{spec.model} page: {errors[0]}")
        before_first = list(finished)
        first_mask_bytes = sum(_body_size(r) for r in before_first if r.url.startswith(("http:", "https:")))
        first_mask_ms = page.evaluate("window.__firstMaskMs ?? null")
        threads, mode, ratio = page.evaluate("[window.footseg.threads, window.footseg.mode, window.footseg.ratio]")
        page.wait_for_timeout(warmup * 1000)
        start = page.evaluate(START_TIMING)
        page.wait_for_timeout(seconds * 1000)
        stop = page.evaluate(STOP_TIMING)
        if errors := _page_errors(page):
            raise FootsegError(f"{spec.model} page: {errors[0]}")
        found: dict[int, np.ndarray] = {}
        match_errors: list[float] = []
        if masks and clip.masks is not None:
            found, match_errors = _record_masks(page, clip)
        return RowRun(
            latencies=[float(x) for x in stop["latencies"]],
            frames=int(stop["frames"] - start["frames"]),
            seconds=(stop["now"] - start["now"]) / 1000,
            first_mask_bytes=int(first_mask_bytes),
            first_mask_ms=None if first_mask_ms is None else float(first_mask_ms),
            requests=len(before_first),
            masks=found,
            match_errors=match_errors,
            threads=None if threads is None else int(threads),
            mode=mode,
            ratio=None if ratio is None else float(ratio),
        )
    finally:
        context.close()


def _body_size(request: Request) -> int:
    # The body as it crossed the wire (footseg serve does not compress, so also the file's size); headers excluded.
    try:
        return max(0, int(request.sizes()["responseBodySize"]))
    except Exception:  # sizes gone with a closed worker: the length the response announced
        response = request.response()
        return int(response.headers.get("content-length", 0)) if response is not None else 0


def _record_masks(page: Page, clip: BrowserClip) -> tuple[dict[int, np.ndarray], list[float]]:
    """Masks of clip frames as the page makes them live, until each frame has one (or the time is up).

    Each clip frame is scored once, as in Python. In a video mode with state (smooth, prior) a mask depends on the
    frames before it, so a frame's mask is preferably taken where the page's previous frame was the clip's previous
    frame, as in Python's run through the clip; one after a skipped frame is kept only for want of such a one.
    """
    in_order: dict[int, np.ndarray] = {}
    any_order: dict[int, np.ndarray] = {}
    errors: list[float] = []
    previous: tuple[int, int] | None = None  # (page frame number, clip frame index) of the page's last frame
    n = len(clip.frames)
    deadline = time.monotonic() + max(6.0, 10 * n / CAMERA_FPS)  # mostly done in a loop or two; the rest is slack
    page.evaluate(START_RECORDING, QUEUE_LIMIT)
    try:
        while len(in_order) < n and time.monotonic() < deadline:
            page.wait_for_timeout(DRAIN_EVERY_S * 1000)
            for entry in page.evaluate(DRAIN):
                h, w = entry["size"]
                index, error = _identify(clip, _decode(entry["input"], np.uint8, (3, h, w)))
                if error > MATCH_LIMIT:
                    previous = None
                    continue
                errors.append(error)
                # Frame 0 follows the loop's last frame; Python starts it afresh, which no page frame does.
                follows = previous is not None and previous[0] == entry["frame"] - 1 and (
                    index == 0 or previous[1] == index - 1)
                previous = (entry["frame"], index)
                if index in in_order or (not follows and index in any_order):
                    continue
                mask = _mask_at_clip_size(entry, clip.size)
                (in_order if follows else any_order)[index] = mask
    finally:
        page.evaluate(STOP_RECORDING)
    return {**any_order, **in_order}, errors


# --- scores ------------------------------------------------------------------------------------------------------


def score_masks(clips: Sequence[BrowserClip], found: Sequence[dict[int, np.ndarray]]) -> dict[str, Any]:
    """IoU (0-1) and flicker (percent) of the page's masks, exactly as ``footseg.eval.clips`` pools them; clip frames
    without a mask are left out (and flicker is not counted across the gap)."""
    total, flicker = ConfusionMeter(), FlickerMeter()
    scored = 0
    for clip, masks in zip(clips, found, strict=True):
        if clip.masks is None:
            continue
        flicker.reset()
        for index, true in enumerate(clip.masks):
            pred = masks.get(index)
            if pred is None:
                flicker.reset()
                continue
            total.update(pred, true)
            flicker.update(pred, true)
            scored += 1
    if not scored:
        return {"iou": None, "flicker": None, "scored_frames": 0}
    return {"iou": total.compute()["iou"], "flicker": flicker.flicker, "scored_frames": scored}


def python_reference(onnx_file: Path, clips: Sequence[BrowserClip], workdir: Path, mode: str | None = None,
                     ratio: float | None = None) -> dict[str, float] | None:
    """``evaluate_clips`` on the same clips with the page's ``model.onnx`` in Python, in the page's video mode."""
    scored = [c for c in clips if c.masks is not None]
    if not scored:
        return None
    folder = workdir / "python-clips"
    folder.mkdir(exist_ok=True)
    for i, clip in enumerate(scored):
        link = folder / f"{i:03d}_{clip.name}"
        if not link.exists():
            link.symlink_to(clip.folder.resolve(), target_is_directory=True)
    scores = evaluate_clips(onnx_file, folder, mode=mode, ratio=ratio, threads=1)
    return {"python_iou": float(scores["iou"]), "python_flicker": float(scores["flicker"])}


def _median(values: Sequence[float]) -> float | None:
    return float(np.median(values)) if len(values) else None


def _row(spec: RowSpec, runs: Sequence[RowRun], clips: Sequence[BrowserClip]) -> dict[str, Any]:
    latencies = [x for r in runs for x in r.latencies]
    seconds = sum(r.seconds for r in runs)
    frames = sum(r.frames for r in runs)
    stats = latency_stats(latencies) if latencies else {"latency_ms": None, "p90_ms": None}
    total_frames = sum(len(c.frames) for c in clips if c.masks is not None)
    scores = score_masks(clips, [r.masks for r in runs])
    return {
        "model": spec.model,
        "runtime": spec.runtime,
        "threads": runs[0].threads if runs and runs[0].threads else spec.threads,
        "latency_ms": stats["latency_ms"],
        "p90_ms": stats["p90_ms"],
        "fps": frames / seconds if seconds > 0 else None,
        "first_mask_bytes": int(np.median([r.first_mask_bytes for r in runs])),
        "iou": scores["iou"],
        "flicker": scores["flicker"],
        "runtime_version": spec.version,
        "mode": runs[0].mode if runs else None,
        "ratio": runs[0].ratio if runs and runs[0].mode in ("smooth", "prior") else None,
        "first_mask_ms": _median([r.first_mask_ms for r in runs if r.first_mask_ms is not None]),
        "requests": int(np.median([r.requests for r in runs])),
        "frames_timed": frames,
        "seconds_timed": seconds,
        "clips": len(clips),
        "mask_coverage": scores["scored_frames"] / total_frames if total_frames else None,
        "match_error": _median([e for r in runs for e in r.match_errors]),
    }


# --- the benchmark -----------------------------------------------------------------------------------------------


@contextmanager
def chromium(*args: str) -> Iterator[Browser]:
    """Debian's Chromium, headless, as footseg's browser benchmarks launch it: ``BASE_ARGS`` and ``args``."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=[*BASE_ARGS, *args])
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def camera_browser(y4m: Path) -> Iterator[Browser]:
    """Headless Chromium whose fake camera plays ``y4m`` (looped)."""
    with chromium("--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={y4m}",
                  "--deny-permission-prompts") as browser:
        yield browser


def browser_benchmark(
    model: str | Path | None = None,
    clips: str | Path | None = None,
    threads: str | int | Sequence[int | str] = "1,all",
    seconds: float = 2.0,
    warmup: float = 1.0,
    peer: bool = True,
    split: str = "test",
    max_clips: int | None = None,
    python_scores: bool = True,
    log: Callable[[str], None] | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Rows for footseg's page at each thread count and MediaPipe's page, and why the peer row is missing (or None).

    ``clips``: a clip dataset (its ``split``) or a flat folder of clips; None renders a few synthetic ones.
    ``seconds``: timing per row per clip, after ``warmup`` seconds of running. ``max_clips``: the first N clips only.
    """
    if problem := browser_problem():
        raise FootsegError(f"the browser benchmark cannot run: {problem}")
    if seconds <= 0 or warmup < 0:
        raise FootsegError(f"--min-time must be positive (got {seconds})")
    if max_clips is not None and max_clips < 1:
        raise FootsegError(f"--max-clips must be at least 1 (got {max_clips})")
    counts = parse_threads(threads)
    warn_oversubscribed(counts)
    ref = resolve_model(model)  # a bad name fails before anything slow
    say = log or (lambda _message: None)
    why: str | None = None
    with tempfile.TemporaryDirectory(prefix="footseg-browser-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        found = find_clips(Path(clips), split) if clips is not None else render_default_clips(work / "clips")
        chosen = [load_clip(c) for c in found[:max_clips]]
        say(f"{len(chosen)} clip(s), {sum(len(c.frames) for c in chosen)} frames")
        site = web.export_web(ref, work / "site")
        server = stack.enter_context(running(SiteServer(site, port=0)))
        version = web.ort_version(web.ort_dist())
        specs = [RowSpec(ref.name.removesuffix(".onnx"), FOOTSEG_RUNTIME, n, f"{server.url}?threads={n}", version)
                 for n in counts]
        if peer:
            try:
                peer_site, peer_version = build_peer_site(work / "peer")
                peer_server = stack.enter_context(running(SiteServer(peer_site, port=0)))
                specs.insert(1, RowSpec(PEER_MODEL, PEER_RUNTIME, 1, f"{peer_server.url}peer.html", peer_version,
                                        peer=True))
            except PeerUnavailableError as exc:
                why = str(exc)
        runs: dict[int, list[RowRun]] = {i: [] for i in range(len(specs))}
        for c, clip in enumerate(chosen):
            clip.y4m = web.write_y4m(clip.frames, work / f"clip{c}.y4m", fps=CAMERA_FPS)
            with camera_browser(clip.y4m) as browser:
                order = list(range(len(specs)))
                order = order[c % len(order):] + order[:c % len(order)]  # no row always first on a fresh browser
                for i in order:
                    spec = specs[i]
                    if spec.peer and why is not None:
                        continue
                    try:
                        runs[i].append(measure_row(browser, spec, clip, seconds, warmup))
                    except FootsegError as exc:
                        if not spec.peer:
                            raise
                        why = f"MediaPipe's page failed, so no MediaPipe row: {exc}"
                        continue
                    run = runs[i][-1]
                    say(f"clip {c + 1}/{len(chosen)} {clip.name}: {spec.model} {spec.threads} thread(s): "
                        f"{_median(run.latencies) or 0:.2f} ms, {run.frames / max(run.seconds, 1e-9):.1f} FPS, "
                        f"{len(run.masks)}/{len(clip.frames)} frames with masks")
        ours = next((runs[i][0] for i, spec in enumerate(specs) if not spec.peer and runs[i]), None)
        reference = None
        if python_scores and ours is not None:
            reference = python_reference(site / web.FP32_NAME, chosen, work, ours.mode, ours.ratio)
        rows = []
        for i, spec in enumerate(specs):
            if not runs[i] or (spec.peer and why is not None):
                continue
            row = _row(spec, runs[i], chosen)
            if not spec.peer and reference is not None:
                row.update(reference)
            rows.append(row)
    return rows, why


def format_browser_table(rows: Sequence[dict[str, Any]]) -> str:
    """Markdown: one row per page and thread count, then how it was measured."""
    if not rows:
        return "(no rows)"
    python = any(r.get("python_iou") is not None for r in rows)
    header = ("| model | runtime | threads | mode | latency (ms) | p90 (ms) | FPS | first mask (MB) | "
              "to first mask (s) | IoU | flicker (%) |")
    rule = "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"
    if python:
        header, rule = header + " Python IoU | Python flicker (%) |", rule + "---:|---:|"
    lines = [header, rule]
    for r in rows:
        runtime = r["runtime"] + (f" {r['runtime_version']}" if r.get("runtime_version") else "")
        mode = (r.get("mode") or "–") + (f" {r['ratio']:g}" if r.get("ratio") is not None else "")
        cells = [
            r["model"], runtime, str(r["threads"]), mode,
            format_cell(r["latency_ms"], ".2f"), format_cell(r["p90_ms"], ".2f"),
            format_cell(r["fps"], ".1f"), format_cell(r["first_mask_bytes"] / 1e6, ".3f"),
            format_cell(None if r.get("first_mask_ms") is None else r["first_mask_ms"] / 1000, ".2f"),
            format_cell(r["iou"], ".4f"), format_cell(r["flicker"], ".2f"),
        ]
        if python:
            cells += [format_cell(r.get("python_iou"), ".4f"), format_cell(r.get("python_flicker"), ".2f")]
        lines.append("| " + " | ".join(cells) + " |")
    clips = max(r.get("clips", 0) for r in rows)
    coverage = [r["mask_coverage"] for r in rows if r.get("mask_coverage") is not None]
    notes = [
        f"Headless Chromium ({CHROMIUM}), one browser per clip ({clips} clip(s)) whose fake camera plays the clip at "
        f"{CAMERA_FPS} fps, looped; each row in a fresh context (empty cache), rows taking turns on each clip.",
        "Latency: median and 90th percentile of the page's own per-frame time (performance.now(), frame drawn to "
        "the mask made: pre-processing, network, post-processing), over all timed frames of all clips. FPS: frames "
        "done per second of wall time; the pages take frames through requestVideoFrameCallback, at most 60 per "
        "second in headless Chromium.",
        "First mask: bytes of every HTTP response body until the first mask (Playwright request.sizes() "
        "responseBodySize: page, scripts, WASM, model), and the time from navigation to it.",
        f"{PEER_MODEL}: MediaPipe's selfie segmenter ({PEER_MODEL_FILE} from the mediapipe wheel in .venv-bench) in "
        "@mediapipe/tasks-vision, CPU delegate, VIDEO mode; its WASM has no threads (one row). It takes frames "
        "through WebGL even on the CPU delegate (software GL here). It segments people, not feet: its IoU against "
        "foot masks says how much of a foot-and-leg picture it calls person, not how good it is at its own task.",
        "Mode: the page's video mode (and smoothing ratio), its model's default unless the page is told otherwise.",
        "IoU (0-1) and flicker (%) as footseg eval --clips computes them, on each clip frame's mask as the page made "
        "it live (frames identified by their picture; in a mode with state, preferably a mask made right after the "
        "clip's previous frame), compared at the clip's size"
        + (f"; clip frames with a page mask: {100 * min(coverage):.0f}%" if coverage else "") + ".",
    ]
    if python:
        notes.append("Python IoU / flicker: footseg eval --clips on the same clips with the page's model.onnx in "
                     "Python ONNX Runtime, in the page's mode (no camera: the frames as decoded from disk).")
    return "\n".join(lines + [""] + [f"- {note}" for note in notes])

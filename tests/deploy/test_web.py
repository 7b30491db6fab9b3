"""``footseg export --format web`` and its page, in a real browser: Debian's Chromium driven by Playwright.

Chromium's fake camera plays a tiny synthetic clip (``footseg synth --clips``, written as Y4M). The page's own
numbers (``window.footseg``) are read back: masks must flow, agree with footseg's Python ONNX Runtime on the very
input the page fed its network, and every request must go to the site itself. The error paths (no camera,
permission denied, no WebAssembly) must each say so on the page. A photo opened on the page (Open photo) must get
footseg's network input to the byte and Predictor's mask, with a camera and without one.

One browser with the fake camera serves every camera test: a context granted the camera permission sees the clip,
a context without it is refused (headless Chromium denies permission prompts). A second browser has no camera.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import onnx
import pytest

from footseg.cli import main
from footseg.data.io import read_image, read_mask
from footseg.data.transforms import resize_image, to_tensor
from footseg.deploy import web
from footseg.deploy.quantize import export_int8
from footseg.deploy.serve import SiteServer, running
from footseg.errors import FootsegError
from footseg.eval.predict import FOOT_COLOUR
from footseg.runtime.onnx_model import OnnxModel
from footseg.runtime.predictor import gate_presence, keep_confident_regions, resize_proba
from footseg.runtime.temporal import smooth

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Playwright

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
BASE_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run"]
MIN_FRAMES = 10
AGREEMENT = 0.995
TIMEOUT_MS = 30_000

# Everything the page computed for its latest frame, as base64 of the typed arrays' bytes (one evaluate: one frame).
READ_STATE = """() => {
  const f = window.footseg;
  const b64 = (a) => {
    if (!a) return null;
    const u = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    let s = '';
    for (let i = 0; i < u.length; i += 0x8000) s += String.fromCharCode.apply(null, u.subarray(i, i + 0x8000));
    return btoa(s);
  };
  return { input: b64(f.lastInput), prior: b64(f.lastPrior), mask: b64(f.lastMask), size: f.inputSize,
           frames: f.frames, errors: f.errors, mode: f.mode, ratio: f.ratio, threads: f.threads,
           isolated: f.isolated, latency: f.latency, cores: navigator.hardwareConcurrency, threshold: f.threshold,
           photo: f.photo, photos: f.photos, warnings: f.warnings };
}"""


def _runtime_problem() -> str | None:
    if not CHROMIUM.is_file():
        return f"no {CHROMIUM} (apt-get install chromium; `make test` does it)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Python Playwright is not installed (pip install -e '.[dev]')"
    try:
        web.ort_dist()
    except FootsegError:
        return "web/node_modules is missing (npm ci --prefix web; `make test` does it)"
    return None


def _skip_without_browser() -> None:
    problem = _runtime_problem()
    if problem:
        pytest.skip(problem)


# --- the export, without a browser ------------------------------------------------------------------------------


def test_export_web_without_runtime_says_to_run_npm_ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(web, "REPO_WEB", tmp_path / "web")
    monkeypatch.delenv(web.ENV_DIST, raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FootsegError, match=r"npm ci --prefix web") as info:
        web.export_web(None, tmp_path / "site")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "site").exists()


def _skip_without_runtime() -> None:
    try:
        web.ort_dist()
    except FootsegError:
        pytest.skip("web/node_modules is missing (npm ci --prefix web; `make test` does it)")


def test_a_folder_s_own_export_goes_on_the_page_as_it_is_where_export_would_write_it(
        trained_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    from footseg.deploy import export
    from footseg.models.info import read_info, write_info

    _skip_without_runtime()
    folder = tmp_path / "model"
    shutil.copytree(trained_dir, folder)
    assert main(["export", str(folder)]) == 0  # folder/model.onnx: the file Predictor runs in the weights' place
    own = (folder / "model.onnx").read_bytes()
    traced = []
    real_export_onnx = export.export_onnx
    monkeypatch.setattr(export, "export_onnx", lambda *a, **k: traced.append(k) or real_export_onnx(*a, **k))
    site = web.export_web(folder, tmp_path / "as-is")
    assert (site / "model.onnx").read_bytes() == own and traced == []  # copied: no network traced again
    # another opset, or a config changed since the export (the page reads the threshold from the file): made anew
    site = web.export_web(folder, tmp_path / "opset18", opset=18)
    assert (site / "model.onnx").read_bytes() != own and traced == [{"opset": 18}]
    write_info(folder, dataclasses.replace(read_info(folder), threshold=0.6))
    site = web.export_web(folder, tmp_path / "threshold")
    assert json.loads((site / "model.json").read_text())["threshold"] == 0.6 and len(traced) == 2


def _ops(path: Path) -> list[str]:
    return [node.op_type for node in onnx.load(str(path)).graph.node]


def test_export_web_int8_and_onnx_files(trained_dir: Path, tiny_dataset: Path, fp32_onnx: Path,
                                        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _skip_without_runtime()
    with pytest.raises(FootsegError, match="needs --calib"):
        web.export_web(trained_dir, tmp_path / "no-calib", precision="int8")
    site = web.export_web(trained_dir, tmp_path / "int8", precision="int8", calib=tiny_dataset, calib_n=4)
    meta = json.loads((site / "model.json").read_text())
    assert meta["precision"] == "int8" and OnnxModel(site / "model.onnx").precision == "int8"
    assert meta["input_size"] == [64, 64] and meta["in_channels"] == 3 and meta["prior"] is False
    assert meta["default_mode"] == "smooth" and meta["default_ratios"] == {"smooth": 1.0, "prior": 1.0}
    assert meta["output"]["kind"] == "margin" and meta["footseg_version"] and meta["threshold"] == 0.5
    assert {p.name for p in site.iterdir()} >= {*web.PAGE_FILES, *web.ORT_FILES, "model.onnx", "model.json"}
    assert not any(p.suffix == ".map" or p.name.startswith(".") for p in site.iterdir())
    # The page's int8 file follows --min-stride as `footseg export --format onnx-int8` does.
    every = tmp_path / "every"
    assert main(["export", str(trained_dir), "--format", "web", "--precision", "int8", "--calib", str(tiny_dataset),
                 "--calib-n", "4", "--min-stride", "1", "--out", str(every)]) == 0
    direct = export_int8(trained_dir, tmp_path / "every.onnx", calib=tiny_dataset, calib_n=4, min_stride=1)
    assert _ops(every / "model.onnx") == _ops(direct) != _ops(site / "model.onnx")
    capsys.readouterr()
    # an fp32 page has no int8 layers to choose
    assert main(["export", str(trained_dir), "--format", "web", "--min-stride", "1", "--out", str(tmp_path / "x")]) == 2
    assert "shape an int8 file" in capsys.readouterr().err and not (tmp_path / "x").exists()
    # An exported file is taken as it is, and an earlier site is replaced whole.
    again = web.export_web(fp32_onnx, site)
    assert json.loads((again / "model.json").read_text())["precision"] == "fp32"
    assert (again / "model.onnx").read_bytes() == fp32_onnx.read_bytes()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_an_int8_page_of_a_shipped_model_gets_its_recipes_int8_file(tmp_path: Path) -> None:
    from footseg.deploy.quantize import shipped_int8
    from footseg.runtime.resolve import resolve_model

    _skip_without_runtime()
    site = web.export_web(None, tmp_path / "site", precision="int8")  # no --calib: nothing to calibrate
    assert (site / "model.onnx").read_bytes() == shipped_int8(resolve_model(None)).read_bytes()
    assert json.loads((site / "model.json").read_text())["precision"] == "int8"
    with pytest.raises(FootsegError, match="needs --calib"):  # another int8 split is another file: it calibrates
        web.export_web(None, tmp_path / "other", precision="int8", min_stride=1)


def test_an_fp32_page_of_a_shipped_model_runs_the_file_footseg_runs(tmp_path: Path) -> None:
    """The page, `footseg export` and Predictor run one network: the shipped model.onnx (checked against today's
    export in tests/models/test_shipped.py), its weights' sha256 included."""
    import onnx

    from footseg.runtime.predictor import Predictor

    _skip_without_runtime()
    site = web.export_web(None, tmp_path / "site")
    page, python = onnx.load(str(site / "model.onnx")), onnx.load(str(Predictor().onnx.path))
    assert page.graph == python.graph and list(page.metadata_props) == list(python.metadata_props)


def test_an_fp32_onnx_file_asked_for_as_int8_is_refused(fp32_onnx: Path, tmp_path: Path) -> None:
    # the file would be served as it is: an fp32 site where int8 was asked for, without a word
    with pytest.raises(FootsegError, match="this one is not int8"):
        web.export_web(fp32_onnx, tmp_path / "site", precision="int8")
    assert not (tmp_path / "site").exists()


@pytest.mark.parametrize("kind", ["truncated", "foreign"])
def test_a_broken_or_foreign_onnx_file_is_named_as_given(fp32_onnx: Path, tmp_path: Path, kind: str) -> None:
    bad = tmp_path / f"{kind}.onnx"
    if kind == "truncated":
        bad.write_bytes(fp32_onnx.read_bytes()[:1000])
    else:  # a valid ONNX file that footseg did not export
        import onnx

        graph = onnx.helper.make_graph([onnx.helper.make_node("Identity", ["x"], ["y"])], "g",
                                       [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
                                       [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])])
        onnx.save(onnx.helper.make_model(graph), bad)
    expected = "unreadable ONNX model" if kind == "truncated" else "not a footseg ONNX file"
    with pytest.raises(FootsegError, match=expected) as err:
        web.export_web(bad, tmp_path / "site")
    assert str(err.value).startswith(f"{bad}: ") and not (tmp_path / "site").exists()


def test_export_web_refuses_to_replace_a_folder_that_is_no_site(tmp_path: Path) -> None:
    _skip_without_runtime()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(FootsegError, match="not a footseg web site"):
        web.export_web(None, tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_write_y4m_frames_are_i420(tmp_path: Path) -> None:
    frames = [np.full((4, 6, 3), (255, 0, 0), np.uint8), np.zeros((4, 6, 3), np.uint8)]
    data = web.write_y4m(frames, tmp_path / "c.y4m").read_bytes()
    header, rest = data.split(b"\n", 1)
    assert header == b"YUV4MPEG2 W6 H4 F30:1 Ip A1:1 C420jpeg"
    size = 6 + 6 * 4 * 3 // 2  # "FRAME\n", Y at full size, U and V at half width and height
    first, second = rest[:size], rest[size:]
    assert len(rest) == 2 * size and first.startswith(b"FRAME\n") and second.startswith(b"FRAME\n")
    y, u, v = first[6:30], first[30:36], first[36:42]
    # BT.601 with studio swing (Y in 16..235), what Chromium's video pipeline assumes: pure red, then black.
    assert (set(y), set(u), set(v)) == ({82}, {90}, {240})
    assert set(second[6:30]) == {16} and set(second[30:]) == {128}
    with pytest.raises(FootsegError, match="even sides"):
        web.write_y4m([np.zeros((3, 6, 3), np.uint8)], tmp_path / "odd.y4m")


# --- the page in Chromium ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site of the default shipped model, made as a user makes it."""
    _skip_without_browser()
    out = tmp_path_factory.mktemp("web") / "site"
    assert main(["export", "--format", "web", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory, site: Path) -> tuple[Path, list[np.ndarray]]:
    """A fake camera clip (8 synthetic frames at the site's model's input side) as Y4M, and its frames."""
    _skip_without_browser()
    from footseg.data.synth.render import headless_gl_problem

    if problem := headless_gl_problem():
        pytest.skip(f"no headless OpenGL for the synthetic clip: {problem}")
    root = tmp_path_factory.mktemp("clip")
    side = json.loads((site / "model.json").read_text())["input_size"][0]  # frames the page feeds unresized
    argv = ["synth", str(root / "synth"), "--clips", "1", "--frames", "8", "--size", str(side), "--seed", "3"]
    assert main([*argv, "--no-progress"]) == 0
    frames = [read_image(p) for p in sorted((root / "synth").glob("*/clip_*/images/*"))]
    return web.write_y4m(frames, root / "clip.y4m"), frames


@pytest.fixture(scope="module")
def server(site: Path) -> Iterator[SiteServer]:
    with running(SiteServer(site, port=0)) as srv:
        yield srv


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    _skip_without_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def camera_browser(playwright: Playwright, clip: tuple[Path, list[np.ndarray]]) -> Iterator[Browser]:
    args = [*BASE_ARGS, "--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={clip[0]}",
            "--deny-permission-prompts"]
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=args)
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def no_camera_browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=BASE_ARGS)
    yield browser
    browser.close()


def open_page(browser: Browser, url: str, camera: bool = True, init_script: str | None = None
              ) -> tuple[Page, list[str]]:
    """A page in a fresh context (``camera``: with the camera permission), and the list of every URL it requests."""
    context = browser.new_context(permissions=["camera"] if camera else [], accept_downloads=True)
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    if init_script:
        page.add_init_script(init_script)
    page.goto(url)
    return page, requests


def wait_for_frames(page: Page, n: int = MIN_FRAMES) -> dict:
    page.wait_for_function(f"window.footseg && (window.footseg.frames >= {n} || window.footseg.errors.length > 0)",
                           timeout=TIMEOUT_MS)
    state = page.evaluate(READ_STATE)
    assert state["errors"] == [], state["errors"]
    return state


def decode(state: dict, key: str, dtype: type, shape: tuple[int, ...]) -> np.ndarray | None:
    raw = state[key]
    return None if raw is None else np.frombuffer(base64.b64decode(raw), dtype=dtype).reshape(shape)


def python_mask(model: OnnxModel, image: np.ndarray, prior: np.ndarray | None = None) -> np.ndarray:
    """footseg's Python ONNX Runtime on the page's own input: the foot probability (h, w), its unsure regions
    cleared where the model has a region peak, and the frame cleared where it has a presence gate it fails."""
    batch = image[None] if prior is None else np.concatenate([image, prior[None]])[None]
    with np.errstate(over="ignore"):  # a margin far below 0 gives exp = inf, and the probability 0 it should
        prob = (1.0 / (1.0 + np.exp(-model.run(batch.astype(np.float32))[0, 0]))).astype(np.float32)
    if model.info.region_peak is not None:
        prob = keep_confident_regions(prob, model.info.threshold, model.info.region_peak)
    return prob if model.info.presence is None else gate_presence(prob, model.info.presence)


def test_masks_flow_and_match_python_onnx_runtime(
    camera_browser: Browser, server: SiteServer, site: Path, clip: tuple[Path, list[np.ndarray]]
) -> None:
    page, _ = open_page(camera_browser, server.url + "?mode=per-frame")
    state = wait_for_frames(page)
    h, w = state["size"]
    assert [h, w] == json.loads((site / "model.json").read_text())["input_size"] and state["mode"] == "per-frame"
    assert state["isolated"] is True  # footseg serve's COOP/COEP headers
    assert state["threads"] == min(4, state["cores"])
    image = decode(state, "input", np.float32, (3, h, w))
    mask = decode(state, "mask", np.uint8, (h, w))
    assert state["prior"] is None
    # The network's input is the camera frame as RGB in [0, 1], channel-planar: it must be one of the clip's frames
    # (up to 4:2:0 chroma and the browser's colour conversion), and clearly worse with red and blue swapped.
    pixels = image.transpose(1, 2, 0) * 255
    assert np.allclose(pixels, np.round(pixels), atol=1e-3) and pixels.min() >= 0 and pixels.max() <= 255
    error = min(np.abs(pixels - f).mean() for f in clip[1])
    swapped = min(np.abs(pixels[..., ::-1] - f).mean() for f in clip[1])
    assert error < 3 < swapped, (error, swapped)
    model = OnnxModel(site / "model.onnx")
    # the page decides at the model's own threshold (the shipped default's is not 0.5), as footseg's Predictor does
    assert state["threshold"] == model.info.threshold == json.loads((site / "model.json").read_text())["threshold"]
    want = python_mask(model, image) > model.info.threshold
    agreement = float((mask == want).mean())
    assert agreement >= AGREEMENT, agreement
    assert 0.01 < mask.mean() < 0.99  # the clip shows a foot and floor: a mask, not an empty or full plane
    assert state["latency"]["median"] > 0
    stats = page.text_content("#stats")
    assert "FPS" in stats and "ms" in stats
    page.context.close()


GATE_PRESENCE = """async ([values, presence]) => {
  const { gatePresence } = await import('./segmenter.js');
  return Array.from(gatePresence(Float32Array.from(values), presence));
}"""


KEEP_REGIONS = """async ([values, width, height, threshold, peak]) => {
  const { keepConfidentRegions } = await import('./segmenter.js');
  return Array.from(keepConfidentRegions(Float32Array.from(values), width, height, threshold, peak));
}"""


def test_the_page_keeps_the_regions_footseg_keeps(camera_browser: Browser, server: SiteServer, site: Path) -> None:
    page, _ = open_page(camera_browser, server.url + "?mode=per-frame")
    wait_for_frames(page, 1)
    # the page's model clears unsure regions as its Python twin does (the shipped default has a region peak)
    meta = json.loads((site / "model.json").read_text())
    assert meta["region_peak"] == OnnxModel(site / "model.onnx").info.region_peak
    rng = np.random.default_rng(0)
    h, w = 40, 56
    noise = rng.random((h, w)).astype(np.float32)
    blurred = (noise + np.roll(noise, 1, 0) + np.roll(noise, 1, 1) + np.roll(noise, (1, 1), (0, 1))) / 4
    edges = np.zeros((h, w), np.float32)
    edges[2:5, 2:5] = np.float32(0.99)  # exactly the peak as float32 (above the double 0.99): not above it
    edges[10:13, 2:5] = 0.995
    edges[20:23, 2:5] = 0.95  # two regions tie for the most confident pixel: the first one keeps it
    edges[30:33, 2:5] = 0.95
    maps = [noise, blurred.astype(np.float32), np.sort(noise, axis=None).reshape(h, w), edges,
            np.where(edges == np.float32(0.95), edges, 0),  # only the two tied regions: the first is kept
            np.full((h, w), 0.3, np.float32)]  # the last: no foot at all
    for prob in maps:
        for threshold, peak in ((0.7, 0.9), (0.5, 0.75), (0.7, 0.99), (0.7, 0.96), (0.7, 0.5), (0.7, None)):
            got = np.asarray(page.evaluate(KEEP_REGIONS, [prob.ravel().tolist(), w, h, threshold, peak]), np.float32)
            want = prob if peak is None else keep_confident_regions(prob, threshold, peak)
            np.testing.assert_array_equal(got.reshape(h, w), want)
    cleared = keep_confident_regions(maps[0], 0.7, 0.9)
    assert (cleared != maps[0]).any() and (cleared > 0.7).any()  # some regions go and some stay: it can tell
    kept = keep_confident_regions(edges, 0.7, 0.99) > 0
    assert not kept[2:5, 2:5].any() and kept[10:13, 2:5].all() and not kept[20:23, 2:5].any()
    kept = keep_confident_regions(edges, 0.7, 0.999) > 0
    assert kept[10:13, 2:5].all() and not kept[20:23, 2:5].any()  # the most confident region stays
    kept = keep_confident_regions(maps[4], 0.7, 0.99) > 0
    assert kept[20:23, 2:5].all() and not kept[30:33, 2:5].any()
    # and gates frames as its Python twin does
    assert meta["presence"] == OnnxModel(site / "model.onnx").info.presence
    for prob in maps:
        for presence in (0.99, 0.995, 0.9, 0.3, None):
            got = np.asarray(page.evaluate(GATE_PRESENCE, [prob.ravel().tolist(), presence]), np.float32)
            want = prob if presence is None else gate_presence(prob, presence)
            np.testing.assert_array_equal(got.reshape(h, w), want)
    assert not gate_presence(edges, 0.995).any() and gate_presence(edges, 0.99) is edges  # 0.995 is the edge's max
    page.context.close()


PIXEL_LOOPS = """async ([prob, threshold]) => {
  const { toInput, paintMask, LITTLE_ENDIAN } = await import('./view.js');
  const bytes = Uint8Array.from({ length: 256 * 4 }, (_, i) => (i % 4 === 3 ? 255 : i >> 2));
  const words = new Uint8Array(prob.length * 4);  // a 4-aligned buffer: painted a word per pixel
  const shifted = new Uint8Array(prob.length * 4 + 1).subarray(1);  // not aligned: painted a byte at a time
  const masks = [paintMask(Float32Array.from(prob), words, threshold),
                 paintMask(Float32Array.from(prob), shifted, threshold)];
  return { littleEndian: LITTLE_ENDIAN, input: Array.from(toInput(bytes, 256, 1)), words: Array.from(words),
           bytes: Array.from(shifted),
           masks: masks.map((m) => Array.from(m)) };
}"""


def test_the_pages_pixel_loops_give_footsegs_numbers(camera_browser: Browser, server: SiteServer) -> None:
    """The page's input is to_tensor's to the last bit (a lookup table, not a division per channel), and the overlay
    painted a word per pixel is the one painted a byte per channel."""
    from footseg.data.transforms import to_tensor

    page, _ = open_page(camera_browser, server.url)
    prob = np.random.default_rng(0).random(97).astype(np.float32)
    prob[:3] = [0.0, 1.0, 0.7]
    got = page.evaluate(PIXEL_LOOPS, [prob.tolist(), 0.7])
    grey = np.repeat(np.arange(256, dtype=np.uint8)[None, :, None], 3, axis=2)  # one row of every byte value
    want = to_tensor(grey).numpy()
    np.testing.assert_array_equal(np.asarray(got["input"], np.float32).reshape(3, 1, 256), want)
    assert got["littleEndian"] is True  # x86 and ARM alike: the word path is the one taken
    words = np.asarray(got["words"], np.uint8).reshape(-1, 4)
    np.testing.assert_array_equal(words, np.asarray(got["bytes"], np.uint8).reshape(-1, 4))
    assert (words[:, :3] == FOOT_COLOUR).all() and words[1, 3] == round(255 * 0.55)
    assert got["masks"][0] == got["masks"][1] == (prob > np.float32(0.7)).astype(int).tolist()
    page.context.close()


AREA_RESIZE = """async ([rgb, sw, sh, w, h]) => {
  const { areaResize } = await import('./segmenter.js');
  const bytes = Uint8Array.from(atob(rgb), (c) => c.charCodeAt(0));
  const rgba = new Uint8ClampedArray(sw * sh * 4);
  for (let i = 0; i < sw * sh; i += 1) {
    rgba.set(bytes.subarray(3 * i, 3 * i + 3), 4 * i);
    rgba[4 * i + 3] = 255;
  }
  const out = areaResize((y) => [rgba, 4 * sw * y], sw, sh, w, h);
  let s = '';
  for (let i = 0; i < out.length; i += 0x8000) s += String.fromCharCode.apply(null, out.subarray(i, i + 0x8000));
  return btoa(s);
}"""


# OpenCV's general path (scales not both whole), its block means (2x2 rounds ties up, others to even), no change
AREA_CASES = [((640, 480), (288, 288)), ((577, 433), (288, 288)), ((1000, 301), (256, 192)), ((288, 300), (288, 288)),
              ((576, 432), (288, 288)), ((576, 576), (288, 288)), ((864, 640), (288, 320)), ((576, 288), (288, 288)),
              ((900, 900), (300, 300)), ((64, 64), (64, 64)), ((98, 98), (2, 2))]  # 1 / (1 / 49) != 49


@pytest.mark.parametrize(("source", "size"), AREA_CASES)
def test_the_pages_area_resize_is_footsegs_resize_image(camera_browser: Browser, server: SiteServer,
                                                         source: tuple[int, int], size: tuple[int, int]) -> None:
    """A photo's input: cv2's INTER_AREA to the byte, on noise (where every rounding shows) at phone-like ratios."""
    (sw, sh), (w, h) = source, size
    image = np.random.default_rng(sw).integers(0, 256, (sh, sw, 3), dtype=np.uint8)
    page, _ = open_page(camera_browser, server.url)
    got = page.evaluate(AREA_RESIZE, [base64.b64encode(image.tobytes()).decode(), sw, sh, w, h])
    rgba = np.frombuffer(base64.b64decode(got), np.uint8).reshape(h, w, 4)
    assert (rgba[..., 3] == 255).all()
    np.testing.assert_array_equal(rgba[..., :3], resize_image(image, (h, w)))
    page.context.close()


def test_without_isolation_headers_it_runs_on_one_thread(camera_browser: Browser, site: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A host that cannot set COOP/COEP (plain static hosting) still gets a working page, single-threaded."""
    from footseg.deploy import serve

    monkeypatch.setattr(serve, "ISOLATION_HEADERS", {})
    with running(SiteServer(site, port=0)) as plain:
        page, _ = open_page(camera_browser, plain.url)
        state = wait_for_frames(page)
        page.context.close()
    assert state["isolated"] is False and state["threads"] == 1


# iOS Safari's failure of threaded WASM, in Chromium: shared memory (what WASM threads need) cannot be made, on the
# first load only (a page already on one thread asked for no shared memory anyway).
FAIL_SHARED_MEMORY = """
if (!new URLSearchParams(location.search).has('threads')) {
  const Memory = WebAssembly.Memory;
  WebAssembly.Memory = function (descriptor) {
    if (descriptor && descriptor.shared) throw new RangeError('Out of memory');
    return new Memory(descriptor);
  };
  WebAssembly.Memory.prototype = Memory.prototype;
}
"""


def test_a_browser_that_fails_wasm_threads_gets_the_page_on_one_thread(camera_browser: Browser,
                                                                       server: SiteServer) -> None:
    page, _ = open_page(camera_browser, server.url, init_script=FAIL_SHARED_MEMORY)
    page.wait_for_url("**threads=1**", timeout=TIMEOUT_MS)
    state = wait_for_frames(page)
    assert state["isolated"] is True and state["threads"] == 1
    page.context.close()
    # threads asked for are not second-guessed: the failure is the page's message
    page, _ = open_page(camera_browser, f"{server.url}?threads=2", init_script=FAIL_SHARED_MEMORY.replace(
        "!new URLSearchParams(location.search).has('threads')", "true"))
    page.wait_for_function("window.footseg && window.footseg.errors.length > 0", timeout=TIMEOUT_MS)
    assert "threads=2" in page.url and "could not start" in page.evaluate("window.footseg.errors[0]")
    page.context.close()


# A camera whose permission prompt is still unanswered: getUserMedia settles only when the test answers for the user.
LATE_CAMERA = """
const ask = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
let answer;
const answered = new Promise((resolve) => { answer = resolve; });
window.allowCamera = () => answer();
navigator.mediaDevices.getUserMedia = async (constraints) => { await answered; return ask(constraints); };
"""


def test_photos_open_while_the_camera_waits_for_an_answer_and_it_joins_behind_them(
        camera_browser: Browser, server: SiteServer, sideways_photo: tuple[Path, np.ndarray]) -> None:
    path, _ = sideways_photo
    page, _ = open_page(camera_browser, server.url, init_script=LATE_CAMERA)
    page.wait_for_function("window.footseg && window.footseg.ready", timeout=TIMEOUT_MS)
    assert page.is_enabled("#open") and page.is_hidden("#photo")  # the model is ready; the camera is not
    assert "Waiting for the camera" in page.text_content("#stats")
    page.set_input_files("#file", str(path))
    page.wait_for_function("window.footseg.photos >= 1", timeout=TIMEOUT_MS)
    assert page.evaluate("window.footseg.frames") == 0 and page.is_visible("#save")
    page.evaluate("() => window.allowCamera()")  # the user answers at last
    page.wait_for_function("document.getElementById('photo').hidden === false", timeout=TIMEOUT_MS)
    # the photo stays up, the camera waiting behind it as after Open photo: Resume brings it
    assert page.text_content("#photo") == "Resume" and page.evaluate("window.footseg.photo") is not None
    page.wait_for_timeout(500)
    assert page.evaluate("window.footseg.frames") == 0
    page.click("#photo")
    state = wait_for_frames(page)
    assert state["errors"] == [] and page.evaluate("window.footseg.photo") is None
    page.context.close()


def test_a_camera_picture_the_browser_will_not_play_is_no_permission_refused(camera_browser: Browser,
                                                                             server: SiteServer) -> None:
    refuse_play = ("HTMLMediaElement.prototype.play = function () { return Promise.reject(new DOMException("
                   "'play() is not allowed', 'NotAllowedError')); };")
    page, _ = open_page(camera_browser, server.url, init_script=refuse_play)
    kind, errors = message_of(page)
    assert kind == "error" and "would not play its picture (NotAllowedError" in errors[0], errors
    assert page.evaluate("document.getElementById('camera').srcObject") is None  # the camera let go
    page.wait_for_function("window.footseg.ready", timeout=TIMEOUT_MS)
    assert page.is_enabled("#open")  # photos still open
    page.context.close()


def test_page_requests_only_its_own_files(camera_browser: Browser, server: SiteServer, site: Path) -> None:
    page, requests = open_page(camera_browser, server.url)
    wait_for_frames(page)
    files = {p.name for p in site.iterdir()}
    origin = urllib.parse.urlsplit(server.url)
    for url in requests:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme in ("data", "blob"):
            continue  # made by the page in memory, never sent anywhere
        assert (parts.scheme, parts.netloc) == (origin.scheme, origin.netloc), url
        assert parts.path == "/" or parts.path.lstrip("/") in files, url
    assert any(u.endswith(".wasm") for u in requests) and any(u.endswith("model.onnx") for u in requests)
    page.context.close()


def test_smooth_mode_is_footseg_temporal_smooth(camera_browser: Browser, server: SiteServer, site: Path) -> None:
    page, _ = open_page(camera_browser, server.url + "?mode=smooth&ratio=0.7&threads=1")
    state = wait_for_frames(page)
    assert (state["mode"], state["ratio"], state["threads"]) == ("smooth", 0.7, 1)
    h, w = state["size"]
    previous = decode(state, "prior", np.float32, (h, w))
    assert previous is not None  # the previous frame's output, which the blend pulls towards
    prob = python_mask(OnnxModel(site / "model.onnx"), decode(state, "input", np.float32, (3, h, w)))
    want = smooth(prob.astype(np.float32), previous, 0.7) > state["threshold"]
    assert float((decode(state, "mask", np.uint8, (h, w)) == want).mean()) >= AGREEMENT
    page.context.close()


@pytest.fixture(scope="module")
def prior_site(site: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A prior-mask network: the shipped model with a 4th input whose weights are made non-zero (so it matters)."""
    import torch

    from footseg.models import save_model
    from footseg.models.saved import add_prior_input
    from footseg.runtime.resolve import resolve_model

    net, info = add_prior_input(*resolve_model(None).load())
    first = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d) and m.in_channels == 4)
    with torch.no_grad():
        first.weight[:, 3] = torch.randn(first.weight[:, 3].shape, generator=torch.Generator().manual_seed(0))
    root = tmp_path_factory.mktemp("prior")
    return web.export_web(save_model(net.eval(), root / "model", info), root / "site")


def test_prior_model_gets_the_previous_probability(camera_browser: Browser, prior_site: Path) -> None:
    meta = (prior_site / "model.json").read_text()
    assert '"prior": true' in meta
    with running(SiteServer(prior_site, port=0)) as srv:
        page, _ = open_page(camera_browser, srv.url)
        state = wait_for_frames(page)
        page.context.close()
    assert state["mode"] == "prior"
    h, w = state["size"]
    prior = decode(state, "prior", np.float32, (h, w))
    assert prior is not None and 0 < prior.mean() < 1
    model = OnnxModel(prior_site / "model.onnx")
    image = decode(state, "input", np.float32, (3, h, w))
    # As footseg.runtime.temporal runs it: the network on (frame, prior), its output smoothed towards that prior.
    network = python_mask(model, image, prior).astype(np.float32)
    want = smooth(network, prior, state["ratio"]) > state["threshold"]
    assert float((decode(state, "mask", np.uint8, (h, w)) == want).mean()) >= AGREEMENT
    # The prior does change the network's answer, so the parity above checks that the page feeds it.
    assert (python_mask(model, image, np.zeros_like(prior)) > 0.5).mean() != (network > 0.5).mean()


def test_prior_model_outside_the_prior_mode_sees_a_first_frames_zeros(camera_browser: Browser,
                                                                        prior_site: Path) -> None:
    with running(SiteServer(prior_site, port=0)) as srv:
        page, _ = open_page(camera_browser, f"{srv.url}?mode=per-frame")
        state = wait_for_frames(page)  # fails on "segmentation failed": the prior input must be fed in every mode
        page.context.close()
    assert state["mode"] == "per-frame" and state["prior"] is None
    h, w = state["size"]
    image = decode(state, "input", np.float32, (3, h, w))
    # as footseg's Predictor runs a prior-mask network on a still image: the prior of a first frame
    want = python_mask(OnnxModel(prior_site / "model.onnx"), image, np.zeros((h, w), np.float32)) > state["threshold"]
    assert float((decode(state, "mask", np.uint8, (h, w)) == want).mean()) >= AGREEMENT


def test_a_page_that_cannot_start_lets_the_camera_go(camera_browser: Browser, server: SiteServer) -> None:
    page, _ = open_page(camera_browser, f"{server.url}?mode=bogus")
    _, errors = message_of(page)
    assert "unknown ?mode=bogus" in errors[0]
    # The camera comes after the failure (its picture is set before it plays): wait for it to be let go, not for it
    # to arrive, or the check reads its tracks while they are still live.
    ended = "(s => s !== null && s.getTracks().length > 0 && s.getTracks().every(t => t.readyState === 'ended'))"
    page.wait_for_function(f"{ended}(document.getElementById('camera').srcObject)", timeout=TIMEOUT_MS)
    page.context.close()


# A slow phone: each live frame's input takes 150 ms to read, so the camera moves on while the frame is segmented.
SLOW_INPUT = """
const getImageData = CanvasRenderingContext2D.prototype.getImageData;
CanvasRenderingContext2D.prototype.getImageData = function (...args) {
  const until = performance.now() + 150;
  while (performance.now() < until) { /* busy: the camera goes on */ }
  return getImageData.apply(this, args);
};
"""

def test_opening_a_photo_is_said_while_the_camera_runs(camera_browser: Browser, server: SiteServer,
                                                       tmp_path: Path) -> None:
    from PIL import Image

    Image.fromarray(np.full((480, 640, 3), 128, np.uint8)).save(tmp_path / "feet.jpg")
    page, _ = open_page(camera_browser, server.url, init_script=SLOW_INPUT)  # a live frame takes 150 ms or more
    wait_for_frames(page, 2)
    page.evaluate("""() => {
      window.said = [];
      new MutationObserver(() => window.said.push(document.getElementById('stats').textContent))
        .observe(document.getElementById('stats'), { childList: true, characterData: true, subtree: true });
    }""")
    page.set_input_files("#file", str(tmp_path / "feet.jpg"))
    page.wait_for_function("window.footseg.photos === 1", timeout=TIMEOUT_MS)
    said = page.evaluate("window.said")
    page.context.close()
    opened = next(i for i, text in enumerate(said) if text.startswith("Opening feet.jpg"))
    # from "Opening" on, the photo's lines only: no live frame's figures in between
    assert not any("FPS" in text for text in said[opened:]), said


READ_VIEW = """() => {
  const view = document.getElementById('view');
  const pixels = view.getContext('2d').getImageData(0, 0, view.width, view.height).data;
  const f = window.footseg;
  return { view: Array.from(pixels), size: [view.height, view.width], input: Array.from(f.lastInput),
           prob: Array.from(f.lastProb) };
}"""


def test_a_slow_phone_shows_each_frame_under_its_own_mask(camera_browser: Browser, server: SiteServer,
                                                         clip: tuple[Path, list[np.ndarray]]) -> None:
    page, _ = open_page(camera_browser, server.url, init_script=SLOW_INPUT)
    state = wait_for_frames(page, 4)
    got = page.evaluate(READ_VIEW)  # live, between two frames' steps
    page.context.close()
    h, w = state["size"]
    assert got["size"] == [h, w]  # the clip's frames are at the network's side: the view is the input's grid
    view = np.asarray(got["view"], np.float32).reshape(h, w, 4)[..., :3] / 255
    image = np.asarray(got["input"], np.float32).reshape(3, h, w).transpose(1, 2, 0)
    clear = np.asarray(got["prob"], np.float32).reshape(h, w) < 0.002  # no overlay drawn there
    assert clear.mean() > 0.3
    # The view is the segmented frame (the one its mask belongs to), not the camera's picture of later
    assert float(np.abs(view - image)[clear].mean()) < 0.005


def test_without_video_frame_callbacks_the_page_steps_once_per_camera_frame(
        playwright: Playwright, server: SiteServer, clip: tuple[Path, list[np.ndarray]], tmp_path: Path) -> None:
    # A camera slower than the display (and than the network): the display's refreshes must not step the video state
    # on the same camera frame again.
    slow = web.write_y4m(clip[1], tmp_path / "slow.y4m", fps=4)
    args = [*BASE_ARGS, "--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={slow}"]
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=args)
    try:
        page, _ = open_page(browser, server.url,
                            init_script="delete HTMLVideoElement.prototype.requestVideoFrameCallback;")
        wait_for_frames(page, 2)
        count = ("[window.footseg.frames, "
                 "document.getElementById('camera').getVideoPlaybackQuality().totalVideoFrames]")
        steps0, frames0 = page.evaluate(count)
        page.wait_for_timeout(3000)
        steps1, frames1 = page.evaluate(count)
    finally:
        browser.close()
    assert frames1 - frames0 >= 6  # the camera ran at about 4 FPS
    assert 0 < steps1 - steps0 <= frames1 - frames0 + 1


def test_photo_downloads_the_mask_and_save_mask_saves_it_again(camera_browser: Browser, server: SiteServer) -> None:
    from PIL import Image

    page, _ = open_page(camera_browser, server.url)
    wait_for_frames(page, 3)
    live = page.locator("#photo").bounding_box()
    with page.expect_download(timeout=TIMEOUT_MS) as download:
        page.click("#photo")
    # Resume is where Photo was, under the thumb that tapped it: Save mask comes in beside it, moving nothing
    assert page.locator("#photo").bounding_box() == live
    png = Image.open(io.BytesIO(Path(download.value.path()).read_bytes()))
    size = page.evaluate("(v => [v.videoWidth, v.videoHeight])(document.getElementById('camera'))")
    assert download.value.suggested_filename.endswith(".png") and list(png.size) == size
    values = np.unique(np.asarray(png.convert("L")))
    assert set(values.tolist()) <= {0, 255} and len(values) == 2
    assert page.text_content("#photo") == "Resume"
    # what the figures say of a frozen frame: no live speed
    assert page.text_content("#stats").startswith(f"Photo · its mask saved ({size[0]}x{size[1]})")
    # a download the browser blocked or the user dismissed is not lost: Save mask saves the same mask again
    assert page.is_visible("#save")
    with page.expect_download(timeout=TIMEOUT_MS) as again:
        page.click("#save")
    assert again.value.suggested_filename == download.value.suggested_filename
    assert Path(again.value.path()).read_bytes() == Path(download.value.path()).read_bytes()
    page.click("#photo")  # Resume: the camera again, nothing to save
    page.wait_for_function("document.getElementById('photo').textContent === 'Photo'", timeout=TIMEOUT_MS)
    assert page.is_hidden("#save")
    page.context.close()


def message_of(page: Page) -> tuple[str | None, list[str]]:
    page.wait_for_function("window.footseg && window.footseg.errors.length > 0", timeout=TIMEOUT_MS)
    return page.get_attribute("#message", "data-kind"), page.evaluate("window.footseg.errors")


def test_a_bad_ratio_is_named_without_reloading_on_one_thread(camera_browser: Browser, server: SiteServer) -> None:
    page, _ = open_page(camera_browser, server.url + "?ratio=2")
    kind, errors = message_of(page)
    assert kind == "error" and "?ratio=2: the smoothing strength is a number from 0 to 1" in errors[0]
    assert "threads=1" not in page.url  # (an error while ONNX Runtime starts reloads the page on one thread)
    page.context.close()


@pytest.mark.parametrize("threads", ["abc", "0", "2.5"])
def test_a_bad_thread_count_is_named(camera_browser: Browser, server: SiteServer, threads: str) -> None:
    page, _ = open_page(camera_browser, f"{server.url}?threads={threads}")
    kind, errors = message_of(page)
    assert kind == "error" and f"?threads={threads}: the number of threads is a whole number from 1" in errors[0]
    page.context.close()


def test_permission_denied_says_so(camera_browser: Browser, server: SiteServer) -> None:
    page, _ = open_page(camera_browser, server.url, camera=False)
    kind, errors = message_of(page)
    assert kind == "denied" and "permission was denied" in errors[0]
    assert page.is_visible("#message") and "Open photo" in page.text_content("#message")
    page.context.close()


def test_no_camera_says_so(no_camera_browser: Browser, server: SiteServer) -> None:
    page, _ = open_page(no_camera_browser, server.url)
    kind, errors = message_of(page)
    assert kind == "no-camera" and "No camera found" in errors[0]
    page.context.close()


def test_browser_without_webassembly_says_so(no_camera_browser: Browser, server: SiteServer) -> None:
    page, requests = open_page(no_camera_browser, server.url, init_script="delete globalThis.WebAssembly;")
    kind, errors = message_of(page)
    assert kind == "no-wasm" and "WebAssembly" in errors[0]
    assert not any(u.endswith(".wasm") for u in requests)
    page.context.close()


def test_serve_builds_a_site_for_a_model_when_given_no_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from footseg.deploy import serve

    site = tmp_path / "site"  # a site's folder, as far as serving it goes: no browser needed
    site.mkdir()
    (site / "model.json").write_text('{"file": "model.onnx"}')
    (site / "model.onnx").write_bytes(b"")

    calls = []
    monkeypatch.setattr(web, "export_web", lambda model, out: calls.append(model) or Path(shutil.copytree(site, out)))
    with serve.site_for("fastlinknet") as folder:
        assert (folder / "model.json").is_file() and folder != site
    assert calls == ["fastlinknet"] and not folder.exists()
    with serve.site_for(site) as folder:
        assert folder == site


# --- a photo opened from the device ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sideways_photo(tmp_path_factory: pytest.TempPathFactory, clip: tuple[Path, list[np.ndarray]]
                   ) -> tuple[Path, np.ndarray]:
    """A 4:3 JPEG stored sideways with EXIF orientation 6, as phones save photos, and the upright picture footseg's
    read_image makes of it."""
    from PIL import Image

    upright = cv2.resize(clip[1][0], (576, 432), interpolation=cv2.INTER_LINEAR)
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90 degrees clockwise
    path = tmp_path_factory.mktemp("photo") / "my feet.jpg"
    Image.fromarray(np.ascontiguousarray(np.rot90(upright))).save(path, quality=95, exif=exif)
    shown = read_image(path)
    assert shown.shape == upright.shape and np.abs(shown.astype(float) - upright).mean() < 3
    return path, shown


def test_an_opened_photo_is_segmented_as_footseg_segments_it(camera_browser: Browser, server: SiteServer, site: Path,
                                                              sideways_photo: tuple[Path, np.ndarray]) -> None:
    path, upright = sideways_photo
    page, requests = open_page(camera_browser, server.url + "?mode=smooth")
    wait_for_frames(page, 3)
    page.evaluate("() => { window.said = []; new MutationObserver(() => window.said.push("
                  "document.getElementById('stats').textContent)).observe(document.getElementById('stats'), "
                  "{ childList: true, characterData: true, subtree: true }); }")
    page.set_input_files("#file", str(path))
    page.wait_for_function("window.footseg.photos >= 1", timeout=TIMEOUT_MS)
    # a phone's photo takes a second or more: the page says so before it starts
    assert f"Segmenting {path.name} · {upright.shape[1]}x{upright.shape[0]}…" in page.evaluate("window.said")
    state = page.evaluate(READ_STATE)
    photo = state["photo"]
    # the photo as footseg's read_image makes it: upright
    assert (photo["name"], photo["width"], photo["height"]) == (path.name, upright.shape[1], upright.shape[0])
    assert photo["ms"] > 0
    assert state["errors"] == state["warnings"] == [] and state["prior"] is None  # a photo is no video frame
    h, w = state["size"]
    image = decode(state, "input", np.float32, (3, h, w))
    # the network sees the upright photo squashed to its input size by footseg's resize_image, to the byte
    want_input = to_tensor(resize_image(upright, (h, w))).numpy()
    np.testing.assert_array_equal(image, want_input)
    model = OnnxModel(site / "model.onnx")
    threshold = model.info.threshold
    mask = decode(state, "mask", np.uint8, (h, w))
    assert float((mask == (python_mask(model, image) > threshold)).mean()) >= AGREEMENT
    assert 0.01 < mask.mean() < 0.99
    assert page.is_hidden("#message") and page.text_content("#photo") == "Resume"
    # the camera pauses while the photo is shown: no frame is segmented behind it
    frames = page.evaluate("window.footseg.frames")
    page.wait_for_timeout(500)
    assert page.evaluate("window.footseg.frames") == frames

    # its mask, saved at the photo's own size, is the one footseg's Predictor steps make of the photo

    with page.expect_download(timeout=TIMEOUT_MS) as download:
        page.click("#save")
    assert download.value.suggested_filename == "my feet_mask.png"  # as footseg predict names it
    saved = read_mask(download.value.path())  # the page's PNG, read as footseg reads a mask
    assert saved.shape == upright.shape[:2] and set(np.unique(saved).tolist()) == {0, 255}
    want = resize_proba(python_mask(model, want_input), upright.shape[:2]) > threshold
    assert float(((saved > 0) == want).mean()) >= AGREEMENT

    # Resume: the camera again, as a new video (its first frame smoothed with nothing from before the pause)
    page.evaluate("() => { window.footseg.onFrame = (f) => { window.firstPrior ??= f.lastPrior ? 'some' : 'none'; }; }")
    page.click("#photo")
    page.wait_for_function(f"window.footseg.frames > {frames}", timeout=TIMEOUT_MS)
    assert page.evaluate("window.firstPrior") == "none"
    assert page.evaluate("window.footseg.photo") is None and page.is_hidden("#save")
    # the photo never left the page: read from memory (blob:), no request for it anywhere
    assert all(url.startswith((server.url, "blob:")) for url in requests), requests
    page.context.close()


# An engine that measures drawImage's source rectangle on the stored, sideways picture (older ones did): here, one
# whose crops of a picture draw nothing, which the page's probe takes the same way.
CROPS_WRONGLY = """
const drawImage = CanvasRenderingContext2D.prototype.drawImage;
CanvasRenderingContext2D.prototype.drawImage = function (...args) {
  if (args.length === 9 && args[0] instanceof HTMLImageElement) return undefined;
  return drawImage.apply(this, args);
};
"""


@pytest.mark.parametrize("crops", ["upright", "wrongly"])
def test_a_photo_larger_than_a_canvas_may_be_is_segmented_as_footseg_segments_it(
        no_camera_browser: Browser, server: SiteServer, site: Path, sideways_photo: tuple[Path, np.ndarray],
        tmp_path: Path, crops: str) -> None:
    from PIL import Image

    # an iPhone's 24-megapixel photo (over the 16.7 megapixels of iOS Safari's largest canvas), stored sideways
    big = cv2.resize(sideways_photo[1], (5712, 4284), interpolation=cv2.INTER_LINEAR)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.ascontiguousarray(np.rot90(big))).save(tmp_path / "big.jpg", quality=90, exif=exif)
    upright = read_image(tmp_path / "big.jpg")
    page, _ = open_page(no_camera_browser, server.url, camera=False,
                        init_script=CROPS_WRONGLY if crops == "wrongly" else None)
    page.wait_for_function("window.footseg.ready", timeout=TIMEOUT_MS)
    page.set_input_files("#file", str(tmp_path / "big.jpg"))
    page.wait_for_function("window.footseg.photos >= 1", timeout=TIMEOUT_MS)
    state = page.evaluate(READ_STATE)
    with page.expect_download(timeout=TIMEOUT_MS) as download:
        page.click("#save")
    Image.open(download.value.path()).verify()  # a well-formed PNG: its chunks' CRCs hold
    saved = read_mask(download.value.path())
    page.context.close()
    # read a strip at a time, upright: the network's input is footseg's resize_image of the whole photo, to the byte
    # (where the browser crops wrongly, the photo scaled to fit one canvas first: close, not to the byte)
    h, w = state["size"]
    want_input = to_tensor(resize_image(upright, (h, w))).numpy()
    got_input = decode(state, "input", np.float32, (3, h, w))
    if crops == "upright":
        np.testing.assert_array_equal(got_input, want_input)
    else:
        apart = np.abs(got_input - want_input)
        assert float(apart.max()) > 0 and float(apart.mean()) < 0.01
    # its mask at the photo's own size, no canvas in between
    assert saved.shape == upright.shape[:2] == (4284, 5712) and set(np.unique(saved).tolist()) == {0, 255}
    model = OnnxModel(site / "model.onnx")
    want = resize_proba(python_mask(model, want_input), upright.shape[:2]) > model.info.threshold
    assert float(((saved > 0) == want).mean()) >= (AGREEMENT if crops == "upright" else 0.99)


def test_without_a_camera_a_photo_can_still_be_opened(no_camera_browser: Browser, server: SiteServer,
                                                      sideways_photo: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    from PIL import Image

    page, _ = open_page(no_camera_browser, server.url)
    kind, errors = message_of(page)
    assert kind == "no-camera" and "No camera found" in errors[0] and "Open photo" in page.text_content("#message")
    page.wait_for_function("window.footseg.ready", timeout=TIMEOUT_MS)
    assert page.is_hidden("#photo") and page.is_enabled("#open") and page.is_hidden("#save")
    # a file that is no picture first: named, and the page still opens the next
    (tmp_path / "feet.jpg").write_bytes(b"not a jpeg")
    page.set_input_files("#file", str(tmp_path / "feet.jpg"))
    page.wait_for_function("window.footseg.warnings.length > 0", timeout=TIMEOUT_MS)
    assert page.get_attribute("#message", "data-kind") == "bad-photo" and page.is_enabled("#open")
    page.set_input_files("#file", str(sideways_photo[0]))
    page.wait_for_function("window.footseg.photos >= 1", timeout=TIMEOUT_MS)
    state = page.evaluate(READ_STATE)
    h, w = state["size"]
    assert 0.01 < decode(state, "mask", np.uint8, (h, w)).mean() < 0.99
    assert page.is_hidden("#message") and page.is_visible("#save") and state["frames"] == 0
    # a second photo, smaller than the network's input: scaled up by the browser, its mask saved at its own size
    small = cv2.resize(sideways_photo[1], (w // 2, h // 3), interpolation=cv2.INTER_AREA)
    Image.fromarray(small).save(tmp_path / "small.png")
    page.set_input_files("#file", str(tmp_path / "small.png"))
    page.wait_for_function("window.footseg.photos >= 2", timeout=TIMEOUT_MS)
    with page.expect_download(timeout=TIMEOUT_MS) as download:
        page.click("#save")
    saved = read_mask(download.value.path())  # the page's PNG, read as footseg reads a mask
    assert saved.shape == small.shape[:2] and page.evaluate("window.footseg.photo.name") == "small.png"
    page.context.close()


FIT_AREA = """async (sizes) => {
  const { fitArea, MAX_CANVAS_AREA } = await import('./view.js');
  return { limit: MAX_CANVAS_AREA, fitted: sizes.map(([w, h]) => fitArea(w, h)) };
}"""


def test_fit_area_scales_a_photo_to_the_largest_canvas_there_may_be(camera_browser: Browser,
                                                                    server: SiteServer) -> None:
    # iPhone 15's 24 MP, 48 MP, a 50 MP Android photo, a panorama, and photos that fit as they are
    sizes = [(5712, 4284), (4284, 5712), (8064, 6048), (8160, 6120), (16000, 3000), (4032, 3024), (4096, 4096)]
    page, _ = open_page(camera_browser, server.url)
    got = page.evaluate(FIT_AREA, sizes)
    assert got["limit"] == 4096 * 4096  # iOS Safari's largest canvas
    for (w, h), (fw, fh) in zip(sizes, got["fitted"], strict=True):
        assert fw * fh <= got["limit"], (w, h, fw, fh)
        if w * h <= got["limit"]:
            assert (fw, fh) == (w, h)
        else:
            assert fw * fh > 0.999 * got["limit"] and abs(fw / fh - w / h) < 0.01 * w / h
    page.context.close()


def test_a_file_that_is_no_picture_is_named_and_stops_nothing(camera_browser: Browser, server: SiteServer,
                                                              tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("no picture")
    page, _ = open_page(camera_browser, server.url)
    frames = wait_for_frames(page, 3)["frames"]
    page.set_input_files("#file", str(notes))
    page.wait_for_function("window.footseg.warnings.length > 0", timeout=TIMEOUT_MS)
    assert page.get_attribute("#message", "data-kind") == "bad-photo"
    assert page.text_content("#message").startswith("notes.txt: this browser cannot read it as a picture")
    page.wait_for_function(f"window.footseg.frames > {frames + 3}", timeout=TIMEOUT_MS)  # the camera carries on
    assert page.evaluate("window.footseg.errors") == [] and page.is_enabled("#open")
    page.click("#message")  # it stopped nothing: a tap puts it away
    assert page.is_hidden("#message")
    page.context.close()


def test_a_transparent_photo_shows_and_segments_nothing_of_the_picture_before_it(
        camera_browser: Browser, server: SiteServer, tmp_path: Path) -> None:
    # footseg reads a PNG's colour without its alpha: stored black where transparent, as here
    path = tmp_path / "clear.png"
    cv2.imwrite(str(path), np.zeros((30, 40, 4), np.uint8))
    page, _ = open_page(camera_browser, server.url)
    wait_for_frames(page, 3)
    page.set_input_files("#file", str(path))
    page.wait_for_function("window.footseg.photos >= 1", timeout=TIMEOUT_MS)
    state = page.evaluate(READ_STATE)
    h, w = state["size"]
    want = to_tensor(resize_image(read_image(path), (h, w))).numpy()
    np.testing.assert_array_equal(decode(state, "input", np.float32, (3, h, w)), want)  # not the camera's frame
    assert decode(state, "mask", np.uint8, (h, w)).max() == 0
    shown = page.evaluate("(v => Array.from(v.getContext('2d').getImageData(0, 0, v.width, v.height).data))"
                          "(document.getElementById('view'))")
    # the view: the faint tint of a low foot probability at most, where the camera's opaque picture was
    assert max(shown[3::4]) < 128
    page.context.close()


# Where object-fit: contain draws the picture in the view element: its left and right edges.
PICTURE_EDGES = """(v => {
  const r = v.getBoundingClientRect();
  const s = Math.min(r.width / v.width, r.height / v.height);
  return [r.left + (r.width - s * v.width) / 2, r.left + (r.width + s * v.width) / 2];
})(document.getElementById('view'))"""


def test_a_landscape_phone_has_its_buttons_beside_the_picture(camera_browser: Browser, server: SiteServer) -> None:
    context = camera_browser.new_context(permissions=["camera"], viewport={"width": 844, "height": 390},
                                         is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(server.url)
    wait_for_frames(page, 3)
    left, right = page.evaluate(PICTURE_EDGES)
    for button in ("#open", "#photo"):
        box = page.locator(button).bounding_box()
        assert box["x"] >= right or box["x"] + box["width"] <= left, (button, box, left, right)
    context.close()


def test_a_photo_in_another_colour_profile_reads_as_footseg_reads_it(no_camera_browser: Browser, server: SiteServer,
                                                                    site: Path, tmp_path: Path,
                                                                    linear_rgb_profile: bytes) -> None:
    """The browser converts a photo's colour profile to sRGB (an iPhone's Display P3 photo), and so does read_image."""
    from PIL import Image

    h, w = json.loads((site / "model.json").read_text())["input_size"]  # the input's size: no resize in the way
    gradient = np.linspace(0, 255, w, dtype=np.float64)[None, :].repeat(h, axis=0)
    pixels = np.stack([gradient, gradient.T[:h, :w] if h == w else gradient[::-1], np.full((h, w), 60.0)], axis=-1)
    path = tmp_path / "wide.png"
    Image.fromarray(pixels.astype(np.uint8)).save(path, icc_profile=linear_rgb_profile)
    page, _ = open_page(no_camera_browser, server.url)
    page.wait_for_function("window.footseg.ready", timeout=TIMEOUT_MS)
    page.set_input_files("#file", str(path))
    page.wait_for_function("window.footseg.photos >= 1", timeout=TIMEOUT_MS)
    shown = decode(page.evaluate(READ_STATE), "input", np.float32, (3, h, w)).transpose(1, 2, 0) * 255
    python = read_image(path).astype(np.float32)
    assert np.abs(python - pixels).mean() > 20  # the profile changed the numbers...
    assert np.abs(shown - python).mean() < 1 and np.abs(shown - python).max() <= 3  # ...alike in both
    page.context.close()


DROP_FILE = """async ([b64, name, type]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], name, { type }));
  const event = new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true });
  document.getElementById('view').dispatchEvent(event);
  return event.defaultPrevented;
}"""


def test_a_photo_dropped_on_the_page_opens_as_open_photo_opens_it(no_camera_browser: Browser, server: SiteServer,
                                                                  sideways_photo: tuple[Path, np.ndarray]) -> None:
    path, upright = sideways_photo
    page, _ = open_page(no_camera_browser, server.url)
    page.wait_for_function("window.footseg.ready", timeout=TIMEOUT_MS)
    payload = [base64.b64encode(path.read_bytes()).decode(), path.name, "image/jpeg"]
    assert page.evaluate(DROP_FILE, payload) is True  # the browser does not open the file in place of the page
    page.wait_for_function("window.footseg.photos >= 1", timeout=TIMEOUT_MS)
    photo = page.evaluate("window.footseg.photo")
    assert (photo["name"], photo["width"], photo["height"]) == (path.name, upright.shape[1], upright.shape[0])
    assert page.url == server.url and page.is_visible("#save")
    page.context.close()


def test_over_plain_http_the_page_says_why_there_is_no_camera_and_opens_photos(
        playwright: Playwright, server: SiteServer, sideways_photo: tuple[Path, np.ndarray]) -> None:
    # a name, not localhost: browsers treat http://127.0.0.1 as secure, and a phone on the LAN reaches a page by its
    # address, where plain HTTP is not
    args = [*BASE_ARGS, "--host-resolver-rules=MAP footseg.test 127.0.0.1"]
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=args)
    try:
        page, _ = open_page(browser, server.url.replace("127.0.0.1", "footseg.test"))
        kind, errors = message_of(page)
        assert kind == "insecure" and "HTTPS" in errors[0] and "Open photo" in page.text_content("#message")
        assert page.evaluate("window.isSecureContext") is False
        page.set_input_files("#file", str(sideways_photo[0]))
        page.wait_for_function("window.footseg.photos >= 1", timeout=TIMEOUT_MS)
        assert page.evaluate("window.footseg.threads") == 1 and page.is_visible("#save")
    finally:
        browser.close()


FIRST_PRIOR_AFTER = """() => {
  window.firstPrior = undefined;
  window.footseg.onFrame = (f) => { window.firstPrior ??= f.lastPrior ? 'some' : 'none'; };
}"""


BACK_IN_VIEW_AFTER_A_FRAME = """() => {
  window.firstPrior = undefined;
  let back = false;
  window.footseg.onFrame = (f) => {
    if (!back) {
      back = true;
      document.dispatchEvent(new Event('visibilitychange'));
      return;
    }
    window.firstPrior ??= f.lastPrior ? 'some' : 'none';
  };
}"""


def test_back_in_view_the_video_starts_afresh(camera_browser: Browser, server: SiteServer) -> None:
    page, _ = open_page(camera_browser, server.url + "?mode=smooth")
    wait_for_frames(page, 3)
    page.evaluate(FIRST_PRIOR_AFTER)
    page.wait_for_function("window.firstPrior !== undefined", timeout=TIMEOUT_MS)
    assert page.evaluate("window.firstPrior") == "some"  # smoothing: each frame blended with the one before
    # the phone locked and unlocked (or another app in front, then this one again), as a frame finishes: the next
    # frame is the first of a new video
    page.evaluate(BACK_IN_VIEW_AFTER_A_FRAME)
    page.wait_for_function("window.firstPrior !== undefined", timeout=TIMEOUT_MS)
    assert page.evaluate("window.firstPrior") == "none"
    assert page.evaluate("window.footseg.errors") == []
    page.context.close()


def test_a_photo_taken_keeps_save_mask_when_the_camera_goes(camera_browser: Browser, server: SiteServer) -> None:
    page, _ = open_page(camera_browser, server.url)
    wait_for_frames(page, 3)
    with page.expect_download(timeout=TIMEOUT_MS):
        page.click("#photo")
    page.evaluate("document.getElementById('camera').srcObject.getVideoTracks()[0].dispatchEvent(new Event('ended'))")
    kind, _ = message_of(page)
    assert kind == "camera-lost" and page.is_hidden("#photo")
    # the frozen frame's mask is still there to save
    assert page.is_visible("#save")
    with page.expect_download(timeout=TIMEOUT_MS) as again:
        page.click("#save")
    assert again.value.suggested_filename.endswith("_mask.png")
    page.context.close()


def test_a_camera_taken_away_is_named_and_photos_still_open(camera_browser: Browser, server: SiteServer,
                                                            sideways_photo: tuple[Path, np.ndarray]) -> None:
    page, _ = open_page(camera_browser, server.url)
    wait_for_frames(page, 3)
    # taken away at a camera frame, after the page's own callback: while that frame is being segmented
    page.evaluate("() => { const v = document.getElementById('camera'); v.requestVideoFrameCallback(() => "
                  "v.srcObject.getVideoTracks()[0].dispatchEvent(new Event('ended'))); }")
    kind, errors = message_of(page)
    assert kind == "camera-lost" and "camera stopped" in errors[0] and "Open photo" in page.text_content("#message")
    frames = page.evaluate("window.footseg.frames")
    page.wait_for_timeout(1000)
    # the frame in flight ends unseen: no speed written over the message, no black picture drawn
    assert page.text_content("#stats") == "" and page.evaluate("window.footseg.frames") == frames
    assert page.is_hidden("#photo") and page.is_enabled("#open")
    page.set_input_files("#file", str(sideways_photo[0]))
    page.wait_for_function("window.footseg.photos >= 1", timeout=TIMEOUT_MS)
    assert page.is_visible("#save")
    page.context.close()

"""Where the web page's time per frame goes: each step of its loop (app.js's ``segment``) timed alone in headless
Chromium, on one WASM thread, as the page runs them.

    .venv/bin/python benchmarks/web_phases.py [--site DIR] [--model MODEL] [--frames 100] [--json FILE]

Without ``--site`` the page is built for MODEL (default: the shipped default) into a temporary folder. The frame is a
drawn 640x480 picture (a warm floor and a foot-coloured ellipse), not a camera, so the steps run back to back without
waiting for frames. Reported: the median over the frames (the first 5 left out) of each step, in ms: ``draw`` and
``read`` (the frame squashed onto the network-size canvas, and its pixels read back), ``toInput`` (bytes to the
float32 planes), ``run`` (ONNX Runtime Web), ``sigmoid``, ``peak`` (the region peak's flood fill), ``smooth`` (the
video mode's blend), ``paint`` (the overlay and mask), ``put`` (the overlay onto its canvas), and ``step``, the
page's own ``Segmenter.step`` on the same input (network to video mode). Run it on a quiet CPU; compare rows of one
run only.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from footseg.bench.browser import chromium
from footseg.deploy.serve import SiteServer, running
from footseg.deploy.web import export_web

SKIPPED = 5  # first frames left out of the medians: ONNX Runtime's and the JIT's warm-up
PHASES = ("draw", "read", "toInput", "run", "sigmoid", "peak", "smooth", "paint", "put", "step")

TIME_PHASES = r"""
async ([frames]) => {
  const base = new URL('./', location.href).href;
  const seg = await import(base + 'segmenter.js');
  const view = await import(base + 'view.js');
  const ort = await import(base + 'ort.wasm.min.mjs');
  const meta = await (await fetch(base + 'model.json')).json();
  const mode = meta.default_mode;
  const s = await seg.Segmenter.create(base, meta, { threads: 1, mode, ratio: meta.default_ratios[mode] ?? 0 });
  const [h, w] = meta.input_size;
  const frame = view.makeCanvas(640, 480);
  const fctx = frame.getContext('2d');
  const floor = fctx.createLinearGradient(0, 0, 640, 480);
  floor.addColorStop(0, '#a86');
  floor.addColorStop(1, '#edc');
  fctx.fillStyle = floor;
  fctx.fillRect(0, 0, 640, 480);
  fctx.fillStyle = '#e9b';
  fctx.beginPath();
  fctx.ellipse(320, 260, 60, 150, 0.3, 0, 2 * Math.PI);
  fctx.fill();
  const input = view.makeCanvas(w, h);
  const ictx = input.getContext('2d', { willReadFrequently: true });
  ictx.imageSmoothingQuality = 'high';
  const octx = view.makeCanvas(w, h).getContext('2d');
  const overlay = octx.createImageData(w, h);
  const times = {};
  const timed = async (name, f) => {
    const t0 = performance.now();
    const result = await f();
    (times[name] ??= []).push(performance.now() - t0);
    return result;
  };
  for (let i = 0; i < frames; i += 1) {
    await timed('draw', () => ictx.drawImage(frame, 0, 0, w, h));
    const bytes = await timed('read', () => ictx.getImageData(0, 0, w, h).data);
    const pixels = await timed('toInput', () => view.toInput(bytes, w, h));
    const results = await timed('run', () => s.session.run({
      [meta.inputs.image]: new ort.Tensor('float32', pixels, [1, 3, h, w]) }));
    const prob = await timed('sigmoid', () => seg.marginToProbability(results[meta.output.name].data));
    const kept = await timed('peak', () => seg.keepConfidentRegions(prob, w, h, meta.threshold, meta.region_peak));
    const out = await timed('smooth', () => s.state.update(kept));
    await timed('paint', () => view.paintMask(out, overlay.data, meta.threshold));
    await timed('put', () => octx.putImageData(overlay, 0, 0));
    await timed('step', () => s.step(pixels));
  }
  return { times, size: [h, w], mode, threads: ort.env.wasm.numThreads };
}
"""


def time_phases(site: Path, frames: int) -> dict:
    """Each phase's per-frame times (ms) on the page at ``site``, in headless Chromium."""
    with running(SiteServer(site, port=0)) as server, chromium("--deny-permission-prompts") as browser:
        page = browser.new_page()
        # ONNX Runtime Web takes its thread count once per page, from the page's own start (app.js): ask it there,
        # or the timings are of as many threads as the page would use
        page.goto(f"{server.url}index.html?threads=1")
        return page.evaluate(TIME_PHASES, [frames])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", type=Path, default=None, help="a site from `footseg export --format web`")
    parser.add_argument("--model", default=None, help="without --site: the model to build a page for")
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.frames <= SKIPPED:
        parser.error(f"--frames must be more than the {SKIPPED} frames of warm-up left out")
    with tempfile.TemporaryDirectory(prefix="footseg-web-phases-") as tmp:
        site = args.site or export_web(args.model, Path(tmp) / "site")
        result = time_phases(site, args.frames)
    medians = {name: statistics.median(result["times"][name][SKIPPED:]) for name in PHASES}
    h, w = result["size"]
    print(f"{w}x{h}, mode {result['mode']}, {result['threads']} thread(s), median of {args.frames - SKIPPED} frames "
          "(ms)")
    print(" ".join(f"{name} {medians[name]:.2f}" for name in PHASES))
    outside = sum(medians[name] for name in PHASES if name not in ("run", "step"))
    print(f"outside the network: {outside:.2f} ms; the network: {medians['run']:.2f} ms")
    if args.json:
        args.json.write_text(json.dumps({"size": [h, w], "mode": result["mode"], "threads": result["threads"],
                                         "median_ms": medians}, indent=1))


if __name__ == "__main__":
    main()

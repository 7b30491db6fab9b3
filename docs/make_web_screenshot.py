"""Take docs/web_page.png: the page of `footseg export --format web` running in Chromium on a synthetic clip.

Chromium's fake camera plays a `footseg synth --clips` clip written as Y4M; the page segments it live with the
default shipped model, served by `footseg serve`'s server. Needs Debian's chromium (/usr/bin/chromium), Python
Playwright (the dev extra) and onnxruntime-web (npm ci --prefix web).

Run: .venv/bin/python docs/make_web_screenshot.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from PIL import Image

from footseg.bench.browser import chromium
from footseg.cli import main as footseg
from footseg.data.io import read_image
from footseg.deploy.serve import SiteServer, running
from footseg.deploy.web import export_web, write_y4m

OUT = Path(__file__).with_name("web_page.png")
SIDE, FRAMES = 384, 16
VIEWPORT = {"width": 400, "height": 520}  # a phone held upright shows the square clip with room for the controls
SETTLE_FRAMES = 40


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        argv = ["synth", str(root / "clip"), "--clips", "1", "--frames", str(FRAMES), "--size", str(SIDE)]
        if footseg([*argv, "--seed", "3", "--no-progress"]) != 0:
            raise SystemExit("footseg synth failed")
        frames = [read_image(p) for p in sorted((root / "clip").glob("*/clip_*/images/*"))]
        clip = write_y4m(frames, root / "clip.y4m")
        site = export_web(None, root / "site")
        camera = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                  f"--use-file-for-fake-video-capture={clip}"]
        with running(SiteServer(site, port=0)) as server, chromium(*camera) as browser:
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(server.url)
            page.wait_for_function(f"window.footseg.frames >= {SETTLE_FRAMES} || window.footseg.errors.length > 0",
                                   timeout=60_000)
            errors = page.evaluate("window.footseg.errors")
            if errors:
                raise SystemExit(f"the page reported: {errors}")
            page.screenshot(path=str(root / "shot.png"))
        # A palette keeps the picture small for the README; the page's colours survive it.
        Image.open(root / "shot.png").convert("RGB").quantize(colors=128).save(OUT, optimize=True)
    print(f"wrote {OUT} ({OUT.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()

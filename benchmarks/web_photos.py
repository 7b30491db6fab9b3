"""Photos opened on the web page (Open photo, then Save mask) against footseg's Predictor on the same files.

    .venv/bin/python benchmarks/web_photos.py --data DIR [--model MODEL] [--json FILE]

DIR holds photos with masks as ``footseg eval --data`` reads them (``images/`` and ``masks/``). The page is built for
MODEL (default: the shipped default) with ``footseg export --format web`` into a temporary folder and opened in
headless Chromium with no camera, where it offers Open photo. Each photo is opened there and its mask saved (at the
photo's size), and ``Predictor(MODEL).predict_mask`` segments the same file in Python. Reported: the pixels where the
two masks differ and the photos with any such pixel; foot IoU of each against the photos' masks, counted over all
photos as ``footseg eval`` counts; and the median of the page's own time per photo (``window.footseg.photo.ms``: the
photo's pixels read, resized, the network and the mask at its resolution; decoding the file and saving the mask not
included).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import numpy as np

from footseg.bench.browser import chromium
from footseg.data.io import read_mask
from footseg.data.samples import find_samples, no_mask_error, read_sample
from footseg.deploy.serve import SiteServer, running
from footseg.deploy.web import export_web
from footseg.errors import FootsegError
from footseg.metrics import ConfusionMeter
from footseg.runtime.predictor import Predictor

TIMEOUT_MS = 120_000


def page_masks(site: Path, photos: list[Path]) -> tuple[list[tuple[np.ndarray, float]], int]:
    """Each photo's mask as the page saves it (bool, the photo's upright size) and the page's time for it (ms), and
    the WASM threads the page ran on."""
    with running(SiteServer(site, port=0)) as server, chromium() as browser:  # no camera: photos only
        page = browser.new_context(accept_downloads=True).new_page()
        page.goto(f"{server.url}index.html")
        page.wait_for_function("window.footseg && window.footseg.ready", timeout=TIMEOUT_MS)
        masks = []
        for i, photo in enumerate(photos, 1):
            page.set_input_files("#file", str(photo))
            page.wait_for_function(f"window.footseg.photos >= {i} || window.footseg.warnings.length > 0",
                                   timeout=TIMEOUT_MS)
            if warnings := page.evaluate("window.footseg.warnings"):
                raise SystemExit(f"web_photos: the page could not open {photo}: {warnings[0]}")
            with page.expect_download(timeout=TIMEOUT_MS) as download:
                page.click("#save")
            masks.append((read_mask(download.value.path()) > 0, page.evaluate("window.footseg.photo.ms")))
        return masks, page.evaluate("window.footseg.threads")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="photos with masks (images/, masks/)")
    parser.add_argument("--model", default=None, help="the model (default: the shipped default)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    try:
        samples = find_samples(args.data)
        unmasked = next((sample for sample in samples if sample.mask is None), None)
        if unmasked:
            raise no_mask_error(unmasked)
    except FootsegError as error:
        parser.error(str(error))
    if not samples:
        parser.error(f"{args.data}: no photos in images/")
    with tempfile.TemporaryDirectory(prefix="footseg-web-photos-") as tmp:
        on_page, threads = page_masks(export_web(args.model, Path(tmp) / "site"), [s.image for s in samples])
    predictor = Predictor(args.model)
    meters = {"page": ConfusionMeter(), "python": ConfusionMeter()}
    apart, photos_apart, pixels = 0, [], 0
    for sample, (page_mask, _) in zip(samples, on_page, strict=True):
        image, truth = read_sample(sample)
        python_mask = predictor.predict_mask(image) > 0
        if page_mask.shape != python_mask.shape:
            raise SystemExit(f"web_photos: {sample.image}: the page saved a mask of {page_mask.shape}, Python "
                             f"{python_mask.shape}")
        differ = int((page_mask != python_mask).sum())
        apart += differ
        pixels += python_mask.size
        if differ:
            photos_apart.append(sample.stem)
        meters["page"].update(page_mask, truth)
        meters["python"].update(python_mask, truth)
    ious = {name: meter.compute()["iou"] for name, meter in meters.items()}
    ms = statistics.median(t for _, t in on_page)
    print(f"{len(samples)} photos, {predictor.label}: {apart} of {pixels} pixels differ between the page's masks and "
          f"Python's in {predictor.runtime} ({len(photos_apart)} photos with any"
          f"{': ' + ', '.join(photos_apart) if photos_apart else ''})")
    print(f"foot IoU: page {ious['page']:.4f}, Python {ious['python']:.4f}; the page's time per photo: median "
          f"{ms:.0f} ms ({threads} WASM thread{'s' if threads > 1 else ''})")
    if args.json:
        args.json.write_text(json.dumps({"photos": len(samples), "model": predictor.label, "pixels_apart": apart,
                                         "pixels": pixels, "photos_apart": photos_apart, "iou": ious,
                                         "python_runtime": predictor.runtime,
                                         "median_ms": ms, "threads": threads}, indent=1))


if __name__ == "__main__":
    main()

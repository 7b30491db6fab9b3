"""The flicker floor of clip datasets, next to the shipped model with and without motion-compensated smoothing.

    .venv/bin/python benchmarks/flicker_floor.py --clips /work/data/clipsB --split val
    .venv/bin/python benchmarks/flicker_floor.py --clips /work/data/clipsB --clips ../shared/data/real-dev-clips \
        [--model default] [--betas 1,0.5] [--json flicker_floor.json]

Why: ``footseg eval --clips`` scores flicker as the pixels whose predicted label changed between consecutive frames
while the true label did not, over the foot area of the pair (``footseg.eval.clips.FlickerMeter``). When the camera
moves, the true boundary moves with it, so a model whose boundary follows the foot exactly but sits one pixel outside
the truth still changes labels on a band the truth leaves alone: it "flickers" although nothing shimmers. That puts a
floor under the metric that depends only on boundary accuracy and motion, and an issue target such as "flicker at most
1/3 of per-frame" can lie below it.

What it measures, per dataset (``--clips``, repeatable; ``--split``, default test; a flat folder of clips is used
whole, whatever the split):

- floor rows: the true masks dilated by 1 and 2 px and eroded by 1 px (a disc, ``cv2.MORPH_ELLIPSE``, of radius k),
  i.e. a perfect model except for a constant boundary offset, scored with footseg's ``FlickerMeter`` and pooled IoU;
- model rows: the model (``--model``, default: the shipped default model) as ``footseg eval --clips`` runs it in
  ``per-frame`` mode and in ``smooth`` mode at ratio 1.0 (``evaluate_clips``), and ``tracked`` smoothing at each
  ``--betas`` value: the same MediaPipe smoothing, but against the previous output moved into the current frame by a
  homography estimated from the frames (``TrackedSmoothing`` below; an experiment, not product code).

Columns: pooled per-frame foot IoU (%), flicker (%), flicker as a multiple of the per-frame row's, the mean ms per
frame spent estimating motion and warping (``time.perf_counter``; tracked rows only) and the median ms of one frame's
whole loop (resize, network, state update, resize back; as ``footseg eval`` reports it). PyTorch and OpenCV are
pinned to 1 thread. ``--json F`` writes the rows (``iou`` as a fraction, ``flicker`` in percent, as footseg does).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from footseg.data.clips import find_clips
from footseg.data.io import read_mask
from footseg.data.samples import has_splits
from footseg.data.transforms import resize_image
from footseg.errors import FootsegError
from footseg.eval.clips import FlickerMeter, _run, evaluate_clips
from footseg.metrics import ConfusionMeter
from footseg.runtime.predictor import Predictor
from footseg.runtime.temporal import VideoSegmenter, smooth

OFFSETS = (("dilated 1 px", 1), ("dilated 2 px", 2), ("eroded 1 px", -1))  # (row, signed boundary offset in px)


class TrackedSmoothing(VideoSegmenter):
    """MediaPipe smoothing against the previous output warped into the current frame (``smooth`` mode otherwise).

    Motion: pyramidal Lucas-Kanade flow of a ``GRID`` x ``GRID`` grid of points between consecutive ``SIDE`` x ``SIDE``
    grey frames, a homography fitted to it with RANSAC (1 px threshold at that size), rescaled to the network's input
    size. ``beta`` damps it: the matrix used is ``(1 - beta) * I + beta * H`` (1: full motion, 0: plain smoothing).
    Pixels that enter the frame take the new probability; when no motion can be fitted the previous output is used as
    it is. ``motion_s`` adds up the seconds spent on the grey frame, the flow, the fit and the warp.
    """

    SIDE = 96
    GRID = 8

    def __init__(self, predictor: Predictor, ratio: float = 1.0, beta: float = 1.0):
        super().__init__(predictor, "smooth", ratio)
        self.beta = beta
        self.gray: np.ndarray | None = None
        self.motion_s = 0.0
        g = np.linspace(self.SIDE * 0.08, self.SIDE * 0.92, self.GRID, dtype=np.float32)
        self.points = np.stack(np.meshgrid(g, g), -1).reshape(-1, 1, 2)
        h, w = predictor.input_size
        self.scale = np.diag([w / self.SIDE, h / self.SIDE, 1.0])

    def reset(self) -> None:
        super().reset()
        self.gray = None

    def step_small(self, frame: np.ndarray) -> np.ndarray:
        prob = self.predictor.network_proba([frame])[0]
        start = time.perf_counter()
        gray = cv2.cvtColor(resize_image(frame, (self.SIDE, self.SIDE)), cv2.COLOR_RGB2GRAY)
        previous = None if self.previous is None else self._warp(self.previous, gray, prob)
        self.motion_s += time.perf_counter() - start
        if previous is not None and self.ratio > 0:
            prob = smooth(prob, previous, self.ratio)
        self.previous, self.gray = prob, gray
        return prob

    def _warp(self, previous: np.ndarray, gray: np.ndarray, prob: np.ndarray) -> np.ndarray:
        """The previous output moved into the current frame; pixels from outside it take ``prob``."""
        H = self._homography(self.gray, gray)
        if H is None:
            return previous
        H = (1 - self.beta) * np.eye(3) + self.beta * H / H[2, 2]
        h, w = previous.shape
        warped = cv2.warpPerspective(previous, self.scale @ H @ np.linalg.inv(self.scale), (w, h),
                                     flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=-1.0)
        return np.where(warped >= 0, warped, prob)

    def _homography(self, a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
        moved, status, _ = cv2.calcOpticalFlowPyrLK(a, b, self.points, None, winSize=(15, 15), maxLevel=3)
        ok = status[:, 0] == 1
        if ok.sum() < 8:
            return None
        H, _ = cv2.findHomography(self.points[ok], moved[ok], cv2.RANSAC, 1.0)
        return H


def floor_rows(data: Path, split: str) -> list[dict]:
    """Flicker and IoU of the true masks with a constant boundary offset (``OFFSETS``), pooled over the clips."""
    clips = find_clips(data, split)
    kernels = {k: cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(k) + 1, 2 * abs(k) + 1)) for _, k in OFFSETS}
    meters = {k: (ConfusionMeter(), FlickerMeter()) for _, k in OFFSETS}
    for clip in clips:
        for _, flicker in meters.values():
            flicker.reset()
        for frame in clip.frames:
            if frame.mask is None:
                raise FootsegError(f"frame has no mask (expected masks/{frame.stem}.png)", frame.image)
            true = (read_mask(frame.mask) > 0).astype(np.uint8)
            for k, (confusion, flicker) in meters.items():
                pred = cv2.dilate(true, kernels[k]) if k > 0 else cv2.erode(true, kernels[k])
                confusion.update(pred, true)
                flicker.update(pred, true)
    n_frames = sum(len(c) for c in clips)
    return [{"row": f"floor: truth {label}", "kind": "floor", "offset_px": k, "iou": meters[k][0].compute()["iou"],
             "flicker": meters[k][1].flicker, "motion_ms": None, "latency_ms": None, "n_clips": len(clips),
             "n_frames": n_frames} for label, k in OFFSETS]


def model_rows(predictor: Predictor, data: Path, split: str, betas: list[float]) -> list[dict]:
    """The model per-frame, smoothed (ratio 1.0) and with tracked smoothing at each beta."""
    runs: list[tuple[str, dict, float | None]] = [
        ("per-frame", evaluate_clips(predictor, data, split, mode="per-frame"), None),
        ("smooth 1.0", evaluate_clips(predictor, data, split, mode="smooth", ratio=1.0), None),
    ]
    for beta in betas:
        segmenter = TrackedSmoothing(predictor, ratio=1.0, beta=beta)
        # evaluate_clips builds its own VideoSegmenter from a mode name, so a segmenter of our own goes through the
        # loop it runs (private, but the very one that scores `footseg eval --clips`: same pooling, same timing).
        scores = _run(segmenter, find_clips(data, split))
        runs.append((f"tracked smooth 1.0, beta {beta:g}", scores, 1000 * segmenter.motion_s / scores["n_frames"]))
    rows = []
    for label, scores, motion_ms in runs:
        rows.append({"row": label, "kind": "model", "offset_px": None, "iou": scores["iou"],
                     "flicker": scores["flicker"], "motion_ms": motion_ms, "latency_ms": scores["latency_ms"],
                     "n_clips": scores["n_clips"], "n_frames": scores["n_frames"]})
        print(f"{data.name}: {label}: iou {scores['iou']:.4f} flicker {scores['flicker']:.2f}%", file=sys.stderr,
              flush=True)
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| clips | row | IoU % | flicker % | x per-frame | motion+warp ms/frame | loop ms (median) |",
             "|---|---|--:|--:|--:|--:|--:|"]
    per_frame = {r["clips"]: r["flicker"] for r in rows if r["row"] == "per-frame"}
    for r in rows:
        base = per_frame.get(r["clips"])
        ratio = f"{r['flicker'] / base:.2f}" if base else "—"
        motion = "—" if r["motion_ms"] is None else f"{r['motion_ms']:.2f}"
        loop = "—" if r["latency_ms"] is None else f"{r['latency_ms']:.1f}"
        lines.append(f"| {r['clips']} ({r['split']}) | {r['row']} | {100 * r['iou']:.2f} | {r['flicker']:.2f} | "
                     f"{ratio} | {motion} | {loop} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=Path, action="append", required=True, help="clip dataset (repeatable)")
    parser.add_argument("--split", default="test", help="split of datasets that have splits (default: test)")
    parser.add_argument("--model", default=None, help="model for the model rows (default: the shipped default)")
    parser.add_argument("--betas", default="1,0.5", help="motion damping of the tracked rows (default: 1,0.5)")
    parser.add_argument("--json", type=Path, help="write the rows to this JSON file")
    a = parser.parse_args(argv)
    betas = [float(b) for b in a.betas.split(",") if b]

    torch.set_num_threads(1)  # before the model loads, as evaluate_clips does; it pins 1 thread for its runs too
    cv2.setNumThreads(1)  # the motion estimate and warp are timed at 1 thread as well
    predictor = Predictor(a.model)
    rows = []
    for data in a.clips:
        split = a.split if has_splits(data) else "flat"
        for row in [*floor_rows(data, a.split), *model_rows(predictor, data, a.split, betas)]:
            rows.append({"clips": data.name, "split": split, "model": predictor.label, **row})
    print(table(rows))
    if a.json:
        a.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()

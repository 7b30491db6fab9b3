"""Draw docs/video_strip.jpg: consecutive frames of a synthetic hand-held clip, segmented frame by frame and in the
default model's video mode, with the pixels whose label flickered since the previous frame in red.

Run: .venv/bin/python docs/make_video_strip.py [--per-frame MODEL] [--video MODEL] [--clips DIR]
(default: the default model frame by frame against the same model in its video mode, on a clip rendered here;
--clips takes an existing clip dataset's test split instead.)
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import cv2
import numpy as np

from footseg.data.clips import find_clips
from footseg.data.io import write_jpeg
from footseg.data.synth.clips import ClipSettings, synthesize_clips
from footseg.eval.predict import overlay_mask
from footseg.runtime.predictor import Predictor, to_mask
from footseg.runtime.temporal import VideoSegmenter

OUT = Path(__file__).with_name("video_strip.jpg")
FRAMES, SIDE = 6, 200
FLICKER = np.array([230, 30, 30], np.uint8)


def _row(segmenter: VideoSegmenter, frames: list[np.ndarray]) -> np.ndarray:
    segmenter.reset()
    tiles, previous = [], None
    for frame in frames:
        mask = to_mask(segmenter.step(frame))
        tile = overlay_mask(frame, mask)
        if previous is not None:
            tile[mask != previous] = FLICKER  # what a viewer sees shimmer
        previous = mask
        tiles.append(cv2.resize(tile, (SIDE, SIDE), interpolation=cv2.INTER_AREA))
    return np.hstack(tiles)


def _label(strip: np.ndarray, label: str) -> np.ndarray:
    strip = strip.copy()
    cv2.rectangle(strip, (0, 0), (12 + 10 * len(label), 28), (0, 0, 0), -1)  # readable on any floor
    cv2.putText(strip, label, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
    return strip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--per-frame", default="default", help="model run frame by frame (top row)")
    p.add_argument("--video", default="default", help="model run in its default video mode (bottom row)")
    p.add_argument("--clips", default=None, help="clip dataset to take the first test clip from")
    p.add_argument("--start", type=int, default=6, help="first frame shown")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(args.clips) if args.clips else Path(tmp)
        if args.clips is None:
            synthesize_clips(data, ClipSettings(n=10, frames=args.start + FRAMES, seed=5, size=256), progress=False)
        clip = find_clips(data, "test")[0]
        frames = [clip.read(i)[0] for i in range(len(clip))]
    per_frame = VideoSegmenter(Predictor(args.per_frame), "per-frame")
    video = VideoSegmenter(Predictor(args.video))
    rows = [(_row(per_frame, frames), "frame by frame"), (_row(video, frames), f"video mode: {video.mode}")]
    grid = np.vstack([_label(row[:, args.start * SIDE : (args.start + FRAMES) * SIDE], label) for row, label in rows])
    write_jpeg(OUT, grid, quality=85)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()

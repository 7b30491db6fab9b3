"""Scoring a model on video clips: pooled per-frame IoU and accuracy, flicker, and the per-frame cost of the loop.

Each clip runs from its first frame through one ``VideoSegmenter`` (reset between clips), so a temporal mode is
scored as it runs live. Flicker counts what a viewer sees shimmer: over every pair of consecutive frames, the pixels
whose predicted label changed while the true label did not, divided by the pixels that are foot in either of the two
true masks; both counts are summed over all pairs of all clips before dividing, and the result is in percent.
A model that is wrong the same way in every frame does not flicker; one that is right on average but toggles does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from footseg.data.clips import Clip, find_clips
from footseg.data.io import is_label_mask
from footseg.data.samples import no_mask_error
from footseg.errors import FootsegError
from footseg.metrics import ConfusionMeter
from footseg.runtime.predictor import ModelLike, Predictor, as_predictor, resize_proba, to_mask
from footseg.runtime.temporal import VideoSegmenter
from footseg.runtime.timing import Stopwatch


class FlickerMeter:
    """Accumulates the flicker of a sequence of (predicted, true) binary masks; ``reset()`` between clips."""

    def __init__(self) -> None:
        self.changed = 0  # predicted label changed where the truth did not
        self.foot = 0  # foot in either true mask of the pair
        self._previous: tuple[np.ndarray, np.ndarray] | None = None

    def reset(self) -> None:
        self._previous = None

    def update(self, pred: np.ndarray, true: np.ndarray) -> None:
        pred, true = pred > 0, true > 0
        if self._previous is not None:
            last_pred, last_true = self._previous
            if last_pred.shape != pred.shape:
                raise ValueError(f"frame size changed within a clip: {last_pred.shape} -> {pred.shape}")
            self.changed += int(((pred != last_pred) & (true == last_true)).sum())
            self.foot += int((true | last_true).sum())
        self._previous = (pred, true)

    @property
    def flicker(self) -> float:
        """Flicker in percent (0 when no pair had foot in it)."""
        return 100.0 * self.changed / self.foot if self.foot else 0.0


def evaluate_clips(
    model: ModelLike | Predictor,
    data: str | Path,
    split: str = "test",
    mode: str | None = None,
    ratio: float | None = None,
    threads: int = 1,
    threshold: float | None = None,
) -> dict:
    """Scores of ``model`` on the clip dataset ``data`` in video ``mode`` (the model's default when None), with masks
    at ``threshold`` (None: the model's own).

    Keys: iou, accuracy, miou, flicker (percent), n_clips, n_frames, mode, latency_ms and p90_ms (one frame's full
    loop at ``threads`` threads, as ``footseg bench`` pins them: resize, network, state update, resize back; decoding
    excluded), runtime (what ran the network: ``Predictor.runtime``), threshold, region_peak, presence, unlike_labels
    (the clips with a mask of more than 0 and one foot value, whose every non-zero pixel was scored as foot) and
    per_clip ({clip, iou, flicker}).
    """
    clips = find_clips(Path(data), split)
    for clip in clips:  # every problem with the data surfaces before any time is spent on the model
        if not clip.frames:
            raise FootsegError("clip has no frames", clip.folder)
        missing = next((f for f in clip.frames if f.mask is None), None)
        if missing is not None:
            raise no_mask_error(missing)
    # an ONNX session is made at ``threads`` (a predictor made before, the CLI's for --region-peak, too)
    predictor = as_predictor(model).at_threshold(threshold).with_threads(threads)
    segmenter = VideoSegmenter(predictor, mode, ratio)
    if predictor.onnx is not None:
        return _run(segmenter, clips)
    import torch  # PyTorch runs the network, at the process's thread count: pinned for the run

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _run(segmenter, clips)
    finally:
        torch.set_num_threads(previous_threads)


def _run(segmenter: VideoSegmenter, clips: list[Clip]) -> dict:
    total, flicker, watch = ConfusionMeter(), FlickerMeter(), Stopwatch()
    per_clip, unlike_labels = [], []
    threshold = segmenter.predictor.threshold
    for clip in clips:
        segmenter.reset()
        flicker.reset()
        clip_meter, clip_flicker = ConfusionMeter(), FlickerMeter()
        first: tuple[int, ...] | None = None
        for index in range(len(clip)):
            image, mask = clip.read(index)
            first = first or image.shape
            if image.shape != first:  # flicker compares each frame with the one before, pixel for pixel
                raise FootsegError(f"{image.shape[1]}x{image.shape[0]}, the clip's first frame {first[1]}x{first[0]}: "
                                   "a clip's frames are one video's, of one size (photos are scored with --data)",
                                   clip.frames[index].image)
            with watch:  # what a frame costs: its mask at the frame's size
                prob = segmenter.step(image)
                pred = to_mask(prob, threshold)
            if pred.shape != mask.shape:  # scored at the mask's own size, as still images are
                pred = to_mask(resize_proba(prob, mask.shape), threshold)
            if (not unlike_labels or unlike_labels[-1] != clip.name) and not is_label_mask(mask):
                unlike_labels.append(clip.name)
            true = (mask > 0).astype(np.uint8)
            clip_meter.update(pred, true)
            flicker.update(pred, true)
            clip_flicker.update(pred, true)
        total.counts += clip_meter.counts
        per_clip.append({"clip": clip.name, "iou": clip_meter.compute()["iou"], "flicker": clip_flicker.flicker})
    timing = watch.stats()
    return {
        **total.compute(),
        "flicker": flicker.flicker,
        "n_clips": len(clips),
        "n_frames": sum(len(c) for c in clips),
        "mode": segmenter.mode,
        "ratio": segmenter.ratio,  # (of smoothing: in smooth mode, how much of the frame before is kept)
        "threshold": segmenter.predictor.threshold,
        "region_peak": segmenter.predictor.region_peak,
        "presence": segmenter.predictor.presence,
        "runtime": segmenter.predictor.runtime,
        "latency_ms": timing["latency_ms"],
        "p90_ms": timing["p90_ms"],
        "unlike_labels": unlike_labels,
        "per_clip": per_clip,
    }

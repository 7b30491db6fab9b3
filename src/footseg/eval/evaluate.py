"""Scoring a saved model on a dataset folder: pixel accuracy, foot IoU and mean IoU over the whole dataset.

Predictions are made at the network's input size and resized back to each mask's own size, so photos of any size
(e.g. 640x480 phone photos) are scored at full resolution, against the masks as they were drawn.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from footseg.data.io import IMAGE_HINT, is_grey, is_label_mask
from footseg.data.samples import Sample, find_samples, no_mask_error, read_sample, split_folder
from footseg.errors import FootsegError
from footseg.eval.error_kinds import BLOB, largest_region
from footseg.metrics import ConfusionMeter
from footseg.models.info import SavedModelInfo, check_presence, check_region_peak, check_threshold
from footseg.runtime.predictor import (
    Predictor,
    as_predictor,
    keep_confident_regions,
    resize_proba,
    to_mask,
)

if TYPE_CHECKING:
    from torch import nn

# The operating points a threshold stage tries: 0.10 to 0.90 in steps of 0.05.
THRESHOLDS = tuple(round(0.05 * k, 2) for k in range(2, 19))
# The foot IoU's interval: images drawn with replacement this many times, with a fixed seed so a score repeats.
BOOTSTRAP_DRAWS = 2000
BOOTSTRAP_SEED = 0


def iou_interval(inter: Sequence[int], union: Sequence[int], level: float = 0.95,
                 draws: int = BOOTSTRAP_DRAWS, seed: int = BOOTSTRAP_SEED) -> tuple[float, float] | None:
    """The ``level`` percentile bootstrap interval of a dataset's pooled foot IoU (sum of intersections over sum of
    unions), the images drawn with replacement: how far the score could move on another set of such photos. None
    for fewer than two images. On 20 photos it spans points, which is why a handful of real photos can only report."""
    inter, union = np.asarray(inter, np.float64), np.asarray(union, np.float64)
    if inter.size < 2:
        return None
    picks = np.random.default_rng(seed).integers(0, inter.size, (draws, inter.size))
    unions = union[picks].sum(axis=1)
    ious = np.divide(inter[picks].sum(axis=1), unions, out=np.ones(draws), where=unions > 0)
    low, high = np.quantile(ious, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def labelled_samples(data: str | Path, split: str = "test") -> list[Sample]:
    """Samples of ``data`` (its ``split`` when it has splits, else the flat folder); every image must have a mask."""
    folder = split_folder(Path(data), split)
    samples = find_samples(folder)
    if not samples:
        raise FootsegError(f"no images found (expected images/*.{IMAGE_HINT} and masks/*.png)", folder)
    for sample in samples:
        if sample.mask is None:
            raise no_mask_error(sample)
    return samples


def evaluate(
    model: str | Path | Predictor | tuple[nn.Module, SavedModelInfo],
    data: str | Path,
    split: str = "test",
    batch_size: int = 8,
    threshold: float | None = None,
    region_peak: float | None = None,
    presence: float | None = None,
) -> dict:
    """Scores of ``model`` on ``data``: accuracy, iou (foot), iou_interval (its 95 % bootstrap interval over the
    images, ``iou_interval``; None for one image), miou, n (images), threshold, region_peak, presence, input_size (the
    side the network ran at), runtime (what ran it: ``Predictor.runtime``), empty (the images with no foot), blob_rate
    (the share of those in which it marks a foot region over ``BLOB`` of the frame, None without any: what a live camera
    on a bare floor shows), unlike_labels (the paths of masks with more than 0 and one foot value, whose every non-zero
    pixel was scored as foot), grey (the paths of photos without colour, ``is_grey``) and per_image.

    Accuracy and IoU are dataset-level: confusion counts are summed over every pixel of every image before dividing,
    so large photos weigh more than small ones. ``per_image`` lists {stem, iou, accuracy} for each image. A pixel is
    foot where its probability exceeds ``threshold``, by default the model's own (``Predictor.threshold``), as
    everywhere else; ``region_peak`` and ``presence`` override the model's own likewise (0: off).
    """
    if batch_size < 1:
        raise FootsegError(f"batch size must be at least 1, got {batch_size}")
    samples = labelled_samples(data, split)  # check every mask exists before spending time on the model
    predictor = as_predictor(model).at_threshold(threshold).at_region_peak(region_peak).at_presence(presence)
    total = ConfusionMeter()
    per_image: list[dict] = []
    inter, union = [], []
    empty = blobs = 0
    unlike_labels: list[str] = []
    grey: list[str] = []
    for sample, prob, target in predictions(predictor, samples, batch_size, unlike_labels, grey):
        meter = ConfusionMeter()
        found = to_mask(prob, predictor.threshold)
        meter.update(found, target)
        tp, fp, fn, _ = meter.counts.tolist()  # the image's own counts: its intersection and union for the interval
        inter.append(tp)
        union.append(tp + fp + fn)
        total.counts += meter.counts
        if not target.any():
            empty += 1
            blobs += largest_region(found) > BLOB * found.size
        scores = meter.compute()
        per_image.append({"stem": sample.stem, "iou": scores["iou"], "accuracy": scores["accuracy"]})
    return {**total.compute(), "iou_interval": iou_interval(inter, union), "n": len(samples),
            "threshold": predictor.threshold,
            "region_peak": predictor.region_peak, "presence": predictor.presence,
            "input_size": list(predictor.input_size), "runtime": predictor.runtime,
            "empty": empty, "blob_rate": blobs / empty if empty else None,
            "unlike_labels": unlike_labels, "grey": grey, "per_image": per_image}


def threshold_ious(
    model: str | Path | Predictor | tuple[nn.Module, SavedModelInfo],
    data: str | Path,
    thresholds: Sequence[float] = THRESHOLDS,
    split: str = "val",
    batch_size: int = 8,
) -> dict[float, float]:
    """Dataset-level foot IoU of ``model`` on ``data`` at each of ``thresholds``, from one pass over the images: how
    a model's operating point is chosen (on synthetic validation images; real photos only report). Every region of
    foot counts (no ``region_peak`` or ``presence``: they depend on the threshold, and are chosen after it by
    ``region_peak_ious`` and ``presence_ious``)."""
    if batch_size < 1:
        raise FootsegError(f"batch size must be at least 1, got {batch_size}")
    try:
        levels = np.asarray([check_threshold(t) for t in thresholds], np.float32)  # compared as the probabilities are
    except ValueError as exc:
        raise FootsegError(str(exc)) from exc
    samples = labelled_samples(data, split)
    inter = np.zeros(len(levels), np.int64)
    union = np.zeros(len(levels), np.int64)
    for _, prob, target in predictions(as_predictor(model).at_region_peak(0).at_presence(0), samples, batch_size):
        truth = target.astype(bool)
        foot, floor = np.sort(prob[truth]), np.sort(prob[~truth])
        # pixels above each threshold, counted from the sorted values: two sorts instead of a pass per threshold
        found = foot.size - np.searchsorted(foot, levels, side="right")
        inter += found
        union += foot.size + floor.size - np.searchsorted(floor, levels, side="right")
    return {float(t): float(i / u) if u else 1.0 for t, i, u in zip(thresholds, inter, union, strict=True)}


def region_peak_ious(
    model: str | Path | Predictor | tuple[nn.Module, SavedModelInfo],
    data: str | Path,
    peaks: Sequence[float],
    split: str = "val",
    batch_size: int = 8,
) -> dict[float, float]:
    """Dataset-level foot IoU of ``model`` on ``data`` at its own threshold with each of ``peaks`` as its
    ``region_peak`` (0: every region kept) and no presence gate, from one pass over the images; chosen on synthetic
    validation images."""
    predictor = as_predictor(model)
    points = operating_points(predictor, data, [predictor.threshold], peaks, [0.0], split, batch_size)
    return {float(p): points[predictor.threshold, float(p), 0.0][0] for p in peaks}


def presence_ious(
    model: str | Path | Predictor | tuple[nn.Module, SavedModelInfo],
    data: str | Path,
    presences: Sequence[float],
    split: str = "val",
    batch_size: int = 8,
) -> dict[float, float]:
    """Dataset-level foot IoU of ``model`` on ``data`` at its own threshold and region peak with each of
    ``presences`` as its ``presence`` (0: no gate), from one pass over the images; chosen on synthetic validation
    images that hold frames with no foot (on frames that all hold one, a gate can only lose)."""
    predictor = as_predictor(model)
    peak = predictor.region_peak or 0.0
    points = operating_points(predictor, data, [predictor.threshold], [peak], presences, split, batch_size)
    return {float(q): points[predictor.threshold, peak, float(q)][0] for q in presences}


def operating_points(
    model: str | Path | Predictor | tuple[nn.Module, SavedModelInfo],
    data: str | Path,
    thresholds: Sequence[float],
    peaks: Sequence[float],
    presences: Sequence[float],
    split: str = "val",
    batch_size: int = 8,
    blob: float = BLOB,
) -> dict[tuple[float, float, float], tuple[float, float | None]]:
    """For every (threshold, region peak, presence) of ``thresholds`` x ``peaks`` x ``presences`` (a peak or presence
    of 0: off), the dataset-level foot IoU of ``model`` on ``data`` and its blob rate: the share of the split's frames
    with no foot in which it marks a foot region larger than ``blob`` of the frame (at the mask's size, as it is
    scored; None where the split has no such frame). From one pass over the images.

    How an operating point is chosen under a cap on false foot where there is none (a threshold stage's
    ``max_blob_rate``): the IoU alone pays little for a blob on an empty frame, which a live camera shows as a foot.
    """
    if batch_size < 1:
        raise FootsegError(f"batch size must be at least 1, got {batch_size}")
    try:
        for t in thresholds:
            check_threshold(t)
        for p in peaks:
            check_region_peak(p or None)
        # a gate lets a frame through where some pixel exceeds it, compared in the map's float32 as gate_presence does
        gates = np.asarray([check_presence(p or None) or 0.0 for p in presences], np.float32)
    except ValueError as exc:
        raise FootsegError(str(exc)) from exc
    predictor = as_predictor(model).at_region_peak(0).at_presence(0)
    samples = labelled_samples(data, split)
    shape = (len(thresholds), len(peaks), len(presences))
    inter, union, blobs = (np.zeros(shape, np.int64) for _ in range(3))
    empty = 0
    for start in range(0, len(samples), batch_size):
        chunk = samples[start : start + batch_size]
        images, masks = zip(*(read_sample(s, scaled_mask=True) for s in chunk), strict=True)
        for prob, image, mask in zip(predictor.network_proba(images), images, masks, strict=True):
            truth = mask > 0
            feet = np.count_nonzero(truth)
            empty += feet == 0
            # the presences that let this frame through: the gate reads the map after the region peak, whose maximum
            # is the raw map's (keep_confident_regions never clears the most confident pixel)
            shown = (prob.max() > gates) | (gates == 0)
            for j, peak in enumerate(peaks):
                # resized as predict_batch and predictions resize: to the photo, then to its mask's size
                whole = None if peak else resize_proba(resize_proba(prob, image.shape[:2]), truth.shape)
                for i, threshold in enumerate(thresholds):
                    if whole is None:
                        kept = keep_confident_regions(prob, threshold, peak)
                        found = resize_proba(resize_proba(kept, image.shape[:2]), truth.shape) > threshold
                    else:
                        found = whole > threshold
                    inter[i, j, shown] += np.count_nonzero(found & truth)
                    union[i, j, shown] += np.count_nonzero(found | truth)
                    union[i, j, ~shown] += feet  # a gated frame shows no foot
                    if not feet:
                        blobs[i, j, shown] += largest_region(found) > blob * found.size
    return {(float(t), float(p), float(q)): (float(inter[i, j, k] / union[i, j, k]) if union[i, j, k] else 1.0,
                                             float(blobs[i, j, k] / empty) if empty else None)
            for i, t in enumerate(thresholds) for j, p in enumerate(peaks) for k, q in enumerate(presences)}


def predictions(predictor: Predictor, samples: Sequence[Sample], batch_size: int,
                unlike_labels: list[str] | None = None,
                grey: list[str] | None = None) -> Iterator[tuple[Sample, np.ndarray, np.ndarray]]:
    """(sample, foot probability at its mask's size, uint8 {0, 1} target) for each sample, in batches. The paths of
    masks that are not label masks (``is_label_mask``) go into ``unlike_labels``, and those of photos without colour
    (``is_grey``) into ``grey``, when given."""
    for start in range(0, len(samples), batch_size):
        chunk = samples[start : start + batch_size]
        images, masks = zip(*(read_sample(s, scaled_mask=True) for s in chunk), strict=True)
        if grey is not None:
            grey += [str(s.image) for s, image in zip(chunk, images, strict=True) if is_grey(image)]
        for sample, prob, mask in zip(chunk, predictor.predict_batch(images), masks, strict=True):
            if unlike_labels is not None and not is_label_mask(mask):
                unlike_labels.append(str(sample.mask))
            yield sample, resize_proba(prob, mask.shape[:2]), (mask > 0).astype(np.uint8)

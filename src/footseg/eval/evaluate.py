"""Scoring a saved model on a dataset folder: pixel accuracy, foot IoU and mean IoU over the whole dataset.

Predictions are made at the network's input size and resized back to each mask's own size, so photos of any size
(e.g. 640x480 phone photos) are scored at full resolution, against the masks as they were drawn.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from footseg.data.dataset import Sample, find_samples, split_folder
from footseg.data.io import read_image, read_mask
from footseg.errors import FootsegError
from footseg.metrics import ConfusionMeter
from footseg.models.saved import SavedModelInfo
from footseg.runtime.predictor import Predictor, as_predictor, resize_proba, to_mask


def labelled_samples(data: str | Path, split: str = "test") -> list[Sample]:
    """Samples of ``data`` (its ``split`` when it has splits, else the flat folder); every image must have a mask."""
    folder = split_folder(Path(data), split)
    samples = find_samples(folder)
    if not samples:
        raise FootsegError("no images found (expected images/*.jpg|png and masks/*.png)", folder)
    for sample in samples:
        if sample.mask is None:
            raise FootsegError(f"image has no mask (expected masks/{sample.stem}.png)", sample.image)
    return samples


def evaluate(
    model: str | Path | Predictor | tuple[nn.Module, SavedModelInfo],
    data: str | Path,
    split: str = "test",
    batch_size: int = 8,
) -> dict:
    """Scores of ``model`` on ``data``: accuracy, iou (foot), miou, n (images) and per_image.

    Accuracy and IoU are dataset-level: confusion counts are summed over every pixel of every image before dividing,
    so large photos weigh more than small ones. ``per_image`` lists {stem, iou, accuracy} for each image.
    """
    if batch_size < 1:
        raise FootsegError(f"batch size must be at least 1, got {batch_size}")
    samples = labelled_samples(data, split)  # check every mask exists before spending time on the model
    predictor = as_predictor(model)
    total = ConfusionMeter()
    per_image: list[dict] = []
    for start in range(0, len(samples), batch_size):
        chunk = samples[start : start + batch_size]
        images = [read_image(s.image) for s in chunk]
        masks = [read_mask(s.mask) for s in chunk]
        for sample, prob, mask in zip(chunk, predictor.predict_batch(images), masks, strict=True):
            pred = to_mask(resize_proba(prob, mask.shape[:2]))
            meter = ConfusionMeter()
            meter.update(torch.from_numpy(pred), torch.from_numpy((mask > 0).astype(np.uint8)))
            total.counts += meter.counts
            scores = meter.compute()
            per_image.append({"stem": sample.stem, "iou": scores["iou"], "accuracy": scores["accuracy"]})
    return {**total.compute(), "n": len(samples), "per_image": per_image}

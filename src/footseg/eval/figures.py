"""Prediction pictures: a grid of photos, true masks and each model's prediction (the thesis's Figure 4.1), and
the worst images of a dataset for a model, which is where to look to improve it.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from footseg.data.io import write_png
from footseg.data.samples import read_sample
from footseg.eval.evaluate import evaluate, labelled_samples
from footseg.eval.predict import overlay_mask
from footseg.metrics import binary_scores
from footseg.runtime.predictor import ModelLike, Predictor, as_predictor, resize_proba, to_mask

_TILE = 176  # side of one picture in the figure, in pixels
_LABEL_W = 150  # width of the row-label column
_HEADER_H = 56
_GAP = 4
_BG = (255, 255, 255)
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _fit_box(h: int, w: int, side: int = _TILE) -> tuple[int, int, int, int]:
    """Where ``_fit`` puts an h x w image in its tile: (x, y, width, height)."""
    scale = side / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    return (side - nw) // 2, (side - nh) // 2, nw, nh


def _fit(image: np.ndarray, side: int = _TILE) -> np.ndarray:
    """Scale an image (or a mask) to fit a side x side tile, keeping its aspect ratio, centred on white (or 0)."""
    h, w = image.shape[:2]
    scale = side / max(h, w)
    x, y, nw, nh = _fit_box(h, w, side)
    if image.ndim == 2:  # label map: nearest, so no new values; the letterbox is background
        small = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_NEAREST)
        tile = np.zeros((side, side), dtype=image.dtype)
    else:
        small = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        tile = np.full((side, side, 3), _BG, dtype=np.uint8)
    tile[y : y + nh, x : x + nw] = small
    return tile


def _overlay_tile(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Overlay drawn at tile scale, so the outline stays crisp however large the photo."""
    return overlay_mask(_fit(image), _fit(mask))


def _text(canvas: np.ndarray, text: str, x: int, y: int, scale: float = 0.5, bold: bool = False) -> None:
    cv2.putText(canvas, text, (x, y), _FONT, scale, (0, 0, 0), 2 if bold else 1, cv2.LINE_AA)


def _caption(tile: np.ndarray, text: str, box: tuple[int, int, int, int] | None = None) -> None:
    """A small white label in the bottom-left corner of the picture (``box``, as ``_fit_box`` gives it; default the
    whole tile), e.g. the IoU of that prediction: on the photo, not in the margin beside a portrait one."""
    x, y, _, h = box or (0, 0, tile.shape[1], tile.shape[0])
    (tw, th), base = cv2.getTextSize(text, _FONT, 0.45, 1)
    bottom = y + h
    cv2.rectangle(tile, (x, bottom - th - base - 6), (x + tw + 8, bottom), (255, 255, 255), -1)
    cv2.putText(tile, text, (x + 4, bottom - base - 3), _FONT, 0.45, (0, 0, 0), 1, cv2.LINE_AA)


def prediction_grid(models: list[tuple[str, Predictor]], samples: list, title: str, out: Path) -> Path:
    """A PNG grid: input photos, ground truth, then one row of predictions (with per-image IoU) per model."""
    pairs = [read_sample(s, scaled_mask=True) for s in samples]
    images = [image for image, _ in pairs]
    masks = [(mask > 0).astype(np.uint8) for _, mask in pairs]
    rows: list[tuple[str, list[np.ndarray]]] = [
        ("input photo", [_fit(im) for im in images]),
        ("ground truth", [_overlay_tile(im, m) for im, m in zip(images, masks, strict=True)]),
    ]
    for label, predictor in models:
        tiles = []
        for image, mask, prob in zip(images, masks, predictor.predict_batch(images), strict=True):
            pred = to_mask(resize_proba(prob, mask.shape), predictor.threshold)
            tile = _overlay_tile(image, pred)
            _caption(tile, f"IoU {100 * binary_scores(pred, mask)['iou']:.0f}%",
                     _fit_box(*mask.shape))
            tiles.append(tile)
        rows.append((label, tiles))

    cols = len(images)
    label_w = max(_LABEL_W, *(cv2.getTextSize(label, _FONT, 0.5, 2)[0][0] + 16 for label, _ in rows))
    width = max(label_w + cols * (_TILE + _GAP), 560)  # room for the title lines
    height = _HEADER_H + len(rows) * (_TILE + _GAP)
    canvas = np.full((height, width, 3), _BG, dtype=np.uint8)
    _text(canvas, title, 8, 22, 0.6, bold=True)
    _text(canvas, "green = foot; each row below ground truth is one model's prediction", 8, 44, 0.45)
    for r, (label, tiles) in enumerate(rows):
        y = _HEADER_H + r * (_TILE + _GAP)
        _text(canvas, label, 8, y + _TILE // 2 + 5, 0.5, bold=r >= 2)
        for c, tile in enumerate(tiles):
            x = label_w + c * (_TILE + _GAP)
            canvas[y : y + _TILE, x : x + _TILE] = tile
    write_png(out, canvas)
    return out


def worst_cases_figure(model: ModelLike | Predictor, data: str | Path, out: str | Path, k: int = 5,
                       split: str = "test", scores: dict | None = None, threshold: float | None = None) -> Path:
    """The ``k`` images of ``data`` with the lowest IoU, with their predictions: where to look to improve a model.

    ``scores`` (an ``evaluate`` result on the same data, at the same ``threshold``) saves scoring the whole set
    again; ``threshold`` None is the model's own."""
    predictor = as_predictor(model).at_threshold(threshold)
    scores = scores or evaluate(predictor, data, split=split)
    worst = [r["stem"] for r in sorted(scores["per_image"], key=lambda r: r["iou"])[:k]]
    by_stem = {s.stem: s for s in labelled_samples(data, split)}
    title = f"The {len(worst)} worst images"
    return prediction_grid([(predictor.label, predictor)], [by_stem[s] for s in worst], title, Path(out))

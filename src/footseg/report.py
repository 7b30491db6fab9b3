"""The thesis's results chapter for trained models: Table 4.1 (cost), Table 4.2 (quality) and Figure 4.1 (pictures).

``write_report`` writes ``out/README.md`` (tables and explanations), ``out/report.json`` (every number) and
``out/figure_4_1.png`` (inputs, ground truth and each model's prediction; ``figure_4_1_real.png`` for real photos).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import torch

from footseg.data.io import read_image, read_mask, write_png
from footseg.errors import FootsegError
from footseg.eval.bench import measure_model
from footseg.eval.evaluate import evaluate, labelled_samples
from footseg.eval.inference import Predictor, to_mask
from footseg.eval.metrics import binary_scores
from footseg.eval.predict import overlay_mask
from footseg.models.saved import CONFIG_NAME, PRETRAINED_DIR, WEIGHTS_NAME

FIGURE_IMAGES = 6
_TILE = 176  # side of one picture in the figure, in pixels
_LABEL_W = 150  # width of the row-label column
_HEADER_H = 56
_GAP = 4
_BG = (255, 255, 255)
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_DASH = "—"


@dataclass
class _Entry:
    """One model of the report: where it came from and everything measured about it."""

    label: str
    folder: Path  # the saved model folder
    run: Path | None  # the run folder, when given one
    predictor: Predictor
    cost: dict = field(default_factory=dict)
    test: dict | None = None
    real: dict | None = None
    history: dict | None = None


def _resolve(path: Path) -> tuple[Path, Path | None]:
    """(saved model folder, run folder or None) for a run folder (with best/) or a saved model folder."""
    if (path / "best" / CONFIG_NAME).is_file():
        return path / "best", path
    if (path / WEIGHTS_NAME).is_file():
        run = path.parent if path.name == "best" and (path.parent / "history.json").is_file() else None
        return path, run
    raise FootsegError(
        "expected a run folder with best/ or a saved model folder (config.json + model.safetensors)", path
    )


def _read_history(path: Path) -> dict | None:
    """Summary of RUN/history.json: epochs, best epoch by validation IoU, and the validation IoU curve."""
    if not path.is_file():
        return None
    try:
        rows = json.loads(path.read_text())
        curve = [(int(r["epoch"]), float(r["val_iou"])) for r in rows]
        losses = [float(r["train_loss"]) for r in rows if "train_loss" in r]
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise FootsegError(f"invalid training history ({type(exc).__name__}: {exc})", path) from exc
    if not curve:
        return None
    best_epoch, best_iou = max(curve, key=lambda c: c[1])
    return {
        "epochs": len(curve),
        "best_epoch": best_epoch,
        "best_val_iou": best_iou,
        "final_train_loss": losses[-1] if losses else None,
        "val_iou": [iou for _, iou in curve],
    }


def _scores(scores: dict | None) -> dict | None:
    return None if scores is None else {k: scores[k] for k in ("accuracy", "iou", "miou", "n", "per_image")}


def _pct(scores: dict | None, key: str) -> str:
    return _DASH if scores is None else f"{100 * scores[key]:.1f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# --- figure -----------------------------------------------------------------------------------------------------


def _fit(image: np.ndarray, side: int = _TILE) -> np.ndarray:
    """Scale an image (or a mask) to fit a side x side tile, keeping its aspect ratio, centred on white (or 0)."""
    h, w = image.shape[:2]
    scale = side / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    if image.ndim == 2:  # label map: nearest, so no new values; the letterbox is background
        small = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_NEAREST)
        tile = np.zeros((side, side), dtype=image.dtype)
    else:
        small = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        tile = np.full((side, side, 3), _BG, dtype=np.uint8)
    y, x = (side - nh) // 2, (side - nw) // 2
    tile[y : y + nh, x : x + nw] = small
    return tile


def _overlay_tile(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Overlay drawn at tile scale, so the outline stays crisp however large the photo."""
    return overlay_mask(_fit(image), _fit(mask))


def _text(canvas: np.ndarray, text: str, x: int, y: int, scale: float = 0.5, bold: bool = False) -> None:
    cv2.putText(canvas, text, (x, y), _FONT, scale, (0, 0, 0), 2 if bold else 1, cv2.LINE_AA)


def _caption(tile: np.ndarray, text: str) -> None:
    """A small white label in the tile's bottom-left corner (e.g. the IoU of that prediction)."""
    (tw, th), base = cv2.getTextSize(text, _FONT, 0.45, 1)
    y0 = tile.shape[0] - th - base - 6
    cv2.rectangle(tile, (0, y0), (tw + 8, tile.shape[0]), (255, 255, 255), -1)
    cv2.putText(tile, text, (4, tile.shape[0] - base - 3), _FONT, 0.45, (0, 0, 0), 1, cv2.LINE_AA)


def _pick(samples: list, k: int) -> list:
    """``k`` samples spread evenly over the (sorted) list, so the figure is reproducible."""
    if len(samples) <= k:
        return samples
    return [samples[round(i * (len(samples) - 1) / (k - 1))] for i in range(k)] if k > 1 else samples[:1]


def _figure(entries: list[_Entry], data: Path, split: str, title: str, out: Path) -> Path:
    return prediction_grid([(e.label, e.predictor) for e in entries], _pick(labelled_samples(data, split),
                           FIGURE_IMAGES), title, out)


def prediction_grid(models: list[tuple[str, Predictor]], samples: list, title: str, out: Path) -> Path:
    """A PNG grid: input photos, ground truth, then one row of predictions (with per-image IoU) per model."""
    images = [read_image(s.image) for s in samples]
    masks = [(read_mask(s.mask) > 0).astype(np.uint8) for s in samples]
    rows: list[tuple[str, list[np.ndarray]]] = [
        ("input photo", [_fit(im) for im in images]),
        ("ground truth", [_overlay_tile(im, m) for im, m in zip(images, masks, strict=True)]),
    ]
    for label, predictor in models:
        tiles = []
        for image, mask, prob in zip(images, masks, predictor.predict_batch(images), strict=True):
            pred = to_mask(cv2.resize(prob, mask.shape[::-1], interpolation=cv2.INTER_LINEAR))
            tile = _overlay_tile(image, pred)
            _caption(tile, f"IoU {100 * binary_scores(torch.from_numpy(pred), torch.from_numpy(mask))['iou']:.0f}%")
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


def worst_cases_figure(model: str | Path | Predictor, data: str | Path, out: str | Path, k: int = 5,
                       split: str = "test", scores: dict | None = None) -> Path:
    """The ``k`` images of ``data`` with the lowest IoU, with their predictions: where to look to improve a model.

    ``scores`` (an ``evaluate`` result on the same data) saves scoring the whole set again."""
    predictor = model if isinstance(model, Predictor) else Predictor(model)
    scores = scores or evaluate(predictor, data, split=split)
    worst = [r["stem"] for r in sorted(scores["per_image"], key=lambda r: r["iou"])[:k]]
    by_stem = {s.stem: s for s in labelled_samples(data, split)}
    label = predictor.folder.name if predictor.folder else "model"
    return prediction_grid([(label, predictor)], [by_stem[s] for s in worst], f"The {len(worst)} worst images",
                           Path(out))


# --- report -----------------------------------------------------------------------------------------------------


def _labels(models: list[str], folders: list[Path]) -> list[str]:
    """Model names; a shipped model is "name (shipped)", and runs sharing a name get their run folder's name."""
    shipped = [folder.resolve().parent == PRETRAINED_DIR.resolve() for folder in folders]
    trained = [name for name, ship in zip(models, shipped, strict=True) if not ship]
    out = []
    for name, folder, ship in zip(models, folders, shipped, strict=True):
        where = "shipped" if ship else folder.parent.name if folder.name == "best" else folder.name
        out.append(f"{name} ({where})" if ship or trained.count(name) > 1 else name)
    return out


def _markdown(entries: list[_Entry], test_data: Path | None, real_data: Path | None, figures: dict[str, str]) -> str:
    created = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    cost_rows = []
    for e in entries:
        c = e.cost
        h, w = e.predictor.input_size
        cost_rows.append(
            [
                e.label,
                f"{h}x{w}",
                f"{c['params'] / 1e6:.3f} M",
                f"{c['gflops']:.3f}",
                f"{c['size_mb']:.2f}",
                f"{c['latency_ms']:.1f}",
            ]
        )
    quality_rows = [
        [e.label, _pct(e.test, "accuracy"), _pct(e.test, "iou"), _pct(e.real, "accuracy"), _pct(e.real, "iou")]
        for e in entries
    ]
    parts = [
        "# footseg results",
        "",
        f"Generated {created} by `footseg report` from {len(entries)} model(s). All numbers are also in "
        "[report.json](report.json).",
        "",
        "## Table 4.1 — cost of each model",
        "",
        "Measured on this machine's CPU with one thread, at the size each model was trained at (Input). "
        "Params: trainable weights; GFLOPs: multiply-adds x2 for one image; Size: weights on disk (float32).",
        "",
        _table(["Model", "Input", "Params", "GFLOPs", "Size (MB)", "CPU latency (ms, 1 thread)"], cost_rows),
        "",
        "## Table 4.2 — segmentation quality (%)",
        "",
        "Accuracy: share of pixels labelled correctly. IoU: overlap of predicted and true foot area divided by "
        "their union (the stricter score: 100 is perfect, and a model that predicts no foot at all scores 0). "
        "Scores are over all pixels of all images, at each photo's own resolution. "
        f"Test: {f'`{test_data}`' if test_data else 'not given'}. "
        f"Real: {f'`{real_data}`' if real_data else 'not given'}. {_DASH} = dataset not given.",
        "",
        _table(["Model", "Test accuracy", "Test IoU", "Real accuracy", "Real IoU"], quality_rows),
        "",
    ]
    for key, caption in (
        ("test", "Figure 4.1 — test images"),
        ("real", "Figure 4.1 (real photos)"),
    ):
        if key in figures:
            parts += [
                f"## {caption}",
                "",
                "Top row: input photos; second row: the true foot mask (green); then one row per model, each "
                "picture labelled with that prediction's IoU.",
                "",
                f"![{caption}]({figures[key]})",
                "",
            ]
    trained = [e for e in entries if e.history]
    if trained:
        rows = []
        for e in trained:
            h = e.history
            curve = " → ".join(f"{100 * v:.0f}" for v in h["val_iou"])
            loss = _DASH if h["final_train_loss"] is None else f"{h['final_train_loss']:.3f}"
            rows.append(
                [e.label, str(h["epochs"]), str(h["best_epoch"]), f"{100 * h['best_val_iou']:.1f}", loss, curve]
            )
        parts += [
            "## Training",
            "",
            "From each run's history.json. The saved model (best/) is the epoch with the best validation IoU.",
            "",
            _table(
                ["Model", "Epochs", "Best epoch", "Best val IoU (%)", "Last train loss", "Val IoU per epoch (%)"], rows
            ),
            "",
        ]
    return "\n".join(parts)


def write_report(
    runs: list[str | Path],
    out: str | Path,
    test_data: str | Path | None = None,
    real_data: str | Path | None = None,
    bench_runs: int = 20,
) -> Path:
    """Write ``out/README.md``, ``out/report.json`` and the figures for ``runs``; returns the README path.

    ``runs``: run folders (with best/ and history.json) or saved model folders. ``test_data``: a dataset whose test
    split (or flat folder) is scored; ``real_data``: a flat folder of real photos with masks.
    """
    if not runs:
        raise FootsegError("no runs given to report on")
    test_data = Path(test_data) if test_data else None
    real_data = Path(real_data) if real_data else None
    # Check every dataset before the slow work, so a typo fails in a second.
    for data in (test_data, real_data):
        if data is not None:
            labelled_samples(data)
    resolved = [_resolve(Path(r)) for r in runs]
    predictors = [Predictor(folder) for folder, _ in resolved]
    labels = _labels([p.name for p in predictors], [folder for folder, _ in resolved])
    entries = [
        _Entry(label=label, folder=folder, run=run, predictor=p)
        for label, (folder, run), p in zip(labels, resolved, predictors, strict=True)
    ]
    for e in entries:  # the quick checks first: a bad folder fails before minutes of benchmarking
        h, w = e.predictor.input_size
        if h != w:
            raise FootsegError(f"benchmark needs a square input size, got {h}x{w}", e.folder / CONFIG_NAME)
        e.history = _read_history(e.run / "history.json") if e.run else None
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for e in entries:
        size = e.predictor.input_size[0]
        e.cost = dict(measure_model(e.predictor.model, size=size, threads=1, runs=bench_runs))
        e.test = _scores(evaluate(e.predictor, test_data)) if test_data else None
        e.real = _scores(evaluate(e.predictor, real_data)) if real_data else None

    figures: dict[str, str] = {}
    if test_data:
        figures["test"] = _figure(entries, test_data, "test", "Figure 4.1: test images", out / "figure_4_1.png").name
    if real_data:
        name = "figure_4_1_real.png"
        figures["real"] = _figure(entries, real_data, "test", "Figure 4.1: real photos", out / name).name

    report = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "test_data": str(test_data) if test_data else None,
        "real_data": str(real_data) if real_data else None,
        "figures": figures,
        "models": [
            {
                "label": e.label,
                "model": e.predictor.name,
                "folder": str(e.folder),
                "input_size": list(e.predictor.input_size),
                **e.cost,
                "test": e.test,
                "real": e.real,
                "history": e.history,
            }
            for e in entries
        ],
    }
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    readme = out / "README.md"
    readme.write_text(_markdown(entries, test_data, real_data, figures) + "\n")
    return readme

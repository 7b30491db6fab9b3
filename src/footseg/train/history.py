"""A training run's ``history.json``: one entry per finished epoch, written by the trainer and read by everyone else.

Each entry holds at least ``epoch`` and ``val_iou`` (foot IoU on the synthetic validation split), plus the training
loss and throughput of that epoch. The file is rewritten atomically after every epoch, so a reader never sees half
of it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from footseg.atomic import atomic_write_bytes
from footseg.errors import FootsegError

HISTORY = "history.json"


def write_history(run: Path, history: list[dict[str, Any]]) -> None:
    atomic_write_bytes(Path(run) / HISTORY, (json.dumps(history, indent=2) + "\n").encode())


def read_history(run: str | Path) -> list[dict[str, Any]] | None:
    """The epochs of the run folder ``run``, None when it has no history yet; a ``FootsegError`` naming the file when
    it cannot be read, an epoch lacks its number or validation IoU, or a number is not one."""
    path = Path(run) / HISTORY
    if not path.is_file():
        return None
    try:
        rows = json.loads(path.read_text())
        if not isinstance(rows, list):
            raise TypeError("not a list of epochs")
        for row in rows:
            int(row["epoch"]), float(row["val_iou"]), float(row.get("train_loss", 0.0))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise FootsegError(f"invalid training history ({type(exc).__name__}: {exc})", path) from exc
    return rows


def best_val_iou(run: str | Path) -> float:
    """The best synthetic validation foot IoU of a training run."""
    rows = read_history(run)
    if not rows:
        raise FootsegError("no validation IoU to choose by (no finished epoch)", Path(run) / HISTORY)
    return max(float(row["val_iou"]) for row in rows)

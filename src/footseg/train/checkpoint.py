"""Training checkpoints: one ``torch.save`` file written atomically and read back with ``weights_only=True``.

A checkpoint holds only tensors, numbers, strings, lists and dicts (optimizer and scheduler ``state_dict``s included),
so loading one cannot run code. Random-number-generator states are converted to tensors by ``rng_state``.
"""

from __future__ import annotations

import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from footseg.atomic import atomic_path
from footseg.errors import FootsegError


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` so that a crash at any moment leaves either the old or the new file, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint onto the CPU. A missing, corrupt or foreign file raises ``FootsegError`` naming it."""
    path = Path(path)
    if not path.is_file():
        raise FootsegError("no such checkpoint", path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many types (pickle, zip, EOF, runtime) for a damaged file
        # An unpickling failure's message advises loading with weights_only=False, which runs whatever the file holds:
        # no advice to pass on for a file footseg wrote and something damaged.
        first = ("damaged, or not a checkpoint footseg wrote" if isinstance(exc, pickle.UnpicklingError)
                 else (str(exc).strip().splitlines() or [""])[0][:200])
        raise FootsegError(f"unreadable checkpoint ({type(exc).__name__}: {first})", path) from exc
    if not isinstance(state, dict):
        raise FootsegError(f"not a footseg checkpoint (holds a {type(state).__name__}, expected a dict)", path)
    return state


def rng_state() -> dict[str, Any]:
    """The torch, CUDA, NumPy and Python generator states as tensors and numbers (``weights_only``-loadable)."""
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": str(np_kind),
            "keys": torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "gauss": float(np_gauss),
        },
        "python": {"version": py_version, "internal": torch.tensor(py_internal, dtype=torch.int64), "gauss": py_gauss},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the generators saved by ``rng_state``."""
    torch.set_rng_state(state["torch"])
    np_state = state["numpy"]
    np.random.set_state(
        (
            np_state["kind"],
            np_state["keys"].numpy().astype(np.uint32),
            np_state["pos"],
            np_state["has_gauss"],
            np_state["gauss"],
        )
    )
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["internal"].tolist()), py["gauss"]))
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])

"""The one reading of a ``--device`` option: ``auto`` (cuda where there is one, else cpu), ``cpu`` or ``cuda``."""

from __future__ import annotations

import torch

from footseg.errors import FootsegError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> str:
    """``cpu`` or ``cuda`` for a ``--device`` value; a user error for an unknown name or a missing CUDA device."""
    if name not in DEVICES:
        raise FootsegError(f"unknown device '{name}'; choose {', '.join(DEVICES[:-1])} or {DEVICES[-1]}")
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise FootsegError("--device cuda was asked for but no CUDA device is available")
    return name

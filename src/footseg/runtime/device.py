"""The one reading of a ``--device`` option: ``auto`` (cuda where there is one, else cpu), ``cpu`` or ``cuda``; and
how many threads a network runs on a CPU.

torch is imported only where its answer is needed: its import is most of a short command's start-up (about 1.5 s
of ``footseg predict`` on one photo), and a CPU-only build of it has no CUDA device to find.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from pathlib import Path

from footseg.errors import FootsegError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> str:
    """``cpu`` or ``cuda`` for a ``--device`` value; a user error for an unknown name or a missing CUDA device."""
    if name not in DEVICES:
        raise FootsegError(f"unknown device '{name}'; choose {', '.join(DEVICES[:-1])} or {DEVICES[-1]}")
    if name == "auto":
        return "cuda" if _cuda_available() else "cpu"
    if name == "cuda" and not _cuda_available():
        raise FootsegError("--device cuda was asked for but no CUDA device is available")
    return name


def _cuda_available() -> bool:
    if sys.platform == "darwin" or _torch_version().endswith("+cpu"):  # builds without CUDA (PyTorch's CPU wheels)
        return False
    import torch

    return torch.cuda.is_available()


def _torch_version() -> str:
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return ""


def cpu_threads() -> int:
    """The threads a network runs on a CPU unless told otherwise, as PyTorch would run it: torch's own count where
    torch is loaded (a caller may have set it), else ``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS`` where set (as torch
    reads them), else 0, which ONNX Runtime reads as its own default, one thread per physical core (PyTorch's default
    too)."""
    torch = sys.modules.get("torch")
    if torch is not None:
        return torch.get_num_threads()
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return 0


def cpu_model() -> str:
    """The CPU's model name as Linux reports it, else what the platform module knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()

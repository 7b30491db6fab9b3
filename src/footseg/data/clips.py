"""Clips as data: short videos stored as folders of frames, for live-video modes (per-frame IoU, flicker).

A clip is a folder ``<clip>/images/<frame>.jpg`` (or another photo format) + ``<clip>/masks/<frame>.png``, the
dataset format of one folder (``samples.find_samples``), its frames in the order of their names (so name them
``000``, ``001``, ... or ``f000``, ...). A clip dataset is a folder of clips, or has ``train/``, ``val/``, ``test/``
folders of clips (``footseg synth --clips`` writes those). ``footseg check`` validates clip datasets too (``check.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from footseg.data.io import IMAGE_HINT, read_image
from footseg.data.samples import SPLITS, Sample, find_samples, has_splits, read_sample, split_folder
from footseg.errors import FootsegError, require_folder


@dataclass
class Clip:
    """One clip: its name (the folder's), its folder and its frames in order (a frame's mask is None if missing)."""

    name: str
    folder: Path
    frames: list[Sample]

    def __len__(self) -> int:
        return len(self.frames)

    def read(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Frame ``index`` decoded: (RGB uint8 (H, W, 3), raw mask uint8 (H, W) or None when it has no mask)."""
        frame = self.frames[index]
        if frame.mask is None:
            return read_image(frame.image), None
        return read_sample(frame, scaled_mask=True)


def clip_folders(folder: Path) -> list[Path]:
    """The clips directly inside ``folder`` (sub-folders holding ``images/``), sorted by name, hidden ones skipped."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / "images").is_dir())


def is_clip_dataset(root: Path) -> bool:
    """True when ``root`` is a folder of clips, or its split folders are: clips inside, no ``images/`` of their own
    (an ``images/`` folder makes a dataset of still images, whatever else is there)."""
    root = Path(root)
    if not root.is_dir():
        return False
    folders = [root / s for s in SPLITS if (root / s).is_dir()] if has_splits(root) else [root]
    return not any((f / "images").is_dir() for f in folders) and any(clip_folders(f) for f in folders)


def clips_in(folder: Path) -> list[Clip]:
    """The clips directly in ``folder`` (no split handling), in name order; none where it holds none."""
    return [Clip(p.name, p, find_samples(p)) for p in clip_folders(folder)]


def find_clips(root: Path, split: str = "test") -> list[Clip]:
    """The clips of a clip dataset: those of ``root/split`` when ``root`` has splits, else those of ``root`` itself
    (a flat folder of clips stands for any split, as a flat dataset does); ``root`` a clip itself: that one clip."""
    root = Path(root)
    require_folder(root, "clip dataset folder")
    if (root / "images").is_dir() and not has_splits(root):  # one clip, as `footseg video` takes it
        return [Clip(root.name, root, find_samples(root))]
    folder = split_folder(root, split) if has_splits(root) else root
    clips = clips_in(folder)
    if not clips:
        inside = " (this is a clip's images/ folder: name the clip, its parent)" if root.name == "images" else ""
        raise FootsegError(f"no clips here (expected <clip>/images/<frame>.{IMAGE_HINT} and <clip>/masks/<frame>.png)"
                           + inside, folder)
    return clips

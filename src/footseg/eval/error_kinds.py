"""A model's error on a photo split by where it lies: missed foot, false foot beside the foot, false foot far from it.

Held-out real photos fail mostly in the third way (blobs of floor far from the foot marked as foot), so the split says
how much a lever against that kind can move a synthetic validation score (benchmarks/error_kinds.py prints it).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# A foot region larger than this share of the frame, in a frame with no foot, is a blob: what a live camera pointed at
# a bare floor shows as a foot (benchmarks/empty_floors.py counts them; a threshold stage can cap their rate).
BLOB = 0.005


@dataclass
class ErrorKinds:
    """Pixel counts of one image or a sum of them."""

    intersection: int = 0
    union: int = 0
    missed: int = 0
    false_beside: int = 0
    false_far: int = 0

    def __add__(self, other: ErrorKinds) -> ErrorKinds:
        return ErrorKinds(*(a + b for a, b in zip(vars(self).values(), vars(other).values(), strict=True)))


def error_kinds(pred: np.ndarray, foot: np.ndarray, near: float = 0.05) -> tuple[ErrorKinds, np.ndarray]:
    """The error pixels of boolean masks ``pred`` against the true ``foot``, and the far false-foot mask.

    A false-foot pixel is beside the foot within ``near`` of the short side of a true foot pixel: the fringe a
    boundary error leaves, which no region-level lever removes, against the blobs far away that one might.
    """
    radius = max(1, round(near * min(foot.shape)))
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    beside = cv2.dilate(foot.astype(np.uint8), disc) > 0
    false_foot = pred & ~foot
    far = false_foot & ~beside
    counts = ErrorKinds(int((pred & foot).sum()), int((pred | foot).sum()), int((foot & ~pred).sum()),
                        int((false_foot & beside).sum()), int(far.sum()))
    return counts, far


def iou(counts: ErrorKinds) -> float:
    """Foot IoU of summed counts; 1.0 where neither mask has foot, as ``footseg eval`` scores it."""
    return counts.intersection / counts.union if counts.union else 1.0


def largest_region(mask: np.ndarray) -> int:
    """Pixels in the largest 8-connected region of ``mask`` (0 when empty)."""
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    return int(stats[1:, cv2.CC_STAT_AREA].max()) if n > 1 else 0

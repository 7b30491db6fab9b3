"""Segmenting video: one small state object that carries what a frame needs from the one before.

Three modes, one interface (``VideoSegmenter.step(frame) -> probability``), used the same way by ``footseg video``,
``footseg live``, ``footseg eval --clips`` and, mirrored in JavaScript, by the web page:

- ``per-frame``: every frame alone, as a photo.
- ``smooth``: MediaPipe's segmentation smoothing. The new probability ``p`` is pulled towards the previous output
  in proportion to its uncertainty: ``out = p + (prev - p) * u(p) * ratio``, ``u(p) = H(p)^2`` with ``H`` the binary
  entropy in bits (1 at p = 0.5, 0 at p = 0 or 1). Confident pixels follow the new frame; unsure ones keep
  momentum. It needs no training, but it lags a moving camera.
- ``prior``: a prior-mask network (``in_channels`` 4, Google's 2018 mobile video segmenter) gets the previous
  frame's output as its 4th input and learnt to follow it where the image agrees and overrule it where not; its
  output is then smoothed as above (``ratio`` 0 turns that off), and that smoothed map is both what is shown and the
  next frame's prior. On synthetic validation clips the two together flickered less at a higher IoU than either
  alone (benchmarks/README.md, "Live video").

State lives at the network's input resolution (what the network reads and writes), so a frame costs one resize up
for the caller's mask and nothing more.
"""

from __future__ import annotations

import numpy as np

from footseg.errors import FootsegError
from footseg.runtime.predictor import Predictor, resize_proba, to_mask

MODES = ("per-frame", "smooth", "prior")
# The smoothing ratio of each mode when none is given, both chosen on synthetic validation clips (benchmarks/README.md,
# "Live video"): 1.0 flickered least at the best IoU, for a still model's output and for a prior network's.
# (MediaPipe's selfie segmentation example uses 0.7.)
DEFAULT_RATIOS = {"smooth": 1.0, "prior": 1.0}


def default_mode(takes_prior: bool) -> str:
    """How footseg runs a model on video unless told otherwise: with its prior input where it has one, else smoothed
    (on synthetic validation clips smoothing raised IoU a little and cut flicker by more than half)."""
    return "prior" if takes_prior else "smooth"


def video_mode(mode: str | None, smooth: float | None) -> tuple[str | None, float | None]:
    """(mode, ratio) from the ``--mode`` and ``--smooth R`` options: ``--smooth R`` alone means mode smooth with
    ratio R; with ``--mode prior`` it sets how much the prior network's output is smoothed (0: not at all)."""
    if smooth is None:
        return mode, None
    if mode == "per-frame":
        raise FootsegError("--smooth sets a smoothing ratio; --mode per-frame smooths nothing")
    return mode or "smooth", smooth


def smooth(new: np.ndarray, previous: np.ndarray, ratio: float) -> np.ndarray:
    """MediaPipe's uncertainty-weighted blend of a new probability map with the previous output (see module doc)."""
    p = np.clip(new, 1e-6, 1 - 1e-6)
    entropy = -(p * np.log2(p) + (1 - p) * np.log2(1 - p))
    return (new + (previous - new) * (entropy * entropy * ratio)).astype(np.float32)


def describe_mode(mode: str, ratio: float) -> str:
    """A video mode as a report names it: "smooth 0.7" (its ratio says how much), "prior, smooth 1" (a prior
    network's output smoothed too), "per-frame"."""
    if mode == "per-frame":
        return mode
    return f"smooth {ratio:g}" if mode == "smooth" else f"{mode}, smooth {ratio:g}"


class VideoSegmenter:
    """Foot probability for each frame of one video, in order; ``reset()`` before the next video.

    ``mode`` is one of ``MODES`` (default: ``default_mode``); ``ratio`` is the smoothing strength in [0, 1] (default:
    the mode's ``DEFAULT_RATIOS``).
    """

    def __init__(self, predictor: Predictor, mode: str | None = None, ratio: float | None = None):
        mode = mode or default_mode(predictor.takes_prior)
        ratio = DEFAULT_RATIOS.get(mode, 0.0) if ratio is None else ratio
        if mode not in MODES:
            raise FootsegError(f"unknown video mode '{mode}'; choose one of: {', '.join(MODES)}")
        if mode == "prior" and not predictor.takes_prior:
            raise FootsegError(f"{predictor.label} has no prior input; use --mode per-frame or smooth, or a model "
                               "trained with --prior")
        if not 0.0 <= ratio <= 1.0:
            raise FootsegError(f"the smoothing ratio must lie in [0, 1], got {ratio}")
        self.predictor, self.mode, self.ratio = predictor, mode, ratio
        self.previous: np.ndarray | None = None  # last output at the network's input size

    def reset(self) -> None:
        """Forget the previous frame: the next one starts a new video."""
        self.previous = None

    def step_small(self, frame: np.ndarray) -> np.ndarray:
        """The frame's foot probability at the network's input size, float32 (h, w); advances the state."""
        prior = [self.previous] if self.mode == "prior" else None
        prob = self.predictor.network_proba([frame], prior)[0]
        if self.mode != "per-frame" and self.previous is not None and self.ratio > 0:
            prob = smooth(prob, self.previous, self.ratio)
        if self.mode != "per-frame":
            self.previous = prob
        return prob

    def step(self, frame: np.ndarray) -> np.ndarray:
        """The foot probability of an (H, W, 3) uint8 RGB frame, float32 (H, W) at the frame's size."""
        return resize_proba(self.step_small(frame), frame.shape[:2])

    def step_mask(self, frame: np.ndarray) -> np.ndarray:
        """The frame's foot mask, uint8 (H, W) in {0, 1}, at the model's threshold; advances the state like ``step``."""
        return to_mask(self.step(frame), self.predictor.threshold)

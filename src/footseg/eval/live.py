"""``footseg live``: segment a camera's frames as they come and show the overlay and the frame rate in a window.

The loop (``run_live``) takes any iterable of frames and any sink, so it runs in tests without a camera or a display;
``live`` wires it to ``cv2.VideoCapture`` and ``cv2.imshow``. q or Esc, or closing the window, ends it.

footseg installs opencv-python-headless, which has no windows (highgui is built without a GUI backend), and a
server has no display: both are checked before the model is loaded or the camera opened, and reported in one line.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from footseg.errors import FootsegError
from footseg.eval.predict import overlay_mask
from footseg.runtime.predictor import ModelLike, Predictor, as_predictor
from footseg.runtime.temporal import VideoSegmenter

WINDOW = "footseg live (q or Esc quits)"
QUIT_KEYS = (ord("q"), 27)  # 27 = Esc
FPS_SMOOTHING = 0.1  # weight of the newest frame in the shown frame rate: steady enough to read, quick to follow

Sink = Callable[[np.ndarray, float], bool]


def gui_backend(build_information: str | None = None) -> str:
    """The GUI backend OpenCV was built with, as its build information says ('NONE' for the headless wheels)."""
    info = cv2.getBuildInformation() if build_information is None else build_information
    found = re.search(r"^\s*GUI:\s*(\S+)", info, re.MULTILINE)
    return found.group(1) if found else "unknown"


def display_problem() -> str | None:
    """Why no window can be shown here, in one line, or None when it looks possible."""
    if gui_backend().upper() == "NONE":
        return ("footseg live needs a window, and this OpenCV has no GUI support (opencv-python-headless, which "
                "footseg installs): `pip uninstall opencv-python-headless && pip install opencv-python` (one cv2 "
                "package at a time) gives it, or segment a recording with footseg video")
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return ("footseg live needs a display, and there is none (neither DISPLAY nor WAYLAND_DISPLAY is set): run it "
                "on a desktop session, or segment a recording with footseg video")
    return None


@dataclass
class LiveStats:
    """How a live session went: frames shown, wall time, and the mean frame rate over it."""

    frames: int
    seconds: float

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def run_live(segmenter: VideoSegmenter, frames: Iterable[np.ndarray], sink: Sink,
             clock: Callable[[], float] = time.perf_counter) -> LiveStats:
    """Segment ``frames`` (RGB uint8) in order and hand each overlay with the current frame rate to ``sink``.

    The rate is frame to frame, camera waits included (what the viewer sees), smoothed so it can be read. ``sink``
    returns False to stop.
    """
    start = last = clock()
    rate = 0.0
    count = 0
    for frame in frames:
        view = overlay_mask(frame, segmenter.step_mask(frame))
        now = clock()
        instant = 1.0 / max(now - last, 1e-6)
        rate = instant if count == 0 else (1 - FPS_SMOOTHING) * rate + FPS_SMOOTHING * instant
        last = now
        count += 1
        if not sink(view, rate):
            break
    return LiveStats(count, clock() - start)


def draw_fps(image: np.ndarray, fps: float) -> np.ndarray:
    """The frame rate written in the top-left corner (dark outline under white: readable on any floor)."""
    out = image.copy()
    scale = max(0.5, image.shape[0] / 720)
    origin = (int(10 * scale), int(30 * scale))
    text = f"{fps:.1f} FPS"
    thickness = max(1, round(2 * scale))
    cv2.putText(out, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness + 2, cv2.LINE_AA)
    cv2.putText(out, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness, cv2.LINE_AA)
    return out


class CameraFrames:
    """RGB frames from camera ``index``; opens it at once, so a missing camera is reported before anything else."""

    def __init__(self, index: int):
        self.index = index
        self.capture = cv2.VideoCapture(index)
        if not self.capture.isOpened():
            raise FootsegError(f"cannot open camera {index} (none connected at that number, in use by another "
                               "program, or no permission)")

    def __iter__(self) -> Iterator[np.ndarray]:
        count = 0
        while True:
            ok, bgr = self.capture.read()
            if not ok or bgr is None:
                raise FootsegError(f"camera {self.index} " + ("gave no frame" if count == 0
                                                              else f"stopped giving frames after {count}"))
            count += 1
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def close(self) -> None:
        self.capture.release()


class Window:
    """A sink for ``run_live`` that shows each overlay with its frame rate; False once the user quits."""

    def __init__(self, title: str = WINDOW):
        self.title = title
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error as exc:  # e.g. a GUI build whose display went away: one line, not a C++ trace
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            raise FootsegError(f"footseg live cannot open a window: {reason}") from exc

    def __call__(self, image: np.ndarray, fps: float) -> bool:
        cv2.imshow(self.title, cv2.cvtColor(draw_fps(image, fps), cv2.COLOR_RGB2BGR))
        if (cv2.waitKey(1) & 0xFF) in QUIT_KEYS:
            return False
        return cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) >= 1  # closed with its title bar's button

    def close(self) -> None:
        with contextlib.suppress(cv2.error):  # already gone with the window manager
            cv2.destroyWindow(self.title)


def live(model: ModelLike | Predictor = None, camera: int = 0, mode: str | None = None,
         ratio: float | None = None) -> LiveStats:
    """Run the camera through the model in a window until the user quits (see the module doc)."""
    problem = display_problem()
    if problem:
        raise FootsegError(problem)
    segmenter = VideoSegmenter(as_predictor(model), mode, ratio)
    frames = CameraFrames(camera)
    try:
        window = Window()
        try:
            return run_live(segmenter, frames, window)
        finally:
            window.close()
    finally:
        frames.close()

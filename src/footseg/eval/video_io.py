"""Reading and writing video for ``footseg video``: frames come in and go out as (H, W, 3) uint8 RGB.

Input is a video file (decoded by OpenCV's FFmpeg backend) or a folder of frames (images ordered by name, read with
``footseg.data.io``). Both readers yield ``(name, frame)`` pairs, the name being what a per-frame output is called:
``f00000``, ``f00001``, ... for a video, the image's stem for a folder.

Output is an H.264 MP4 (yuv420p, its index at the front), written with PyAV: what browsers, phones and every player
play. opencv-python-headless's FFmpeg has no H.264 encoder (its only MP4 codec, MPEG-4 Part 2, plays in no browser);
PyAV's wheels carry libx264.
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import cv2
import numpy as np

from footseg.atomic import atomic_path, check_writable
from footseg.data.io import IMAGE_EXTENSIONS, image_files, photos_folder, read_image
from footseg.errors import FootsegError, FootsegWarning

if TYPE_CHECKING:  # PyAV is loaded when a video is written, not by the readers' users
    import av

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".webm", ".avi", ".mkv")
DEFAULT_FPS = 30.0  # a frame folder carries no frame rate; phones record at 30
CODEC = "libx264"
# x264's default quality (CRF 23) at its fastest preset, so that a phone's 1080x1920 video is encoded as fast as
# OpenCV's MPEG-4 Part 2 writer did: 30 such frames (a real clip enlarged) took 20.7 ms a frame and made 943 KB, where
# mp4v took 21.6 ms (1,339 KB), superfast 72.4 ms (1,081 KB) and veryfast 83.7 ms (739 KB); on the clip's own 480x360
# frames 2.3 ms against superfast's 3.1. yuv420p is the one pixel format every H.264 decoder plays.
ENCODER_OPTIONS = {"crf": "23", "preset": "ultrafast"}
PIXEL_FORMAT = "yuv420p"
AV_LOG_QUIET = -8  # FFmpeg's log level that prints nothing
# A bad file is footseg's one line (and a damaged frame shows in the overlay): FFmpeg's own lines about it would come
# first. OpenCV reads this once, when its FFmpeg backend first opens a file, so it is set before any reader or writer;
# a value the user set is kept.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", str(AV_LOG_QUIET))


# Above this a video's stated rate is a container's placeholder, not a camera's.
MAX_FPS = 1000


def is_frame_rate(fps: float) -> bool:
    return math.isfinite(fps) and 0 < fps <= MAX_FPS


def frame_rate_fraction(fps: float) -> Fraction:
    """``fps`` as the fraction an MP4 stores: a phone video's 29.97002997 (OpenCV's reading of 30000/1001) is
    30000/1001 again; a rate no fraction over 1001 holds (say one frame an hour) keeps a finer one."""
    rate = Fraction(fps).limit_denominator(1001)
    if rate == 0 or abs(rate - Fraction(fps)) > Fraction(fps) * Fraction(1, 10**6):
        rate = Fraction(fps).limit_denominator(10**7)
    return rate


class FrameReader:
    """Frames of one clip in order, as ``(name, rgb)``. ``fps`` and ``frame_count`` are None where unknown."""

    path: Path
    fps: float | None = None
    frame_count: int | None = None

    def __iter__(self) -> Iterator[tuple[str, np.ndarray]]:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the reader holds open (nothing for a frame folder)."""


class FolderReader(FrameReader):
    """The images of a folder (or of its ``images/`` folder, as in a clip ``CLIP/images/*.jpg``), by name."""

    def __init__(self, folder: str | Path):
        self.path = photos_folder(folder)
        self.files = image_files(self.path)  # in natural order: frame_2 before frame_10
        if not self.files:
            raise FootsegError(f"folder has no frames (images: {', '.join(IMAGE_EXTENSIONS)})", self.path)
        seen: dict[str, Path] = {}
        for path in self.files:
            if path.stem in seen:
                raise FootsegError(f"same name as {seen[path.stem].name}; their masks would overwrite each other", path)
            seen[path.stem] = path
        self.frame_count = len(self.files)

    def __iter__(self) -> Iterator[tuple[str, np.ndarray]]:
        for path in self.files:
            yield path.stem, read_image(path)


class VideoReader(FrameReader):
    """The frames of a video file, decoded by OpenCV's FFmpeg backend and converted to RGB."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        # A bad file is footseg's one line below: OpenCV's own warning about it would come first.
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        try:
            # CAP_FFMPEG alone: the default backend list would also try CAP_IMAGES, which reads a '%' in a file name
            # as a frame-number pattern.
            self.capture = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
        finally:
            cv2.utils.logging.setLogLevel(level)
        if not self.capture.isOpened():
            raise FootsegError("cannot decode video: FFmpeg cannot open it (corrupt, cut off before its index, or "
                               "an unsupported format)", self.path)
        fps = self.capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if is_frame_rate(fps) else None
        count = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count = count if count > 0 else None
        self.frames_read = 0

    def __iter__(self) -> Iterator[tuple[str, np.ndarray]]:
        try:
            while True:
                ok, bgr = self.capture.read()
                if not ok or bgr is None:
                    break
                name = f"f{self.frames_read:05d}"
                self.frames_read += 1
                yield name, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        finally:
            self.close()
        self._check_complete()

    def _check_complete(self) -> None:
        # OpenCV ends a stream at the first frame it cannot decode, so a truncated file shows only as fewer frames
        # than the header's count. That count is exact for MP4/MOV/AVI but derived from duration x rate for
        # Matroska/WebM, so a shortfall of one frame (or 1%) is forgiven rather than failing a good file.
        if self.frames_read == 0:
            raise FootsegError("cannot decode video: not a single frame could be decoded", self.path)
        expected = self.frame_count
        if expected is not None and expected - self.frames_read > max(1, round(0.01 * expected)):
            raise FootsegError(f"video ended after {self.frames_read} frames of the {expected} its header promises "
                               "(truncated or corrupt)", self.path)

    def close(self) -> None:
        self.capture.release()


def open_frames(path: str | Path) -> FrameReader:
    """A reader for a video file or a folder of frames; a one-line ``FootsegError`` for anything else."""
    path = Path(path)
    if path.is_dir():
        return FolderReader(path)
    if not path.exists():
        raise FootsegError("file not found", path)
    suffix = path.suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        raise FootsegError("a single image, not a video: pass the folder of frames, or use footseg predict", path)
    if suffix not in VIDEO_EXTENSIONS:
        raise FootsegError(f"not a video file type footseg reads ({suffix or 'no suffix'}; it reads "
                           f"{', '.join(VIDEO_EXTENSIONS)}, or a folder of frames)", path)
    if not path.is_file():
        raise FootsegError("not a file", path)
    return VideoReader(path)


class VideoWriter:
    """Writes RGB frames to an H.264 MP4 at ``fps``; the frame size is set by the first frame.

    Later frames of another size are resized to it (said once, in a warning), and odd sides are padded by one edge
    pixel (4:2:0 video needs even sides). Use it as a context manager, or call ``close()``: the encoder holds frames
    back and the MP4 index is written last, so the file is made beside ``path`` and renamed to it only once closed,
    playable. What the encoder or the disk refuses is footseg's one-line error naming ``path``, and leaves no
    half-written file there.
    """

    def __init__(self, path: str | Path, fps: float = DEFAULT_FPS, named: str | Path | None = None):
        if not is_frame_rate(fps):
            raise FootsegError(f"the frame rate must be a number above 0 and up to {MAX_FPS}, got {fps}")
        self.path, self.fps = Path(path), float(fps)
        self.named = Path(named) if named is not None else self.path  # what its warnings call it: its final name
        check_writable(self.path, hint="choose another --out")  # before any frame is segmented
        self.temp = contextlib.ExitStack()  # the temporary file beside ``path`` (atomic_path) while it is written
        self.container: av.container.OutputContainer | None = None
        self.stream: av.video.stream.VideoStream | None = None
        self.size: tuple[int, int] | None = None  # (width, height) of the frames as given
        self.frames = 0
        self.resized = False  # whether a frame of another size than the first has come (and been warned of)

    def _open(self, width: int, height: int) -> None:
        import av

        try:
            partial = self.temp.enter_context(atomic_path(self.path))
            # faststart: the index before the frames, so a browser plays the file while it downloads
            self.container = av.open(str(partial), mode="w", format="mp4", options={"movflags": "+faststart"})
            self.stream = self.container.add_stream(CODEC, rate=frame_rate_fraction(self.fps),
                                                    options=ENCODER_OPTIONS)
            self.stream.width, self.stream.height = width + width % 2, height + height % 2
            self.stream.pix_fmt = PIXEL_FORMAT
        except BaseException as exc:
            self._abandon(exc)
            # ValueError: a PyAV built without libx264 (UnknownCodecError), say
            if isinstance(exc, av.FFmpegError | OSError | ValueError):
                raise self._error(exc) from exc
            raise

    def write(self, frame: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 RGB frame."""
        import av

        h, w = frame.shape[:2]
        try:
            if self.container is None:
                self.size = (w, h)
                self._open(w, h)
            elif (w, h) != self.size:
                if not self.resized:  # a folder of frames from two cameras, say: the overlay squashes some
                    warnings.warn(FootsegWarning(f"frame {self.frames + 1} is {w}x{h}, the first "
                                                 f"{self.size[0]}x{self.size[1]}: frames of another size than the "
                                                 "first are resized to it in the overlay (their masks keep their "
                                                 "own size)", self.named), stacklevel=2)
                    self.resized = True
                frame = cv2.resize(frame, self.size, interpolation=cv2.INTER_AREA)
                h, w = frame.shape[:2]
            if w % 2 or h % 2:
                frame = cv2.copyMakeBorder(frame, 0, h % 2, 0, w % 2, cv2.BORDER_REPLICATE)
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            self.container.mux(self.stream.encode(picture))
        except (av.FFmpegError, OSError) as exc:
            self._abandon(exc)
            raise self._error(exc) from exc
        self.frames += 1

    def close(self) -> None:
        """Finish the file (the frames the encoder holds, then the MP4 index) and put it at ``path``; safe to call
        twice, and after a failed ``write``."""
        import av

        if self.container is None:
            return
        try:
            self.container.mux(self.stream.encode(None))
            self.container.close()
            self.container = None
            self.temp.close()  # complete: it replaces ``path``
        except (av.FFmpegError, OSError) as exc:
            self._abandon(exc)
            raise self._error(exc) from exc

    def _abandon(self, exc: BaseException) -> None:
        """Drop the file being written on ``exc`` (what an encoder or disk error leaves there does not play)."""
        container, self.container = self.container, None
        if container is not None:
            with contextlib.suppress(Exception):  # the error being reported is the first one
                container.close()
        self.temp.__exit__(type(exc), exc, exc.__traceback__)  # as on an error in its block: removed, not renamed

    def _error(self, exc: BaseException) -> FootsegError:
        # FFmpeg's own log, which would say more, is off in PyAV: its error's text is what there is
        return FootsegError(f"cannot write video ({getattr(exc, 'strerror', None) or exc})", self.path)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

"""``footseg video``: segment every frame of a video or a folder of frames, carrying state from frame to frame.

Writes ``OUT/overlay.mp4`` (the frames with the foot tinted and outlined, at the input's frame rate) and, when asked,
``OUT/masks/<frame>.png`` (0/255, at each frame's size; ``f00000.png``, ... for a video, the image's stem for a
folder). Frames run through ``VideoSegmenter`` in order, so ``smooth`` and ``prior`` see the frame before.

Outputs are written as each frame is done, under names that say they are not finished (``overlay.partial.mp4``,
``masks.partial/``), and take their own names when the last frame is done. A run that does not get there leaves its
partial outputs, the overlay finished properly so that it plays, and the same command starts again, replacing them:
one stopped (Ctrl-C), and one whose video turns out to be truncated or corrupt part way or whose folder holds a bad
frame, where the error names the file and what was kept (a finished name would look done and refuse the command
again once the input is mended).
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from footseg.data.io import write_mask
from footseg.errors import FootsegError, Interrupted
from footseg.eval.predict import overlay_mask
from footseg.eval.video_io import DEFAULT_FPS, FrameReader, VideoWriter, open_frames
from footseg.one_writer import one_writer
from footseg.runtime.predictor import ModelLike, Predictor, as_predictor
from footseg.runtime.temporal import VideoSegmenter, describe_mode

OVERLAY_NAME = "overlay.mp4"
MASKS_DIR = "masks"
PARTIAL_OVERLAY_NAME = "overlay.partial.mp4"  # the outputs' names until the last frame is done
PARTIAL_MASKS_DIR = "masks.partial"


@dataclass
class VideoResult:
    """What ``segment_video`` did: frames segmented, wall time of the whole loop (decode to encode), the mode."""

    frames: int
    seconds: float
    mode: str
    overlay: Path
    masks: Path | None
    runtime: str  # what ran the network (``Predictor.runtime``)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("inf")

    def summary(self) -> str:
        masks = f", {self.frames} mask{'s' * (self.frames != 1)} in {self.masks}" if self.masks is not None else ""
        return (f"segmented {self.frames} frame{'s' * (self.frames != 1)} in {self.seconds:.1f} s ({self.fps:.1f} "
                f"FPS, mode {self.mode}, {self.runtime}): {self.overlay}{masks}")


def segment_video(
    model: ModelLike | Predictor,
    source: str | Path,
    out: str | Path,
    *,
    masks: bool = False,
    mode: str | None = None,
    ratio: float | None = None,
    fps: float | None = None,
    progress: bool | None = None,
    overwrite: bool = False,
) -> VideoResult:
    """Segment the video file or frame folder ``source`` into the folder ``out`` (see the module doc).

    ``model`` is a ``Predictor`` or anything it takes (None = the default model); ``mode`` and ``ratio`` go to
    ``VideoSegmenter``; ``fps`` overrides the overlay's frame rate (default: the video's, 30 for a frame folder);
    ``progress`` shows a progress bar (default: when stderr is a terminal). An ``overlay.mp4`` already in ``out`` is
    refused unless ``overwrite``, as ``footseg predict`` refuses its outputs: it may be a recording worth keeping.
    """
    reader = open_frames(source)  # a bad input is reported before the model is loaded
    try:
        with one_writer(out, hint="choose another --out"):
            return _segment(reader, model, source, Path(out), masks, mode, ratio, fps, progress, overwrite)
    finally:
        reader.close()  # however _segment ends: it leaves the reader to this


def _segment(reader: FrameReader, model: ModelLike | Predictor, source: str | Path, out: Path, masks: bool,
             mode: str | None, ratio: float | None, fps: float | None, progress: bool | None,
             overwrite: bool) -> VideoResult:
    overlay = out / OVERLAY_NAME
    if overlay.exists() and not overwrite:
        raise FootsegError("already exists: --overwrite replaces it, or choose another --out", overlay)
    earlier = out / MASKS_DIR
    if masks and earlier.exists() and not earlier.is_dir():
        raise FootsegError("is a file, where --masks writes a folder of masks: choose another --out", earlier)
    if masks and earlier.is_dir() and any(earlier.iterdir()):
        # Masks of two runs would mix where this one stops early, and a clip's own masks/ are its ground truth.
        raise FootsegError("already holds masks (an earlier run's, or a dataset's own): choose another --out, or "
                           "delete them", earlier)
    segmenter = VideoSegmenter(as_predictor(model), mode, ratio)
    rate = fps if fps is not None else reader.fps or DEFAULT_FPS
    writer = VideoWriter(out / PARTIAL_OVERLAY_NAME, rate, named=overlay)
    if (out / PARTIAL_MASKS_DIR).is_dir():  # a stopped run's: this one starts again
        shutil.rmtree(out / PARTIAL_MASKS_DIR)
    mask_dir = out / PARTIAL_MASKS_DIR if masks else None
    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(total=reader.frame_count, desc=Path(source).name, unit="frame", disable=not show, leave=False)
    done = 0
    start = time.perf_counter()
    try:
        for name, frame in reader:
            mask = segmenter.step_mask(frame)
            if mask_dir is not None:
                write_mask(mask_dir / f"{name}.png", mask * 255)
            writer.write(overlay_mask(frame, mask))
            done += 1
            bar.update()
    except FootsegError as exc:
        if not done or exc.path == writer.path:  # nothing made yet, or the overlay itself cannot be written
            raise
        # One line still, but saying that the run was not wasted: what came before the bad frame is on disk, under
        # the partial names, as a stopped run's: the run did not finish, and the same command replaces them once the
        # input is mended (finished names would refuse it: already exists).
        reason = str(exc).removeprefix(f"{exc.path}: ") if exc.path is not None else str(exc)
        kept = f"{writer.path}" + (f" and {mask_dir}/" if mask_dir is not None else "")
        raise FootsegError(f"{reason}; the output of the {done} frames before that is kept in {kept}, which the "
                           "same command replaces", exc.path) from exc
    except KeyboardInterrupt as exc:  # (the partial overlay is finished below, so it plays)
        of = f" of {reader.frame_count}" if reader.frame_count else ""
        made = "nothing kept"
        if done:
            made = f"{writer.path}" + (f" and {mask_dir}/" if mask_dir is not None else "")
        raise Interrupted(f"after {done}{of} frames ({made}); the same command starts again") from exc
    finally:
        try:
            writer.close()  # finishes the MP4 index even on an error, so the partial overlay plays
        finally:
            bar.close()
    overlay, mask_dir = _name_finished(writer, mask_dir)
    return VideoResult(done, time.perf_counter() - start, describe_mode(segmenter.mode, segmenter.ratio), overlay,
                       mask_dir, segmenter.predictor.runtime)


def _name_finished(writer: VideoWriter, mask_dir: Path | None) -> tuple[Path, Path | None]:
    """Give a run's outputs their own names (checked free, or ``overwrite``'s, before the first frame); the masks
    first, whose name can have been taken meanwhile, so that the outputs of a run that cannot finish keep the names
    of a partial run."""
    writer.close()
    final = mask_dir.with_name(MASKS_DIR) if mask_dir is not None else None
    if mask_dir is not None and mask_dir.is_dir():
        try:
            if final.is_dir() and not any(final.iterdir()):
                final.rmdir()
            mask_dir.rename(final)
        except OSError as exc:  # files put there while this run wrote its own
            raise FootsegError(f"cannot take this name ({exc.strerror}): this run's masks are in {mask_dir}, its "
                               f"overlay in {writer.path}", final) from exc
    overlay = writer.path.with_name(OVERLAY_NAME)
    if writer.path.is_file():  # (no frame, no file)
        writer.path.replace(overlay)
    return overlay, final

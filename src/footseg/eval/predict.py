"""Masks and overlays for photos: ``out/<stem>_mask.png`` (0/255) and ``out/<stem>_overlay.jpg``, full resolution.

A run stopped part way continues where it stopped: until it ends, ``out/.footseg-predict.json`` records what makes
its outputs (model, runtime, side, operating point), when it started and the photos it was given, and the same command
run again keeps the photos it finished (outputs written since it started, of photos unchanged since).
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from footseg.atomic import atomic_write_text
from footseg.data.io import (
    IMAGE_EXTENSIONS,
    image_files,
    is_grey,
    natural_key,
    photos_folder,
    read_image,
    write_jpeg,
    write_mask,
)
from footseg.errors import FootsegError, Interrupted
from footseg.one_writer import one_writer
from footseg.runtime.predictor import ModelLike, Predictor, as_predictor, to_mask

FOOT_COLOUR = (40, 220, 60)  # RGB green: readable on skin, wood, tiles and paper alike
_BATCH = 8
# and at most about this many pixels read at once (8 phone photos of 12 megapixels): 200-megapixel photos, 600 MB each
# in RGB, go one at a time rather than eight
_BATCH_PIXELS = 100_000_000
UNFINISHED_NAME = ".footseg-predict.json"  # in --out from a run's start until it has written every photo
MTIME_SLACK_NS = 2_000_000_000  # file systems that keep times to 2 s (FAT) date an output before the clock's start


@functools.lru_cache(maxsize=4)
def _tint_table(colour: tuple[int, int, int], alpha: float) -> np.ndarray:
    """Each byte value of each channel blended with ``colour`` (float32, rounded half to even), as cv2.LUT's table."""
    levels = np.arange(256, dtype=np.float32)[:, None]
    blended = levels * (1 - alpha) + np.array(colour, dtype=np.float32) * alpha
    return blended.round().astype(np.uint8).reshape(256, 1, 3)


def overlay_mask(
    image: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int] = FOOT_COLOUR, alpha: float = 0.45
) -> np.ndarray:
    """Tint the foot pixels of an (H, W, 3) uint8 RGB image and outline them, so the mask edge is easy to judge."""
    fg = (mask > 0).view(np.uint8)
    out = image.copy()
    # A table per byte and a masked copy: every video frame and every photo's overlay passes here, and blending the
    # foot pixels in float32 took 4 to 6 times as long on a 12-megapixel photo (the same bytes)
    cv2.copyTo(cv2.LUT(image, _tint_table(tuple(int(c) for c in colour), float(alpha))), fg, out)
    contours, _ = cv2.findContours(fg, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    thickness = max(1, round(max(image.shape[:2]) / 300))
    cv2.drawContours(out, contours, -1, colour, thickness, lineType=cv2.LINE_AA)
    return out


OUTPUT_SUFFIXES = ("_mask.png", "_overlay.jpg")  # what predict writes for each photo, after its stem


def collect_images(inputs: Sequence[str | Path]) -> list[Path]:
    """Image files named by ``inputs``: files as given; a folder gives its images (or those of its images/ folder)."""
    if not inputs:
        raise FootsegError("no input images given")
    found: list[Path] = []
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            folder = photos_folder(path)
            images = image_files(folder)
            if not images:
                inside = _subfolders_with_photos(folder)
                raise FootsegError(f"folder has no images ({', '.join(IMAGE_EXTENSIONS)})" + (
                    f"; its subfolders hold some ({', '.join(str(p.relative_to(folder)) for p in inside[:3])}"
                    f"{', ...' if len(inside) > 3 else ''}): give them, which are not searched" if inside else ""),
                    folder)
            found.extend(images)
        elif not path.exists():
            raise FootsegError("file not found", path)
        elif path.suffix.lower() not in IMAGE_EXTENSIONS:
            raise FootsegError(f"not a photo file type footseg reads ({path.suffix.lower() or 'no suffix'}; it reads "
                               f"{', '.join(IMAGE_EXTENSIONS)})", path)
        else:
            found.append(path)
    seen: dict[str, Path] = {}
    clashes: list[tuple[Path, Path]] = []
    for path in found:
        if path.stem in seen and seen[path.stem].resolve() != path.resolve():
            clashes.append((path, seen[path.stem]))
        seen.setdefault(path.stem, path)
    if clashes:  # all at once (a phone's export puts IMG_0042.HEIC beside IMG_0042.JPG): not one a run
        (path, first), more = clashes[0], clashes[1:]
        others = "; ".join(f"{a.name} and {b.name}" for a, b in more[:3]) + ("; ..." if len(more) > 3 else "")
        raise FootsegError(f"same name as {first}; their outputs would overwrite each other"
                           + (f" (so would {len(more)} more pair{'s' * (len(more) > 1)}: {others})" if more else "")
                           + ": give one of each pair, or move it to another folder", path)
    return list(seen.values())


def drop_own_outputs(paths: Sequence[Path]) -> tuple[list[Path], int]:
    """``paths`` without footseg's outputs of an earlier run, and how many those were: X_mask.png and X_overlay.jpg
    beside a photo X that is itself an input (a folder predicted into itself, or segmented again elsewhere)."""
    photos = {(p.parent.resolve(), p.stem) for p in paths}
    kept = [p for p in paths if not any(
        p.name.endswith(suffix) and (p.parent.resolve(), p.name[: -len(suffix)]) in photos
        for suffix in OUTPUT_SUFFIXES)]
    return kept, len(paths) - len(kept)


@dataclass
class PredictResult:
    """How a batch prediction went: images written, and each photo that could not be read with the reason."""

    done: int = 0
    failed: list[tuple[Path, str]] = field(default_factory=list)
    skipped: int = 0  # masks and overlays of an earlier run beside their photos: outputs, not photos
    kept: int = 0  # photos whose outputs a stopped run of the same model had written, left as they were
    not_photos: int = 0  # other files in the folders given (a .bmp, notes): not read, and not to be missed
    subfolders: int = 0  # folders inside the folders given that hold photos: not searched, and not to be missed
    grey: list[Path] = field(default_factory=list)  # photos without colour, which the models segment far worse


def _read_or_fail(path: Path, result: PredictResult) -> np.ndarray | None:
    try:
        return read_image(path)
    except FootsegError as exc:  # read_image names the file; keep only the reason, the path goes alongside
        message = str(exc)
        result.failed.append((path, message.removeprefix(f"{path}: ")))
        return None


def predict(model: ModelLike | Predictor, inputs: Sequence[str | Path], out: str | Path,
            overwrite: bool = False) -> PredictResult:
    """Write a mask and an overlay for every input image (``model`` None = the default model).

    A photo that cannot be read is reported in the result and skipped; the others are still written, so one bad
    file in a folder of hundreds costs that file, not the run. Files already at the outputs' names are refused
    before anything runs (they may be someone's own masks) unless ``overwrite``, or unless they are the outputs of
    a run that stopped (Ctrl-C, an error) before it ended, of the same model and settings, for the same photos
    unchanged since: ``out``'s ``UNFINISHED_NAME`` records them. Then the photos that run finished are kept.
    """
    out = Path(out)
    paths = collect_images(inputs)  # all problems with the inputs as named surface before the model is loaded
    paths, skipped = drop_own_outputs(paths)
    stamps = {p: _stamp(p) for p in paths}
    with one_writer(out, hint="choose another --out"):  # a record found below is then a stopped run's
        return _predict_held(model, paths, stamps, inputs, out, skipped, overwrite)


def _predict_held(model: ModelLike | Predictor, paths: list[Path], stamps: dict[Path, list[int]],
                  inputs: Sequence[str | Path], out: Path, skipped: int, overwrite: bool) -> PredictResult:
    record = _unfinished(out)
    listed = record["photos"] if record is not None else {}
    ours = {p for p in paths if listed.get(str(p.resolve())) == stamps[p]}  # the stopped run's photos, unchanged
    there = {p: [o for o in _outputs(out, p) if o.exists()] for p in paths} if out.is_dir() else {}
    taken = [o for outputs in there.values() for o in outputs]
    foreign = [o for p, outputs in there.items() if p not in ours for o in outputs]
    if foreign and not overwrite:
        raise _taken_error(foreign, "--overwrite replaces them, or choose another --out")
    predictor = as_predictor(model)
    maker = _maker(predictor)
    if record is not None and record["maker"] != maker:
        if taken and not overwrite:
            differ = ", ".join(f"{key} {record['maker'].get(key)} (now {value})" for key, value in maker.items()
                               if record["maker"].get(key) != value)
            raise _taken_error(taken, f"a stopped run with another {differ} wrote them: --overwrite replaces them, "
                                      "or choose another --out")
        record = None  # its outputs are replaced: this run starts afresh
    result = PredictResult(skipped=skipped, not_photos=_not_photos(inputs), subfolders=sum(
        len(_subfolders_with_photos(photos_folder(p), out)) for p in {Path(i).resolve() for i in inputs}
        if p.is_dir()))
    if record is not None:  # the photos the stopped run finished (each output is written whole or not at all)
        since = record["started_ns"] - MTIME_SLACK_NS
        todo = [p for p in paths if p not in ours or not all(
            o.is_file() and o.stat().st_mtime_ns >= since for o in _outputs(out, p))]
        result.kept, paths = len(paths) - len(todo), todo
    atomic_write_text(out / UNFINISHED_NAME, json.dumps({
        "maker": maker,
        "started_ns": record["started_ns"] if record is not None else time.time_ns(),
        "photos": {**(listed if record is not None else {}), **{str(p.resolve()): stamps[p] for p in stamps}},
    }) + "\n")
    try:
        for chunk in _read_in_batches(paths, result):
            images = [image for _, image in chunk]
            for (path, image), prob in zip(chunk, predictor.predict_batch(images), strict=True):
                if is_grey(image):
                    result.grey.append(path)
                mask = to_mask(prob, predictor.threshold)
                mask_path, overlay_path = _outputs(out, path)
                write_mask(mask_path, mask * 255)
                write_jpeg(overlay_path, overlay_mask(image, mask))
                result.done += 1
    except KeyboardInterrupt as exc:
        raise Interrupted(f"{result.kept + result.done} of {result.kept + len(paths)} photos done, their masks and "
                          f"overlays in {out}; the same command continues") from exc
    # (left in place by an error, which the same command continues from as from a stop)
    (out / UNFINISHED_NAME).unlink(missing_ok=True)
    return result


def _read_in_batches(paths: Sequence[Path], result: PredictResult) -> Iterator[list[tuple[Path, np.ndarray]]]:
    """The readable photos of ``paths`` in order, a batch at a time: up to ``_BATCH`` of them and ``_BATCH_PIXELS``
    (a photo larger than that alone). An unreadable one goes into ``result``."""
    chunk: list[tuple[Path, np.ndarray]] = []
    pixels = 0
    for path in paths:
        if (image := _read_or_fail(path, result)) is None:
            continue
        size = image.shape[0] * image.shape[1]
        if chunk and pixels + size > _BATCH_PIXELS:  # the photos before it go first, a large one alone
            yield chunk
            chunk, pixels = [], 0
        chunk.append((path, image))
        pixels += size
        if len(chunk) == _BATCH or pixels >= _BATCH_PIXELS:
            yield chunk
            chunk, pixels = [], 0
    if chunk:
        yield chunk


def _outputs(out: Path, photo: Path) -> list[Path]:
    return [out / f"{photo.stem}{suffix}" for suffix in OUTPUT_SUFFIXES]


def _stamp(photo: Path) -> list[int]:
    """A photo's size and modification time: one changed since a run stopped is segmented again."""
    info = photo.stat()
    return [info.st_size, info.st_mtime_ns]


def _subfolders_with_photos(folder: Path, out: Path | None = None) -> list[Path]:
    """The folders below ``folder``, at any depth, that hold photos themselves (hidden ones, ``out`` and footseg's own
    masks and overlays aside), in name order: a folder given is read, not searched, and what it leaves out is said,
    by the folders to give."""
    skip = out.resolve() if out is not None else None
    found = []
    for sub in sorted((p for p in folder.rglob("*") if p.is_dir()), key=lambda p: [natural_key(q) for q in p.parts]):
        if any(part.startswith(".") for part in sub.relative_to(folder).parts) or sub.resolve() == skip:
            continue
        if sub.name == "masks" and (sub.parent / "images").is_dir():  # a dataset's masks: no photos
            continue
        if any(p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS
               and not p.name.endswith(OUTPUT_SUFFIXES) for p in sub.iterdir()):
            given = sub.parent if sub.name == "images" else sub  # a dataset or clip is given by its folder
            if given != folder and given not in found:
                found.append(given)
    return found


def _not_photos(inputs: Sequence[str | Path]) -> int:
    """How many files in the folders among ``inputs`` are not photos footseg reads (hidden ones aside)."""
    folders = {photos_folder(p).resolve() for p in map(Path, inputs) if p.is_dir()}
    return sum(1 for folder in folders for p in folder.iterdir()
               if p.is_file() and not p.name.startswith(".") and p.suffix.lower() not in IMAGE_EXTENSIONS)


def _maker(predictor: Predictor) -> dict[str, object]:
    """What decides the outputs of ``predictor``: a run continued by another would mix two models' masks."""
    where = predictor.ref.path.resolve() if predictor.ref is not None else None
    return {"model": str(where or predictor.label), "runtime": predictor.runtime,
            "size": list(predictor.input_size), "threshold": predictor.threshold,
            "region_peak": predictor.region_peak, "presence": predictor.presence}


def _unfinished(out: Path) -> dict | None:
    """The record of a run in ``out`` that has not ended, or None where there is none (or it is unreadable: then its
    outputs are not known to be footseg's, and are refused as anyone's files are)."""
    try:
        record = json.loads((out / UNFINISHED_NAME).read_text())
    except (OSError, ValueError):
        return None
    keys = {"maker": dict, "photos": dict, "started_ns": int}
    if not isinstance(record, dict) or not all(isinstance(record.get(k), kind) for k, kind in keys.items()):
        return None
    return record


def _taken_error(taken: list[Path], hint: str) -> FootsegError:
    more = (f" (as do{'es' * (len(taken) == 2)} {len(taken) - 1} more output{'s' * (len(taken) > 2)})"
            if len(taken) > 1 else "")
    return FootsegError(f"already exists{more}: {hint}", taken[0])

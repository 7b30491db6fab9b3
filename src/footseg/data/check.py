"""Validate a dataset folder and report every problem by file, before anything spends time on it.

Each image and mask is really decoded (a truncated JPEG only fails when its pixels are read), sizes are compared
after EXIF orientation (the way training sees them), and masks must hold at most two values, one of them 0.
A clip dataset (folders of frames, ``clips.py``) gets the same checks on every clip, whose frames must also all
have one size. Training checks its splits on every start (``require_valid``); a split that passed is recorded with a
fingerprint of its files in the user's cache folder (never in the dataset, which may be shared or read-only), so a
resume or another run on the same files skips the decoding (53 s of a start on 48,000 renders on 2 cores, README.md).
``footseg check`` always decodes everything.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from footseg.atomic import atomic_write_text
from footseg.data.clips import clip_folders, is_clip_dataset
from footseg.data.io import IMAGE_EXTENSIONS, IMAGE_HINT, MASK_EXTENSION, read_image, read_mask
from footseg.data.samples import SPLITS, has_splits
from footseg.errors import FootsegError, require_folder


@dataclass(frozen=True, order=True)
class Problem:
    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass
class CheckResult:
    root: Path
    problems: list[Problem] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # images (frames) per split; key "" for a flat folder
    # of those, the images whose mask has no foot, per split of images (what a blob rate is measured on)
    empty: dict[str, int] = field(default_factory=dict)
    clips: dict[str, int] | None = None  # clips per split, for a clip dataset

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        if self.problems:
            n = len(self.problems)
            return f"{n} problem{'s' if n != 1 else ''} in {self.root}"
        if self.clips is not None:
            parts = [f"{split} {n} clips, {self.counts[split]} frames".lstrip() for split, n in self.clips.items()]
            return "ok: " + "; ".join(parts)
        # training needs images to learn from and others to choose epochs on, which check alone would not say
        trains = "" if {"train", "val"} <= self.counts.keys() else " (`footseg train` needs train/ and val/ splits)"
        bare = f" ({', '.join(f'{split} {n}'.lstrip() for split, n in self.empty.items())} with no foot)" if any(
            self.empty.values()) else ""
        if list(self.counts) == [""]:
            return f"ok: {self.counts['']} images{bare}{trains}"
        return "ok: " + ", ".join(f"{split} {n}" for split, n in self.counts.items()) + f" images{bare}{trains}"


def _message(exc: FootsegError) -> str:
    """The message of a FootsegError without its 'PATH: ' prefix (the Problem carries the path)."""
    text = str(exc)
    prefix = f"{exc.path}: "
    return text[len(prefix) :] if exc.path is not None and text.startswith(prefix) else text


def _visible_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def _check_pair(image: Path, mask: Path | None) -> tuple[list[Problem], tuple[int, int] | None, bool]:
    """Decode one image (and its mask): what is wrong with them, the image's (width, height) if it decoded, and
    whether its mask decoded and shows no foot."""
    problems = []
    try:
        img = read_image(image)
    except FootsegError as exc:
        img = None
        problems.append(Problem(image, _message(exc)))
    size = None if img is None else (img.shape[1], img.shape[0])
    if mask is None:
        return problems, size, False
    try:
        msk = read_mask(mask)
    except FootsegError as exc:
        return [*problems, Problem(mask, _message(exc))], size, False
    values = np.unique(msk)
    if len(values) > 2:
        shown = ", ".join(str(v) for v in values[:6]) + (", ..." if len(values) > 6 else "")
        message = f"mask has {len(values)} distinct values ({shown}); expected 0 = background and one foot value"
        problems.append(Problem(mask, message))
    elif len(values) == 2 and values[0] != 0:
        problems.append(Problem(mask, f"mask values are {values[0]} and {values[1]}; expected 0 for background"))
    if img is not None and img.shape[:2] != msk.shape:
        problems.append(
            Problem(
                mask,
                f"mask is {msk.shape[1]}x{msk.shape[0]} but its image is {img.shape[1]}x{img.shape[0]} "
                "(width x height, after EXIF orientation)",
            )
        )
    return problems, size, not msk.any()


def _check_folder(folder: Path, pool: ThreadPoolExecutor, empty: str = "empty split: no images",
                  sizes: dict[Path, tuple[int, int]] | None = None) -> tuple[list[Problem], int, int]:
    """Problems of one folder in the dataset format, its number of images and of those whose mask shows no foot; the
    (width, height) of each image that decodes goes into ``sizes`` when given."""
    images_dir, masks_dir = folder / "images", folder / "masks"
    if not folder.is_dir():
        return [Problem(folder, "folder not found")], 0, 0
    if not images_dir.is_dir():
        expected = f"expected images/<stem>.{IMAGE_HINT} and masks/<stem>.png"
        if folder.name in ("images", "masks") and (folder.parent / "images").is_dir():  # one level too deep
            expected = f"this is a dataset's {folder.name}/ folder: check {folder.parent}"
        return [Problem(images_dir, f"missing images/ folder ({expected})")], 0, 0
    problems: list[Problem] = []
    images: dict[str, Path] = {}
    for path in _visible_files(images_dir):
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            problems.append(Problem(path, f"not an image file (expected {', '.join(IMAGE_EXTENSIONS)})"))
        elif path.stem in images:
            problems.append(Problem(path, f"duplicate stem '{path.stem}' (also {images[path.stem].name})"))
        else:
            images[path.stem] = path
    if not images:
        problems.append(Problem(images_dir, empty))
    masks: dict[str, Path] = {}
    if not masks_dir.is_dir():
        problems.append(Problem(masks_dir, "missing masks/ folder"))
    else:
        for path in _visible_files(masks_dir):
            if path.suffix.lower() != MASK_EXTENSION:
                problems.append(Problem(path, "mask must be a .png (lossy formats change the label values)"))
            elif path.stem not in images:
                problems.append(Problem(path, "mask without image"))
            elif path.stem in masks:
                problems.append(Problem(path, f"duplicate mask stem '{path.stem}' (also {masks[path.stem].name})"))
            else:
                masks[path.stem] = path
        for stem, image in images.items():
            if stem not in masks:
                problems.append(Problem(image, f"mask missing (expected masks/{stem}{MASK_EXTENSION})"))
    stems = sorted(images)
    bare = 0
    for stem, (found, size, no_foot) in zip(stems, pool.map(lambda s: _check_pair(images[s], masks.get(s)), stems),
                                            strict=True):
        problems.extend(found)
        bare += no_foot
        if sizes is not None and size is not None:
            sizes[images[stem]] = size
    return problems, len(images), bare


CHECKS_VERSION = 1  # part of every fingerprint: raise it when the checks change, so that what passed is checked again


def _fingerprint(folder: Path) -> str:
    """A digest of the name, size, modification and change times of every file in ``folder``'s images/ and masks/:
    adding, removing, replacing or rewriting one changes it (the change time, too, where a copy kept the old
    modification time). Raises OSError if a file vanishes while it is read."""
    digest = hashlib.sha256(f"footseg checks {CHECKS_VERSION}".encode())
    for sub in ("images", "masks"):
        stats = []
        with os.scandir(folder / sub) as entries:
            for entry in entries:
                stat = entry.stat()
                stats.append((entry.name, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns))
        digest.update(json.dumps([sub, sorted(stats)]).encode())
    return digest.hexdigest()


def passed_record(folder: Path) -> Path:
    """Where the fingerprint of ``folder``'s files is kept once they pass: ``$XDG_CACHE_HOME/footseg/checked/`` (by
    default, or where that is not an absolute path, ``~/.cache``), a file per folder named by a digest of its path."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    cache = Path(xdg) if Path(xdg).is_absolute() else Path.home() / ".cache"
    return cache / "footseg" / "checked" / f"{hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:32]}.json"


def _passed_before(folder: Path) -> tuple[str | None, tuple[int, int] | None]:
    """The folder's fingerprint now (None where it cannot be taken), and its numbers of images and of those with no
    foot if it passed a check with the same fingerprint."""
    try:
        fingerprint = _fingerprint(folder)
    except OSError:  # no images/ or masks/, a dangling link, a file gone: the full check says what is wrong
        return None, None
    try:
        stored = json.loads(passed_record(folder).read_text())
        if stored["fingerprint"] == fingerprint:  # a record from before "empty" was kept: checked again
            return fingerprint, (int(stored["images"]), int(stored["empty"]))
    except (OSError, RuntimeError, ValueError, KeyError, TypeError):
        pass  # no record (or no home folder), or a damaged one: check the files
    return fingerprint, None


def _record_pass(folder: Path, fingerprint: str, images: int, empty: int) -> None:
    """Record that ``folder`` passed, if its files are still those fingerprinted before they were decoded."""
    with contextlib.suppress(OSError, RuntimeError):  # a file gone, or nowhere to write: the next start checks again
        if _fingerprint(folder) != fingerprint:
            return
        record = {"folder": str(folder.resolve()), "fingerprint": fingerprint, "images": images, "empty": empty}
        atomic_write_text(passed_record(folder), json.dumps(record) + "\n")


def _check_clip(folder: Path, pool: ThreadPoolExecutor) -> tuple[list[Problem], int]:
    """Problems of one clip (a folder in the dataset format whose images are its frames), and its number of frames.
    Frames of a video all have one size: any frame of another size than most is reported."""
    sizes: dict[Path, tuple[int, int]] = {}
    problems, count, _ = _check_folder(folder, pool, empty="empty clip: no frames", sizes=sizes)
    if sizes:
        values = list(sizes.values())
        common = max(set(values), key=lambda v: (values.count(v), v))
        for path, (w, h) in sizes.items():
            if (w, h) != common:
                problems.append(Problem(path, f"frame is {w}x{h} but the other frames of this clip are "
                                              f"{common[0]}x{common[1]} (width x height, after EXIF orientation)"))
    return problems, count


def _check_clip_folder(folder: Path, pool: ThreadPoolExecutor) -> tuple[list[Problem], int, int]:
    """Problems of a folder of clips (a flat clip dataset or one split), its number of clips and of frames."""
    if not folder.is_dir():
        return [Problem(folder, "folder not found")], 0, 0
    clips = clip_folders(folder)
    problems: list[Problem] = []
    for sub in sorted(folder.iterdir()):
        if sub.is_dir() and not sub.name.startswith(".") and sub not in clips:
            problems.append(Problem(sub, f"not a clip: no images/ folder (expected images/<frame>.{IMAGE_HINT} and "
                                         "masks/<frame>.png)"))
    if not clips:
        problems.append(Problem(folder, "empty split: no clips"))
    frames = 0
    for clip in clips:
        found, count = _check_clip(clip, pool)
        problems.extend(found)
        frames += count
    return problems, len(clips), frames


def check_dataset(root: Path, splits: Sequence[str] | None = None, remember: bool = False) -> CheckResult:
    """Check a dataset with train/val/test splits, or a flat folder, and collect every problem by file.

    ``splits`` names the splits that must be there (each is checked as ``split_folder`` would resolve it, so a flat
    folder stands for any split); by default every split folder present is checked. With ``remember``, a folder of
    images (not clips) whose files are as they were when it last passed is not decoded again, and one that passes
    is recorded (``passed_record``).
    """
    root = Path(root)
    require_folder(root, "dataset folder")
    result = CheckResult(root)
    if has_splits(root):
        folders = {s: root / s for s in (splits or [s for s in SPLITS if (root / s).is_dir()])}
    else:
        folders = {"": root}
    clips = is_clip_dataset(root)
    if clips:
        result.clips = {}
    # Decoding is done by PIL and releases the GIL, so threads keep all cores busy without pickling arrays.
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        for name, folder in folders.items():
            if clips:
                problems, result.clips[name], count = _check_clip_folder(folder, pool)
            else:
                fingerprint, passed = _passed_before(folder) if remember else (None, None)
                if passed is None:
                    problems, count, result.empty[name] = _check_folder(folder, pool)
                    if fingerprint is not None and not problems:
                        _record_pass(folder, fingerprint, count, result.empty[name])
                else:
                    problems, (count, result.empty[name]) = [], passed
            if name and not folder.is_dir():
                problems = [Problem(folder, f"missing {name}/ split")]
            elif name and (short := _unfinished_render(root, name, count)):
                problems = [Problem(folder, short), *problems]
            result.problems.extend(sorted(problems))
            result.counts[name] = count
    return result


def _unfinished_render(root: Path, split: str, count: int) -> str:
    """Why a split of a `footseg synth` render holds fewer images than its manifest plans (a render stopped and not
    resumed, or a shard still to render), else "": every image it holds is fine, and a training on it would not say
    it trained on part of the render."""
    from footseg.data.synth.engine import FORMAT, MANIFEST, read_manifest

    manifest = read_manifest(root / MANIFEST)
    if manifest is None or manifest.get("format") != FORMAT:
        return ""
    planned = manifest.get("counts", {}).get(split)
    if not isinstance(planned, int) or count >= planned:
        return ""
    return (f"an unfinished render: {count} of the {planned} images its manifest plans here (finish it with "
            "`footseg synth ... --resume`, or render its other shards; images taken out on purpose: delete its "
            "manifest.json, which no longer describes it)")


def require_valid(root: Path, splits: Sequence[str] = ("train", "val")) -> CheckResult:
    """Raise FootsegError naming the first problem if the given splits of ``root`` are not valid; splits whose files
    passed before and have not changed since are not decoded again."""
    result = check_dataset(root, splits, remember=True)
    if result.problems:
        first, more = result.problems[0], len(result.problems) - 1
        hint = f"and {more} more; " if more else ""
        raise FootsegError(f"{first.message} ({hint}run `footseg check {root}`)", first.path)
    return result

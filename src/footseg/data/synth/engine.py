"""``footseg synth``: plan, render and write a synthetic dataset with splits, a manifest, workers, resume and shards.

Image ``i`` takes all its randomness from ``np.random.default_rng([seed, i])`` and its split from ``i`` (80/10/10
by residue), so the bytes written do not depend on the number of workers, on sharding or on resuming. Foot
identities, procedural floor seeds, floor photos, mesh files and cutouts are partitioned by split the same way, so
none appears in two splits; the manifest lists which went where. With ``cutouts`` (the thesis's own mode) an image
is, with ``cutout_prob``, a foreground photo composited onto a rendered scene without a foot (``cutouts.py``).
``render_units`` runs any unit of work that way: an image here (``Worker``), a clip in ``clips.py`` (``ClipWorker``:
the scene of image ``i`` filmed by a moving phone), with the same splits, manifest, workers, shards and resume.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import os
import signal
import zlib
from collections import OrderedDict
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from footseg.atomic import atomic_write_text, check_writable
from footseg.data.io import write_jpeg, write_mask, write_png
from footseg.data.synth.floors import (
    SPLITS,
    by_split,
    ids_of_split,
    list_photos,
    photo_floor,
    procedural_floor,
    split_of,
)
from footseg.data.transforms import resize_image  # torch-free: workers never import torch
from footseg.errors import FootsegError, require_folder
from footseg.provenance import code_version

if TYPE_CHECKING:  # annotations only: workers import what they use when they use it
    from footseg.data.synth.post import CameraEffects
    from footseg.data.synth.scene import Scene

MANIFEST = "manifest.json"
FORMAT = "footseg-synth/1"
CLIP_FORMAT = "footseg-synth-clips/1"
MERGE_FORMAT = "footseg-synth-merge/1"  # still images merged from several renders (merge.py)
_KINDS = {FORMAT: "still-image", CLIP_FORMAT: "clip", MERGE_FORMAT: "merged"}  # a manifest's format, in words
_PARTIAL = ".partial"

# Field metadata of every setting added after manifests were first written: the value that reproduces what footseg
# rendered before the setting existed. A manifest without the setting was made with that value, whatever today's
# default is; --resume compares against it, so a resumed old render never gets the new feature mixed in.
ABSENT_IN_OLD_MANIFESTS = "absent_in_old_manifests"
# the third element of the seed of image i's own generator for whether it is empty (``empty_prob``); other
# three-element seeds end in 7, 11 or 13 (foot, floor and mesh streams), and a clip frame's noise has four elements
_EMPTY_STREAM = 17


@dataclass
class SynthSettings:
    n: int
    seed: int = 0
    size: int = 256
    foot_ids: int = 1000  # parametric foot identities (split by residue)
    floor_ids: int = 2000  # procedural floor seeds (split by residue)
    floors: str | None = None  # folder of floor photos
    photo_floor_prob: float = 0.65  # photos teach real wood grain and tile glare better than GLSL floors
    find: str | None = None  # FIND model folder
    find_prob: float = 0.5
    meshes: str | None = None  # folder of OBJ/PLY feet
    mesh_prob: float = 0.3
    # folder of foreground photos with masks (images/ + masks/), composited on floors
    cutouts: str | None = field(default=None, metadata={ABSENT_IN_OLD_MANIFESTS: None})
    # share of composites when cutouts are given (the rest: 3D renders). Renders older than it had no cutouts, which
    # any value reproduces; its first default makes a resume that asks for another share refuse rather than guess
    cutout_prob: float = field(default=1.0, metadata={ABSENT_IN_OLD_MANIFESTS: 1.0})
    distractors: bool = True
    shadows: bool = True
    paper: bool = True
    camera_effects: bool = True
    # share of scenes photographed sitting down (shins across the floor); at 0 scenes draw exactly what they drew
    # before seated scenes existed
    seated_prob: float = field(default=0.2, metadata={ABSENT_IN_OLD_MANIFESTS: 0.0})
    # share of first-person photos of one's own feet (looking down the shins, no paper; walls, pavements, sunlight);
    # at 0 scenes draw exactly what they drew before such scenes existed
    own_feet_prob: float = field(default=0.2, metadata={ABSENT_IN_OLD_MANIFESTS: 0.0})
    # socks (foot) and trousers (not foot) on some legs; off, every foot and leg is bare (the same draws otherwise)
    clothes: bool = field(default=True, metadata={ABSENT_IN_OLD_MANIFESTS: True})
    # share of feet in socks when clothes are on (foot.SOCK_PROB; the engine does not import the meshes); up to the
    # default, fewer socks leave every other draw as it was
    sock_prob: float = field(default=0.15, metadata={ABSENT_IN_OLD_MANIFESTS: 0.15})
    # share of scenes with no foot and no leg (an empty mask): the same scene otherwise, props, paper, walls and all.
    # A live camera sees floors before feet step in, and a model that never saw a floor without a foot finds one in
    # it. Drawn from a generator of its own, so scenes not emptied are the bytes they are at 0.
    empty_prob: float = field(default=0.0, metadata={ABSENT_IN_OLD_MANIFESTS: 0.0})
    image_format: str = "jpg"
    extra: dict = field(default_factory=dict)

    def remove(self, ingredients: list[str]) -> None:
        """Switch ingredients off by name (see ``INGREDIENTS``), as the ablation study does."""
        for name in ingredients:
            if name not in INGREDIENTS:
                raise FootsegError(f"unknown ingredient {name!r}; choose from {', '.join(INGREDIENTS)}")
            field_name, off = INGREDIENTS[name]
            setattr(self, field_name, off)

    def validate(self) -> None:
        if self.n < 1:
            raise FootsegError(f"--n must be at least 1 (got {self.n})")
        if self.size < 16 or self.size > 2048:
            raise FootsegError(f"--size must be between 16 and 2048 (got {self.size})")
        if self.image_format not in ("jpg", "png"):
            raise FootsegError(f"image format must be jpg or png (got {self.image_format})")
        if not 0.0 <= self.cutout_prob <= 1.0:
            raise FootsegError(f"--cutout-prob must be between 0 and 1 (got {self.cutout_prob})")
        if not 0.0 <= self.seated_prob <= 1.0:
            raise FootsegError(f"seated_prob must be between 0 and 1 (got {self.seated_prob})")
        if not 0.0 <= self.own_feet_prob <= 1.0:
            raise FootsegError(f"own_feet_prob must be between 0 and 1 (got {self.own_feet_prob})")
        if not 0.0 <= self.sock_prob <= 1.0:
            raise FootsegError(f"sock_prob must be between 0 and 1 (got {self.sock_prob})")
        if not 0.0 <= self.empty_prob <= 1.0:
            raise FootsegError(f"empty_prob must be between 0 and 1 (got {self.empty_prob})")
        if not self.clothes and self.sock_prob not in (0.0, SynthSettings.sock_prob):
            raise FootsegError(f"sock_prob {self.sock_prob} asks for socks, but clothes are left out (no socks at all)")
        for name in FOLDER_SETTINGS:
            value = getattr(self, name)
            if value is not None:
                require_folder(value)
        if self.find is not None:  # what it holds too, before a render writes anything
            from footseg.data.synth.find import check_find_folder

            check_find_folder(self.find)


# ingredient name -> (SynthSettings field, value that switches it off)
INGREDIENTS: dict[str, tuple[str, object]] = {
    "distractors": ("distractors", False),
    "shadows": ("shadows", False),
    "paper": ("paper", False),
    "camera-effects": ("camera_effects", False),
    "photo-floors": ("photo_floor_prob", 0.0),
    "find": ("find_prob", 0.0),
    "seated": ("seated_prob", 0.0),
    "own-feet": ("own_feet_prob", 0.0),
    "clothes": ("clothes", False),
}


def _mesh_files(folder: str | None) -> dict[str, list[str]]:
    if folder is None:
        return {s: [] for s in SPLITS}
    root = Path(folder)

    def meshes(where: Path) -> list[Path]:
        return sorted(p for p in where.rglob("*") if p.suffix.lower() in (".obj", ".ply"))

    # the split discipline of floor photos and cutouts: train/, val/, test/ where they exist, else a hash of the path
    out = by_split(root, meshes, lambda p: p)
    if not any(out.values()):
        raise FootsegError("no .obj or .ply meshes found", root)
    return {s: [str(p) for p in files] for s, files in out.items()}


class Planner:
    """The first random choices of every image: split, foot source and identity, floor. Cheap, done for all images
    by the manifest and again by the worker that renders the image (which then keeps drawing from the same rng)."""

    def __init__(self, s: SynthSettings):
        self.s = s
        self.foot_pool = {sp: ids_of_split(s.foot_ids, sp) for sp in SPLITS}
        self.floor_pool = {sp: ids_of_split(s.floor_ids, sp) for sp in SPLITS}
        self.photos = list_photos(Path(s.floors)) if s.floors else {sp: [] for sp in SPLITS}
        self.meshes = _mesh_files(s.meshes)
        if any(len(self.foot_pool[sp]) == 0 or len(self.floor_pool[sp]) == 0 for sp in SPLITS):
            raise FootsegError("foot_ids and floor_ids must be at least 10 so every split has some")
        self.cutouts: dict[str, list] = {sp: [] for sp in SPLITS}
        if s.cutouts is not None:
            from footseg.data.synth.cutouts import list_cutouts

            self.cutouts = list_cutouts(s.cutouts)
            if s.cutout_prob > 0:
                for sp in sorted({split_of(i) for i in range(min(s.n, 10))}, key=SPLITS.index):
                    if not self.cutouts[sp]:
                        total = sum(len(v) for v in self.cutouts.values())
                        raise FootsegError(
                            f"no cutout falls into the {sp} split ({total} cutouts, split by their train/ val/ test/ "
                            "subfolders or else a hash of their paths, less copies of an earlier split's files); add "
                            "more, or give the folder train/ val/ test/ subfolders", s.cutouts)

    def plan(self, i: int) -> tuple[np.random.Generator, dict]:
        s = self.s
        rng = np.random.default_rng([s.seed, i])
        split = split_of(i)
        p: dict = {"split": split}
        u_src, u_floor = rng.random(), rng.random()
        if s.cutouts is not None and rng.random() < s.cutout_prob:  # drawn only in cutout runs
            cut = self.cutouts[split][int(rng.integers(len(self.cutouts[split])))]
            p["cutout"] = cut.image
        elif self.meshes[split] and u_src < s.mesh_prob:
            p["mesh"] = self.meshes[split][int(rng.integers(len(self.meshes[split])))]
        else:
            p["foot_id"] = int(rng.choice(self.foot_pool[split]))
            p["find"] = bool(s.find) and rng.random() < s.find_prob
        if self.photos[split] and u_floor < s.photo_floor_prob:
            p["photo"] = self.photos[split][int(rng.integers(len(self.photos[split])))]
        else:
            p["floor_id"] = int(rng.choice(self.floor_pool[split]))
        if s.empty_prob > 0 and np.random.default_rng([s.seed, i, _EMPTY_STREAM]).random() < s.empty_prob:
            p["empty"] = True
        return rng, p


def build_manifest(s: SynthSettings, planner: Planner) -> dict:
    per = {sp: {"images": 0, "foot_ids": set(), "find_foot_ids": set(), "procedural_floors": set(),
                "floor_photos": set(), "meshes": set(), "cutouts": set()} for sp in SPLITS}
    if s.empty_prob > 0:  # a key of its own only where there are empty scenes: other manifests read as before
        for d in per.values():
            d["empty_images"] = 0
    for i in range(s.n):
        _, p = planner.plan(i)
        d = per[p["split"]]
        d["images"] += 1
        if p.get("empty"):  # its foot is drawn but not shown: not in the split's lists
            d["empty_images"] += 1
        elif "cutout" in p:
            d["cutouts"].add(os.path.relpath(p["cutout"], s.cutouts))
        elif "mesh" in p:
            d["meshes"].add(os.path.relpath(p["mesh"], s.meshes))
        else:
            d["find_foot_ids" if p["find"] else "foot_ids"].add(p["foot_id"])
        if "photo" in p:
            d["floor_photos"].add(os.path.relpath(p["photo"], s.floors))
        else:
            d["procedural_floors"].add(p["floor_id"])
    splits = {sp: {k: (sorted(v) if isinstance(v, set) else v) for k, v in d.items()} for sp, d in per.items()}
    return {"format": FORMAT, "seed": s.seed, "n": s.n, "size": s.size, "settings": asdict(s),
            "counts": {sp: per[sp]["images"] for sp in SPLITS}, "splits": splits}


def image_paths(out: Path, i: int, s: SynthSettings) -> tuple[Path, Path]:
    split = split_of(i)
    stem = f"{i:07d}"
    return out / split / "images" / f"{stem}.{s.image_format}", out / split / "masks" / f"{stem}.png"


class Worker:
    """Per-process state: one GL renderer, caches of foot identities and of the FIND model. Its unit of work is an
    image; a subclass may make another unit (a clip) of the same scenes, see ``render_units``."""

    unit = "img"

    def __init__(self, s: SynthSettings):
        from footseg.data.synth.render import Renderer

        cv2.setNumThreads(1)
        self.s = s
        self.planner = Planner(s)
        self.renderer = Renderer()
        self.feet: OrderedDict[tuple, object] = OrderedDict()
        self.find_model = None
        self.cutout_files = {c.image: c for sp in SPLITS for c in self.planner.cutouts[sp]}
        self.cutout_cache: OrderedDict[str, object] = OrderedDict()

    def _cutout(self, path: str):
        from footseg.data.synth.cutouts import load_cutout

        if path in self.cutout_cache:
            self.cutout_cache.move_to_end(path)
            return self.cutout_cache[path]
        cut = load_cutout(self.cutout_files[path], max_side=max(256, 2 * self.s.size))
        self.cutout_cache[path] = cut
        if len(self.cutout_cache) > 64:
            self.cutout_cache.popitem(last=False)
        return cut

    def _foot(self, p: dict):
        from footseg.data.synth.foot import FootShape, ParametricFoot

        key = ("mesh", p["mesh"]) if "mesh" in p else ("find" if p["find"] else "param", p["foot_id"])
        if key in self.feet:
            self.feet.move_to_end(key)
            return self.feet[key]
        if key[0] == "mesh":
            from footseg.data.synth.find import MeshFoot

            foot = MeshFoot(Path(p["mesh"]), np.random.default_rng([self.s.seed, zlib.crc32(p["mesh"].encode()), 7]))
        elif key[0] == "find":
            from footseg.data.synth.find import FindModel

            if self.find_model is None:
                self.find_model = FindModel(Path(self.s.find))
            foot = self.find_model.foot(np.random.default_rng([self.s.seed, p["foot_id"], 13]))
        else:
            irng = np.random.default_rng([self.s.seed, p["foot_id"], 7])
            foot = ParametricFoot(FootShape.sample(irng), irng)
        self.feet[key] = foot
        if len(self.feet) > 1200:  # ~50 kB each; every identity of a default run stays cached
            self.feet.popitem(last=False)
        return foot

    def scene(self, i: int) -> tuple[np.random.Generator, dict, object, Scene]:
        """The random generator (to keep drawing from), plan, foot model and scene of image (or clip) ``i``."""
        from footseg.data.synth.scene import sample_scene, without_feet

        s = self.s
        rng, p = self.planner.plan(i)
        if "cutout" in p:
            from footseg.data.synth.cutouts import no_foot

            foot = no_foot
        else:
            foot = self._foot(p)
        if "photo" in p:
            floor = photo_floor(p["photo"], rng)
        else:
            floor = procedural_floor(np.random.default_rng([s.seed, p["floor_id"], 11]))
        # a composite's foot photo was taken from above by someone else: its background is never a first-person view
        own_feet_prob = 0.0 if "cutout" in p else s.own_feet_prob
        scene = sample_scene(rng, s.size, foot, floor, distractors=s.distractors, shadows=s.shadows, paper=s.paper,
                             seated_prob=s.seated_prob, own_feet_prob=own_feet_prob, clothes=s.clothes,
                             sock_prob=s.sock_prob)
        if p.get("empty"):
            scene = without_feet(scene)
        return rng, p, foot, scene

    def make(self, i: int) -> tuple[np.ndarray, np.ndarray, int]:
        """(image (size, size, 3) uint8, mask (size, size) uint8 0/255, JPEG quality) of image ``i``."""
        from footseg.data.synth.post import CameraEffects

        rng, p, _, scene = self.scene(i)
        image, coverage = self.renderer.render(scene)
        if "cutout" in p and not p.get("empty"):
            from footseg.data.synth.cutouts import composite

            image, coverage = composite(rng, image, scene, self._cutout(p["cutout"]))
        fx = CameraEffects.sample(rng) if self.s.camera_effects else None
        return develop(image, coverage, fx, rng, self.s.size)

    def write(self, out: Path, i: int) -> None:
        write_pair(out, *image_paths(out, i, self.s), *self.make(i))

    @staticmethod
    def paths(out: Path, i: int, s: SynthSettings) -> list[Path]:
        """Every file of unit ``i`` (here an image and its mask): it is done when all exist."""
        return list(image_paths(out, i, s))

    @staticmethod
    def manifest(s: SynthSettings, planner: Planner) -> dict:
        return build_manifest(s, planner)

    @staticmethod
    def prepare(out: Path, s: SynthSettings) -> None:
        """Make the folders every unit writes into (a clip makes its own)."""
        for sp in SPLITS:
            (out / sp / "images").mkdir(parents=True, exist_ok=True)
            (out / sp / "masks").mkdir(parents=True, exist_ok=True)


def develop(image: np.ndarray, coverage: np.ndarray, fx: CameraEffects | None, rng: np.random.Generator,
            size: int) -> tuple[np.ndarray, np.ndarray, int]:
    """What the phone makes of a rendered frame: camera effects ``fx`` (None: none) on the image, the output size,
    and the exact mask from the renderer's foot coverage. Returns (image, mask 0/255, JPEG quality)."""
    from footseg.data.synth.post import apply_optics, apply_sensor

    quality = 95
    if fx is not None:
        image = apply_optics(image, fx)
    image = resize_image(image, (size, size))
    if fx is not None:
        image = apply_sensor(image, fx, rng)
        quality = fx.jpeg_quality
    if coverage.shape != (size, size):
        coverage = cv2.resize(coverage, (size, size), interpolation=cv2.INTER_AREA)
    mask = np.where(coverage >= 128, 255, 0).astype(np.uint8)
    return image, mask, quality


def write_pair(out: Path, img_path: Path, mask_path: Path, image: np.ndarray, mask: np.ndarray, quality: int) -> None:
    """Write an image (JPEG at ``quality`` or PNG, by its suffix) and its mask, each atomically via ``out/.partial``."""
    tmp = out / _PARTIAL
    t_img = tmp / f"{os.getpid()}-image-{img_path.name}"
    t_mask = tmp / f"{os.getpid()}-mask-{mask_path.name}"  # distinct even when both are .png
    if img_path.suffix == ".jpg":
        write_jpeg(t_img, image, quality=quality)
    else:
        write_png(t_img, image)
    write_mask(t_mask, mask)
    # image first, mask last: an image with its mask present is complete (what --resume checks)
    os.replace(t_img, img_path)
    os.replace(t_mask, mask_path)


_WORKER: Worker | None = None


def _init_worker(s: SynthSettings, kind: type[Worker] = Worker) -> None:
    global _WORKER
    # Ctrl-C reaches the whole process group: the parent stops the pool, so workers need not (nor print tracebacks).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER = kind(s)


def _work(job: tuple[str, int]) -> int:
    out, i = job
    assert _WORKER is not None
    _WORKER.write(Path(out), i)
    return i


def parse_shard(text: str) -> tuple[int, int]:
    try:
        a, b = (int(x) for x in text.split("/"))
    except ValueError as exc:
        raise FootsegError(f"--shard must look like I/N, e.g. 0/4 (got {text!r})") from exc
    if b < 1 or not 0 <= a < b:
        raise FootsegError(f"--shard I/N needs 0 <= I < N (got {text!r})")
    return a, b


def stored_settings(stored: dict, kind: type[SynthSettings] = SynthSettings) -> dict:
    """A manifest's settings with those it predates filled in as the render had them: without the feature."""
    out = dict(stored)
    for f in fields(kind):
        if f.name not in out and ABSENT_IN_OLD_MANIFESTS in f.metadata:
            out[f.name] = f.metadata[ABSENT_IN_OLD_MANIFESTS]
    return out


FOLDER_SETTINGS = ("floors", "find", "meshes", "cutouts")  # settings that name a folder of assets


def same_folder(old: object, new: object) -> bool:
    """Whether two folder settings name one folder: ``../shared/data/floors`` and ``/work/shared/data/floors`` from
    /work/main are one setting (a resume then checks the files it plans from, not their spelling)."""
    if old == new or not (isinstance(old, str) and isinstance(new, str)):
        return old == new
    try:
        return os.path.samefile(old, new)
    except OSError:  # one of them is gone: not known to be the same
        return False


def setting_differences(stored: object, s: SynthSettings) -> list[str]:
    """Where a manifest's settings differ from ``s``: one ``"name was X, now Y"`` each; empty when they agree."""
    if not isinstance(stored, dict):
        return ["settings missing from the manifest"]
    old = stored_settings(stored, type(s))
    new = json.loads(json.dumps(asdict(s)))  # compare as the manifest stores them (lists, not tuples)
    out = []
    for name in [*new, *(k for k in old if k not in new)]:
        if name not in new:  # a newer footseg's setting: its meaning here is unknown
            out.append(f"{name} was {json.dumps(old[name])}, unknown to this footseg")
        elif name not in old:  # in every manifest ever written: a damaged manifest, not an old one
            out.append(f"{name} missing from the manifest, now {json.dumps(new[name])}")
        elif old[name] != new[name] and not (name in FOLDER_SETTINGS and same_folder(old[name], new[name])):
            predates = " (not in the manifest, which predates it)" if name not in stored else ""
            out.append(f"{name} was {json.dumps(old[name])}{predates}, now {json.dumps(new[name])}")
    return out


def _without_hint(stored: dict, s: SynthSettings) -> str:
    """The --without that resumes a render made without ingredients ``s`` has on, if that is all that differs."""
    old = stored_settings(stored, type(s))
    off = [name for name, (key, value) in INGREDIENTS.items() if old.get(key) == value != getattr(s, key)]
    if not off:
        return ""
    trial = type(s)(**asdict(s))
    trial.remove(off)
    return "" if setting_differences(stored, trial) else f", or resume it with --without {','.join(off)}"


def synthesize(out: Path, s: SynthSettings, workers: int = 1, resume: bool = False, shard: tuple[int, int] = (0, 1),
               progress: bool = True) -> dict:
    """Write images ``i`` with ``i % N == I`` of the dataset to ``out``; returns the manifest (written to ``out``)."""
    return render_units(out, s, Worker, workers=workers, resume=resume, shard=shard, progress=progress)


def read_manifest(path: Path) -> dict | None:
    """A dataset's manifest.json, None when there is none; a ``FootsegError`` naming it when it cannot be read."""
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise FootsegError(f"unreadable manifest ({exc})", path) from exc
    if not isinstance(manifest, dict):
        raise FootsegError("unreadable manifest (not a JSON object)", path)
    return manifest


def plan_differences(stored: object, planned: dict) -> str:
    """What differs between a stored manifest's per-split lists (foot identities, floor photos, meshes, cutouts) and
    those planned now for the same settings, in words ('' when nothing does). The same settings plan other files when
    a folder changed or footseg lists it otherwise (since 2026-12-05 it leaves out copies across splits): images of
    both would be one render of two plans. Lists an older manifest lacks are not compared."""
    if not isinstance(stored, dict):
        return ""
    out = []
    for split, lists in stored.items():
        for key, was in (lists.items() if isinstance(lists, dict) else ()):
            now = planned.get(split, {}).get(key)
            if isinstance(was, list) and was != now:
                gone, new = len(set(was) - set(now or [])), len(set(now or []) - set(was))
                out.append(f"{split} {key}: {gone} no longer used, {new} new")
    return "; ".join(out)


def render_units(out: Path, s: SynthSettings, kind: type[Worker], workers: int = 1, resume: bool = False,
                 shard: tuple[int, int] = (0, 1), progress: bool = True) -> dict:
    """Write units ``i`` (images, or clips with ``kind`` a clip worker) with ``i % N == I`` of the dataset to ``out``;
    returns the manifest (written to ``out``). ``kind`` renders and writes a unit, names its files and its manifest."""
    from tqdm import tqdm

    s.validate()
    if workers < 1:
        raise FootsegError(f"--workers must be at least 1 (got {workers})")
    out = Path(out)
    planner = Planner(s)
    manifest = kind.manifest(s, planner)
    # The code that made the images, outside the settings: resume compares settings and plans, not code, so an old
    # manifest without it resumes as before, and a resume by other code is recorded rather than refused.
    manifest["code"] = code_version()
    mpath = out / MANIFEST
    check_writable(out, folder=True, hint="choose another output folder")
    old = read_manifest(mpath)
    if old is None and out.is_dir():
        # a folder of someone's photos, say: renders added beside them would make it neither dataset
        foreign = sorted(p.name for p in out.iterdir() if p.name not in (MANIFEST, _PARTIAL, *SPLITS))
        # A render writes its manifest before its first image, so split folders with files and no manifest are a
        # dataset of someone else's, whose images a render would write over (its names are numbers, as theirs may be).
        foreign += sorted(f"{p.relative_to(out)}" for split in SPLITS if (out / split).is_dir()
                          for p in (out / split).rglob("*") if p.is_file())
        if foreign:
            raise FootsegError(f"holds files that are not a footseg render ({', '.join(foreign[:3])}"
                               f"{', ...' if len(foreign) > 3 else ''}; no {MANIFEST}): choose another output folder",
                               out)
    if old is not None:
        # manifests have always named their format; a folder of still images never takes clips, nor the reverse
        fmt = old.get("format", FORMAT)
        if fmt != manifest["format"]:
            raise FootsegError(f"holds a {_KINDS.get(fmt, fmt)} dataset, not {_KINDS.get(manifest['format'])}. "
                               "Use another output folder", mpath)
        stored = old.get("settings")
        differences = setting_differences(stored, s)
        if differences:
            hint = _without_hint(stored, s) if isinstance(stored, dict) else ""
            raise FootsegError(f"holds a dataset made with other settings: {'; '.join(differences)}. "
                               f"Use another output folder{hint}", mpath)
        for name in FOLDER_SETTINGS:  # the folder as the manifest spelt it, so its digest does not change with the cwd
            if name in stored:
                manifest["settings"][name] = stored[name]
        if resume or shard != (0, 1):  # images of the earlier run stay: so does the record of their code
            if changed := plan_differences(old.get("splits"), manifest["splits"]):
                raise FootsegError(f"holds images planned from other files than this footseg plans from ({changed}): "
                                   "finish it with the footseg that started it, or use another output folder", mpath)
            earlier = [*old.get("earlier_code", []), old.get("code", {"unrecorded": True})]
            earlier = [c for i, c in enumerate(earlier) if c != manifest["code"] and c not in earlier[:i]]
            if earlier:
                manifest["earlier_code"] = earlier
    kind.prepare(out, s)
    (out / _PARTIAL).mkdir(parents=True, exist_ok=True)
    atomic_write_text(mpath, json.dumps(manifest, indent=1) + "\n")

    index, count = shard
    todo = [i for i in range(index, s.n, count)]
    if resume:
        todo = [i for i in todo if not all(p.is_file() for p in kind.paths(out, i, s))]
    bar = tqdm(total=len(todo), desc="synth", unit=kind.unit, disable=not progress, smoothing=0.05)
    if workers == 1 or len(todo) <= 1:
        global _WORKER
        if todo:
            if type(_WORKER) is not kind or _WORKER.s != s:
                _WORKER = kind(s)
            for i in todo:
                _WORKER.write(out, i)
                bar.update(1)
    else:
        from footseg.data.synth.render import lp_threads_for

        lp_threads_for(workers)
        ctx = mp.get_context("spawn")
        chunk = max(1, min(16, len(todo) // (workers * 8)))
        with ctx.Pool(workers, initializer=_init_worker, initargs=(s, kind)) as pool:
            for _ in pool.imap_unordered(_work, [(str(out), i) for i in todo], chunksize=chunk):
                bar.update(1)
    bar.close()
    if shard == (0, 1):  # the only writer, and done: what is left there is a killed earlier run's, never renamed
        for stray in (out / _PARTIAL).iterdir():
            stray.unlink()
    with contextlib.suppress(OSError):  # another shard may still be writing there
        (out / _PARTIAL).rmdir()
    return manifest

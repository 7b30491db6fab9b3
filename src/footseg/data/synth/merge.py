"""``footseg synth OUT --merge SRC...``: several still-image renders as one dataset, each split the union of theirs.

Files are hard links where the file system allows (else copies), named ``<source>_<stem>`` so stems never clash.
``OUT/manifest.json`` (format ``footseg-synth-merge/1``) lists the sources with their seeds, settings, counts, code
and manifest hashes, and holds the settings all sources share.

Split discipline across renders: a render puts image ``i``, foot identity ``k`` and procedural floor ``k`` in the
split of ``i % 10`` / ``k % 10``, whatever its seed, while what identity ``k`` looks like is drawn from the seed (so
two seeds never share a foot or a procedural floor; the FIND model is sampled, not a list of people). Floor photos,
meshes and cutouts are real files: they keep the split of their folder (``train/``, ``val/``, ``test/``) or of a
hash of their path in it, which is also seed-free, less copies of an earlier split's files. The merge compares the
files the sources used by their contents, whatever folder each read, and refuses when a photo, mesh or cutout sits in
two splits (renders made before copies were left out, 2026-12-05, can hold one), or when the files cannot be read to
tell.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

from footseg.atomic import atomic_write_text
from footseg.data.synth.engine import FORMAT, MANIFEST, MERGE_FORMAT, read_manifest, stored_settings
from footseg.data.synth.floors import SPLITS
from footseg.errors import FootsegError, FootsegWarning, require_folder
from footseg.provenance import code_version

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# manifest keys listing the real files each split used, and the setting naming their folder
_ASSETS = {"floor_photos": "floors", "meshes": "meshes", "cutouts": "cutouts"}
_CODE_KEYS = ("code", "earlier_code")


def parse_sources(items: Sequence[str]) -> dict[str, Path]:
    """``[NAME=]DIR`` arguments -> {name: folder}; a bare DIR is named after its folder."""
    out: dict[str, Path] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or Path(item).exists():
            name, path = Path(item).name, item
        if not _NAME.match(name):
            raise FootsegError(f"source name {name!r} must be letters, digits, '_', '.' and '-' (it prefixes the "
                               "stems; name it with NAME=DIR)")
        if name in out:
            raise FootsegError(f"two sources are named {name!r}; name them with NAME=DIR")
        out[name] = Path(path)
    return out


def manifest_digest(manifest: Mapping) -> str:
    """sha256 of a manifest's content without the code that wrote it: a dataset resumed by newer code, whose images
    are the same, keeps its digest."""
    body = {k: v for k, v in manifest.items() if k not in _CODE_KEYS}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _read_source(name: str, folder: Path) -> tuple[dict, bytes]:
    require_folder(folder, "render folder")
    path = folder / MANIFEST
    try:
        raw = path.read_bytes()
        manifest = json.loads(raw)
    except FileNotFoundError as exc:
        raise FootsegError("no manifest.json: not a `footseg synth` render", folder) from exc
    except (OSError, ValueError) as exc:
        raise FootsegError(f"unreadable manifest ({exc})", path) from exc
    fmt = manifest.get("format") if isinstance(manifest, dict) else None
    if fmt == MERGE_FORMAT:
        raise FootsegError("is itself a merge: merge the renders it was made of instead", folder)
    if fmt != FORMAT:
        raise FootsegError(f"holds a {fmt!r} dataset; only still-image renders ({FORMAT}) can be merged", folder)
    for split in SPLITS:
        have = len(_pairs(folder, split))
        want = manifest["counts"][split]
        if have < want:
            raise FootsegError(f"incomplete render: its {split} split has {have} of {want} images (finish it with "
                               "`footseg synth ... --resume`, or render its other shards)", folder)
        if have > want:  # files put there since: the merge would pass them off as the render's
            raise FootsegError(f"its {split} split holds {have} images where the render made {want}: files were "
                               "added to it since (take them out, or render them as a source of their own)", folder)
    return manifest, raw


def _pairs(folder: Path, split: str) -> list[tuple[Path, Path]]:
    """(image, mask) files of a render's split, by stem; an image without its mask is not done yet."""
    images = folder / split / "images"
    masks = folder / split / "masks"
    if not images.is_dir():
        return []
    out = []
    for image in sorted(images.iterdir()):
        mask = masks / f"{image.stem}.png"
        if image.is_file() and not image.name.startswith(".") and mask.is_file():
            out.append((image, mask))
    return out


def _file_hash(path: Path, cache: dict[Path, str]) -> str:
    real = path.resolve()
    if real not in cache:
        cache[real] = hashlib.sha256(real.read_bytes()).hexdigest()
    return cache[real]


def check_split_discipline(manifests: Mapping[str, dict]) -> None:
    """Refuse sources that would put one floor photo, mesh or cutout into two splits of the merge."""
    cache: dict[Path, str] = {}
    for key, setting in _ASSETS.items():
        users = {name: m for name, m in manifests.items() if any(m["splits"][sp].get(key) for sp in SPLITS)}
        seen: dict[str, tuple[str, str, str]] = {}  # contents -> (source, split, path) where first seen
        for name, m in users.items():
            root = Path(m["settings"][setting])
            for split in SPLITS:
                for rel in m["splits"][split].get(key, []):
                    # by contents, even where every source read one folder: renders made before footseg left out
                    # copies across splits (2026-12-05) used copies of training floors in their validation split
                    if not (root / rel).is_file():
                        raise FootsegError(
                            f"{root / rel} of source {name!r} ({setting}) cannot be read to check that no file lands "
                            "in two splits (run the merge where that folder is)")
                    first = seen.setdefault(_file_hash(root / rel, cache), (name, split, rel))
                    if first[1] != split:
                        raise FootsegError(
                            f"{setting} file {first[2]} is in the {first[1]} split of source {first[0]!r} and "
                            f"{rel} (same file) in the {split} split of {name!r}: merging would leak it across splits")


def _check_compatible(manifests: Mapping[str, dict]) -> None:
    sizes = {m["size"] for m in manifests.values()}
    if len(sizes) > 1:
        raise FootsegError(f"the sources have different image sizes ({', '.join(map(str, sorted(sizes)))}): render "
                           "them at one --size")
    seen: dict[str, str] = {}
    seeds: dict[int, str] = {}
    for name, m in manifests.items():
        # Same seed and settings (n aside) means image i is the same image in both: the merge would hold it twice.
        key = json.dumps({k: v for k, v in stored_settings(m["settings"]).items() if k != "n"} | {"seed": m["seed"]},
                         sort_keys=True)
        if key in seen:
            raise FootsegError(f"sources {seen[key]!r} and {name!r} are the same render (seed {m['seed']}, same "
                               "settings): the merge would hold their images twice")
        seen[key] = name
        if m["seed"] in seeds:  # other settings: a deliberate pair of versions of one set of scenes, or a slip
            warnings.warn(FootsegWarning(
                f"sources {seeds[m['seed']]!r} and {name!r} share seed {m['seed']}: their scenes are drawn from the "
                "same random numbers, so where their settings do not change a scene it is in the merge twice (give "
                "each render its own seed, unless two versions of one set of scenes are what you want)"), stacklevel=3)
        seeds.setdefault(m["seed"], name)


def _link(src: Path, dst: Path) -> str:
    """Hard-link ``src`` as ``dst`` (a copy where links are impossible); 'kept' when ``dst`` already is that file."""
    if dst.exists():
        if os.path.samefile(src, dst):
            return "kept"
        if dst.stat().st_size == src.stat().st_size and dst.read_bytes() == src.read_bytes():
            return "kept"
    tmp = dst.with_name(f".{dst.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
        how = "linked"
    except OSError:  # another file system, or one without hard links
        shutil.copy2(src, tmp)
        how = "copied"
    os.replace(tmp, dst)
    return how


def _empty_count(manifests: Mapping[str, dict], split: str) -> dict[str, int]:
    """The split's scenes with no foot (``empty_prob``), where a source has any: as a render's manifest counts them."""
    counts = [m["splits"][split].get("empty_images") for m in manifests.values()]
    return {"empty_images": sum(c or 0 for c in counts)} if any(c is not None for c in counts) else {}


def merge_renders(out: Path, sources: Mapping[str, Path]) -> dict:
    """Merge the renders ``sources`` ({name: folder}) into ``out``; returns the manifest (also written to ``out``).

    Running it again with the same sources completes an interrupted merge and changes nothing in a finished one;
    ``out`` holding anything else is refused.
    """
    out = Path(out)
    if not sources:
        raise FootsegError("--merge needs at least one source render")
    manifests: dict[str, dict] = {}
    raws: dict[str, bytes] = {}
    for name, folder in sources.items():
        manifests[name], raws[name] = _read_source(name, Path(folder))
    _check_compatible(manifests)
    check_split_discipline(manifests)

    records = {}
    for name, m in manifests.items():
        records[name] = {
            "path": str(Path(sources[name]).resolve()),
            "manifest_sha256": hashlib.sha256(raws[name]).hexdigest(),
            "seed": m["seed"], "n": m["n"], "size": m["size"], "counts": m["counts"],
            "settings": stored_settings(m["settings"]),  # as rendered: settings it predates filled in
            "code": m.get("code"),  # None: rendered before manifests recorded their code
            **({"earlier_code": m["earlier_code"]} if "earlier_code" in m else {}),
        }
    first, *rest = (r["settings"] for r in records.values())
    shared = {k: v for k, v in first.items() if k not in ("n", "seed") and all(r.get(k, object()) == v for r in rest)}
    counts = {sp: sum(m["counts"][sp] for m in manifests.values()) for sp in SPLITS}
    manifest = {
        "format": MERGE_FORMAT,
        "seed": [m["seed"] for m in manifests.values()],
        "n": sum(counts.values()),
        "size": next(iter(manifests.values()))["size"],
        "settings": shared,  # only what every source shares; each source's own are under "sources"
        "counts": counts,
        "splits": {sp: {"images": counts[sp], **_empty_count(manifests, sp),
                        "sources": {name: m["counts"][sp] for name, m in manifests.items()}} for sp in SPLITS},
        "sources": records,
        "code": code_version(),
    }

    mpath = out / MANIFEST
    if (old := read_manifest(mpath)) is not None:
        old_sources = old.get("sources") if old.get("format") == MERGE_FORMAT else None
        same = isinstance(old_sources, dict) and {k: v.get("manifest_sha256") for k, v in old_sources.items()} == {
            k: v["manifest_sha256"] for k, v in records.items()}
        if not same:
            raise FootsegError("holds another dataset (not a merge of these sources): use another output folder", mpath)
        manifest["code"] = old.get("code", manifest["code"])  # a finished merge is not rewritten by a re-run
    elif out.exists() and any(out.iterdir()):
        raise FootsegError("is not empty and holds no merge manifest: use another output folder", out)
    for split in SPLITS:
        (out / split / "images").mkdir(parents=True, exist_ok=True)
        (out / split / "masks").mkdir(parents=True, exist_ok=True)
    atomic_write_text(mpath, json.dumps(manifest, indent=1) + "\n")  # first: a re-run knows what the folder holds

    for name, folder in sources.items():
        for split in SPLITS:
            for image, mask in _pairs(Path(folder), split):
                # image first, mask last, as a render writes them: an image with its mask is complete
                _link(image, out / split / "images" / f"{name}_{image.name}")
                _link(mask, out / split / "masks" / f"{name}_{mask.name}")
    return manifest


def merged_is_complete(out: Path) -> bool:
    """Whether ``out`` holds a finished merge: its manifest and every image and mask it counts."""
    try:
        manifest = json.loads((Path(out) / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(manifest, dict) or manifest.get("format") != MERGE_FORMAT:
        return False
    return all(len(_pairs(Path(out), sp)) == manifest["counts"][sp] for sp in SPLITS)

"""Floors: procedural materials (wood planks, tiles with grout, stone and marble, carpets and rugs, concrete, painted
walls, outdoor ground: paving, asphalt, gravel, pavement slabs) evaluated per pixel in GLSL, and floor photos from a
folder, both partitioned by split.

A ``Surface`` is the parameter set of one material; the renderer draws the ground plane, rugs and the wall with it.
Procedural floors are identified by an integer seed, and the seed's residue decides its split (like foot identities),
so no floor appears in two splits. Photo floors keep the split of their folder (``DIR/train``, ``DIR/val``,
``DIR/test``); a flat folder is partitioned by a hash of each file's path. A photo whose bytes are those of one in an
earlier split is left out of its later split.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np

from footseg.errors import FootsegError, require_folder

T = TypeVar("T")

SPLITS = ("train", "val", "test")

WOOD, TILES, STONE, CARPET, CONCRETE, PHOTO, WALL, OUTDOOR = range(8)
# patterns of an OUTDOOR surface (its params[0])
PAVING, ASPHALT, GRAVEL, SLABS = range(4)


def split_of(index: int) -> str:
    """80/10/10 by residue: the split of image ``index``, of foot identity ``index``, of procedural floor ``index``."""
    r = index % 10
    return "train" if r < 8 else ("val" if r == 8 else "test")


def by_split(root: Path, items: Callable[[Path], list[T]], path: Callable[[T], Path]) -> dict[str, list[T]]:
    """The ``items`` of a folder per split: those of ``root/train``, ``root/val`` and ``root/test`` when such folders
    exist (kept as given), else those of ``root`` itself, partitioned by a crc32 of each one's path below ``root``.
    Then ``without_copies_across_splits``."""
    out: dict[str, list[T]] = {s: [] for s in SPLITS}
    if any((root / s).is_dir() for s in SPLITS):
        for s in SPLITS:
            if (root / s).is_dir():
                out[s] = items(root / s)
    else:
        for item in items(root):
            out[split_of(zlib.crc32(str(path(item).relative_to(root)).encode()))].append(item)
    return without_copies_across_splits(out, path)


def without_copies_across_splits(per_split: dict[str, list[T]], path: Callable[[T], Path]) -> dict[str, list[T]]:
    """``per_split`` without the items whose file has the bytes of an item in an earlier split (train, val, test).

    Folders of photos collected by hand hold copies under other names (in the floors given to footseg, 4 of the 90
    validation photos copy training ones, and 8 of the 90 test photos copy training or validation ones): a copy of a
    training floor in the validation split scores the model on a floor it was trained on. The copy in the earliest
    split stays, so training lists, and the renders that pick from them by index, are what they were. Copies within a
    split are left alone: they leak nothing. Near copies (the same spot photographed twice) are not caught."""

    def size(item: T) -> int:
        return Path(path(item)).stat().st_size

    # only files whose size occurs in two splits can be copies across them: the rest are never read
    sizes_in = {split: {size(item) for item in per_split.get(split, [])} for split in SPLITS}
    shared = {z for k, a in enumerate(SPLITS) for b in SPLITS[k + 1:] for z in sizes_in[a] & sizes_in[b]}
    first_split: dict[tuple[int, str], str] = {}
    out: dict[str, list[T]] = {}
    for split in SPLITS:
        out[split] = []
        for item in per_split.get(split, []):
            z = size(item)
            if z in shared:
                with open(path(item), "rb") as f:
                    key = (z, hashlib.file_digest(f, "sha256").hexdigest())
                if first_split.setdefault(key, split) != split:
                    continue
            out[split].append(item)
    return out


def ids_of_split(count: int, split: str) -> np.ndarray:
    return np.array([i for i in range(count) if split_of(i) == split], np.int64)


@dataclass
class Surface:
    kind: int
    params: np.ndarray = field(default_factory=lambda: np.zeros(8, np.float32))  # meaning depends on kind
    colors: np.ndarray = field(default_factory=lambda: np.zeros((3, 3), np.float32))
    angle: float = 0.0
    offset: tuple[float, float] = (0.0, 0.0)
    gloss: float = 0.0  # strength of mirror-like lamp reflections
    photo: str | None = None  # path of a floor photo (kind PHOTO)


def _hsv(rng: np.random.Generator, h: tuple[float, float], s: tuple[float, float],
         v: tuple[float, float]) -> np.ndarray:
    import colorsys

    return np.array(colorsys.hsv_to_rgb(rng.uniform(*h) % 1.0, rng.uniform(*s), rng.uniform(*v)), np.float32)


def random_color(rng: np.random.Generator) -> np.ndarray:
    return _hsv(rng, (0, 1), (0, 0.8), (0.1, 0.95))


def procedural_floor(rng: np.random.Generator) -> Surface:
    """One procedural floor material (wood, tiles, stone/marble, carpet/rug or concrete)."""
    kind = int(rng.choice([WOOD, TILES, STONE, CARPET, CONCRETE], p=[0.32, 0.26, 0.14, 0.18, 0.10]))
    p = np.zeros(8, np.float32)
    c = np.zeros((3, 3), np.float32)
    gloss = 0.0
    if kind == WOOD:
        p[:4] = [rng.uniform(0.07, 0.22), rng.uniform(0.5, 2.0), rng.uniform(20, 70), rng.uniform(0.001, 0.004)]
        p[4] = rng.uniform(0.05, 0.3)  # plank-to-plank variation
        base = _hsv(rng, (0.03, 0.11), (0.3, 0.8), (0.25, 0.85))
        c[0], c[1] = base, base * rng.uniform(0.55, 0.85)
        c[2] = base * 0.35
        gloss = rng.uniform(0, 0.5)
    elif kind == TILES:
        p[:4] = [rng.uniform(0.1, 0.8), rng.uniform(0.002, 0.01), rng.integers(0, 4), rng.uniform(3, 14)]
        p[4] = rng.uniform(0.0, 0.12)
        c[0] = _hsv(rng, (0, 1), (0, 0.35), (0.55, 0.97)) if rng.random() < 0.8 else random_color(rng)
        c[1] = random_color(rng) if rng.random() < 0.5 else c[0] * rng.uniform(0.5, 0.9)
        c[2] = _hsv(rng, (0, 1), (0, 0.2), (0.2, 0.9))
        gloss = rng.uniform(0.1, 1.0)
    elif kind == STONE:
        p[:4] = [rng.uniform(2, 15), rng.uniform(1, 6), rng.uniform(1, 5), rng.uniform(0.3, 1.2)]
        p[4] = rng.uniform(0.0, 1.0)  # slab seams when > 0.5
        c[0] = _hsv(rng, (0, 1), (0, 0.25), (0.55, 0.97))
        c[1] = _hsv(rng, (0, 1), (0, 0.4), (0.1, 0.7))
        c[2] = c[0] * 0.8
        gloss = rng.uniform(0.3, 1.0)
    elif kind == CARPET:
        p[:4] = [rng.uniform(150, 500), rng.integers(0, 5), rng.uniform(2, 12), rng.uniform(0.05, 0.35)]
        c[0], c[1], c[2] = random_color(rng), random_color(rng), random_color(rng)
    else:
        p[:4] = [rng.uniform(2, 12), rng.uniform(0.1, 0.4), rng.uniform(0, 1), 0]
        c[0] = _hsv(rng, (0.05, 0.15), (0, 0.15), (0.35, 0.8))
        c[1] = c[0] * 0.7
        gloss = rng.uniform(0, 0.3)
    return Surface(kind, p, c, angle=float(rng.uniform(0, np.pi)), offset=tuple(rng.uniform(-50, 50, 2)),
                   gloss=float(gloss))


def wall_surface(rng: np.random.Generator) -> Surface:
    p = np.zeros(8, np.float32)
    p[0] = rng.uniform(0.0, 0.12)  # skirting board height
    c = np.zeros((3, 3), np.float32)
    c[0] = _hsv(rng, (0, 1), (0, 0.3), (0.5, 0.95))
    c[1] = _hsv(rng, (0, 1), (0, 0.2), (0.3, 1.0))
    return Surface(WALL, p, c)


def painted_wall(rng: np.random.Generator) -> Surface:
    """A plain painted wall with a skirting board that stands out from it: white or wood-dark boards under coloured
    or pale paint, as in rooms where people film their own feet (``wall_surface``'s boards are often invisible)."""
    p = np.zeros(8, np.float32)
    p[0] = rng.uniform(0.05, 0.16)  # skirting board height
    p[1] = rng.uniform(0.004, 0.012)  # its rounded top edge, in shade
    c = np.zeros((3, 3), np.float32)
    if rng.random() < 0.6:  # white board, wall painted anything from off-white to a strong colour
        c[0] = _hsv(rng, (0, 1), (0.05, 0.55), (0.45, 0.92))
        c[1] = _hsv(rng, (0.08, 0.15), (0, 0.06), (0.85, 0.98))
    else:  # dark or wooden board under a pale wall
        c[0] = _hsv(rng, (0, 1), (0, 0.2), (0.75, 0.97))
        c[1] = _hsv(rng, (0.04, 0.1), (0.2, 0.7), (0.12, 0.5))
    return Surface(WALL, p, c)


def outdoor_ground(rng: np.random.Generator) -> Surface:
    """Ground outside (procedural, OUTDOOR): paving stones, asphalt, gravel or concrete pavement slabs. Greyer, rougher
    and more matte than indoor floors, so that "a grey rough floor" is not an unseen case."""
    kind = int(rng.choice([PAVING, ASPHALT, GRAVEL, SLABS], p=[0.35, 0.25, 0.15, 0.25]))
    p = np.zeros(8, np.float32)
    c = np.zeros((3, 3), np.float32)
    p[0] = kind
    p[5] = rng.uniform(0.15, 0.45)  # roughness: strength of the grain and stains
    if kind == PAVING:  # bricks or small setts, running bond or grid
        p[1] = rng.uniform(0.1, 0.3)  # stone length (m)
        p[2] = p[1] * rng.uniform(0.5, 1.0)  # stone width
        p[3] = rng.uniform(0.004, 0.012)  # joint
        p[4] = 0.5 if rng.random() < 0.7 else 0.0  # row offset (running bond)
        c[0] = _hsv(rng, (0.0, 0.12), (0.0, 0.35), (0.3, 0.7))
        c[1] = c[0] * rng.uniform(0.6, 0.9)
        c[2] = _hsv(rng, (0.05, 0.12), (0.0, 0.2), (0.12, 0.45))
    elif kind == ASPHALT:
        p[1] = rng.uniform(200, 450)  # aggregate grains per metre
        c[0] = np.full(3, rng.uniform(0.12, 0.3)) * _hsv(rng, (0, 1), (0, 0.06), (0.95, 1.0))
        c[1] = np.full(3, rng.uniform(0.45, 0.75))  # pale stones of the aggregate
        c[2] = c[0] * 0.6
    elif kind == GRAVEL:
        p[1] = rng.uniform(35, 90)  # pebbles per metre
        c[0] = _hsv(rng, (0.05, 0.12), (0.02, 0.3), (0.45, 0.8))
        c[1] = _hsv(rng, (0.0, 0.12), (0.0, 0.25), (0.25, 0.55))
        c[2] = c[1] * 0.35
    else:  # cast concrete slabs of a pavement
        p[1] = rng.uniform(0.5, 1.2)
        p[2] = p[1] * rng.uniform(0.8, 1.5)
        p[3] = rng.uniform(0.004, 0.01)
        c[0] = _hsv(rng, (0.05, 0.15), (0.0, 0.1), (0.4, 0.75))
        c[1] = c[0] * rng.uniform(0.7, 0.9)
        c[2] = c[0] * 0.45
    return Surface(OUTDOOR, p, c, angle=float(rng.uniform(0, np.pi)), offset=tuple(rng.uniform(-50, 50, 2)),
                   gloss=float(rng.uniform(0, 0.04)))


def weathered_photo(floor: Surface, rng: np.random.Generator) -> Surface:
    """A photo of indoor tiles as outdoor slabs: larger (a photo's long side covering 1.5-4 m), greyer, no stain."""
    p = np.zeros(8, np.float32)
    c = np.ones((3, 3), np.float32)
    p[0] = rng.uniform(1.5, 4.0)
    p[1], p[2] = rng.uniform(0.0, 0.35), rng.uniform(0.9, 1.3)  # saturation, gamma
    c[0] = rng.uniform(0.8, 1.0) * np.array([1.0, 0.99, 0.96])
    return Surface(PHOTO, p, c, angle=floor.angle, offset=floor.offset, gloss=0.0, photo=floor.photo)


def photo_floor(path: str, rng: np.random.Generator) -> Surface:
    p = np.zeros(8, np.float32)
    c = np.ones((3, 3), np.float32)
    p[0] = rng.uniform(0.6, 1.8)  # metres covered by the photo's long side
    p[1:3] = 1.0  # saturation, gamma: the photo as it is
    # Most floor photos are pale laminate, but feet are photographed on dark, warm, stained wood too, where skin and
    # floor share a colour (the worst real photos). Stain part of the photos: more saturated, darker, warmer.
    if rng.random() < 0.45:
        p[1], p[2] = rng.uniform(1.1, 1.8), rng.uniform(1.1, 1.9)
        c[0] = [rng.uniform(0.95, 1.1), rng.uniform(0.68, 0.9), rng.uniform(0.45, 0.75)]
    return Surface(PHOTO, p, c, angle=float(rng.uniform(0, 2 * np.pi)),
                   offset=tuple(rng.uniform(-5, 5, 2)), gloss=float(rng.uniform(0, 0.4)), photo=path)


# The formats floor photos were taken in before footseg read WebP, AVIF and HEIC: a render's photos are listed by
# index, so a folder's other files joining the list would change what a seed renders from that folder.
FLOOR_EXTENSIONS = (".jpg", ".jpeg", ".png")


def list_photos(folder: Path) -> dict[str, list[str]]:
    """Floor photos of each split, as sorted absolute paths. ``folder`` has train/val/test subfolders, or is flat."""
    folder = Path(folder)
    require_folder(folder, "floor photo folder")
    def photos(split: Path) -> list[str]:
        # Sorted by text, not in natural order: renders pick photos by index, so this order is part of what a seed
        # means, and recipes' renders must stay what they were. Hidden files (macOS ._IMG.jpg) are no photos.
        return sorted(str(p) for p in split.rglob("*") if p.is_file() and p.suffix.lower() in FLOOR_EXTENSIONS
                      and not any(part.startswith(".") for part in p.relative_to(split).parts))

    out = by_split(folder, photos, Path)
    if not any(out.values()):
        raise FootsegError(f"no floor photos ({'/'.join(FLOOR_EXTENSIONS)}) found", folder)
    return out


# GLSL: one function per material kind. The renderer compiles one program per kind (``#define KIND k``): llvmpipe
# evaluates both sides of a branch, so a single program dispatching at run time would pay for every material.
FLOOR_GLSL = """
uniform float s_p[8];
uniform vec3 s_c[3];
uniform vec2 s_rot;      // cos, sin of the material angle
uniform vec2 s_offset;
uniform sampler2D photo;

float hash(vec2 p) { return fract(sin(dot(p, vec2(127.1, 311.7))) * 43758.5453); }
float vnoise(vec2 p) {
    vec2 i = floor(p); vec2 f = fract(p); f = f * f * (3.0 - 2.0 * f);
    return mix(mix(hash(i), hash(i + vec2(1, 0)), f.x), mix(hash(i + vec2(0, 1)), hash(i + vec2(1, 1)), f.x), f.y);
}
float fbm(vec2 p) {
    float a = 0.5, s = 0.0;
    for (int k = 0; k < 3; k++) { s += a * vnoise(p); p = p * 2.03 + 17.1; a *= 0.5; }
    return s;
}

vec3 wood(vec2 uv) {
    float w = s_p[0], len = s_p[1];
    float row = floor(uv.y / w);
    float off = hash(vec2(row, 3.1)) * len;
    float col = floor((uv.x + off) / len);
    float h = hash(vec2(row, col));
    vec2 l = vec2(uv.x + off - col * len, uv.y - row * w);
    float g = fbm(vec2(uv.x * 2.0, uv.y * 30.0 + h * 40.0));
    float rings = sin((l.y + 0.02 * sin(l.x * 3.0 + h * 6.0)) * s_p[2] * 6.0 + g * 6.0 + h * 30.0);
    float t = smoothstep(-0.6, 1.0, rings) * 0.6 + 0.4 * g;
    vec3 c = mix(s_c[0], s_c[1], t) * (1.0 + s_p[4] * (h - 0.5) * 2.0);
    float gap = s_p[3];
    if (l.y < gap || l.x < gap) c = mix(c, s_c[2], 0.8);
    return c;
}

vec3 marble(vec2 uv) {
    float v = abs(sin(uv.x * s_p[0] + fbm(uv * s_p[1]) * s_p[2] * 3.0));
    float veins = smoothstep(0.0, 0.12 * s_p[3], v);
    return mix(s_c[1], s_c[0], 0.25 + 0.75 * veins) * (0.93 + 0.1 * fbm(uv * 6.0));
}

vec3 tiles(vec2 uv) {
    float s = s_p[0];
    vec2 id = floor(uv / s);
    vec2 f = uv - id * s;
    float h = hash(id);
    float d = min(min(f.x, f.y), min(s - f.x, s - f.y));
    if (d < s_p[1] * 0.5) return s_c[2] * (0.9 + 0.2 * vnoise(uv * 200.0));
    int pat = int(s_p[2]);
    vec3 c = s_c[0] * (1.0 + s_p[4] * (h - 0.5));
    vec2 q = f / s - 0.5;
    if (pat == 1) {
        if (mod(id.x + id.y, 2.0) > 0.5) c = s_c[1];
    } else if (pat == 2) {
        float v = abs(sin((uv.x + uv.y) * 9.0 + fbm(uv * 3.0 + h * 5.0) * 6.0));
        c = mix(s_c[1], c, smoothstep(0.0, 0.1, v));
    } else if (pat == 3) {
        float r = length(q), a = atan(q.y, q.x);
        float m = sin(r * s_p[3] * 6.0) * sin(a * 4.0 + r * 10.0) + 0.6 * sin((abs(q.x) + abs(q.y)) * s_p[3] * 9.0);
        c = mix(c, s_c[1], smoothstep(0.2, 0.5, m));
    }
    return c * (0.95 + 0.07 * vnoise(uv * 40.0));
}

vec3 carpet(vec2 uv) {
    float fibre = vnoise(uv * s_p[0]) * 0.6 + 0.4 * vnoise(uv * s_p[0] * 2.3 + 5.0);
    int pat = int(s_p[1]);
    float k = s_p[2];
    vec3 c = s_c[0];
    if (pat == 1) {
        c = mix(s_c[0], s_c[1], step(0.5, fract(uv.x * k)));
    } else if (pat == 2) {
        vec2 q = abs(fract(uv * k) - 0.5);
        c = mix(s_c[0], s_c[1], step(q.x + q.y, 0.3));
        c = mix(c, s_c[2], step(abs(q.x + q.y - 0.4), 0.04));
    } else if (pat == 3) {
        float n = fbm(uv * k * 0.5);
        c = mix(s_c[0], s_c[1], smoothstep(0.45, 0.55, n));
        c = mix(c, s_c[2], smoothstep(0.62, 0.68, n));
    } else if (pat == 4) {
        vec2 q = fract(uv * k * 0.5);
        c = mix(s_c[0], s_c[1], step(0.5, q.x) * step(0.5, q.y) + step(q.x, 0.5) * step(q.y, 0.5));
    }
    float folds = 1.0 + s_p[3] * (fbm(uv * 3.0) - 0.5);
    return c * (0.75 + 0.45 * fibre) * folds;
}

vec3 concrete(vec2 uv) {
    float n = fbm(uv * s_p[0]);
    float speck = step(0.93, hash(floor(uv * 300.0)));
    return s_c[0] * (0.75 + 0.5 * n) * (1.0 - s_p[1] * speck);
}

vec3 photo_floor(vec2 uv) {
    vec2 size = vec2(textureSize(photo, 0));
    vec2 t = uv / s_p[0] * vec2(1.0, size.x / size.y);
    vec2 m = 1.0 - abs(mod(t, 2.0) - 1.0);   // mirrored repeat, seamless
    vec3 c = textureGrad(photo, m, dFdx(t), dFdy(t)).rgb;
    c = mix(vec3(dot(c, vec3(0.299, 0.587, 0.114))), c, s_p[1]);  // saturation
    return pow(max(c, 0.0), vec3(s_p[2])) * s_c[0];                // stain: darker and warmer
}

vec3 wall(vec3 p) {
    if (p.z < s_p[0]) return s_p[1] > 0.0 && p.z > s_p[0] - s_p[1] ? s_c[1] * 0.78 : s_c[1];
    return s_c[0] * (0.93 + 0.1 * fbm(p.xz * 3.0 + p.yz * 3.0));
}

// outdoor ground; s_p: pattern, sizes (1-3), row offset (4), roughness (5)
vec3 bricks(vec2 uv) {
    vec2 size = vec2(s_p[1], s_p[2]);
    float row = floor(uv.y / size.y);
    vec2 q = vec2(uv.x / size.x + s_p[4] * mod(row, 2.0), uv.y / size.y);
    vec2 id = floor(q);
    vec2 f = (q - id) * size;
    float h = hash(id + 0.37);
    float d = min(min(f.x, f.y), min(size.x - f.x, size.y - f.y));
    vec3 c = mix(s_c[0], s_c[1], h) * (0.85 + 0.3 * fbm(uv * 25.0 + h * 9.0) * s_p[5] * 2.0);
    c *= mix(0.75, 1.0, smoothstep(0.0, s_p[3] * 1.5, d));  // worn, rounded stone edges
    return d < s_p[3] * 0.5 ? s_c[2] * (0.8 + 0.4 * vnoise(uv * 300.0)) : c;
}

vec3 asphalt(vec2 uv) {
    float g = vnoise(uv * s_p[1]);
    float stones = smoothstep(0.72, 0.9, hash(floor(uv * s_p[1] * 0.5)));
    float pits = step(0.9, hash(floor(uv * s_p[1] * 1.3) + 3.1));
    vec3 c = s_c[0] * (0.8 + 0.4 * g) * (0.85 + 0.3 * fbm(uv * 2.0));
    c = mix(c, s_c[1] * (0.7 + 0.4 * g), stones * 0.6 * (0.5 + s_p[5]));
    return mix(c, s_c[2], pits * 0.8);
}

vec3 gravel(vec2 uv) {
    vec2 q = uv * s_p[1];
    vec2 i = floor(q);
    float d1 = 9.0, d2 = 9.0;
    float h = 0.0;
    for (int y = -1; y <= 1; y++) {
        for (int x = -1; x <= 1; x++) {
            vec2 cell = i + vec2(x, y);
            vec2 at = cell + vec2(hash(cell), hash(cell + 7.7));
            float d = length(q - at);
            if (d < d1) { d2 = d1; d1 = d; h = hash(cell + 2.3); } else if (d < d2) { d2 = d; }
        }
    }
    float edge = smoothstep(0.0, 0.25, d2 - d1);   // dark gaps between pebbles
    float dome = 1.0 - 0.5 * d1;                   // each pebble lit like a dome
    vec3 c = mix(s_c[0], s_c[1], h) * (0.8 + 0.4 * hash(i + 5.5)) * dome;
    return mix(s_c[2], c, edge) * (0.9 + 0.2 * vnoise(uv * 400.0) * s_p[5] * 2.0);
}

vec3 outdoor(vec2 uv) {
    int pat = int(s_p[0] + 0.5);
    vec3 c;
    if (pat == 1) {
        c = asphalt(uv);
    } else if (pat == 2) {
        c = gravel(uv);
    } else {
        c = bricks(uv);
        if (pat == 3) c = mix(c, s_c[0] * (0.8 + 0.4 * vnoise(uv * 500.0)), 0.5);  // porous cast concrete
    }
    float stain = fbm(uv * 0.7 + 3.3);   // puddle marks, dirt
    return c * (1.0 - s_p[5] * 0.6 * smoothstep(0.45, 0.8, stain));
}

vec3 surface_color(vec3 p) {
    vec2 uv = vec2(s_rot.x * p.x - s_rot.y * p.y, s_rot.y * p.x + s_rot.x * p.y) + s_offset;
#if KIND == 0
    return wood(uv);
#elif KIND == 1
    return tiles(uv);
#elif KIND == 2
    vec3 c = marble(uv);
    if (s_p[4] > 0.5) {
        vec2 f = fract(uv / 0.6) * 0.6;
        if (min(f.x, f.y) < 0.002) c *= 0.7;
    }
    return c;
#elif KIND == 3
    return carpet(uv);
#elif KIND == 4
    return concrete(uv);
#elif KIND == 5
    return photo_floor(uv);
#elif KIND == 6
    return wall(p);
#else
    return outdoor(uv);
#endif
}
"""

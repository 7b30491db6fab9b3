"""The one place that reads and writes images and masks.

Images come back as ``uint8`` RGB arrays of shape (H, W, 3) with EXIF orientation applied, so a phone photo taken
in portrait is portrait here too, and in sRGB: a photo with another RGB colour profile (an iPhone's Display P3, Adobe
RGB) is converted, as browsers show it and as footseg's renders are made. Photos may be JPEG, PNG, WebP, AVIF or
HEIC/HEIF (what phones save: iPhones default to HEIC), the last through pi-heif, libheif's decoder as a Pillow
plugin. Masks come back as ``uint8`` arrays of shape (H, W) holding the raw stored values; callers binarise with
``mask > 0`` (0 = background, anything else = foot).
"""

from __future__ import annotations

import functools
import io
import re
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from footseg.atomic import atomic_write_bytes
from footseg.errors import FootsegError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".avif", ".heic", ".heif", ".hif")
HEIF_EXTENSIONS = (".heic", ".heif", ".hif")
# How messages name the photo formats: images/<stem>.jpg|png|...
IMAGE_HINT = "|".join(ext[1:] for ext in IMAGE_EXTENSIONS if ext != ".jpeg")
MASK_EXTENSION = ".png"


def natural_key(name: str) -> list[int | str]:
    """Sort key putting ``frame_2`` before ``frame_10``: numbered frames are often not zero-padded (zero-padded names
    sort as they would by text)."""
    # re.split with a group alternates text and digit runs, so keys compare str with str and int with int
    return [int(part) if i % 2 else part.lower() for i, part in enumerate(re.split(r"(\d+)", name))]


def image_files(folder: str | Path) -> list[Path]:
    """The image files directly inside ``folder`` in natural order (``natural_key``); hidden files are skipped."""
    return sorted(
        (p for p in Path(folder).iterdir()
         if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS),
        key=lambda p: natural_key(p.name),
    )


def photos_folder(path: str | Path) -> Path:
    """Where a folder given for its photos keeps them: its ``images/`` folder when it has one (a dataset, a clip),
    else the folder itself."""
    path = Path(path)
    return path / "images" if (path / "images").is_dir() else path


def _heif_readable(path: Path, required: bool) -> bool:
    """Whether PIL reads HEIF now, registering pi-heif's reader first if it does not; a missing pi-heif is a
    one-line error where ``required``."""
    # Registered when first needed: the plugin takes a tenth of a second to import, more than reading a photo.
    # libheif applies the file's rotation itself and pi-heif then resets the EXIF orientation to 1, so
    # exif_transpose does not rotate a second time.
    if "HEIF" in Image.OPEN:
        return True
    try:
        import pi_heif
    except ImportError as exc:
        if required:
            raise FootsegError("reading HEIC/HEIF photos needs pi-heif (pip install pi-heif)", path) from exc
        return False
    pi_heif.register_heif_opener()
    return True


# The largest photo footseg reads: 268 megapixels (16384 x 16384), above the 200-megapixel modes of phones (12240 x
# 16320). PIL's own guard against decompression bombs warns from 89 and refuses from 179 megapixels, which such a photo
# passes; footseg checks the size itself (below) before decoding, so PIL's guard moves up to this limit.
MAX_PHOTO_PIXELS = 16384 * 16384
if Image.MAX_IMAGE_PIXELS is not None:  # None: a program using footseg turned PIL's guard off, and keeps it off
    Image.MAX_IMAGE_PIXELS = max(Image.MAX_IMAGE_PIXELS, MAX_PHOTO_PIXELS)


def _decode(path: Path) -> Image.Image:
    with Image.open(path) as im:
        if im.width * im.height > MAX_PHOTO_PIXELS:  # before decoding: it would take gigabytes
            raise FootsegError(f"image too large to read ({im.width}x{im.height}, {im.width * im.height / 1e6:.0f} "
                               f"megapixels; footseg reads up to {MAX_PHOTO_PIXELS / 1e6:.0f})", path)
        im.load()  # decode fully now so a truncated file fails here, not in a worker later
        # In place: otherwise exif_transpose copies even an upright image (with convert's, a tenth of a read).
        ImageOps.exif_transpose(im, in_place=True)
        return im


def _open(path: Path) -> Image.Image:
    path = Path(path)
    if not path.is_file():
        raise FootsegError("file not found", path)
    if path.suffix.lower() in HEIF_EXTENSIONS:
        _heif_readable(path, required=True)
    try:
        try:
            return _decode(path)
        except UnidentifiedImageError:
            # A HEIF photo under another name (some phones' exports call it .jpg) reads the same in every process,
            # not only in one that happened to read a .heic before.
            if "HEIF" in Image.OPEN or not _heif_readable(path, required=False):
                raise
            return _decode(path)
    # A damaged HEIF's decoder raises EOFError or RuntimeError where PIL's own raise OSError.
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, RuntimeError) as exc:
        raise FootsegError(f"unreadable or truncated image ({exc})", path) from exc
    except Image.DecompressionBombError as exc:  # PIL refuses over twice MAX_PHOTO_PIXELS before footseg looks
        raise FootsegError(f"image too large to read ({exc})", path) from exc


# Every 17th level of each channel: colours to tell a profile that is sRGB in all but name from one that is not.
_PROBE = Image.fromarray(np.stack(np.meshgrid(*[np.arange(0, 256, 17, dtype=np.uint8)] * 3), -1).reshape(64, 64, 3))


@functools.lru_cache(maxsize=16)
def _to_srgb(icc: bytes) -> ImageCms.ImageCmsTransform | None:
    """The transform from an RGB colour profile to sRGB; None for a profile that is sRGB (its transform moves no probe
    colour by more than a level: converting would only round) or one LittleCMS cannot read (ignored, as browsers
    ignore one). Cached: a phone's photos share a handful of profiles."""
    if icc[16:20] != b"RGB ":  # the profile's colour space (ICC header): grey and CMYK profiles are not for RGB
        return None
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        transform = ImageCms.buildTransform(profile, ImageCms.createProfile("sRGB"), "RGB", "RGB")
        moved = np.asarray(ImageCms.applyTransform(_PROBE, transform)).astype(np.int16) - np.asarray(_PROBE)
    except (ImageCms.PyCMSError, OSError, ValueError):
        return None
    return transform if np.abs(moved).max() > 1 else None


def read_image(path: str | Path) -> np.ndarray:
    """Read a photo as (H, W, 3) uint8 RGB in sRGB, with EXIF orientation applied."""
    im = _open(Path(path))
    if im.mode.startswith("I"):  # 16-bit grey (PNG): PIL's convert would clip every value over 255 to white
        values = np.asarray(im).astype(np.int64)
        # "I;16" says its depth; plain "I" does not, so values over 255 are taken as 16-bit (a best guess)
        if im.mode.startswith("I;16") or values.max(initial=0) > 255:
            values >>= 8
        return np.repeat(np.clip(values, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    rgb = im if im.mode == "RGB" else im.convert("RGB")  # convert() copies even an RGB image
    icc = im.info.get("icc_profile")
    if icc and (transform := _to_srgb(bytes(icc))):
        rgb = ImageCms.applyTransform(rgb, transform)
    return np.asarray(rgb)


def is_grey(image: np.ndarray) -> bool:
    """Whether an RGB photo has no colour (a greyscale file, or a night or infrared camera's frame): the models learnt
    foot from colour, and segment such photos far worse (real-dev made grey: foot IoU 0.13 against 0.95)."""
    for pixels in (image[::16, ::16], image):  # a colour photo shows it in a sparse grid: no full pass for it
        if not (np.array_equal(pixels[..., 0], pixels[..., 1]) and np.array_equal(pixels[..., 1], pixels[..., 2])):
            return False
    return True


def read_mask(path: str | Path) -> np.ndarray:
    """Read a mask as (H, W) uint8 with its raw values (palette indices for 'P' images)."""
    im = _open(Path(path))
    if im.mode in ("L", "P", "1"):
        arr = np.asarray(im if im.mode != "1" else im.convert("L"))
    elif im.mode in ("I", "I;16", "I;16B", "F"):
        arr = np.asarray(im)
        if arr.max(initial=0) > 255:
            arr = (arr > 0).astype(np.uint8) * 255
        arr = arr.astype(np.uint8)
    else:  # RGB(A) masks: any non-black pixel is foreground, even a dark one that a grey conversion would zero
        rgba = np.asarray(im.convert("RGBA"))
        arr, alpha = rgba[..., :3].max(axis=-1), rgba[..., 3]
        if arr.min() == arr.max() and alpha.min() != alpha.max():  # one colour, the mask drawn in alpha
            arr = alpha
    return np.ascontiguousarray(arr, dtype=np.uint8)


def is_label_mask(mask: np.ndarray) -> bool:
    """True for a mask of 0 and at most one other value, which ``mask > 0`` reads as it was drawn. Soft (anti-aliased
    or resized) edges, or a background stored as other than 0, would count as foot."""
    top = mask.max(initial=0)
    return not np.any((mask != 0) & (mask != top))


def write_png(path: str | Path, array: np.ndarray) -> None:
    """Write an (H, W) or (H, W, 3) uint8 array as PNG, creating parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(array)).save(path)


def write_mask(path: str | Path, mask: np.ndarray) -> None:
    """Write an (H, W) uint8 mask as PNG. Masks hold long runs of one value: zlib's fastest level with run-length
    matching packs them about as small as the default level does, in a fifth of the time."""
    ok, png = cv2.imencode(".png", np.ascontiguousarray(mask),
                           [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE])
    if not ok:
        raise FootsegError("cannot encode the mask as PNG", path)
    atomic_write_bytes(path, png.tobytes(), durable=False)  # a stop leaves no half mask for a continued run to keep


def write_jpeg(path: str | Path, array: np.ndarray, quality: int = 92) -> None:
    """Write an (H, W, 3) uint8 RGB array as JPEG, whole or not at all (as ``write_mask``)."""
    encoded = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(encoded, format="JPEG", quality=quality)
    atomic_write_bytes(path, encoded.getvalue(), durable=False)

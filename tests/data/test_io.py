import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from footseg.data.io import (
    image_files,
    is_label_mask,
    natural_key,
    photos_folder,
    read_image,
    read_mask,
    write_png,
)
from footseg.errors import FootsegError

FILES = Path(__file__).parent / "files"


def test_image_files_lists_images_by_name_and_skips_the_rest(tmp_path: Path) -> None:
    for name in ("b.JPG", "a.png", "c.jpeg", "e.HEIC", "f.heif", "g.webp", "h.avif", ".hidden.jpg", "notes.txt",
                 "i.gif"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "d.jpg").mkdir()
    assert [p.name for p in image_files(tmp_path)] == ["a.png", "b.JPG", "c.jpeg", "e.HEIC", "f.heif", "g.webp",
                                                      "h.avif"]


def test_numbered_files_come_in_natural_order(tmp_path: Path) -> None:
    for name in ("f10.jpg", "f2.jpg", "f1.jpg", "F3.png", "g.jpg"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in image_files(tmp_path)] == ["f1.jpg", "f2.jpg", "F3.png", "f10.jpg", "g.jpg"]
    # zero-padded names keep their text order, and differently shaped names still compare
    assert sorted(["007", "010", "002"], key=natural_key) == ["002", "007", "010"]
    assert sorted(["a1", "1a", "a"], key=natural_key) == ["1a", "a", "a1"]


def test_photos_folder_prefers_an_images_folder(tmp_path: Path) -> None:
    assert photos_folder(tmp_path) == tmp_path
    (tmp_path / "images").mkdir()
    assert photos_folder(tmp_path) == tmp_path / "images"


def test_masks_read_back_their_values_and_images_are_rgb(tmp_path: Path) -> None:
    mask = np.zeros((6, 8), np.uint8)
    mask[2:4, 3:6] = 255
    write_png(tmp_path / "sub" / "m.png", mask)
    np.testing.assert_array_equal(read_mask(tmp_path / "sub" / "m.png"), mask)
    Image.fromarray(mask).save(tmp_path / "grey.png")
    assert read_image(tmp_path / "grey.png").shape == (6, 8, 3)


def test_colour_masks_mark_every_non_black_pixel_and_alpha_masks_read_their_alpha(tmp_path: Path) -> None:
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[1, 2] = (1, 0, 0)  # dark red: zero in a grey conversion
    rgb[2, 3] = (0, 0, 255)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    assert np.argwhere(read_mask(tmp_path / "rgb.png") > 0).tolist() == [[1, 2], [2, 3]]
    rgba = np.zeros((4, 5, 4), np.uint8)
    rgba[..., :3] = 255  # one colour everywhere, the foot drawn in alpha
    rgba[3, 1, 3] = 255
    Image.fromarray(rgba).save(tmp_path / "alpha.png")
    assert np.argwhere(read_mask(tmp_path / "alpha.png") > 0).tolist() == [[3, 1]]


def test_a_truncated_image_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    with pytest.raises(FootsegError, match="unreadable or truncated image") as err:
        read_image(path)
    assert str(path) in str(err.value)
    with pytest.raises(FootsegError, match="file not found"):
        read_mask(tmp_path / "missing.png")


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".avif"])
def test_images_and_masks_come_upright_as_their_exif_orientation_says(tmp_path: Path, suffix: str) -> None:
    stored = np.zeros((24, 32, 3), np.uint8)
    stored[:8, :8] = 255  # a white corner, top left as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90 degrees clockwise: portrait 24 wide, 32 high, the corner top right
    lossless = {"lossless": True} if suffix == ".webp" else {}
    Image.fromarray(stored).save(tmp_path / f"p{suffix}", exif=exif, **lossless)
    image = read_image(tmp_path / f"p{suffix}")
    assert image.shape == (32, 24, 3) and image.flags.c_contiguous
    assert image[:8, -8:].mean() > 200 and image[-8:, :8].mean() < 50
    np.testing.assert_array_equal(read_image(tmp_path / f"p{suffix}"), image)  # the same every read
    if suffix == ".png":
        Image.fromarray(stored[..., 0]).save(tmp_path / "m.png", exif=exif)
        mask = read_mask(tmp_path / "m.png")
        assert mask.shape == (32, 24) and mask[:8, -8:].min() == 255 and mask[-8:, :8].max() == 0


def test_an_image_over_pils_pixel_limit_is_refused_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / "huge.jpg")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # refused at twice that: 400 pixels stand for 20000 x 20000
    with pytest.raises(FootsegError, match="image too large to read") as err:
        read_image(tmp_path / "huge.jpg")
    assert str(tmp_path / "huge.jpg") in str(err.value)


def test_a_phone_s_largest_photos_read_without_pils_warning_and_larger_ones_are_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, recwarn: pytest.WarningsRecorder) -> None:
    from footseg.data import io as io_module

    assert io_module.MAX_PHOTO_PIXELS >= 12240 * 16320  # a 200-megapixel phone photo
    assert Image.MAX_IMAGE_PIXELS >= io_module.MAX_PHOTO_PIXELS  # PIL warns only above footseg's limit
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "big.jpg")
    monkeypatch.setattr(io_module, "MAX_PHOTO_PIXELS", 600)  # 600 pixels stand for 16384 x 16384
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 600)
    assert read_image(tmp_path / "big.jpg").shape == (20, 30, 3) and not recwarn.list  # at the limit: read, silently
    monkeypatch.setattr(io_module, "MAX_PHOTO_PIXELS", 599)
    with pytest.raises(FootsegError) as err:
        read_image(tmp_path / "big.jpg")
    assert str(err.value) == (f"{tmp_path / 'big.jpg'}: image too large to read (30x20, 0 megapixels; footseg reads "
                              "up to 0)")


def test_a_16_bit_grey_photo_reads_as_its_grey_levels_not_as_white(tmp_path: Path) -> None:
    levels = (np.arange(48 * 64).reshape(48, 64) * 21).astype(np.uint16)  # 0 to 64,491
    Image.fromarray(levels).save(tmp_path / "g16.png")
    image = read_image(tmp_path / "g16.png")
    assert image.shape == (48, 64, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image[..., 1], (levels >> 8).astype(np.uint8))
    assert (image == 255).mean() < 0.01  # PIL's convert("RGB") made nearly all of it white


def test_an_iphone_heic_photo_reads_upright_and_rotated_once() -> None:
    # files/rotated.heic: the white-corner picture above saved by pillow-heif 1.9.0 (quality 95) with EXIF
    # orientation 6, which it stores as HEIF's own rotation; pi-heif applies it on decoding and resets the EXIF tag,
    # so a second rotation by the tag would leave the corner bottom right or top left.
    image = read_image(FILES / "rotated.heic")
    assert image.shape == (32, 24, 3) and image.dtype == np.uint8
    assert image[:8, -8:].mean() > 200 and image[-8:, :8].mean() < 50 and image[:8, :8].mean() < 50


def test_a_damaged_heic_file_is_named_in_one_line(tmp_path: Path) -> None:
    data = bytearray((FILES / "rotated.heic").read_bytes())
    start = data.index(b"mdat") + 4
    data[start:] = bytes(len(data) - start)  # its headers intact, its coded picture zeroed
    path = tmp_path / "IMG_0001.HEIC"
    path.write_bytes(bytes(data))
    with pytest.raises(FootsegError, match="unreadable or truncated image") as err:
        read_image(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_a_heic_photo_named_jpg_reads_in_a_fresh_process(tmp_path: Path) -> None:
    # some exporters name HEIC pictures .jpg; read first in a process that has read no .heic before
    (tmp_path / "IMG_0002.jpg").write_bytes((FILES / "rotated.heic").read_bytes())
    code = ("import sys; from footseg.data.io import read_image; "
            f"print(read_image({str(tmp_path / 'IMG_0002.jpg')!r}).shape)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "(32, 24, 3)"


def test_without_pi_heif_a_heic_photo_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "x.jpg").write_bytes(b"not a photo")
    code = f"""
import sys
sys.modules["pi_heif"] = None  # its import fails, as where it is not installed
from footseg.data.io import read_image
from footseg.errors import FootsegError
for path in ({str(FILES / "rotated.heic")!r}, {str(tmp_path / "x.jpg")!r}):
    try:
        read_image(path)
    except FootsegError as exc:
        print(exc)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert len(out) == 2
    assert "rotated.heic" in out[0] and "needs pi-heif (pip install pi-heif)" in out[0]
    assert "x.jpg" in out[1] and "unreadable or truncated image" in out[1]  # a broken .jpg is no HEIC question


def test_label_masks_are_0_and_one_foot_value() -> None:
    mask = np.zeros((4, 6), np.uint8)
    assert is_label_mask(mask)  # no foot
    mask[1:3, 2:5] = 255
    assert is_label_mask(mask) and is_label_mask(mask // 255)  # 0/255 and 0/1
    soft = mask.copy()
    soft[1, 1] = 128  # an anti-aliased edge pixel
    assert not is_label_mask(soft)
    assert not is_label_mask(mask // 255 + 1)  # background stored as 1: all of it would be foot


def srgb_encoded(values: np.ndarray) -> np.ndarray:
    """sRGB's encoding (IEC 61966-2-1) of linear light values in [0, 1], as 0-255."""
    return 255 * np.where(values <= 0.0031308, 12.92 * values, 1.055 * values ** (1 / 2.4) - 0.055)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp"])
def test_a_photo_in_another_colour_profile_reads_in_srgb(tmp_path: Path, linear_rgb_profile: bytes,
                                                         suffix: str) -> None:
    # grey levels in linear light: each must read as sRGB encodes that light, the way a browser shows the photo
    levels = np.repeat(np.arange(0, 256, 15, dtype=np.uint8), 8)[None, :, None].repeat(8, axis=0).repeat(3, axis=2)
    path = tmp_path / f"wide{suffix}"
    Image.fromarray(levels).save(path, icc_profile=linear_rgb_profile, quality=100, lossless=True)
    image = read_image(path).astype(float)
    want = srgb_encoded(levels[..., 0].astype(float) / 255)
    lossy = suffix == ".jpg"
    assert np.abs(image[..., 0] - want).max() <= (3 if lossy else 1)
    assert np.abs(image[..., 0] - image[..., 2]).max() <= (2 if lossy else 1)  # grey stays grey
    assert image[0, 8 * 3, 0] > levels[0, 8 * 3, 0] + 50  # 45 in linear light is 118 in sRGB


def test_photos_in_srgb_or_a_profile_nobody_can_read_keep_their_numbers(tmp_path: Path, srgb_profile: bytes,
                                                                        linear_rgb_profile: bytes) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    broken = linear_rgb_profile[:20] + b"\xff" * (len(linear_rgb_profile) - 20)  # says RGB, then garbage
    for name, profile in [("srgb", srgb_profile), ("broken", broken)]:
        Image.fromarray(pixels).save(tmp_path / f"{name}.png", icc_profile=profile)
        np.testing.assert_array_equal(read_image(tmp_path / f"{name}.png"), pixels)


def test_a_profile_is_judged_by_its_colours_not_its_name(tmp_path: Path, make_icc_profile) -> None:
    grey = np.full((4, 4, 3), 60, dtype=np.uint8)
    # sRGB by name, not by its curve; and a plain 2.2 power, near sRGB's curve but not it (a real sRGB profile keeps
    # the numbers: the test above)
    for name, gamma in [("Linear sRGB", 1.0), ("my camera", 2.2)]:
        Image.fromarray(grey).save(tmp_path / "p.png", icc_profile=make_icc_profile(name, gamma))
        assert (read_image(tmp_path / "p.png") != grey).any(), name

from __future__ import annotations

import hashlib

import cv2
import numpy as np
import pytest

from footseg.data.augment import (
    AugmentConfig,
    ThesisAugment,
    corner_points,
    photometric,
    warp_image,
    warp_mask,
    warp_matrix,
)


def _pair(h: int = 48, w: int = 64) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    mask = np.zeros((h, w), np.uint8)
    cv2.ellipse(mask, (30, 24), (18, 10), 30, 0, 360, 255, -1)
    return image, mask


def test_output_shapes_and_dtypes() -> None:
    image, mask = _pair()
    out_img, out_mask = ThesisAugment(32)(image, mask, np.random.default_rng(1))
    assert out_img.shape == (32, 32, 3) and out_img.dtype == np.uint8
    assert out_mask.shape == (32, 32) and out_mask.dtype == np.uint8


def test_same_seed_same_output_different_seed_different() -> None:
    image, mask = _pair()
    aug = ThesisAugment(32)
    a = aug(image, mask, np.random.default_rng(7))
    b = aug(image, mask, np.random.default_rng(7))
    c = aug(image, mask, np.random.default_rng(8))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("seed", range(10))
def test_mask_keeps_only_its_original_values(seed: int) -> None:
    image, mask = _pair()
    mask[mask > 0] = 7  # an unusual foot value must survive as is: nearest-neighbour warping only
    _, out = ThesisAugment(40)(image, mask, np.random.default_rng(seed))
    assert set(np.unique(out)) <= {0, 7}


def test_all_foreground_mask_stays_mostly_foreground() -> None:
    image, _ = _pair()
    full = np.full(image.shape[:2], 255, np.uint8)
    for seed in range(10):
        _, out = ThesisAugment(32)(image, full, np.random.default_rng(seed))
        assert (out > 0).mean() > 0.95  # reflected borders of an all-foot mask are foot too


def test_corner_points_lie_in_corner_cells_without_rotation() -> None:
    config = AugmentConfig(rotate_p=0.0)
    for seed in range(20):
        pts = corner_points(90, 120, np.random.default_rng(seed), config)
        cells = np.floor(pts / np.array([40.0, 30.0])).astype(int)
        assert cells.tolist() == [[0, 0], [2, 0], [2, 2], [0, 2]]


def test_rotation_moves_points_rigidly() -> None:
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    plain = corner_points(90, 120, rng_a, AugmentConfig(rotate_p=0.0))
    rotated = corner_points(90, 120, rng_b, AugmentConfig(rotate_p=1.0, max_rotation=90))
    assert not np.allclose(plain, rotated)
    dists = lambda p: np.linalg.norm(p[:, None] - p[None], axis=-1)  # noqa: E731
    np.testing.assert_allclose(dists(plain), dists(rotated), rtol=1e-4)
    np.testing.assert_allclose(plain.mean(0), rotated.mean(0), atol=1e-3)


def test_warp_matrix_maps_chosen_points_to_output_corners() -> None:
    pts = corner_points(90, 120, np.random.default_rng(5))
    matrix = warp_matrix(pts, 64)
    mapped = cv2.perspectiveTransform(pts.reshape(-1, 1, 2).astype(np.float64), matrix).reshape(-1, 2)
    np.testing.assert_allclose(mapped, [[0, 0], [63, 0], [63, 63], [0, 63]], atol=1e-3)


def test_warp_moves_a_marked_pixel_to_the_corner() -> None:
    image = np.zeros((60, 60, 3), np.uint8)
    mask = np.zeros((60, 60), np.uint8)
    image[10, 12] = 255
    mask[10, 12] = 1
    pts = np.array([[12, 10], [50, 8], [52, 49], [9, 51]], np.float32)
    matrix = warp_matrix(pts, 32)
    img, msk = warp_image(image, matrix, 32), warp_mask(mask, matrix, 32)
    assert msk[0, 0] == 1 and img[0, 0].max() > 200
    assert msk.sum() <= 4  # one source pixel covers at most a couple of output pixels


def test_flip_flips_image_and_mask_together() -> None:
    image, mask = _pair()
    flip = ThesisAugment(32, AugmentConfig(rotate_p=0.0, flip_p=1.0, **_no_photometric()))
    keep = ThesisAugment(32, AugmentConfig(rotate_p=0.0, flip_p=0.0, **_no_photometric()))
    fi, fm = flip(image, mask, np.random.default_rng(4))
    ki, km = keep(image, mask, np.random.default_rng(4))
    assert np.array_equal(fi, ki[:, ::-1]) and np.array_equal(fm, km[:, ::-1])
    assert not np.array_equal(fm, km)


def _no_photometric() -> dict:
    return {k: 0.0 for k in ("brightness_p", "contrast_p", "saturation_p", "hue_p", "blur_p", "noise_p", "jpeg_p")}


def test_without_photometric_the_image_is_just_warped() -> None:
    image, mask = _pair()
    config = AugmentConfig(flip_p=0.0, **_no_photometric())
    out, _ = ThesisAugment(32, config)(image, mask, np.random.default_rng(2))
    rng = np.random.default_rng(2)
    expected = warp_image(image, warp_matrix(corner_points(48, 64, rng, config), 32), 32)
    assert np.array_equal(out, expected)


@pytest.mark.parametrize(
    "step",
    [
        {"brightness_p": 1.0},
        {"contrast_p": 1.0},
        {"saturation_p": 1.0},
        {"hue_p": 1.0},
        {"blur_p": 1.0},
        {"noise_p": 1.0},
        {"jpeg_p": 1.0},
    ],
)
def test_each_photometric_step_changes_the_image(step: dict) -> None:
    image = cv2.GaussianBlur(_pair()[0], (0, 0), 2)  # smooth, so blur and JPEG have something to change
    image = cv2.addWeighted(image, 0.5, np.full_like(image, (200, 120, 90)), 0.5, 0)  # saturated, for hue
    config = AugmentConfig(**{**_no_photometric(), **step})
    rng = np.random.default_rng(0)
    out = photometric(image, rng, config)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - image.astype(int)).mean() > 0.2
    assert np.array_equal(photometric(image, np.random.default_rng(0), AugmentConfig(**_no_photometric())), image)


def _still(antialias: bool) -> AugmentConfig:
    return AugmentConfig(rotate_p=0.0, flip_p=0.0, antialias=antialias, **_no_photometric())


def test_antialias_shrinks_fine_detail_by_area_where_a_bilinear_warp_aliases() -> None:
    stripes = np.zeros((192, 192, 3), np.uint8)
    stripes[:, ::2] = 255  # one-pixel stripes: at a quarter of the size, grey by area
    mask = np.zeros((192, 192), np.uint8)
    plain, _ = ThesisAugment(48, _still(False))(stripes, mask, np.random.default_rng(3))
    smooth, _ = ThesisAugment(48, _still(True))(stripes, mask, np.random.default_rng(3))
    assert plain.std() > 40  # bilinear samples land on the stripes: moire
    assert smooth.std() < 0.5 * plain.std() and abs(smooth.mean() - 127.5) < 20


def test_antialias_moves_the_warp_with_the_shrunk_image() -> None:
    # A ramp (x in red, y in green) shows the warp's geometry and no detail to alias: both warps must show the same
    # picture, to within a fraction of a level. Scaling the points without the pixel-centre shift is off by about 1.
    y, x = np.mgrid[0:192, 0:256].astype(np.float32)
    image = np.dstack([x, 1.3 * y, np.full_like(x, 128)]).astype(np.uint8)
    mask = ((x - 128) ** 2 + (y - 96) ** 2 < 70**2).astype(np.uint8) * 255  # a disc most warps keep in view
    for seed in range(4):
        plain_img, plain_mask = ThesisAugment(48, _still(False))(image, mask, np.random.default_rng(seed))
        img, msk = ThesisAugment(48, _still(True))(image, mask, np.random.default_rng(seed))
        inner = (slice(8, 40), slice(8, 40))  # away from the reflected border
        assert np.abs(img[inner].astype(int) - plain_img[inner].astype(int)).mean() < 0.5
        # the labels are warped from their own resolution, exactly as without antialias
        assert np.mean(plain_mask > 0) > 0.05 and np.array_equal(msk, plain_mask)


def test_antialias_leaves_a_warp_that_enlarges_alone() -> None:
    image, mask = _pair()
    for seed in range(4):
        plain = ThesisAugment(96, _still(False))(image, mask, np.random.default_rng(seed))
        smooth = ThesisAugment(96, _still(True))(image, mask, np.random.default_rng(seed))
        assert all(np.array_equal(a, b) for a, b in zip(plain, smooth, strict=True))


def test_the_thesis_augmentation_is_unchanged_by_white_balance_off() -> None:
    # runs made before white balance existed (a recipe's shipped model) augment as they did: no draw is spent on it.
    # Pinned by the draws made (what follows in the generator), not by the pixels: OpenCV's JPEG, blur and HSV code
    # may change a pixel between versions, which is not a change of the augmentation.
    img = np.random.default_rng(5).integers(0, 255, (40, 56, 3), dtype=np.uint8)
    after = []
    for seed in range(8):
        rng = np.random.default_rng(seed)
        photometric(img, rng)
        after.append(rng.random())
    assert hashlib.sha256(np.array(after).tobytes()).hexdigest() == DRAWS_OF_THE_THESIS_AUGMENTATION
    numpy_only = {"hue_p": 0, "blur_p": 0, "jpeg_p": 0}  # the pixels of what numpy alone computes
    outs = [photometric(img, np.random.default_rng(s), AugmentConfig(**numpy_only)) for s in range(8)]
    assert hashlib.sha256(b"".join(o.tobytes() for o in outs)).hexdigest() == PIXELS_WITHOUT_OPENCV


# Made by photometric() before white balance existed (26bcee6): the generator's next draw after each of 8 seeds, and
# the pixels of its numpy-only steps
DRAWS_OF_THE_THESIS_AUGMENTATION = "325f6c8b917f838d6f96721bbc6cab452bd34865ae8b146d0aa62728cb1461f7"
PIXELS_WITHOUT_OPENCV = "bb450aa25f66e9aa0fd7b775880e49280dac15221846236c6881f34024ad7d66"


def test_white_balance_casts_red_and_blue_within_its_range() -> None:
    grey = np.full((8, 8, 3), 128, np.uint8)
    off = dict(contrast_p=0, brightness_p=0, saturation_p=0, hue_p=0, blur_p=0, noise_p=0, jpeg_p=0)
    config = AugmentConfig(white_balance=0.25, white_balance_p=1.0, **off)
    gains = np.array([photometric(grey, np.random.default_rng(s), config)[0, 0] / 128.0 for s in range(300)])
    assert np.all(gains[:, 1] == 1.0)  # green kept
    for channel in (0, 2):
        assert 1 / 1.25 - 0.01 <= gains[:, channel].min() < 0.85 and 1.15 < gains[:, channel].max() <= 1.25 + 0.01
    assert abs(np.corrcoef(gains[:, 0], gains[:, 2])[0, 1]) < 0.2  # each its own: warm, cool, magenta and green casts

"""The one resize and tensor conversion that training, evaluation, prediction and the web page's mirror share."""

from __future__ import annotations

import numpy as np

from footseg.data.transforms import mask_to_tensor, resize_image, resize_mask, to_tensor


def test_shrinking_averages_and_growing_interpolates() -> None:
    stripes = np.zeros((4, 4, 3), np.uint8)
    stripes[:, ::2] = 200  # columns 200, 0, 200, 0: an area filter averages them, sampling would alias
    assert np.all(resize_image(stripes, (2, 2)) == 100)
    ramp = np.repeat(np.array([[0, 200]], np.uint8), 2, axis=0)[..., None].repeat(3, axis=2)
    grown = resize_image(ramp, (2, 4))[0, :, 0]
    assert grown.tolist() == sorted(grown.tolist()) and 0 < grown[1] < grown[2] < 200  # in-between values
    same = np.zeros((3, 5, 3), np.uint8)
    assert resize_image(same, (3, 5)) is same  # no copy at the right size


def test_masks_keep_their_label_values() -> None:
    mask = np.array([[0, 255], [7, 0]], np.uint8)
    assert set(np.unique(resize_mask(mask, (5, 7))).tolist()) == {0, 7, 255}


def test_tensors_are_chw_floats_in_0_1_and_labels_0_1() -> None:
    image = np.zeros((2, 3, 3), np.uint8)
    image[..., 1] = 255
    x = to_tensor(image)
    assert tuple(x.shape) == (3, 2, 3) and x.dtype.is_floating_point
    assert x[1].min().item() == 1.0 and x[0].max().item() == 0.0
    assert mask_to_tensor(np.array([[0, 255], [3, 0]], np.uint8)).tolist() == [[0, 1], [1, 0]]

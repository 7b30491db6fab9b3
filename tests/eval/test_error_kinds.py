"""footseg.eval.error_kinds: error pixels split by their distance from the foot."""

import numpy as np

from footseg.eval.error_kinds import ErrorKinds, error_kinds, largest_region


def test_error_pixels_are_split_by_their_distance_from_the_foot() -> None:
    true = np.zeros((100, 100), bool)
    true[40:60, 40:60] = True  # 400 foot pixels
    pred = true.copy()
    pred[40:60, 40:45] = False  # 100 missed
    pred[40:60, 60:63] = True  # 60 false, within 5 px (0.05 of the side) of the foot
    pred[0:10, 0:10] = True  # 100 false, far
    counts, far = error_kinds(pred, true, near=0.05)
    assert counts == ErrorKinds(intersection=300, union=560, missed=100, false_beside=60, false_far=100)
    assert far.sum() == 100 and far[0:10, 0:10].all()
    assert counts + counts == ErrorKinds(600, 1120, 200, 120, 200)


def test_a_wider_near_takes_far_pixels_beside_the_foot() -> None:
    true = np.zeros((100, 100), bool)
    true[40:60, 40:60] = True
    pred = true.copy()
    pred[40:60, 70:72] = True  # 40 false pixels 11-12 px from the foot
    assert error_kinds(pred, true, near=0.05)[0].false_far == 40
    assert error_kinds(pred, true, near=0.15)[0].false_beside == 40


def test_largest_region() -> None:
    mask = np.zeros((20, 20), bool)
    mask[0:3, 0:3] = True
    mask[10:15, 10:15] = True
    assert largest_region(mask) == 25
    assert largest_region(np.zeros((4, 4), bool)) == 0

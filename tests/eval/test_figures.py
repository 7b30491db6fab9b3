"""The prediction grid's tiles: a photo fitted to its tile, and a caption on the photo itself."""

from __future__ import annotations

import numpy as np

from footseg.eval.figures import _BG, _TILE, _caption, _fit, _fit_box


def test_a_portrait_photo_s_caption_sits_on_the_photo_not_in_the_margin() -> None:
    photo = np.zeros((400, 200, 3), np.uint8)  # black, portrait: white margins left and right of it in its tile
    tile = _fit(photo)
    x, y, w, h = _fit_box(400, 200)
    assert (x, y, w, h) == (_TILE // 4, 0, _TILE // 2, _TILE)
    assert (tile[:, :x] == _BG).all() and (tile[:, x:x + w] == 0).all()
    before = tile.copy()
    _caption(tile, "IoU 90%", (x, y, w, h))
    changed = np.argwhere((tile != before).any(axis=2))
    assert changed[:, 1].min() == x and changed[:, 1].max() < x + w  # within the photo's columns
    assert changed[:, 0].max() == _TILE - 1  # at its bottom edge

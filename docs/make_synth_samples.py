"""Draw docs/synth_samples.jpg: synthetic images from `footseg synth` (built-in feet and floors) beside their masks.

Run: .venv/bin/python docs/make_synth_samples.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from footseg.data.io import read_image, read_mask, write_jpeg
from footseg.data.samples import find_samples
from footseg.data.synth import SynthSettings, synthesize

OUT = Path(__file__).with_name("synth_samples.jpg")
COLUMNS, ROWS, SIDE = 4, 3, 224


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        n = COLUMNS * ROWS * 10 // 8 + 2  # 80% of the images land in train
        synthesize(Path(tmp), SynthSettings(n=n, seed=3, size=SIDE), workers=2, progress=False)
        samples = find_samples(Path(tmp) / "train")[: COLUMNS * ROWS]
        tiles = []
        for s in samples:
            image, mask = read_image(s.image), read_mask(s.mask)
            tint = image.copy()
            tint[mask > 0] = (0.5 * tint[mask > 0] + [0, 127, 0]).astype(np.uint8)  # foot tinted green
            tiles.append(np.hstack([image, tint]))
        grid = np.vstack([np.hstack(tiles[r * COLUMNS : (r + 1) * COLUMNS]) for r in range(ROWS)])
        write_jpeg(OUT, grid, quality=85)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()

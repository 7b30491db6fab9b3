"""Images per second of ``footseg synth`` with default settings (target: >= 50 img/s at 256x256, 2 workers, 2 cores).

    .venv/bin/python benchmarks/synth_speed.py --n 400 --workers 2 --size 256

Start-up (process spawn, EGL context, shader compilation) is timed separately from the steady-state rate.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from footseg.data.synth import SynthSettings, synthesize


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--floors", default=None, help="optional floor photo folder")
    args = ap.parse_args()
    out = Path(tempfile.mkdtemp(prefix="synth_speed_"))
    try:
        warm = max(args.workers * 4, 8)
        t0 = time.perf_counter()
        synthesize(out / "warm", SynthSettings(n=warm, size=args.size, floors=args.floors), workers=args.workers,
                   progress=False)
        t_warm = time.perf_counter() - t0
        t0 = time.perf_counter()
        synthesize(out / "run", SynthSettings(n=args.n, size=args.size, floors=args.floors), workers=args.workers,
                   progress=False)
        dt = time.perf_counter() - t0
    finally:
        shutil.rmtree(out, ignore_errors=True)
    print(f"synth: {args.n} images {args.size}x{args.size}, {args.workers} workers: {dt:.1f} s, "
          f"{args.n / dt:.1f} images/s (including start-up; a {warm}-image warm-up run took {t_warm:.1f} s)")


if __name__ == "__main__":
    main()

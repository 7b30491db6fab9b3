"""Images per second of ``footseg synth`` with default settings (target: >= 50 img/s at 256x256, 2 workers, 2 cores).

    .venv/bin/python benchmarks/synth_speed.py --n 400 --workers 2 --size 256
    .venv/bin/python benchmarks/synth_speed.py --floors ../shared/data/floors --find ../shared/assets/find

Start-up (process spawn, EGL context, shader compilation) is timed separately from the steady-state rate. CPU time
per image (all processes: main and workers, user + system, start-up included) is printed too: on a busy machine it
says more than the wall-clock rate (2 workers on 2 free cores make 2000 / cpu_ms images per second).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

from footseg.data.synth import SynthSettings, synthesize


def _cpu() -> float:
    """CPU seconds of this process and of its finished children (the pool's workers, once the pool has closed)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--floors", default=None, help="optional floor photo folder")
    ap.add_argument("--find", default=None, help="optional FIND model folder")
    args = ap.parse_args()
    out = Path(tempfile.mkdtemp(prefix="synth_speed_"))

    def settings(n: int) -> SynthSettings:
        return SynthSettings(n=n, size=args.size, floors=args.floors, find=args.find)

    try:
        warm = max(args.workers * 4, 8)
        t0 = time.perf_counter()
        synthesize(out / "warm", settings(warm), workers=args.workers, progress=False)
        t_warm = time.perf_counter() - t0
        c0, t0 = _cpu(), time.perf_counter()
        synthesize(out / "run", settings(args.n), workers=args.workers, progress=False)
        dt, cpu = time.perf_counter() - t0, _cpu() - c0
    finally:
        shutil.rmtree(out, ignore_errors=True)
    extras = ", ".join(f"--{k} {v}" for k, v in (("floors", args.floors), ("find", args.find)) if v) or "defaults"
    print(f"synth ({extras}): {args.n} images {args.size}x{args.size}, {args.workers} workers: {dt:.1f} s, "
          f"{args.n / dt:.1f} images/s (including start-up; a {warm}-image warm-up run took {t_warm:.1f} s); "
          f"CPU {1000 * cpu / args.n:.1f} ms per image (all processes, start-up included)")


if __name__ == "__main__":
    main()

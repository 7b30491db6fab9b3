"""Speed table of every registered model: ``python benchmarks/bench_models.py [--threads N] [--runs N]``.

A thin wrapper over ``footseg bench`` (footseg.bench.table) that also writes the rows to benchmarks/results/.
"""

from __future__ import annotations

import sys
from pathlib import Path

from footseg.cli import main

if __name__ == "__main__":
    out = Path(__file__).resolve().parent / "results" / "models.json"
    raise SystemExit(main(["bench", *sys.argv[1:], "--json", str(out)]))

"""The model zoo table: each shipped model's cost against MediaPipe's selfie segmenter, and its foot IoU.

    .venv/bin/python benchmarks/zoo.py --synth DIR [--own-feet DIR] [--real ../shared/data/real-dev] \
        [--models fastlinknet] [--rounds 5] [--min-time 10] [--json zoo.json]

Cost is `footseg bench MODELS --runtimes onnx-int8 --threads 1 --peer` in one run: every model's int8 export and
MediaPipe's network alone in its own TFLite runtime timed in the same interleaved rounds, so "x MediaPipe" is the cost
ratio footseg's targets are stated in (each model at its own input size, the `side` column; the peer at 256x256, its
own). Accuracy is `footseg eval` of the PyTorch weights, at the model's own input size, on the test split of each
dataset given: `--synth` (a render: the synthetic test set; its train split calibrates int8), `--own-feet` (a render
with `--own-feet-prob 1`: first-person scenes), `--real` (real photos; reported, never used to choose). Without
.venv-bench (`make bench`) the peer row is missing and stderr says why. The library part is footseg.bench.zoo.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from footseg.bench.zoo import format_zoo, zoo_rows
from footseg.errors import FootsegError
from footseg.models.info import pretrained_models


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(pretrained_models()), help="comma-separated (default: all)")
    parser.add_argument("--synth", type=Path, required=True, help="a render: synthetic test IoU, int8 calibration")
    parser.add_argument("--own-feet", type=Path, help="a render with --own-feet-prob 1")
    parser.add_argument("--real", type=Path, help="real photos with masks (reported only)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--min-time", type=float, default=10.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    try:
        rows, why = zoo_rows(models, args.synth, args.own_feet, args.real, args.rounds, args.min_time)
    except FootsegError as exc:
        print(f"zoo: error: {exc}", file=sys.stderr)
        return 2
    if why:
        print(f"zoo: no MediaPipe rows: {why}", file=sys.stderr)
    print(format_zoo(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

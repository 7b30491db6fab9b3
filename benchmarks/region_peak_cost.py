"""What a model's region peak costs a frame, beside its network, on this CPU.

    .venv/bin/python benchmarks/region_peak_cost.py MODEL --data DIR [--onnx FILE] [--split test] [--n 20]

For each of the first ``--n`` photos of DIR (a split of it where it has splits), the model's probability map at its
input size is made once; then, in 5 interleaved rounds (footseg.bench.cost.interleaved, footseg's one timing path,
one thread), its int8 ONNX file (``--onnx``; default: MODEL/model.int8.onnx, as a recipe's model folder has it) runs on
a photo's input and
``footseg.runtime.predictor.keep_confident_regions`` on that photo's map at the model's threshold and region peak.
It prints each one's median milliseconds and their ratio. The MODEL must have a region peak (the default has).
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np
import torch

from footseg.bench.cost import interleaved
from footseg.data.io import read_image
from footseg.data.transforms import resize_image, to_array
from footseg.eval.evaluate import labelled_samples
from footseg.runtime.onnx_model import OnnxModel
from footseg.runtime.predictor import Predictor, keep_confident_regions
from footseg.runtime.timing import latency_stats, time_runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a model folder with a region peak (a recipe's DIR/model)")
    parser.add_argument("--data", required=True)
    parser.add_argument("--onnx", default=None, help="its int8 ONNX file (default: MODEL/model.int8.onnx)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--n", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    predictor = Predictor(args.model)
    if predictor.region_peak is None:
        raise SystemExit(f"{predictor.label} has no region peak: nothing to time")
    onnx = OnnxModel(args.onnx or predictor.ref.folder / "model.int8.onnx", threads=1)
    images = [read_image(s.image) for s in labelled_samples(args.data, args.split)[: args.n]]
    maps = list(predictor.at_region_peak(0).at_presence(0).network_proba(images))
    inputs = [to_array(resize_image(image, predictor.input_size))[None] for image in images]
    net_next, map_next = itertools.cycle(inputs).__next__, itertools.cycle(maps).__next__
    t, peak = predictor.threshold, predictor.region_peak
    net, regions = interleaved(
        [lambda r, w, m: time_runs(lambda: onnx.run(net_next()), r, w, m),
         lambda r, w, m: time_runs(lambda: keep_confident_regions(map_next(), t, peak), r, w, m)],
        rounds=5, runs=20 * len(images), warmup=3, min_time=2.0)
    a, b = latency_stats(net)["latency_ms"], latency_stats(regions)["latency_ms"]
    cleared = sum(bool((keep_confident_regions(m, t, peak) != m).any()) for m in maps)
    print(f"{predictor.label} at {predictor.input_size[0]} px, threshold {t:g}, region peak {peak:g}, "
          f"{len(images)} photos of {args.data} ({cleared} with a region cleared), 1 thread:")
    print(f"  int8 network {a:.3f} ms, keep_confident_regions {b:.3f} ms ({100 * b / a:.1f} % of the network)")
    print(f"  ({len(net)} and {len(regions)} samples; maps with foot: {int(np.sum([m.max() > t for m in maps]))})")


if __name__ == "__main__":
    main()

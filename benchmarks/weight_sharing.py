"""What weight sharing keeps of a network's masks, before any fine-tuning: per-channel scales against plain codebooks.

    .venv/bin/python benchmarks/weight_sharing.py [MODEL] --data DIR [--split val] [--n 100] [--clusters 16,256]

MODEL (default: the default model) has its BatchNorms folded and every conv shared at each number of clusters, as
`footseg compress` shares them (``footseg.compress.weight_sharing``), once with a scale per output channel (its
default) and once with one plain codebook per layer (``--layer-codebooks``, the paper's). Each row is the IoU of the
shared network's foot masks with the unshared network's (the same side, the argmax, nothing else: what sharing alone
changes) over the first ``N`` photos of DIR (its ``--split`` where it has splits), 1.0 where nothing changed.
"""

from __future__ import annotations

import argparse
import copy

import numpy as np
import torch

from footseg.compress.fold_bn import fold_batchnorm
from footseg.compress.prune import at_argmax
from footseg.compress.weight_sharing import finish_sharing, share_weights
from footseg.data.io import read_image
from footseg.data.samples import find_samples, split_folder
from footseg.errors import FootsegError
from footseg.models.saved import load_model
from footseg.runtime.predictor import Predictor
from footseg.runtime.resolve import resolve_model


def agreement(model: str | None, data: str, clusters: list[int], split: str = "val", n: int = 100) -> list[dict]:
    """One row per number of clusters: the IoU of the shared network's masks with the unshared one's, both ways."""
    samples = find_samples(split_folder(data, split))[:n]
    if not samples:
        raise FootsegError("no photos here", data)
    images = [read_image(sample.image) for sample in samples]
    network, info = load_model(resolve_model(model).folder)
    fold_batchnorm(network.eval())
    info = at_argmax(info)

    def masks(net: torch.nn.Module) -> list[np.ndarray]:
        predictor = Predictor((net, info), runtime="torch")
        return [predictor.predict_mask(image).astype(bool) for image in images]

    reference = masks(network)
    rows = []
    for k in clusters:
        row: dict = {"clusters": k}
        for name, scales in (("channel_scales", True), ("layer_codebooks", False)):
            shared = copy.deepcopy(network)
            share_weights(shared, k, channel_scales=scales)
            finish_sharing(shared)
            got = masks(shared)
            inter = sum(int((a & b).sum()) for a, b in zip(reference, got, strict=True))
            union = sum(int((a | b).sum()) for a, b in zip(reference, got, strict=True))
            row[name] = inter / union if union else 1.0
        rows.append(row)
    return rows


def _counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        counts = []
    if not counts or min(counts) < 2:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of numbers of at least 2: {text!r}")
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", nargs="?", default=None, help="a model footseg takes (default: the default model)")
    parser.add_argument("--data", required=True, help="photos with masks, or a dataset with splits")
    parser.add_argument("--split", default="val")
    parser.add_argument("--n", type=int, default=100, help="photos scored (the first N by name)")
    parser.add_argument("--clusters", default=[16, 256], type=_counts, help="comma-separated numbers of shared values")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    try:
        rows = agreement(args.model, args.data, args.clusters, args.split, args.n)
    except FootsegError as exc:
        print(f"weight_sharing.py: error: {exc}")
        return 2
    print("| clusters | mask IoU with the unshared network, per-channel scales | plain per-layer codebooks |")
    print("|---:|---:|---:|")
    for row in rows:
        print(f"| {row['clusters']} | {row['channel_scales']:.4f} | {row['layer_codebooks']:.4f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

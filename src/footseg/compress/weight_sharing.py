"""Weight sharing (Han et al. 2016, "Deep Compression"): each layer's weights snap to k shared values.

Per layer, the non-zero weights are clustered by 1-D k-means with linear initialisation (centroids evenly spaced
between the smallest and largest weight, which the paper found keeps the rare large weights that matter most). Each
weight then stores only its cluster index (log2 k bits) and the layer one float32 codebook. Zeros left by pruning stay
zero and are not clustered: the file stores their positions separately.

By default each output channel's weights (a tensor's first dimension: a transposed conv's input channels) are first
divided by their largest magnitude, its scale (one float16 per channel, as per-channel int8 has a scale each): the
codebook is shared by the layer's channels in that unit, and a weight is its channel's scale times its centroid.
Without scales one channel's range sets every channel's: a BatchNorm folded into a convolution scales each channel
by gamma / sqrt(var + eps), and in the default network one channel of ``dec1.spatial.0``, of variance 7.6e-7,
reaches weights of 264 against about 1 for the others, so evenly spaced centroids leave the ordinary weights two or
three values (benchmarks/weight_sharing.py measures what each way keeps of a network's masks).
``channel_scales=False`` is the paper's plain per-layer codebook.

During fine-tuning the weights are a parametrisation ``codebook[index]`` of a trainable codebook, so the gradient of
each centroid is the sum of the gradients of its weights, exactly as in the paper, and the sharing survives training.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

from footseg.compress.prune import weight_layers
from footseg.errors import FootsegError


def kmeans_1d(values: torch.Tensor, k: int, iters: int = 30) -> tuple[torch.Tensor, torch.Tensor]:
    """``(centroids (k,) ascending, labels)`` of 1-D k-means (Lloyd) on ``values`` from a linear initialisation.

    A centroid that loses all its values keeps its place; ``labels`` index the returned centroids.
    """
    if k < 1:
        raise FootsegError(f"the number of clusters must be at least 1, got {k}")
    v = values.detach().flatten().to(torch.float32)
    if v.numel() == 0:
        raise ValueError("k-means needs at least one value")
    centroids = torch.linspace(float(v.min()), float(v.max()), k)
    labels = torch.zeros(v.numel(), dtype=torch.int64)
    for _ in range(iters):
        centroids = centroids.sort().values
        # In 1-D the nearest centroid is found by bucketing against the midpoints: O(n log k) time, O(n) memory.
        new = torch.bucketize(v, (centroids[1:] + centroids[:-1]) / 2)
        counts = torch.bincount(new, minlength=k)
        sums = torch.bincount(new, weights=v, minlength=k)
        updated = torch.where(counts > 0, sums / counts.clamp(min=1), centroids).to(torch.float32)
        done = torch.equal(new, labels) and torch.equal(updated, centroids)
        labels, centroids = new, updated
        if done:
            break
    # Last assignment against the final centroids, so every weight sits on its nearest shared value.
    order = centroids.sort()
    centroids = order.values
    labels = torch.bucketize(v, (centroids[1:] + centroids[:-1]) / 2)
    return centroids, labels


class SharedWeight(nn.Module):
    """Parametrisation ``weight = codebook[indices] * scales`` (zero where pruned; ``scales`` one per output channel,
    shaped to broadcast over the weight, or None for none); the stored parameter is the codebook."""

    def __init__(self, codebook: torch.Tensor, indices: torch.Tensor, mask: torch.Tensor,
                 scales: torch.Tensor | None = None):
        super().__init__()
        self.register_buffer("indices", indices)
        self.register_buffer("mask", mask)
        self.register_buffer("scales", scales)
        self._initial = codebook.detach().clone()

    def forward(self, codebook: torch.Tensor) -> torch.Tensor:
        values = codebook[self.indices] if self.scales is None else codebook[self.indices] * self.scales
        return torch.where(self.mask, values, torch.zeros((), dtype=codebook.dtype))

    def right_inverse(self, weight: torch.Tensor) -> torch.Tensor:
        return self._initial.clone()


def share_weights(model: nn.Module, clusters: int, iters: int = 30, channel_scales: bool = True) -> list[str]:
    """Cluster the weights of every conv/linear layer of ``model`` into ``clusters`` shared values, in place (in units
    of each output channel's largest magnitude where ``channel_scales``; the module doc says why).

    Registers a ``SharedWeight`` parametrisation on each layer (the codebook becomes the trainable parameter);
    call ``finish_sharing`` after any fine-tuning. Returns the names of the shared layers.
    """
    if clusters < 2:
        raise FootsegError(f"weight sharing needs at least 2 clusters, got {clusters}")
    names = []
    for name, module in weight_layers(model):
        if parametrize.is_parametrized(module, "weight"):
            raise ValueError(f"layer {name} already has a parametrisation; make pruning permanent first")
        weight = module.weight.detach()
        mask = weight != 0
        if not mask.any():
            continue  # a layer pruned away entirely has nothing to share
        scales = None
        if channel_scales:  # a pruned-away channel keeps scale 1: it has no weights to share
            scales = weight.abs().flatten(1).amax(1)
            scales = torch.where(scales > 0, scales, torch.ones_like(scales))
            # stored as float16 (half the bytes: 7 KB for the default's 3,474 channels), so used as float16 values;
            # the smallest normal float16 keeps a tiny channel's scale from going subnormal. Outside float16's normal
            # range (max |w| under 6e-5 or over 65504; the default's run 0.016 to 264) a channel's units are not
            # its own: such a channel shares as coarsely as without scales.
            scales = scales.clamp(min=2.0**-14, max=float(torch.finfo(torch.float16).max)).half().float()
            scales = scales.reshape(-1, *[1] * (weight.dim() - 1))  # one per output channel, over its weights
            weight = weight / scales
        codebook, labels = kmeans_1d(weight[mask], clusters, iters)
        indices = torch.zeros(weight.shape, dtype=torch.int64)
        indices[mask] = labels
        parametrize.register_parametrization(module, "weight", SharedWeight(codebook, indices, mask, scales))
        names.append(name)
    return names


def finish_sharing(model: nn.Module) -> dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]:
    """Remove the sharing parametrisations, leaving plain weights equal to ``codebook[index] * scale`` (0 where
    pruned).

    Returns ``{state-dict name of the weight: (codebook, indices, per-channel scales or None)}``, what
    ``write_compressed`` stores.
    """
    shared = {}
    for name, module in model.named_modules():
        if not parametrize.is_parametrized(module, "weight"):
            continue
        param = module.parametrizations.weight
        (sharing,) = [p for p in param if isinstance(p, SharedWeight)]
        codebook = param.original.detach().clone()
        parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
        key = f"{name}.weight" if name else "weight"
        scales = None if sharing.scales is None else sharing.scales.flatten().clone()
        shared[key] = (codebook, sharing.indices.clone(), scales)
    return shared


def distinct_values(model: nn.Module) -> dict[str, int]:
    """Number of distinct non-zero weight values per conv/linear layer (at most k after sharing without channel
    scales; with them, at most k per output channel)."""
    counts = {}
    for name, m in weight_layers(model):
        w = m.weight.detach()
        counts[name] = int(torch.unique(w[w != 0]).numel())
    return counts

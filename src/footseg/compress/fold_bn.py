"""Folding BatchNorm into the convolution before it, inside the unchanged architecture.

At inference ``BN(conv(x))`` is ``conv'(x) + b'`` with ``W' = W * s`` and ``b' = beta - mean * s`` per output channel,
``s = gamma / sqrt(var + eps)`` (ONNX export does the same fold). Here the folded weight goes into the conv and the
BatchNorm is left as a plain bias: gamma 1, mean 0, var ``1 - eps``. The network keeps its layers, so it saves and
loads like any other, but each BatchNorm now stores one vector (beta) of information instead of four, and the conv
weights are the values actually multiplied at run time -- what weight sharing should cluster.

After folding, fine-tune with the BatchNorms in eval mode and their gammas frozen (``finetune(..., freeze_bn=True)``),
or training would re-learn batch statistics and undo the fold.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn


def conv_bn_pairs(model: nn.Module) -> list[tuple[nn.Conv2d, nn.BatchNorm2d]]:
    """(conv, bn) pairs where a bias-free Conv2d is directly followed by its BatchNorm2d in an ``nn.Sequential``."""
    pairs = []
    for module in model.modules():
        if not isinstance(module, nn.Sequential):
            continue
        children = list(module.children())
        for conv, bn in itertools.pairwise(children):
            if (
                isinstance(conv, nn.Conv2d)
                and isinstance(bn, nn.BatchNorm2d)
                and conv.bias is None
                and bn.affine
                and bn.track_running_stats
                and bn.num_features == conv.out_channels
            ):
                pairs.append((conv, bn))
    return pairs


@torch.no_grad()
def fold_batchnorm(model: nn.Module) -> int:
    """Fold every conv+BN pair of ``model`` in place (see the module docstring); returns how many were folded."""
    pairs = conv_bn_pairs(model)
    for conv, bn in pairs:
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        conv.weight.mul_(scale.reshape(-1, *([1] * (conv.weight.dim() - 1))))
        bn.bias.sub_(bn.running_mean * scale)
        bn.weight.fill_(1.0)
        bn.running_mean.zero_()
        bn.running_var.fill_(1.0 - bn.eps)
    return len(pairs)

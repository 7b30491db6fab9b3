"""BatchNorm folding keeps the network's function and leaves each BatchNorm a plain bias."""

from __future__ import annotations

import torch
from torch import nn

from footseg.compress.fold_bn import conv_bn_pairs, fold_batchnorm
from footseg.models import create_model


def _trained_like(seed: int = 0) -> nn.Module:
    """A model whose BatchNorms hold non-trivial statistics and affine parameters, as after training."""
    torch.manual_seed(seed)
    model = create_model("fastlinknet", width=0.5).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return model


def test_folding_keeps_the_output_and_empties_the_batchnorms() -> None:
    model = _trained_like()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
    bns = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert fold_batchnorm(model) == bns == len(conv_bn_pairs(model))  # in FastLinkNet every BN follows a conv
    with torch.no_grad():
        torch.testing.assert_close(model(x), expected, rtol=1e-4, atol=1e-4)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert bool((m.weight == 1).all()) and bool((m.running_mean == 0).all())
            assert bool((m.running_var == 1 - m.eps).all())


def test_zeros_stay_zero_and_frozen_fine_tuning_keeps_the_fold(tune) -> None:
    model = _trained_like()
    conv = model.stem[0]
    with torch.no_grad():
        conv.weight[0, 0] = 0
    fold_batchnorm(model)
    assert bool((conv.weight[0, 0] == 0).all())
    bn = model.stem[1]
    bias = bn.bias.detach().clone()
    tune(model, steps=2, freeze_bn=True)
    assert bool((bn.weight == 1).all()) and bool((bn.running_mean == 0).all())
    assert not torch.equal(bn.bias, bias)  # the folded bias still learns

"""A short fine-tune of an in-memory network with the project's losses and data: how compression steps recover.

Pruning and weight sharing damage a trained network a little; a few hundred steps of the training loss on the
training split usually win most of it back (Han et al. 2015/2016). Parametrisations and pruning masks registered on
the model stay in force during these steps, so pruned weights stay zero and shared weights stay shared.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import torch
from torch import nn

from footseg.data.dataset import SegmentationDataset, make_loader, split_folder
from footseg.errors import FootsegError
from footseg.train.losses import build_loss


def finetune(
    model: nn.Module,
    data: str | Path,
    steps: int,
    size: int,
    lr: float = 5e-4,
    loss: str = "ce+iou",
    batch_size: int = 8,
    workers: int = 0,
    seed: int = 0,
    augment: bool = True,
    freeze_bn: bool = False,
) -> list[float]:
    """``steps`` Adam steps of ``loss`` on ``data``'s train split at ``size``; returns the per-step losses.

    ``freeze_bn`` keeps BatchNorms in eval mode (running statistics used and kept) with their scales fixed, as a
    network whose BatchNorms were folded into its convs needs. The model is left in eval mode. ``steps=0`` does
    nothing.
    """
    if steps < 0:
        raise FootsegError(f"fine-tuning steps must be at least 0, got {steps}")
    if steps == 0:
        return []
    dataset = SegmentationDataset(split_folder(Path(data), "train"), size=size, augment=augment, seed=seed)
    loader = make_loader(
        dataset,
        batch_size=min(batch_size, len(dataset)),
        shuffle=True,
        workers=workers,
        seed=seed,
        drop_last=len(dataset) >= batch_size,
    )
    criterion = build_loss(loss)
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)] if freeze_bn else []
    frozen = {id(m.weight) for m in norms if m.weight is not None}
    params = [p for p in model.parameters() if p.requires_grad and id(p) not in frozen]
    optimizer = torch.optim.Adam(params, lr=lr)
    losses: list[float] = []
    model.train()
    for m in norms:
        m.eval()
    try:
        for epoch in itertools.count():
            loader.sampler.set_epoch(epoch)
            for images, masks in loader:
                optimizer.zero_grad(set_to_none=True)
                value = criterion(model(images), masks)
                value.backward()
                optimizer.step()
                losses.append(float(value.detach()))
                if len(losses) >= steps:
                    return losses
    finally:
        model.eval()
    return losses  # unreachable: the epoch loop only ends by returning

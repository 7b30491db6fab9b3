"""Pruning: unstructured magnitude pruning (zeros in place) and structured channel pruning (a smaller network).

Magnitude pruning (Han et al. 2015) uses ``torch.nn.utils.prune``: the globally smallest |w| of all conv/linear
weights are masked to zero; the masks stay in force while fine-tuning and ``make_permanent`` bakes them in. The
tensors keep their shape, so this only saves space once stored sparsely (``footseg.compress.compressed_file``).

Channel pruning removes whole output channels and rebuilds narrower layers, so the network really has fewer
parameters, fewer FLOPs and runs faster. Removing a channel means cutting it everywhere it is tied: the BatchNorm
after the conv, the input channel of every consumer, the matching channel of a depthwise conv, and -- through
residual additions like FastLinkNet's ``body(x) + shortcut(x)`` and its decoder-plus-skip sums -- the same channel
of every tensor added together. Torch-Pruning (Fang et al., CVPR 2023, "DepGraph") traces the network once and
groups exactly these coupled layers; each group is scored by the summed L1 norm of its weights (or the |gamma| of
its BatchNorms) and the weakest channels of each group are removed together. The output layer is never pruned, so
the output keeps its classes. A pruned network is saved as an ordinary model folder whose ``config.json`` records
the new widths (``footseg.models.layer_shapes``), so ``load_model`` and ``footseg export`` work on it unchanged.
"""

from __future__ import annotations

import dataclasses
import warnings

import torch
from torch import nn
from torch.nn.utils import prune

from footseg.errors import FootsegError
from footseg.models.info import DEFAULT_THRESHOLD, LAYER_SHAPES_KEY, MIN_STRIDE_KEY, SavedModelInfo
from footseg.models.layer_shapes import layer_shapes
from footseg.models.registry import create_model

_WEIGHT_LAYERS = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
IMPORTANCE = ("l1", "bn")


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The conv and linear layers of ``model``: the weights that pruning and weight sharing act on."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, _WEIGHT_LAYERS)]


def magnitude_prune(model: nn.Module, amount: float) -> None:
    """Mask the fraction ``amount`` of all conv/linear weights with the smallest |w| (one global threshold).

    The masks are ``torch.nn.utils.prune`` reparametrisations: fine-tuning keeps the pruned weights at zero.
    """
    if not 0.0 <= amount < 1.0:
        raise FootsegError(f"prune amount must be in [0, 1), got {amount}")
    params = [(m, "weight") for _, m in weight_layers(model)]
    prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=amount)


def make_permanent(model: nn.Module) -> None:
    """Bake the pruning masks into the weights and drop the reparametrisation (weights become plain tensors)."""
    for _, module in weight_layers(model):
        if prune.is_pruned(module) and hasattr(module, "weight_orig"):
            prune.remove(module, "weight")


def sparsity(model: nn.Module) -> float:
    """Fraction of conv/linear weights that are exactly zero."""
    layers = weight_layers(model)
    total = sum(m.weight.numel() for _, m in layers)
    zeros = sum(int((m.weight.detach() == 0).sum()) for _, m in layers)
    return zeros / total if total else 0.0


def output_layers(model: nn.Module, size: int = 64) -> list[nn.Module]:
    """The conv/linear layer run last in a forward pass: it makes the logits, so its channels are the classes."""
    order: list[nn.Module] = []
    hooks = [m.register_forward_hook(lambda mod, *_: order.append(mod)) for _, m in weight_layers(model)]
    try:
        with torch.no_grad():
            model.eval()(torch.rand(1, getattr(model, "in_channels", 3), size, size))
    finally:
        for h in hooks:
            h.remove()
    return order[-1:]


def channel_prune(
    model: nn.Module,
    ratio: float,
    size: int = 64,
    importance: str = "l1",
    round_to: int | None = None,
) -> nn.Module:
    """Remove the fraction ``ratio`` of the output channels of every prunable group of ``model``, in place.

    ``importance``: ``"l1"`` (summed L1 norm of the group's weights) or ``"bn"`` (summed |gamma| of its
    BatchNorms, Liu et al. 2017). ``round_to`` keeps the remaining channel counts multiples of that number.
    Returns ``model`` (now narrower), in eval mode.
    """
    import torch_pruning as tp

    if not 0.0 <= ratio < 1.0:
        raise FootsegError(f"channel ratio must be in [0, 1), got {ratio}")
    if importance not in IMPORTANCE:
        raise FootsegError(f"unknown channel importance '{importance}'; use one of {', '.join(IMPORTANCE)}")
    if ratio == 0.0:
        return model.eval()
    scorer = tp.importance.GroupMagnitudeImportance(p=1) if importance == "l1" else tp.importance.BNScaleImportance()
    model.eval()
    example = torch.rand(1, getattr(model, "in_channels", 3), size, size)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Torch-Pruning warns about every layer type it merely passes through
            pruner = tp.pruner.MetaPruner(
                model,
                example,
                importance=scorer,
                pruning_ratio=ratio,
                ignored_layers=output_layers(model, size),
                round_to=round_to,
                global_pruning=False,
            )
            pruner.step()
        with torch.no_grad():
            model(example)  # a pruned network that no longer runs must fail here, not in the user's next step
    except (RuntimeError, IndexError, ValueError, KeyError) as exc:
        name = type(model).__name__
        raise FootsegError(
            f"channel pruning is not supported for {name} ({type(exc).__name__}: {exc}); use a channel ratio of 0"
        ) from exc
    return model.eval()


def pruned_info(model: nn.Module, info: SavedModelInfo, **extra: object) -> SavedModelInfo:
    """``info`` for a (possibly channel-pruned) ``model``: its new layer widths recorded so ``load_model`` works."""
    reference = create_model(info.model, width=info.width, num_classes=info.num_classes, in_channels=info.in_channels)
    shapes = layer_shapes(model, reference)
    # Its int8 setting was chosen for the unpruned widths (size, speed): the pruned model starts from the default.
    new_extra = {k: v for k, v in info.extra.items() if k not in (LAYER_SHAPES_KEY, MIN_STRIDE_KEY)}
    new_extra.update(extra)
    if shapes:
        new_extra[LAYER_SHAPES_KEY] = shapes
    return dataclasses.replace(at_argmax(info), extra=new_extra)


def at_argmax(info: SavedModelInfo) -> SavedModelInfo:
    """``info`` without an operating point: the side the network was trained at, the argmax, every region and frame
    kept (see SavedModelInfo.threshold). New weights start from it, since the point chosen for the old ones (side,
    threshold, region peak, presence) no longer holds."""
    return dataclasses.replace(info, input_size=info.trained_size, threshold=DEFAULT_THRESHOLD, region_peak=None,
                               presence=None)

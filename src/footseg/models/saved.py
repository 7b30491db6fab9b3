"""A saved model is a folder: ``config.json`` (how to rebuild it, ``footseg.models.info``) and ``model.safetensors``
(its weights).

Weights never travel as pickles, so loading a model folder from anywhere cannot execute code.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from footseg.atomic import atomic_paths
from footseg.errors import FootsegError
from footseg.models.info import CONFIG_NAME, LAYER_SHAPES_KEY, WEIGHTS_NAME, SavedModelInfo, info_json, read_info
from footseg.models.layer_shapes import apply_layer_shapes
from footseg.models.registry import create_model


def save_model(model: nn.Module, folder: str | Path, info: SavedModelInfo) -> Path:
    """Write ``folder/config.json`` and ``folder/model.safetensors``, each atomically."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    module = model.module if hasattr(model, "module") else model  # unwrap DDP
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    # Both files are complete on disk before either replaces its old self (a pruned network's shapes live in the
    # config): only a crash between the two renames could pair new weights with the old config.
    with atomic_paths(folder / WEIGHTS_NAME, folder / CONFIG_NAME) as (weights, config):
        # One metadata key: safetensors writes its metadata map in a random order (safetensors#584), so with two the
        # same weights saved twice could differ byte for byte, and so would their sha256 in a recipe's card.
        save_file(state, str(weights), metadata={"format": "pt"})
        config.write_text(info_json(info))
    return folder


def build_model(info: SavedModelInfo) -> nn.Module:
    """The untrained network ``info`` describes, channel-pruned layers narrowed as its ``layer_shapes`` say."""
    model = create_model(info.model, width=info.width, num_classes=info.num_classes, in_channels=info.in_channels)
    if LAYER_SHAPES_KEY in info.extra:  # a channel-pruned network: narrow its layers before loading the weights
        apply_layer_shapes(model, info.extra[LAYER_SHAPES_KEY])
    return model


def load_model(folder: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, SavedModelInfo]:
    """Rebuild the saved model in ``folder`` in eval mode. Errors name the bad file.

    Takes a folder only: names, run folders and the default model are resolved by ``footseg.runtime.resolve_model``.
    """
    folder = Path(folder)
    info = read_info(folder)
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        raise FootsegError("model folder has no model.safetensors", folder)
    try:
        model = build_model(info)
    except FootsegError as exc:  # e.g. an unknown model name or bad layer shapes: point at the file that names it
        raise FootsegError(str(exc), folder / CONFIG_NAME) from exc
    try:
        state = load_file(str(weights), device=str(device))
    except (SafetensorError, OSError, ValueError) as exc:
        raise FootsegError(f"unreadable weights ({exc})", weights) from exc
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        # torch's message is a header line, then one line per kind of mismatch: the first of those says which
        lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
        detail = lines[1] if len(lines) > 1 else lines[0] if lines else type(exc).__name__
        if len(detail) > 300:
            detail = detail[:300] + "..."
        raise FootsegError(f"weights do not match model '{info.model}' (width {info.width}): {detail}",
                           weights) from exc
    return model.to(device).eval(), info


def add_prior_input(model: nn.Module, info: SavedModelInfo) -> tuple[nn.Module, SavedModelInfo]:
    """The same network with a 4th input channel (the previous frame's mask) whose weights start at zero.

    It computes exactly what ``model`` computed until training teaches it to use the new channel, which is how a
    prior-mask network starts from a trained still-image model. Channel-pruned widths are kept; only layers that
    read the input grow. A ``FootsegError`` if the architecture's input feeds more than plain convolutions.
    """
    if info.in_channels != 3:
        raise FootsegError(f"expected a 3-channel (RGB) model to add a prior input to, got {info.in_channels}")
    wide_info = SavedModelInfo(model=info.model, width=info.width, num_classes=info.num_classes,
                               input_size=info.input_size, extra=copy.deepcopy(info.extra), in_channels=4)
    shapes = wide_info.extra.get(LAYER_SHAPES_KEY, {})
    plain = dict(create_model(info.model, info.width, info.num_classes).named_modules())
    wide = dict(create_model(info.model, info.width, info.num_classes, in_channels=4).named_modules())
    for name, shape in shapes.items():  # pruned layers that read the input read one channel more
        if "in" in shape and getattr(plain[name], "in_channels", None) != getattr(wide[name], "in_channels", None):
            shape["in"] += 1
    target = build_model(wide_info)
    source = model.state_dict()
    state = {}
    for key, value in target.state_dict().items():
        old = source[key]
        if old.shape == value.shape:
            state[key] = old
        elif old.dim() == 4 and old.shape[0] == value.shape[0] and old.shape[1] + 1 == value.shape[1]:
            state[key] = torch.cat([old, torch.zeros_like(old[:, :1])], dim=1)
        else:
            raise FootsegError(f"cannot add a prior input to {info.model}: its layer '{key}' changes shape "
                               f"{tuple(old.shape)} -> {tuple(value.shape)}")
    target.load_state_dict(state)
    return target.train(model.training), wide_info

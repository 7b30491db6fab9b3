"""Layer widths that differ from what an architecture builds: how a channel-pruned network is saved and rebuilt.

Structured pruning makes some convolutions and norms narrower than ``create_model`` makes them. ``layer_shapes``
records, for every such layer, the channel counts it has now; ``apply_layer_shapes`` replaces the freshly built
layers with layers of those widths, so ``load_model`` can load the pruned weights into a network of the same shape.
The record lives in ``SavedModelInfo.extra[LAYER_SHAPES_KEY]`` (plain JSON), so pruned models stay ordinary model
folders: weights in safetensors, nothing pickled, no code stored.
"""

from __future__ import annotations

from torch import nn

from footseg.errors import FootsegError
from footseg.models.info import LAYER_SHAPES_KEY

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_NORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def _shape(module: nn.Module) -> dict[str, int] | None:
    if isinstance(module, _CONV):
        return {"in": module.in_channels, "out": module.out_channels, "groups": module.groups}
    if isinstance(module, _NORM):
        return {"features": module.num_features}
    if isinstance(module, nn.PReLU):
        return {"features": module.num_parameters}
    if isinstance(module, nn.Linear):
        return {"in": module.in_features, "out": module.out_features}
    return None


def layer_shapes(model: nn.Module, reference: nn.Module) -> dict[str, dict[str, int]]:
    """``{module name: channel counts}`` of the layers of ``model`` whose widths differ from ``reference``'s.

    ``reference`` is the network as the architecture builds it (``create_model`` with the same name and width).
    """
    ref = dict(reference.named_modules())
    shapes: dict[str, dict[str, int]] = {}
    for name, module in model.named_modules():
        shape = _shape(module)
        if shape is None:
            continue
        if name not in ref or type(ref[name]) is not type(module):
            raise ValueError(f"layer '{name}' ({type(module).__name__}) is not in the reference architecture")
        if shape != _shape(ref[name]):
            shapes[name] = shape
    return shapes


def _rebuilt(module: nn.Module, shape: dict[str, int]) -> nn.Module:
    """A fresh layer like ``module`` (same kernel, stride, flags) with the channel counts of ``shape``."""
    if isinstance(module, _CONV):
        kwargs = {
            "kernel_size": module.kernel_size,
            "stride": module.stride,
            "padding": module.padding,
            "dilation": module.dilation,
            "groups": int(shape["groups"]),
            "bias": module.bias is not None,
            "padding_mode": module.padding_mode,
        }
        if module.transposed:
            kwargs["output_padding"] = module.output_padding
        return type(module)(int(shape["in"]), int(shape["out"]), **kwargs)
    if isinstance(module, _NORM):
        return type(module)(
            int(shape["features"]),
            eps=module.eps,
            momentum=module.momentum,
            affine=module.affine,
            track_running_stats=module.track_running_stats,
        )
    if isinstance(module, nn.PReLU):
        return nn.PReLU(int(shape["features"]))
    if isinstance(module, nn.Linear):
        return nn.Linear(int(shape["in"]), int(shape["out"]), bias=module.bias is not None)
    raise ValueError(f"cannot resize a {type(module).__name__}")


def apply_layer_shapes(model: nn.Module, shapes: dict[str, dict[str, int]]) -> nn.Module:
    """Replace the layers named in ``shapes`` by layers of the recorded widths (in place; returns ``model``).

    New layers have default initial values: load the pruned weights afterwards. Raises ``FootsegError`` for a name
    the architecture does not have or a malformed entry.
    """
    if not isinstance(shapes, dict):
        raise FootsegError(f"{LAYER_SHAPES_KEY} must map layer names to channel counts, got {type(shapes).__name__}")
    for name, shape in shapes.items():
        try:
            module = model.get_submodule(name)
            model.set_submodule(name, _rebuilt(module, shape))
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise FootsegError(f"invalid {LAYER_SHAPES_KEY} entry '{name}': {exc}") from exc
    return model

"""The model registry, after timm: architectures register a factory under a name; ``create_model`` builds them.

Every registered model takes an (N, in_channels, H, W) float batch -- RGB in [0, 1], then for a prior-mask network
(``in_channels=4``) the previous frame's foot probability -- with H and W multiples of 32, and returns
(N, num_classes, H, W) logits.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from footseg.errors import FootsegError

if TYPE_CHECKING:
    from torch import nn

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}
# The thesis's five networks, in the order of its tables. Each has its module (importing it registers its factory and
# any variants, e.g. fastlinknet_ctx); the main job and the study train these five.
THESIS_MODELS = ("enet", "linknet", "mobileseg", "fastlinknet", "emilseg")
# Every name those modules register, known without importing them (and so without PyTorch): what a recipe's dry run
# checks its model names against. tests/models/test_models.py holds it to what the modules register.
ARCHITECTURES = (*THESIS_MODELS, "fastlinknet_ctx")


def register_model(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    def wrap(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _REGISTRY[name] = factory
        return factory

    return wrap


def _load_architectures() -> None:
    for arch in THESIS_MODELS:
        importlib.import_module(f"footseg.models.{arch}")


def list_models() -> list[str]:
    """Registered model names: the thesis's five in the order of its tables, then the variants."""
    _load_architectures()
    return [n for n in THESIS_MODELS if n in _REGISTRY] + sorted(set(_REGISTRY) - set(THESIS_MODELS))


def create_model(name: str, width: float = 1.0, num_classes: int = 2, in_channels: int = 3) -> nn.Module:
    """Build an untrained model by registry name. ``width`` scales every layer's channel count; ``in_channels`` 4 adds
    the previous frame's mask as an input (a prior-mask network for video)."""
    _load_architectures()
    if name not in _REGISTRY:
        raise FootsegError(f"unknown model '{name}'; choose one of: {', '.join(list_models())}")
    if width <= 0:
        raise FootsegError(f"width must be positive, got {width}")
    if num_classes < 1:
        raise FootsegError(f"num_classes must be at least 1, got {num_classes}")
    if in_channels not in (3, 4):
        raise FootsegError(f"in_channels must be 3 (RGB) or 4 (RGB + previous mask), got {in_channels}")
    return _REGISTRY[name](width=width, num_classes=num_classes, in_channels=in_channels)

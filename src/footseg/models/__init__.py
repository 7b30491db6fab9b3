"""Model zoo: one file per architecture, one registry, ``create_model(name, ...)``."""

from footseg.models.info import SavedModelInfo
from footseg.models.registry import create_model, list_models, register_model

__all__ = ["SavedModelInfo", "create_model", "list_models", "load_model", "register_model", "save_model"]


def __getattr__(name: str) -> object:
    # The weights' half (safetensors and torch) loads on first use: running a model's ONNX export reads its folder's
    # config (footseg.models.info) and never needs torch, whose import is most of a short command's start-up.
    if name in ("load_model", "save_model"):
        from footseg.models import saved

        return getattr(saved, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Model zoo: one file per architecture, one registry, ``create_model(name, ...)``."""

from footseg.models.registry import create_model, list_models, register_model
from footseg.models.saved import SavedModelInfo, load_model, save_model

__all__ = ["SavedModelInfo", "create_model", "list_models", "load_model", "register_model", "save_model"]

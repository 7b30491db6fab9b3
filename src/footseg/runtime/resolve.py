"""The one way to turn what a user names into a model: ``resolve_model(ref)``.

Every verb that takes a MODEL (eval, predict, bench, export, compress, report, train's --init and --teacher) goes
through here, so the same words mean the same model everywhere:

- nothing, or ``default``: the default shipped model (``DEFAULT_MODEL``);
- an ``.onnx`` file from ``footseg export``;
- a saved model folder (``config.json`` + ``model.safetensors``);
- a run folder from ``footseg train`` (its ``best/``);
- the name of a model that ships with footseg (``pretrained_models()``: ``fastlinknet_ctx``, the default, and
  ``fastlinknet``).

An existing path always wins over a name, so a local folder that happens to share a model's name is never shadowed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from footseg.config import MAX_INPUT_SIDE, is_input_side
from footseg.errors import FootsegError
from footseg.models import info as model_info
from footseg.models.info import CONFIG_NAME, WEIGHTS_NAME, SavedModelInfo, pretrained_models

if TYPE_CHECKING:
    import torch
    from torch import nn

DEFAULT_NAME = "default"
DEFAULT_MODEL = "fastlinknet_ctx"  # the shipped model that ``default`` and an omitted MODEL mean


@dataclass(frozen=True)
class ModelRef:
    """A resolved model: where its files are and how to describe it.

    ``path`` is a saved model folder, or an ``.onnx`` file when ``onnx`` is true. ``shipped`` marks a model that
    ships inside footseg (an installed package is no place to write exports next to).
    """

    path: Path
    name: str
    onnx: bool = False
    shipped: bool = False
    size: int | None = None  # run the network at size x size, not its config's input_size (``at_size``)

    @property
    def folder(self) -> Path:
        """The saved model folder; a ``FootsegError`` for an ONNX file, which has no PyTorch weights."""
        if self.onnx:
            beside = self.path.parent
            where = f" (its folder {beside} is one)" if (beside / WEIGHTS_NAME).is_file() else ""
            raise FootsegError(f"an exported ONNX file has no PyTorch weights; pass a saved model folder{where}",
                               self.path)
        return self.path

    def load(self, device: str | torch.device = "cpu") -> tuple[nn.Module, SavedModelInfo]:
        """The PyTorch network in eval mode and its info (its ``input_size`` ``size`` x ``size`` where one is set)."""
        from footseg.models.saved import load_model  # torch, only where a network runs in it

        net, info = load_model(self.folder, device=device)
        if self.size is not None:
            info = dataclasses.replace(info, input_size=(self.size, self.size))
        return net, info

    def at_size(self, size: int | None) -> ModelRef:
        """This model run at ``size`` x ``size`` (a multiple of 32) instead of its config's side; itself for None.

        Fully convolutional networks run at any such side, and an export then takes frames of that side: a smaller one
        is faster and less accurate. The threshold stays the model's own, chosen at its own side."""
        if size is None:
            return self
        check_input_side(size)
        if self.onnx:
            raise FootsegError(f"an exported file runs at the size it was exported at, not {size}: export the model "
                               "folder at that size", self.path)
        return dataclasses.replace(self, size=size)


def check_input_side(size: int) -> int:
    """``size`` as a side a network can run at (``config.is_input_side``); a one-line ``FootsegError`` otherwise."""
    if not is_input_side(size):
        raise FootsegError(f"input size must be a multiple of 32 from 32 to {MAX_INPUT_SIDE}, got {size}")
    return size


def resolve_model(ref: str | Path | ModelRef | None = None) -> ModelRef:
    """Resolve ``ref`` as the module doc says; a one-line ``FootsegError`` when it names no model."""
    if isinstance(ref, ModelRef):
        return ref
    if ref is None or (str(ref) == DEFAULT_NAME and not Path(ref).exists()):
        ref = DEFAULT_MODEL
    path = Path(ref)
    if path.suffix.lower() == ".onnx":
        if not path.is_file():
            raise FootsegError("ONNX file not found", path)
        return ModelRef(path=path, name=path.name, onnx=True)
    if path.is_dir():
        if (path / WEIGHTS_NAME).is_file():
            name = path.parent.name if path.name == "best" else path.name
            return ModelRef(path=path, name=name, shipped=path.resolve().parent == model_info.PRETRAINED_DIR.resolve())
        if (path / "best" / WEIGHTS_NAME).is_file():
            return ModelRef(path=path / "best", name=path.name)
        if (path / CONFIG_NAME).is_file():
            raise FootsegError("holds no model.safetensors: a run folder without a best/ model yet (train it for an "
                               "epoch), or an incomplete model folder", path)
        raise FootsegError("not a model: expected a saved model folder (config.json + model.safetensors), a run "
                           "folder with best/, or an .onnx file", path)
    if path.exists():
        raise FootsegError("not a model: expected a saved model folder, a run folder or an .onnx file", path)
    shipped = pretrained_models()
    if str(ref) in shipped:
        return ModelRef(path=model_info.PRETRAINED_DIR / str(ref), name=str(ref), shipped=True)
    if len(path.parts) > 1 or path.suffix:  # meant as a path: say which file is missing, first
        raise FootsegError("model not found (no such file or folder)", path)
    raise FootsegError(
        f"no model named '{ref}': not a file or folder, and not a shipped model ({', '.join(shipped) or 'none'}, "
        f"or '{DEFAULT_NAME}')"
    )


def load_network(ref: str | Path | ModelRef | None = None, device: str | torch.device = "cpu"
                 ) -> tuple[nn.Module, SavedModelInfo]:
    """``resolve_model(ref).load(device)``: the PyTorch network of any model reference but an ONNX file."""
    return resolve_model(ref).load(device)

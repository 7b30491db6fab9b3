"""A saved model is a folder: ``config.json`` (how to rebuild it) and ``model.safetensors`` (its weights).

Weights never travel as pickles, so loading a model folder from anywhere cannot execute code.
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from footseg.atomic import atomic_paths, atomic_write_text
from footseg.errors import FootsegError
from footseg.models.layer_shapes import LAYER_SHAPES_KEY, apply_layer_shapes
from footseg.models.registry import create_model

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
# Models shipped inside the package, each a saved model folder named after its architecture, with a MODEL_CARD.md.
PRETRAINED_DIR = Path(__file__).parent / "pretrained"
DEFAULT_THRESHOLD = 0.5


def pretrained_models() -> list[str]:
    """Names of the models whose weights ship with footseg (``footseg.runtime.resolve_model`` resolves them)."""
    return sorted(p.name for p in PRETRAINED_DIR.glob("*") if (p / WEIGHTS_NAME).is_file())


@dataclass
class SavedModelInfo:
    """What ``config.json`` holds: enough to rebuild the network and feed it correctly."""

    model: str
    width: float = 1.0
    num_classes: int = 2
    input_size: tuple[int, int] = (256, 256)  # (height, width) it runs at: its training size, or an operating point's
    extra: dict = field(default_factory=dict)  # training settings and scores, for people reading the folder
    in_channels: int = 3  # 4: a prior-mask network, whose 4th input is the previous frame's foot probability
    # A pixel is foot where its foot probability exceeds this: the model's operating point, chosen on synthetic
    # validation images (a recipe's threshold stage); 0.5 is the argmax of two classes. It belongs to these weights:
    # training and pruning make new ones, which start at 0.5 (training validates and picks epochs at the argmax).
    threshold: float = DEFAULT_THRESHOLD
    # Where set, a region of foot (pixels above ``threshold``, 8-connected, at the network's resolution) is kept only
    # if its most confident pixel exceeds this, or it is the frame's most confident region: floor blobs the network
    # half-believes go, a frame with any foot keeps it. Chosen with the threshold (a recipe's threshold stage); None:
    # every region is kept.
    region_peak: float | None = None
    # Where set, a frame shows foot only if its most confident pixel exceeds this; otherwise the whole frame is
    # floor. The region peak always keeps the frame's most confident region, so on a floor with no foot its most
    # foot-like patch survives: this clears it. Chosen after the region peak (a recipe's threshold stage); None: off.
    presence: float | None = None

    @property
    def trained_size(self) -> tuple[int, int]:
        """(height, width) its last training ran at (``extra``'s training settings), else the side it runs at."""
        settings = self.extra.get("train_config")
        side = settings.get("size") if isinstance(settings, dict) else None
        return (int(side), int(side)) if side else (int(self.input_size[0]), int(self.input_size[1]))


def info_to_dict(info: SavedModelInfo) -> dict:
    """``info`` as config.json (and a compressed model's header) store it: plain JSON values."""
    raw = asdict(info)
    raw["input_size"] = list(info.input_size)
    for key in ("region_peak", "presence"):
        if raw[key] is None:  # absent rather than null: files of models without it stay as they were
            del raw[key]
    return raw


def info_from_dict(raw: dict) -> SavedModelInfo:
    """The inverse of ``info_to_dict``; fields a file from an older footseg lacks take their defaults. Raises
    KeyError, TypeError or ValueError for a malformed ``raw`` (the caller names the file)."""
    return SavedModelInfo(
        model=str(raw["model"]),
        width=float(raw.get("width", 1.0)),
        num_classes=int(raw.get("num_classes", 2)),
        input_size=tuple(int(s) for s in raw.get("input_size", (256, 256))),
        in_channels=int(raw.get("in_channels", 3)),
        extra=dict(raw.get("extra", {})),
        threshold=check_threshold(raw.get("threshold", DEFAULT_THRESHOLD)),
        region_peak=check_region_peak(raw.get("region_peak")),
        presence=check_presence(raw.get("presence")),
    )


def check_threshold(value: object) -> float:
    """``value`` as a threshold (a number strictly between 0 and 1); ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 < value < 1.0:
        raise ValueError(f"threshold must be a number between 0 and 1, got {value!r}")
    return float(value)


def check_region_peak(value: object) -> float | None:
    """``value`` as a region peak (None, or a number strictly between 0 and 1); ValueError otherwise."""
    return _optional_probability("region_peak", value)


def check_presence(value: object) -> float | None:
    """``value`` as a presence level (None, or a number strictly between 0 and 1); ValueError otherwise."""
    return _optional_probability("presence", value)


def _optional_probability(name: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be a number between 0 and 1 (or absent), got {value!r}")
    return float(value)


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
        config.write_text(_info_json(info))
    return folder


def _info_json(info: SavedModelInfo) -> str:
    return json.dumps(info_to_dict(info), indent=2) + "\n"


def write_info(folder: str | Path, info: SavedModelInfo) -> None:
    """Write ``folder/config.json`` atomically (the weights beside it are left as they are)."""
    atomic_write_text(Path(folder) / CONFIG_NAME, _info_json(info))


def read_info(folder: str | Path) -> SavedModelInfo:
    folder = Path(folder)
    path = folder / CONFIG_NAME
    if not folder.is_dir():
        raise FootsegError("not a model folder (expected a folder with config.json and model.safetensors)", folder)
    if not path.is_file():
        raise FootsegError("model folder has no config.json", folder)
    try:
        return info_from_dict(json.loads(path.read_text()))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise FootsegError(f"invalid config.json ({type(exc).__name__}: {exc})", path) from exc


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

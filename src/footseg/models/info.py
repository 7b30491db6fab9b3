"""A saved model's ``config.json``: what the network is and how its output is decided (``SavedModelInfo``).

Readable without PyTorch: running a model's ONNX export (``footseg.runtime``) needs its folder's decisions, not torch,
whose import is most of a short command's start-up.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from footseg.atomic import atomic_write_text
from footseg.errors import FootsegError

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CHOICE_NAME = "choice.json"  # beside a chosen model's weights: every score it was chosen from (select, threshold)
# Models shipped inside the package, each a saved model folder named after its architecture, with a MODEL_CARD.md.
PRETRAINED_DIR = Path(__file__).parent / "pretrained"
DEFAULT_THRESHOLD = 0.5
# ``extra``'s record of a channel-pruned network's layer widths (``footseg.models.layer_shapes``)
LAYER_SHAPES_KEY = "layer_shapes"
# The layers an int8 export quantizes: from this fraction of the input resolution on (``footseg.deploy.quantize``).
MIN_STRIDE_KEY = "int8_min_stride"


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
    # training from scratch and pruning make new ones, which start at 0.5 (training validates and picks epochs at the
    # argmax); a fine-tune (--init) keeps its start's, the nearest guess (``footseg.train.trainer.carried_decisions``).
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


def info_json(info: SavedModelInfo) -> str:
    """``info`` as config.json's text."""
    return json.dumps(info_to_dict(info), indent=2) + "\n"


def write_info(folder: str | Path, info: SavedModelInfo) -> None:
    """Write ``folder/config.json`` atomically (the weights beside it are left as they are)."""
    atomic_write_text(Path(folder) / CONFIG_NAME, info_json(info))


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

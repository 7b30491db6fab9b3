"""One config object per training run; it is written to RUN/config.json and checked on --resume."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from footseg.atomic import atomic_write_text
from footseg.errors import FootsegError

LOSSES = ("ce", "iou", "ce+iou")
# The largest side footseg trains or runs a network at: a phone frame is 1080-4000 px, and a side of 100,000 asks
# OpenCV for 30 GB before anything can say why.
MAX_INPUT_SIDE = 4096


def is_input_side(size: int) -> bool:
    """A side every footseg network can take: a multiple of 32 (five stride-2 stages) up to ``MAX_INPUT_SIDE``."""
    return 0 < size <= MAX_INPUT_SIDE and size % 32 == 0


@dataclass
class TrainConfig:
    model: str = "fastlinknet"
    data: str | None = None  # dataset folder with train/val splits (required; None only until the CLI fills it)
    out: str = "runs/train"
    width: float = 1.0
    num_classes: int = 2
    size: int = 256  # square training crop; must be a multiple of 32
    epochs: int = 10
    batch_size: int = 8
    lr: float = 2e-3
    weight_decay: float = 1e-4
    loss: str = "ce+iou"
    seed: int = 0
    workers: int = 2
    steps_per_epoch: int | None = None  # None: one pass over the training split
    device: str = "auto"  # auto | cpu | cuda
    progress: bool = True
    init: str | None = None  # start from these weights (a saved model folder or a shipped model's name): fine-tuning
    # Validate and save an exponential moving average of the weights (decay per step, e.g. 0.999); 0 = off.
    ema: float = 0.0
    # Knowledge distillation: a saved model (folder or shipped name) whose softened outputs the student also fits.
    teacher: str | None = None
    distill_weight: float = 0.5  # share of the distillation term in the loss at the first step
    distill_temperature: float = 4.0
    distill_anneal: bool = True  # FitNets: the weight falls linearly to 0 by the last step
    attention_weight: float = 0.0  # attention transfer from the teacher's encoder stages (beta; ~1e3); 0 = off
    # BatchNorms stay in eval mode with their scales fixed (``finetune`` of a network whose BNs were folded).
    freeze_bn: bool = False
    # The thesis's grid warp, flips and colour noise on training images; off only to test that a network can fit
    # its data at all (a run without it memorises, it does not generalise).
    augment: bool = True
    # Where the warp shrinks its source on average, shrink it by area to that scale first (AugmentConfig.antialias):
    # for renders made at several times the training side, whose detail a bilinear warp would alias.
    antialias: bool = False
    # Colour casts of cameras' white balance in the augmentation (AugmentConfig.white_balance): red and blue gains up
    # to 1 + this each way; 0 = off, as the thesis's augmentation.
    white_balance: float = 0.0
    # A prior-mask network for video: a 4th input, the previous frame's mask, faked from each image's own mask.
    prior: bool = False
    # Share of training images whose prior is the network's own (detached) output for them, slightly moved: it learns
    # to overrule its own mistakes, which a prior made from true masks never shows it. Needs ``prior``.
    self_prior: float = 0.0

    def validate(self) -> None:
        if self.loss not in LOSSES:
            raise FootsegError(f"unknown loss '{self.loss}'; choose one of: {', '.join(LOSSES)}")
        if not is_input_side(self.size):
            raise FootsegError(f"--size must be a multiple of 32 from 32 to {MAX_INPUT_SIDE}, got {self.size}")
        if self.epochs < 1:
            raise FootsegError(f"--epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise FootsegError(f"--batch-size must be at least 1, got {self.batch_size}")
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            raise FootsegError(f"--steps-per-epoch must be at least 1, got {self.steps_per_epoch}")
        if not self.lr >= 0 or self.weight_decay < 0:  # lr 0 leaves the weights as they start (BN still adapts)
            raise FootsegError(f"--lr and --weight-decay must not be negative, got {self.lr} and {self.weight_decay}")
        if not self.width > 0:
            raise FootsegError(f"--width must be positive, got {self.width}")
        if self.workers < 0:
            raise FootsegError(f"--workers must not be negative, got {self.workers}")
        if not 0.0 <= self.ema < 1.0:
            raise FootsegError(f"--ema is a decay per step in [0, 1) (0 = off), got {self.ema}")
        if not 0.0 <= self.distill_weight <= 1.0:
            raise FootsegError(f"--distill-weight must lie in [0, 1], got {self.distill_weight}")
        if self.distill_temperature <= 0:
            raise FootsegError(f"--distill-temperature must be positive, got {self.distill_temperature}")
        if self.attention_weight < 0:
            raise FootsegError(f"--attention-weight must not be negative, got {self.attention_weight}")
        if not 0.0 <= self.self_prior <= 1.0 or (self.self_prior > 0 and not self.prior):
            raise FootsegError(f"--self-prior is a share in [0, 1] and needs --prior, got {self.self_prior}")
        if self.antialias and not self.augment:
            raise FootsegError("--antialias shapes the augmentation's warp; it needs augmentation on")
        if not 0.0 <= self.white_balance <= 1.0 or (self.white_balance > 0 and not self.augment):
            raise FootsegError(f"--white-balance is a gain range in [0, 1] (0 = off) and needs augmentation on, got "
                               f"{self.white_balance}")
        if self.attention_weight > 0 and self.teacher is None:
            raise FootsegError("--attention-weight needs a --teacher to transfer attention from")

    # Settings that define *what* is trained; a resumed run must agree on these.
    # ``steps_per_epoch`` shapes the LR and distillation schedules just as ``epochs`` does; more epochs may extend a
    # finished run (the cosine stretches, as intended), but a changed epoch length would reshape both silently.
    IDENTITY = ("model", "data", "width", "num_classes", "size", "loss", "seed", "batch_size", "lr", "weight_decay",
                "init", "ema",
                "teacher", "distill_weight", "distill_temperature", "distill_anneal", "attention_weight",
                "steps_per_epoch", "freeze_bn", "prior", "self_prior", "augment", "antialias", "white_balance")

    @property
    def in_channels(self) -> int:
        return 4 if self.prior else 3

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})

    def save(self, path: str | Path) -> None:
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")  # a resume reads it back

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError, TypeError) as exc:
            raise FootsegError(f"invalid run config ({exc})", path) from exc

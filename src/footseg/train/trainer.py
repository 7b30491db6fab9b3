"""The training loop, in the spirit of torchvision's reference scripts: one process, or DDP when run by torchrun.

A run folder RUN holds ``config.json`` (the TrainConfig), ``checkpoint.pt`` (the latest state, written after every
epoch and every ``CHECKPOINT_EVERY_STEPS`` steps or ``CHECKPOINT_EVERY_S`` seconds within one), ``history.json``
(per-epoch metrics) and ``best/`` (the saved model with the best validation IoU so far).

With ``--ema`` the run keeps an exponential moving average of the weights (and BatchNorm statistics); that average is
what is validated and saved. With ``--teacher`` the loss mixes the labels' loss with Hinton's distillation term
(and, with ``--attention-weight``, attention transfer from the teacher's encoder stages).

``--resume`` continues from ``checkpoint.pt`` exactly where it stopped, mid-epoch included: the sampler's order depends
only on (seed, epoch) and augmentation on (seed, epoch, index), so the batches already done are skipped by position
and the rest of the epoch sees the same batches an uninterrupted run would.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset, Subset
from tqdm import tqdm

from footseg.atomic import check_writable
from footseg.config import TrainConfig
from footseg.data.augment import AugmentConfig
from footseg.data.check import require_valid
from footseg.data.dataset import SegmentationDataset, make_loader
from footseg.data.prior import PriorDataset
from footseg.data.samples import has_splits, split_folder
from footseg.errors import FootsegError
from footseg.metrics import ConfusionMeter
from footseg.models.info import DEFAULT_THRESHOLD, LAYER_SHAPES_KEY, MIN_STRIDE_KEY, SavedModelInfo
from footseg.models.registry import create_model
from footseg.models.saved import add_prior_input, save_model
from footseg.one_writer import one_writer
from footseg.runtime.device import resolve_device
from footseg.runtime.predictor import foot_probability
from footseg.runtime.resolve import resolve_model
from footseg.train.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from footseg.train.distill import FeatureTap, attention_transfer_loss, distill_weight, distillation_loss
from footseg.train.history import read_history, write_history
from footseg.train.losses import Loss, build_loss

CHECKPOINT_EVERY_STEPS = 50
CHECKPOINT_EVERY_S = 60.0
CHECKPOINT_VERSION = 1
RENDEZVOUS_ENV = "FOOTSEG_RENDEZVOUS"  # an init_method for torch.distributed (unset: torchrun's env://)
LAUNCHER_ENV = "FOOTSEG_LAUNCHER_PID"  # set in processes that footseg.train.processes started: their launcher's pid
KEPT_VALIDATION_BYTES = 1 << 30  # a validation split is held in memory (resized, uint8) up to this size
MIN_LR_FACTOR = 0.01  # the cosine ends at 1 % of the peak rate, so extending a finished run still learns


@dataclass
class _Dist:
    """Where this process sits in a torchrun job (world 1 when run directly)."""

    world: int = 1
    rank: int = 0
    local_rank: int = 0
    local_world: int = 1

    @classmethod
    def from_environ(cls) -> _Dist:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        return cls(
            world=world,
            rank=int(os.environ["RANK"]),
            local_rank=int(os.environ.get("LOCAL_RANK", "0")),
            local_world=int(os.environ.get("LOCAL_WORLD_SIZE", str(world))),
        )

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


@dataclass
class _Progress:
    """Where the run stands; everything here goes into the checkpoint."""

    epoch: int = 0  # index of the epoch in progress (== cfg.epochs when finished)
    step: int = 0  # batches of that epoch already trained
    global_step: int = 0
    best_iou: float = -1.0
    init_iou: float | None = None  # the --init model's validation foot IoU before any step: what a fine-tune must beat
    carried: dict[str, Any] = field(default_factory=dict)  # what best/ keeps of the --init model (carried_decisions)
    history: list[dict[str, Any]] = field(default_factory=list)
    # Running sums of the epoch in progress, so a resumed epoch reports the same train loss as an uninterrupted one.
    loss_sum: float = 0.0
    images: int = 0
    counts: torch.Tensor = field(default_factory=lambda: torch.zeros(4, dtype=torch.int64))
    seconds: float = 0.0

    def start_epoch(self, epoch: int) -> None:
        self.epoch, self.step = epoch, 0
        self.loss_sum, self.images, self.seconds = 0.0, 0, 0.0
        self.counts = torch.zeros(4, dtype=torch.int64)


class _StopRequest:
    """Turns the first Ctrl-C or SIGTERM into a flag checked between steps; a second Ctrl-C stops at once."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if self.signum is None and hasattr(signal, "SIGCHLD"):
            # Workers killed by the same signal (a scheduler's SIGTERM to the whole process group) would make the
            # DataLoader's SIGCHLD handler raise wherever the main thread is, between an optimizer step and its
            # bookkeeping; without it their death surfaces at the next batch fetch, a step boundary safe to save at.
            # A do-nothing handler, not SIG_DFL: Python raises "OSError: Signal 17 ignored due to race condition" for
            # a SIGCHLD already pending (handled after this one: signals run in number order) whose handler became
            # SIG_DFL; and not SIG_IGN, which makes the kernel reap the workers before the loader waits for them.
            self._previous.setdefault(signal.SIGCHLD, signal.signal(signal.SIGCHLD, _ignore_signal))
        self.signum = signum

    def __enter__(self) -> _StopRequest:
        if threading.current_thread() is threading.main_thread():  # signal handlers can only be set there
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else "an error"


def _ignore_signal(signum: int, frame: Any) -> None:
    pass


class _StopError(Exception):
    """Raised between steps once a stop was requested."""


class StopAfterTheRun(KeyboardInterrupt):
    """A stop asked for as the last epoch was scored and saved: the run is complete (nothing to resume), and the stop
    still stops its caller, as any stop does."""


def train(cfg: TrainConfig, resume: bool = False) -> Path:
    """Train ``cfg.model`` into the run folder ``cfg.out`` and return the folder of the best model, ``RUN/best``."""
    best = _run(cfg, resume, start=None)
    assert best is not None  # a run from cfg keeps its best model
    return best


def finetune(model: nn.Module, cfg: TrainConfig) -> list[dict[str, Any]]:
    """Train the in-memory ``model`` in place through the same loop as ``train``; returns the run's history.

    For networks that only live in memory, such as compression's pruned and weight-shared ones: pruning masks and
    parametrizations registered on ``model`` stay in force through the steps, and ``cfg.freeze_bn`` keeps BatchNorm
    statistics and scales fixed (a network whose BatchNorms are folded into its convs needs that). The run folder
    ``cfg.out`` gets the config, checkpoints and history, but no ``best/``: the caller keeps the trained network,
    with its last weights, left in eval mode. ``cfg.init`` must be unset (``model`` is the start).
    """
    if cfg.init is not None:
        raise FootsegError("finetune starts from the network it is given; --init cannot also be set")
    _run(cfg, resume=False, start=model)
    model.to(memory_format=torch.contiguous_format).eval()  # handed back in PyTorch's default layout, as it came
    return read_history(cfg.out) or []


def _run(cfg: TrainConfig, resume: bool, start: nn.Module | None) -> Path | None:
    cfg.validate()
    run = Path(cfg.out)
    env = _Dist.from_environ()
    device = _pick_device(cfg.device, env)
    # One process holds the run folder against a second job writing it: this one, process 0 under torchrun, or
    # footseg's own launcher for the processes it started (their parent, which names itself in their environment)
    holds = env.main and os.environ.get(LAUNCHER_ENV) != str(os.getppid())
    with one_writer(run, hint="choose another --out") if holds else contextlib.nullcontext():
        return _run_held(cfg, run, env, device, resume, start)


def _run_held(cfg: TrainConfig, run: Path, env: _Dist, device: torch.device, resume: bool,
              start: nn.Module | None) -> Path | None:
    if env.enabled:
        if device.type == "cpu":
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // env.local_world))
        # torchrun's env:// rendezvous is a TCP store on every network interface; footseg's own launcher
        # (footseg.train.processes) names a file store instead
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo",
                                init_method=os.environ.get(RENDEZVOUS_ENV), rank=env.rank, world_size=env.world)
    try:
        # Every check that can refuse the job comes before any file is written or any time is spent: the folders
        # here, the network, --init and --teacher as the trainer is built. A refused start leaves no config.json
        # behind that would make the corrected command's run "a different run".
        _check_inputs(run, cfg, resume, env)
        job = _Trainer(cfg, run, Path(cfg.data), device, env, resume, start)
        if env.main:
            run.mkdir(parents=True, exist_ok=True)
            cfg.save(run / "config.json")
        if env.enabled:
            dist.barrier()
        best = job.fit()
        if env.enabled:
            dist.barrier()
        return best
    finally:
        if env.enabled and dist.is_initialized():
            dist.destroy_process_group()


def _initial_model(cfg: TrainConfig) -> tuple[nn.Module, dict, dict]:
    """The network a run starts from, its layer widths that differ from a fresh one's (``layer_shapes``), and the
    decisions its saved models carry over (``carried_decisions``).

    A fresh ``create_model`` network, or with ``--init`` the saved model itself: the same architecture, width and
    classes, possibly channel-pruned (narrower layers), which is how a pruned network is fine-tuned at length. With
    ``--prior`` a still-image ``--init`` model gets its prior input added, with zero weights (``add_prior_input``).
    """
    if cfg.init is None:
        return create_model(cfg.model, cfg.width, cfg.num_classes, in_channels=cfg.in_channels), {}, {}
    ref = resolve_model(cfg.init)
    start, info = ref.load()
    if (info.model, info.width, info.num_classes) != (cfg.model, cfg.width, cfg.num_classes):
        raise FootsegError(
            f"--init {cfg.init} is {info.model} width {info.width:g} with {info.num_classes} classes, but this run "
            f"trains {cfg.model} width {cfg.width:g} with {cfg.num_classes} classes: a fine-tune trains the network it "
            "starts from (leave --model and --width out)")
    if cfg.prior and info.in_channels == 3:
        start, info = add_prior_input(start, info)
    if info.in_channels != cfg.in_channels:
        raise FootsegError("--init has a prior input but this run trains without --prior", ref.path)
    return start.train(), dict(info.extra.get(LAYER_SHAPES_KEY, {})), carried_decisions(info)


def carried_decisions(info: SavedModelInfo) -> dict[str, Any]:
    """What a fine-tune of ``info``'s model keeps of it beyond the weights: its operating point (threshold, region
    peak, presence gate) and its int8 split, where it has them.

    They were chosen for the starting weights, and a fine-tune moves those: kept, they are the nearest guess for the new
    ones (the default decides at 0.70, where a network trained with ce+iou is too sure of foot at the argmax's 0.5);
    dropped, a fine-tuned default would quietly decide as no shipped model does. A recipe's threshold stage chooses
    them anew; ``footseg eval --threshold T --region-peak P`` scores others. Pruning, which makes other widths, drops
    them (``footseg.compress.prune.pruned_info``)."""
    kept: dict[str, Any] = {}
    if info.threshold != DEFAULT_THRESHOLD:
        kept["threshold"] = info.threshold
    if info.region_peak is not None:
        kept["region_peak"] = info.region_peak
    if info.presence is not None:
        kept["presence"] = info.presence
    if MIN_STRIDE_KEY in info.extra:
        kept[MIN_STRIDE_KEY] = info.extra[MIN_STRIDE_KEY]
    return kept


def _ema_update(decay: float):
    """``AveragedModel``'s ``multi_avg_fn`` for an EMA whose decay ramps up as ``(1 + n) / (10 + n)`` (timm's warm-up).

    Without the ramp the first hundreds of steps would be dominated by the starting weights, which for a run from
    scratch are random. Integer buffers (BatchNorm's batch counter) are copied, not averaged.
    """

    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], num_averaged: torch.Tensor) -> None:
        if not averaged[0].is_floating_point():
            for a, c in zip(averaged, current, strict=True):
                a.copy_(c)
            return
        n = float(num_averaged)
        weight = 1.0 - min(decay, (1.0 + n) / (10.0 + n))
        for a, c in zip(averaged, current, strict=True):
            a.lerp_(c, weight)

    return update


def memory_format(device: torch.device) -> torch.memory_format:
    """The layout the trainer keeps networks and batches in on ``device``.

    Channels-last (NHWC) lets oneDNN run the convolutions without reordering every tensor: a training step of
    fastlinknet_ctx at 192 px, batch 16, takes 100 ms on a 2-core CPU against 144 ms in NCHW (the same arithmetic,
    summed in another order; benchmarks/train_speed.py). On a GPU it was not measured, so it stays NCHW there.
    """
    return torch.channels_last if device.type == "cpu" else torch.contiguous_format


def _teacher(cfg: TrainConfig, device: torch.device) -> nn.Module | None:
    """The frozen teacher network of a distillation run, in eval mode, or None."""
    if cfg.teacher is None:
        return None
    ref = resolve_model(cfg.teacher)
    net, info = ref.load(device)
    if info.num_classes != cfg.num_classes:
        raise FootsegError(f"--teacher has {info.num_classes} classes, but this run trains {cfg.num_classes}",
                           ref.path)
    if info.in_channels > cfg.in_channels:  # an RGB teacher of a prior-mask student sees the image channels only
        raise FootsegError(f"--teacher takes {info.in_channels} input channels, more than this run's "
                           f"{cfg.in_channels} (a prior-mask teacher needs --prior)", ref.path)
    for p in net.parameters():
        p.requires_grad_(False)
    return net.to(memory_format=memory_format(device)).eval()  # the layout the student's batches come in


def _check_inputs(run: Path, cfg: TrainConfig, resume: bool, env: _Dist) -> None:
    """Rank 0 checks the run folder and the dataset; every rank raises the same error if one is found."""
    error = None
    if env.main:
        try:
            _check_run_folder(run, cfg, resume, env.world)
            if cfg.data is None:
                raise FootsegError("training needs --data DIR, a dataset with train/ and val/ splits (render one "
                                   "with `footseg synth DIR --n 2000`)")
            if Path(cfg.data).is_dir() and not has_splits(Path(cfg.data)):
                # a flat folder would serve as both splits: the best epoch would be chosen on training images
                raise FootsegError("training needs train/ and val/ split folders, not one flat folder", cfg.data)
            missing = [split for split in ("train", "val") if not (Path(cfg.data) / split).is_dir()]
            if Path(cfg.data).is_dir() and missing:
                raise FootsegError(f"training needs train/ and val/ split folders; this dataset has no "
                                   f"{' or '.join(f'{m}/' for m in missing)}", cfg.data)
            require_valid(Path(cfg.data), ("train", "val"))
        except FootsegError as exc:
            if not env.enabled:
                raise
            error = str(exc)
    if env.enabled:
        box = [error]
        dist.broadcast_object_list(box, src=0)
        if box[0] is not None:
            raise FootsegError(box[0])


def _check_run_folder(run: Path, cfg: TrainConfig, resume: bool, processes: int) -> None:
    check_writable(run, folder=True, hint="choose another --out")
    stored_path = run / "config.json"
    if not stored_path.is_file():
        return
    if not resume:
        raise FootsegError("already holds a run; pass --resume to continue it or choose another --out", run)
    checkpoint = run / "checkpoint.pt"
    if checkpoint.is_file():
        # First: another number of processes also changes each one's batch, which the comparison below would name.
        made_in = load_checkpoint(checkpoint).get("processes", processes)  # older checkpoints: not checked
        if made_in != processes:
            # each process skips its share of the batches done; another number of them would skip other images
            raise FootsegError(f"a checkpoint of training in {made_in} process(es); resume it in as many (torchrun "
                               f"--nproc_per_node {made_in}, or a recipe's procs = {made_in} on a CPU)", checkpoint)
    stored = TrainConfig.load(stored_path)
    differ = [
        f"{name} ({getattr(stored, name)!r} there, {getattr(cfg, name)!r} now)"
        for name in TrainConfig.IDENTITY
        if getattr(stored, name) != getattr(cfg, name) and not (name == "data" and _same_folder(stored.data, cfg.data))
    ]
    if differ:
        raise FootsegError(f"holds a different run; cannot resume with another {', '.join(differ)}", run)


def _same_folder(a: str | None, b: str | None) -> bool:
    """Whether two spellings of a dataset name one folder (``mine``, ``./mine/``, its absolute path)."""
    return a is not None and b is not None and Path(a).resolve() == Path(b).resolve()


def _pick_device(name: str, env: _Dist) -> torch.device:
    if resolve_device(name) == "cuda":
        torch.cuda.set_device(env.local_rank)
        return torch.device("cuda", env.local_rank)
    return torch.device("cpu")


def _lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up, then a cosine from the peak down to MIN_LR_FACTOR at ``total`` steps."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return MIN_LR_FACTOR + (1 - MIN_LR_FACTOR) * 0.5 * (1 + math.cos(math.pi * progress))


class _Trainer:
    def __init__(self, cfg: TrainConfig, run: Path, data: Path, device: torch.device, env: _Dist, resume: bool,
                 start: nn.Module | None = None):
        self.cfg, self.run, self.device, self.env = cfg, run, device, env
        self.keep_best = start is None  # an in-memory start (``finetune``) is handed back, not saved
        self.checkpoint_path = run / "checkpoint.pt"
        random.seed(cfg.seed)
        np.random.seed(cfg.seed)
        torch.manual_seed(cfg.seed)

        augmentation = AugmentConfig(antialias=cfg.antialias, white_balance=cfg.white_balance)
        self.train_set: Dataset = SegmentationDataset(split_folder(data, "train"), cfg.size, augment=cfg.augment,
                                                      seed=cfg.seed, config=augmentation)
        # Scored every epoch, decoded once: 4,800 validation renders were 8 s of each of the default's 40 epochs.
        val_set: Dataset = SegmentationDataset(split_folder(data, "val"), cfg.size, augment=False,
                                               keep_bytes=KEPT_VALIDATION_BYTES)
        if cfg.prior:  # a fake previous-frame mask as 4th channel; validation's are the same every epoch
            self.train_set, val_set = PriorDataset(self.train_set, cfg.seed), PriorDataset(val_set, cfg.seed)
        self.train_loader = make_loader(
            self.train_set, cfg.batch_size, shuffle=True, workers=cfg.workers, seed=cfg.seed, distributed=env.enabled
        )
        # Each rank scores its own slice of the validation set; unlike a DistributedSampler this never pads with
        # repeated images, so the all-reduced counts are exactly those of the whole set.
        val_shard = Subset(val_set, range(env.rank, len(val_set), env.world))
        self.val_loader = make_loader(val_shard, cfg.batch_size, shuffle=False, workers=cfg.workers, seed=cfg.seed)
        self.steps_per_epoch = len(self.train_loader)
        if cfg.steps_per_epoch is not None:
            if cfg.steps_per_epoch > self.steps_per_epoch:
                self._log(f"--steps-per-epoch {cfg.steps_per_epoch}: an epoch is at most one pass over the training "
                          f"split, here {self.steps_per_epoch} batches of {cfg.batch_size}"
                          + (" per process" if env.enabled else ""))
            self.steps_per_epoch = max(1, min(self.steps_per_epoch, cfg.steps_per_epoch))

        self.model, self.layer_shapes, carried = _initial_model(cfg) if start is None else (start, {}, {})
        self.layout = memory_format(device)
        self.model = self.model.to(device, memory_format=self.layout)
        # With frozen BatchNorms their scales stay out of the optimiser and their statistics out of training mode.
        self.frozen_norms = [m for m in self.model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
                             ] if cfg.freeze_bn else []
        frozen = {id(m.weight) for m in self.frozen_norms if m.weight is not None}
        self.ddp: nn.Module | None = None
        if env.enabled:
            self.ddp = DistributedDataParallel(self.model, device_ids=[device.index] if device.type == "cuda" else None)
            # Weights start equal (DDP broadcasts rank 0's); from here each process draws its own dropout masks, which
            # the same seed everywhere would repeat on every rank's samples.
            torch.manual_seed(cfg.seed + 1_000_003 * env.rank)
        self.ema = (
            torch.optim.swa_utils.AveragedModel(self.model, multi_avg_fn=_ema_update(cfg.ema), use_buffers=True)
            if cfg.ema > 0 else None
        )
        self.teacher = _teacher(cfg, device)
        # After the EMA copy, so the average (validated, saved) carries no hooks.
        self.taps: tuple[FeatureTap, FeatureTap] | None = None
        if cfg.attention_weight > 0 and self.teacher is not None:
            self.taps = FeatureTap(self.model), FeatureTap(self.teacher)
        self.loss_fn: Loss = build_loss(cfg.loss)
        trainable = [p for p in self.model.parameters() if p.requires_grad and id(p) not in frozen]
        self.optimizer = torch.optim.AdamW(trainable, lr=cfg.lr, weight_decay=cfg.weight_decay)
        total = self.total_steps = cfg.epochs * self.steps_per_epoch
        warmup = max(1, min(500, total // 20))
        # LambdaLR stores no function in its state_dict, so the checkpoint stays weights_only-loadable; the
        # schedule is rebuilt from cfg on resume (more epochs stretch the cosine).
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda step: _lr_factor(step, total, warmup))
        self.state = _Progress(carried=carried)
        if resume:
            self._restore()  # what the run began with: its --init's config may have changed since
        if self.state.carried:
            kept = [f"{k.replace('_', ' ')} {v:g}" for k, v in self.state.carried.items()]
            kept_text = ", ".join(kept[:-1]) + " and " + kept[-1] if len(kept) > 1 else kept[0]
            self._log(f"--init {cfg.init}: {run / 'best'} keeps its {kept_text}, chosen for the weights it starts "
                      f"from (`footseg threshold {run} --data DIR --out FOLDER` chooses them for its own on val/)")

    # --- checkpoints -------------------------------------------------------------------------------------------

    def _restore(self) -> None:
        if not self.checkpoint_path.is_file():
            self._log(f"{self.run}: no checkpoint yet; starting the run from the beginning")
            return
        ckpt = load_checkpoint(self.checkpoint_path)
        try:
            if ckpt.get("version") != CHECKPOINT_VERSION:
                raise ValueError(f"version {ckpt.get('version')!r}, expected {CHECKPOINT_VERSION}")
            self.model.load_state_dict(ckpt["model"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
            # A checkpoint from before the trainer ran channels-last holds NCHW moments: AdamW would keep them so.
            for moments in self.optimizer.state.values():
                for key, value in moments.items():
                    if isinstance(value, torch.Tensor) and value.dim() == 4:
                        moments[key] = value.contiguous(memory_format=self.layout)
            self.scheduler.load_state_dict(ckpt["scheduler"])
            if self.ema is not None:
                self.ema.load_state_dict(ckpt["ema"])
            p = ckpt["progress"]
            self.state = _Progress(
                epoch=int(p["epoch"]),
                step=int(p["step"]),
                global_step=int(p["global_step"]),
                best_iou=float(p["best_iou"]),
                init_iou=p.get("init_iou"),  # None in checkpoints from before it was kept
                carried=dict(p.get("carried", self.state.carried)),  # (from before it was kept: the --init's now)
                history=list(p["history"]),
                loss_sum=float(p["loss_sum"]),
                images=int(p["images"]),
                counts=p["counts"].to(torch.int64),
                seconds=float(p["seconds"]),
            )
            set_rng_state(ckpt["rng"])
            if self.env.enabled:
                self._restore_own_share(ckpt)
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            raise FootsegError(
                f"checkpoint does not fit this run ({type(exc).__name__}: {first})", self.checkpoint_path
            ) from exc
        s = self.state
        if s.epoch >= self.cfg.epochs:  # a finished run asked to resume: nothing is trained again
            done = f"all {s.epoch} epochs" if s.epoch == self.cfg.epochs else \
                f"{s.epoch} epochs, more than --epochs {self.cfg.epochs}"
            self._log(f"{self.run}: trained before, {done} (best val IoU {s.best_iou:.4f})")
            return
        where = f"epoch {s.epoch + 1}, batch {s.step}" if s.step else f"the start of epoch {s.epoch + 1}"
        best = f" (best val IoU so far {s.best_iou:.4f})" if s.history else ""
        self._log(f"{self.run}: resuming at {where}{best}")

    def _restore_own_share(self, ckpt: dict[str, Any]) -> None:
        """Under DDP: this rank's generators and running sums, as ``_save_checkpoint`` gathered them."""
        if "ranks" not in ckpt:  # rank 0's alone (a rank stopped on its own, or an older footseg): its sums count once
            if not self.env.main:
                s = self.state
                s.loss_sum, s.images, s.counts = 0.0, 0, torch.zeros_like(s.counts)
            return
        own = ckpt["ranks"][self.env.rank]
        set_rng_state(own["rng"])
        s = self.state
        s.loss_sum, s.images, s.counts = float(own["loss_sum"]), int(own["images"]), own["counts"].to(torch.int64)

    def _save_checkpoint(self, together: bool = True) -> None:
        """Write checkpoint.pt (rank 0 writes). Under DDP every rank calls it ``together``: each one's generators and
        its share of the epoch's running sums go in, so that each resumes its own (rank 0's alone, restored everywhere,
        would repeat its dropout masks on every rank and count its share of the epoch once per rank). Not together
        (a rank stopped on its own), rank 0 writes its own state, which a resume takes as the best there is."""
        s = self.state
        own = {"rng": rng_state(), "loss_sum": s.loss_sum, "images": s.images, "counts": s.counts.clone()}
        ranks: list[Any] = [own]
        if self.env.enabled and together:
            ranks = [None] * self.env.world
            dist.all_gather_object(ranks, own)
        if not self.env.main:
            return
        save_checkpoint(
            self.checkpoint_path,
            {
                "version": CHECKPOINT_VERSION,
                "processes": self.env.world,
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "progress": {
                    "epoch": s.epoch,
                    "step": s.step,
                    "global_step": s.global_step,
                    "best_iou": s.best_iou,
                    "init_iou": s.init_iou,
                    "carried": dict(s.carried),
                    "history": s.history,
                    "loss_sum": s.loss_sum,
                    "images": s.images,
                    "counts": s.counts.clone(),
                    "seconds": s.seconds,
                },
                "rng": own["rng"],
                **({"ranks": ranks} if self.env.enabled and together else {}),
                **({"ema": self.ema.state_dict()} if self.ema is not None else {}),
            },
        )

    # --- the loop ----------------------------------------------------------------------------------------------

    def fit(self) -> Path | None:
        stopping = False
        with _StopRequest() as stop:
            try:
                s = self.state
                if self.cfg.init is not None and s.init_iou is None and s.epoch == 0 and s.step == 0:
                    # what the fine-tune must beat, scored as every epoch is, at the argmax (the loaders' own
                    # generators: no step changes); a stop asked for meanwhile comes after the first step
                    s.init_iou = self._validate()["iou"]
                    self._log(f"--init {self.cfg.init} as it is: val iou {s.init_iou:.4f} (at the argmax, as each "
                              "epoch is scored)")
                while self.state.epoch < self.cfg.epochs:
                    self._train_epoch(stop)
                    self._end_epoch()
                    # asked on every rank after every epoch, the last too (a collective: ranks agree); a stop asked
                    # for while the last epoch was scored and saved comes after the end, with nothing left to stop
                    stopping = self._stop_requested(stop)
                    if stopping and self.state.epoch < self.cfg.epochs:
                        raise _StopError
            except Exception as exc:
                # A DataLoader whose workers caught the same Ctrl-C fails with its own error: still a stop.
                if stop.signum is None:
                    raise
                # Every rank stops after the same step (``_agree``) and saves together; a rank stopped by its own
                # loader's error alone must not wait on the others in a gather they never join.
                self._save_checkpoint(together=isinstance(exc, _StopError))
                s = self.state
                # How to continue is the caller's to say: `footseg train --resume`, or a larger job run again
                message = (f"training stopped by {stop.name} at epoch {s.epoch + 1}, batch {s.step}; "
                           f"checkpoint saved to {self.checkpoint_path}")
                self._log(message, err=True)
                raise KeyboardInterrupt(message) from exc
        s = self.state
        if s.init_iou is not None and s.best_iou < s.init_iou:
            self._log(f"warning: no epoch beat --init {self.cfg.init} as it was (val iou {s.best_iou:.4f} at best, "
                      f"{s.init_iou:.4f} before the first step, both at the argmax): {self.run / 'best'} scores lower "
                      "on this validation split than the model it started from", err=True)
        best = self.run / "best"
        if self.keep_best and not (best / "config.json").is_file():
            raise FootsegError("run finished without a best model (was best/ deleted?)", best)
        # The run is complete; what was to follow it (a recipe's next stage) stops. Under DDP only as every rank agreed,
        # so that none leaves for the barrier after fit while another stops; alone, a signal after the last check too.
        if stopping or (stop.signum is not None and not self.env.enabled):
            message = f"{stop.name} came after the last epoch: the run is complete"
            self._log(message, err=True)
            raise StopAfterTheRun(message)
        return best if self.keep_best else None

    def _stop_requested(self, stop: _StopRequest) -> bool:
        return self._agree(stop)[0]

    def _agree(self, stop: _StopRequest, save_due: bool = False) -> tuple[bool, bool]:
        """Whether to stop, and whether to save a checkpoint, after this step, the same on every rank: ranks may get
        the signal at different steps and each keeps its own clock, and both stopping and saving are collective."""
        stopping, saving = stop.signum is not None, save_due
        if self.env.enabled:
            t = torch.tensor([int(stopping), int(saving)], device=self.device)
            dist.all_reduce(t, op=dist.ReduceOp.MAX)
            stopping, saving = (bool(v) for v in t.tolist())
            if stopping and stop.signum is None:
                stop.signum = signal.SIGTERM
        return stopping, saving

    def _batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The batches of the current epoch not yet trained on, in the same order as an uninterrupted run."""
        s, loader = self.state, self.train_loader
        loader.sampler.set_epoch(s.epoch)
        todo = max(0, self.steps_per_epoch - s.step)  # --steps-per-epoch may have shrunk since the checkpoint
        if s.step == 0:
            return itertools.islice(loader, todo)
        # Skip by index rather than by loading and dropping the done batches. Subset keeps the dataset indices,
        # so augmentation (seeded by index) is unchanged.
        order = list(loader.sampler)[s.step * self.cfg.batch_size :]
        rest = make_loader(
            Subset(self.train_set, order),
            self.cfg.batch_size,
            shuffle=False,
            workers=self.cfg.workers,
            seed=self.cfg.seed,
        )
        return itertools.islice(rest, todo)

    def _train_epoch(self, stop: _StopRequest) -> None:
        cfg, s = self.cfg, self.state
        net = self.ddp if self.ddp is not None else self.model
        self._train_mode()
        meter = ConfusionMeter()
        meter.counts = s.counts.numpy().copy()
        bar = tqdm(
            total=self.steps_per_epoch,
            initial=s.step,
            desc=f"epoch {s.epoch + 1}/{cfg.epochs}",
            unit="batch",
            dynamic_ncols=True,
            leave=False,
            disable=not self._show_bar(),
        )
        last_save = time.monotonic()
        tick = time.perf_counter()
        with bar:
            for images, masks in self._batches():
                images = images.to(self.device, non_blocking=True, memory_format=self.layout)
                masks = masks.to(self.device, non_blocking=True)
                if cfg.self_prior > 0:
                    images = self._own_priors(images, s.global_step)
                logits = net(images)
                loss = self._loss(images, logits, masks)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                self.scheduler.step()
                if self.ema is not None:
                    self.ema.update_parameters(self.model)

                n = images.shape[0]
                s.loss_sum += loss.item() * n
                s.images += n
                meter.update(logits.argmax(1), masks)
                s.counts = torch.from_numpy(meter.counts.copy())
                s.step += 1
                s.global_step += 1
                now = time.perf_counter()
                s.seconds += now - tick  # data loading included: this is the rate the run really achieves
                tick = now
                rate = s.images * self.env.world / max(s.seconds, 1e-9)
                bar.set_postfix_str(
                    f"loss {s.loss_sum / s.images:.4f}  iou {meter.compute()['iou']:.3f}  {rate:.1f} img/s",
                    refresh=False,
                )
                bar.update(1)
                due = s.step < self.steps_per_epoch and (
                    s.step % CHECKPOINT_EVERY_STEPS == 0 or time.monotonic() - last_save > CHECKPOINT_EVERY_S
                )
                stopping, saving = self._agree(stop, due)
                if stopping:
                    raise _StopError
                if saving:
                    self._save_checkpoint()
                    last_save = time.monotonic()

    @torch.no_grad()
    def _train_mode(self) -> None:
        """Training mode, except the BatchNorms that --freeze-bn keeps frozen (their statistics stay as they are)."""
        (self.ddp if self.ddp is not None else self.model).train()
        for norm in self.frozen_norms:
            norm.eval()

    def _own_priors(self, images: torch.Tensor, step: int) -> torch.Tensor:
        """Replace a ``cfg.self_prior`` share of the batch's fake priors by the network's own output for them, moved
        a little as by the next frame: on video the prior is the network's own last answer, errors included, and a
        network that only saw priors made from true masks learns to trust a prior too much (its own false blobs then
        persist from frame to frame)."""
        generator = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + step)
        chosen = (torch.rand(images.shape[0], generator=generator) < self.cfg.self_prior).to(images.device)
        if not chosen.any():
            return images
        was_training = self.model.training
        self.model.eval()
        # an input, as the last frame's answer is at run time: no gradient may flow back through it into the network
        with torch.no_grad():
            own = foot_probability(self.model(images[chosen]))
        if was_training:
            self._train_mode()
        n = int(chosen.sum())
        angle = (torch.rand(n, generator=generator) - 0.5) * 2 * math.radians(3)
        zoom = 1 + (torch.rand(n, generator=generator) - 0.5) * 0.06
        shift = (torch.rand(n, 2, generator=generator) - 0.5) * 0.06
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0], theta[:, 0, 1] = zoom * torch.cos(angle), -zoom * torch.sin(angle)
        theta[:, 1, 0], theta[:, 1, 1] = zoom * torch.sin(angle), zoom * torch.cos(angle)
        theta[:, :, 2] = shift
        grid = F.affine_grid(theta.to(images.device), [n, 1, *images.shape[2:]], align_corners=False)
        moved = F.grid_sample(own[:, None], grid, align_corners=False, padding_mode="border")
        images = images.clone()
        images[chosen, 3:] = moved
        return images

    def _loss(self, images: torch.Tensor, logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """The label loss, mixed with the teacher's distillation terms when the run has a teacher."""
        loss = self.loss_fn(logits, masks)
        if self.teacher is None:
            return loss
        with torch.no_grad():
            soft = self.teacher(images[:, : self.teacher.in_channels])  # also fills the teacher's FeatureTap
        w = self._distill_weight()
        loss = (1.0 - w) * loss + w * distillation_loss(logits, soft, self.cfg.distill_temperature)
        if self.taps is not None:
            student_tap, teacher_tap = self.taps
            loss = loss + self.cfg.attention_weight * attention_transfer_loss(student_tap.features,
                                                                              teacher_tap.features)
        return loss

    def _distill_weight(self, step: int | None = None) -> float:
        """The distillation weight at ``step`` (default: the step being trained)."""
        step = self.state.global_step if step is None else step
        progress = step / max(1, self.total_steps - 1)
        return distill_weight(self.cfg.distill_weight, progress, self.cfg.distill_anneal)

    @property
    def _kept_model(self) -> nn.Module:
        """The network that is validated and saved: the weights' moving average with --ema, else the weights."""
        return self.ema.module if self.ema is not None else self.model

    @torch.no_grad()
    def _validate(self) -> dict[str, float]:
        # The bare module, not DDP: ranks may hold different numbers of validation batches, and DDP's forward
        # would wait for the others to sync buffers.
        net = self._kept_model
        net.eval()
        if self.env.enabled:
            # Without SyncBatchNorm each rank's running statistics drift apart; score every shard with rank 0's,
            # which are the ones saved in best/.
            for buffer in net.buffers():
                dist.broadcast(buffer, src=0)
        meter = ConfusionMeter()
        for images, masks in self.val_loader:
            logits = net(images.to(self.device, non_blocking=True, memory_format=self.layout))
            meter.update(logits.argmax(1), masks)
        if self.env.enabled:
            counts = torch.from_numpy(meter.counts).to(self.device)
            dist.all_reduce(counts)
            meter.counts = counts.cpu().numpy()
        return meter.compute()

    def _end_epoch(self) -> None:
        cfg, s = self.cfg, self.state
        train_sums = torch.tensor([s.loss_sum, float(s.images), s.seconds], dtype=torch.float64)
        train_counts = s.counts.clone()
        if self.env.enabled:
            sums, counts = train_sums.to(self.device), train_counts.to(self.device)
            dist.all_reduce(sums)
            dist.all_reduce(counts)
            train_sums, train_counts = sums.cpu(), counts.cpu()
        train_meter = ConfusionMeter()
        train_meter.counts = train_counts.numpy()
        loss_sum, images, _ = train_sums.tolist()
        val = self._validate()
        entry = {
            "epoch": s.epoch + 1,
            "train_loss": loss_sum / max(images, 1.0),
            "train_iou": train_meter.compute()["iou"],
            "val_accuracy": val["accuracy"],
            "val_iou": val["iou"],
            "val_miou": val["miou"],
            "lr": self.optimizer.param_groups[0]["lr"],
            "images_per_s": images / max(s.seconds, 1e-9),
        }
        if self.teacher is not None:
            entry["distill_weight"] = self._distill_weight(s.global_step - 1)  # that of the epoch's last step
        s.history.append(entry)
        improved = val["iou"] > s.best_iou
        if improved:
            s.best_iou = val["iou"]
            if self.env.main and self.keep_best:
                info = SavedModelInfo(
                    model=cfg.model,
                    width=cfg.width,
                    num_classes=cfg.num_classes,
                    input_size=(cfg.size, cfg.size),
                    in_channels=cfg.in_channels,
                    extra={"val_iou": val["iou"], "epoch": s.epoch + 1, "train_config": cfg.to_dict()},
                    threshold=s.carried.get("threshold", DEFAULT_THRESHOLD),
                    region_peak=s.carried.get("region_peak"),
                    presence=s.carried.get("presence"),
                )
                if self.layer_shapes:
                    info.extra[LAYER_SHAPES_KEY] = self.layer_shapes
                if MIN_STRIDE_KEY in s.carried:
                    info.extra[MIN_STRIDE_KEY] = s.carried[MIN_STRIDE_KEY]
                save_model(self._kept_model, self.run / "best", info)
        s.start_epoch(s.epoch + 1)
        if self.env.main:
            write_history(self.run, s.history)
        self._save_checkpoint()
        self._log(
            f"epoch {entry['epoch']}/{cfg.epochs}  loss {entry['train_loss']:.4f}  train iou {entry['train_iou']:.4f}"
            f"  val iou {entry['val_iou']:.4f}  acc {entry['val_accuracy']:.4f}  miou {entry['val_miou']:.4f}"
            f"  {entry['images_per_s']:.1f} img/s{'  (best)' if improved else ''}"
        )

    # --- output ------------------------------------------------------------------------------------------------

    def _show_bar(self) -> bool:
        return self.cfg.progress and self.env.main and sys.stderr.isatty()

    def _log(self, message: str, err: bool = False) -> None:
        if self.env.main:
            with contextlib.suppress(ValueError):  # stdout closed by the caller
                print(message, file=sys.stderr if err else sys.stdout, flush=True)

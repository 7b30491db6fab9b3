"""The main job (``footseg run`` / ``make run``): built-in data, train all five models, write the report.

Needs nothing outside the repository: the training data is made on the spot by the synthetic engine (3D feet on
procedural floors, ``footseg synth``) when a headless OpenGL context is available, else by the 2D procedural set.
Real photos are scored too when there are some: ``FOOTSEG_REAL_DATA`` (a flat images/ + masks/ folder; ``none``
turns it off), or else ``../shared/data/real-dev`` next to the repository or the working directory.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from footseg.config import TrainConfig
from footseg.data.procedural import make_procedural_dataset
from footseg.data.synth import SynthSettings, synthesize
from footseg.data.synth.engine import MANIFEST, read_manifest, setting_differences
from footseg.data.synth.render import headless_gl_problem
from footseg.errors import FootsegError
from footseg.models.info import PRETRAINED_DIR, pretrained_models
from footseg.one_writer import one_writer
from footseg.report import read_study, write_report
from footseg.train.trainer import train

REAL_DATA_ENV = "FOOTSEG_REAL_DATA"
_REPO_ROOT = Path(__file__).resolve().parents[2]
# The committed `footseg study` (benchmarks/README.md, "The thesis's study"): its tables are quoted in the report,
# labelled as such, where the repository has them (an installed package does not).
STUDY_REPORT = _REPO_ROOT / "benchmarks" / "study" / "report.json"


@dataclass(frozen=True)
class Plan:
    """How one model is trained in the main job."""

    size: int  # training (and inference) side in pixels
    epochs: int
    steps_per_epoch: int
    batch_size: int
    width: float = 1.0  # channel width multiplier


# The whole `make run` must finish in under 15 minutes on 2 CPU cores. Training gets ~8 minutes of that, shared out
# by each model's cost per step (single-thread CPU seconds for one batch of 8, forward + backward + AdamW: fastlinknet
# 0.17 at 160 px, mobileseg 0.53, enet 0.60, linknet 0.72 at 128 px, emilseg 2.1 at 128 px) so that every model
# trains for roughly 90 s: the heavy linknet and emilseg at 128 px, emilseg also with batches of 4. Data (~20 s),
# validation and checkpoints (~45 s) and the report (~45 s) take the rest; the estimate is ~10 minutes in all.
# These budgets give a working demonstration, not the thesis's numbers: `footseg train` with its defaults trains
# properly.
PLANS: dict[str, Plan] = {
    "enet": Plan(size=160, epochs=6, steps_per_epoch=30, batch_size=8),
    "linknet": Plan(size=128, epochs=6, steps_per_epoch=25, batch_size=8),
    "mobileseg": Plan(size=160, epochs=6, steps_per_epoch=25, batch_size=8),
    "fastlinknet": Plan(size=160, epochs=8, steps_per_epoch=50, batch_size=8),
    "emilseg": Plan(size=128, epochs=5, steps_per_epoch=22, batch_size=4),
}
QUICK_PLAN = Plan(size=64, epochs=1, steps_per_epoch=2, batch_size=2, width=0.25)  # smoke test: every step runs

DATA_SIZE = 256  # stored side of the procedural images; each model resizes to its own training size
DATA_SPLITS = {"n_train": 480, "n_val": 60, "n_test": 60}  # 60 batches of 8: enough for every plan's epoch;
# the synthetic engine splits 80/10/10, so the same total gives the same training count
QUICK_DATA_SPLITS = {"n_train": 32, "n_val": 4, "n_test": 4}  # 80/10/10, as the synthetic engine splits
QUICK_DATA_SIZE = 64


def find_real_data() -> Path | None:
    """The real-photo folder to score on, if any; never required."""
    env = os.environ.get(REAL_DATA_ENV, "").strip()
    if env.lower() in ("none", "off", "0"):
        return None
    if env:
        path = Path(env)
        if not (path / "images").is_dir():
            raise FootsegError(f"{REAL_DATA_ENV} must name a folder with images/ and masks/", path)
        return path
    for base in (_REPO_ROOT, Path.cwd()):
        candidate = base.parent / "shared" / "data" / "real-dev"
        if (candidate / "images").is_dir() and (candidate / "masks").is_dir():
            return candidate
    return None


def _resumable(run: Path, cfg: TrainConfig) -> bool:
    """Whether ``run`` holds this same training run, which is then continued (or reused when finished).

    A run folder left by different settings (say, an older version of ``PLANS``) is removed: under ``out/runs`` the
    main job only keeps runs it made itself, and training it afresh is the only way to honour the new settings.
    """
    stored = run / "config.json"
    if not stored.is_file():
        return False
    old = TrainConfig.load(stored)
    if all(getattr(old, k) == getattr(cfg, k) for k in TrainConfig.IDENTITY):
        return True
    print(f"  {run} holds a run with other settings; training it afresh", flush=True)
    shutil.rmtree(run)
    return False


def _make_data(folder: Path, quick: bool, started: float) -> Path:
    """Synthetic 3D renders where OpenGL runs (the realistic data), else the 2D procedural set."""
    splits = QUICK_DATA_SPLITS if quick else DATA_SPLITS
    size = QUICK_DATA_SIZE if quick else DATA_SIZE
    n = sum(splits.values())
    problem = headless_gl_problem()
    if problem is None:
        settings = SynthSettings(n=n, seed=0, size=size)
        old = read_manifest(folder / "synth" / MANIFEST)
        if old is not None and setting_differences(old.get("settings"), settings):
            # Like a run with other settings (``_resumable``): the main job's own render, made by an older footseg,
            # is rendered afresh, and the runs trained on it go with it.
            _say(f"{folder / 'synth'} was rendered with other settings; rendering it afresh and retraining", started)
            shutil.rmtree(folder / "synth")
            shutil.rmtree(folder.parent / "runs", ignore_errors=True)
        again = old is not None and not setting_differences(old.get("settings"), settings)
        _say(f"{n} synthetic images in {folder / 'synth'}: rendered before (any missing are made now)" if again
             else f"rendering {n} synthetic images (footseg synth) in {folder / 'synth'}", started)
        synthesize(folder / "synth", settings, workers=1 if quick else 2, resume=True, progress=sys.stderr.isatty())
        return folder / "synth"
    _say(f"no headless OpenGL ({problem}); making {n} procedural images in {folder / 'procedural'}", started)
    return make_procedural_dataset(folder / "procedural", size=size, seed=0, **splits)


def _say(message: str, started: float) -> None:
    print(f"[footseg run {time.monotonic() - started:6.0f}s] {message}", flush=True)


def _preface(quote: Path | None) -> str:
    """Where the report's models come from, and where the thesis's comparison is when the study is not quoted."""
    shipped = ", ".join(f"`{name}`" for name in pretrained_models())
    text = (f"Tables 4.1 and 4.2 and Figure 4.1 hold the shipped models ({shipped}), measured in this run: each was "
            "trained at length by its recipe (`src/footseg/models/pretrained/NAME/recipe.toml`, its training told in "
            "MODEL_CARD.md beside it; `footseg recipe run NAME` rebuilds it). The five thesis networks trained here "
            "for minutes are reported apart, below.")
    if quote is None:
        text += (" The thesis's comparison of the five networks at one real training budget is not in this report: "
                 "`benchmarks/study/report.json` is not committed yet (benchmarks/README.md, \"The thesis's study\").")
    return text


def run_main(out: str | Path, quick: bool = False) -> Path:
    """Make the procedural dataset, train every model, write the report; returns out/report/README.md."""
    started = time.monotonic()
    out = Path(out)
    real = find_real_data()
    quote = STUDY_REPORT if STUDY_REPORT.is_file() else None
    if quote is not None:
        read_study(quote)  # a broken committed study fails now, not after minutes of training
    with one_writer(out, hint="choose another --out"):  # a second `make run` beside this one is refused
        return _run_main_held(out, quick, real, quote, started)


def _run_main_held(out: Path, quick: bool, real: Path | None, quote: Path | None, started: float) -> Path:
    data = _make_data(out / "data", quick, started)

    runs = []
    for name, plan in PLANS.items():
        if quick:
            plan = QUICK_PLAN
        run = out / "runs" / name
        _say(
            f"training {name}: {plan.epochs} epochs x {plan.steps_per_epoch} steps, batch {plan.batch_size}, "
            f"{plan.size}px -> {run}",
            started,
        )
        cfg = TrainConfig(
            model=name,
            data=str(data),
            out=str(run),
            width=plan.width,
            size=plan.size,
            epochs=plan.epochs,
            batch_size=plan.batch_size,
            steps_per_epoch=plan.steps_per_epoch,
            # Batches made in the training process: on 2 cores a loader process takes a core from the step and
            # these five trainings took 211 s against 228 s with one, the same weights (benchmarks/README.md).
            workers=0,
            seed=0,
            progress=sys.stderr.isatty(),
        )
        train(cfg, resume=_resumable(run, cfg))
        runs.append(run)

    # The shipped models (trained far longer, on a large synthetic set) stand beside the minutes-long runs above, so the
    # report shows what the same architectures reach with real training.
    runs += [PRETRAINED_DIR / name for name in pretrained_models()]
    where = f" and real photos in {real}" if real else ""
    _say(f"benchmarking and scoring {len(runs)} models on the test split{where}", started)
    brief = runs[: len(PLANS)]  # trained here for minutes: reported apart from the thesis's tables
    command = f"footseg run --out {out}" + (" --quick" if quick else "")
    report = write_report(runs, out / "report", test_data=data, real_data=real, bench_runs=2 if quick else 20,
                          brief=brief, quote=quote, preface=_preface(quote), about={"command": command})
    _say(f"done: {report}", started)
    return report

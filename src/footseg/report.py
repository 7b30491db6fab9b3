"""The thesis's results chapter for trained models: Table 4.1 (cost), Table 4.2 (quality) and Figure 4.1 (pictures).

``write_report`` writes ``out/README.md`` (tables and explanations), ``out/report.json`` (every number) and
``out/figure_4_1.png`` (inputs, ground truth and each model's prediction; ``figure_4_1_real.png`` for real photos).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from footseg.atomic import atomic_write_text
from footseg.bench.cost import measure_model
from footseg.data.samples import spread
from footseg.errors import FootsegError
from footseg.eval.evaluate import evaluate, labelled_samples
from footseg.eval.figures import prediction_grid
from footseg.models.info import CONFIG_NAME, LAYER_SHAPES_KEY
from footseg.runtime.predictor import Predictor
from footseg.runtime.resolve import ModelRef, resolve_model
from footseg.train.history import HISTORY, read_history

FIGURE_IMAGES = 6
_DASH = "—"


@dataclass
class _Entry:
    """One model of the report: where it came from and everything measured about it."""

    label: str
    folder: Path  # the saved model folder
    run: Path | None  # the run folder, when given one
    predictor: Predictor
    cost: dict = field(default_factory=dict)
    test: dict | None = None
    real: dict | None = None
    history: dict | None = None
    brief: bool = False  # trained for minutes in this run: a demonstration, kept out of the thesis's tables


def _resolve(ref: str | Path) -> tuple[ModelRef, Path | None]:
    """The model to report on and its run folder (for history.json), when it came from one."""
    model = resolve_model(ref)
    folder = model.folder  # an ONNX file has no PyTorch network to count and time as the tables do
    run = folder.parent if folder.name == "best" and (folder.parent / HISTORY).is_file() else None
    return model, run


def _history_summary(run: Path) -> dict | None:
    """Summary of a run's history: epochs, best epoch by validation IoU, and the validation IoU curve."""
    rows = read_history(run)
    if not rows:
        return None
    curve = [(int(r["epoch"]), float(r["val_iou"])) for r in rows]
    losses = [float(r["train_loss"]) for r in rows if "train_loss" in r]
    best_epoch, best_iou = max(curve, key=lambda c: c[1])
    return {
        "epochs": len(curve),
        "best_epoch": best_epoch,
        "best_val_iou": best_iou,
        "final_train_loss": losses[-1] if losses else None,
        "val_iou": [iou for _, iou in curve],
    }


def _scores(scores: dict | None) -> dict | None:
    return None if scores is None else {k: scores[k] for k in ("accuracy", "iou", "iou_interval", "miou", "n",
                                                              "per_image")}


def _pct(scores: dict | None, key: str) -> str:
    return _DASH if scores is None else f"{100 * scores[key]:.1f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# --- figure -----------------------------------------------------------------------------------------------------


def _figure(entries: list[_Entry], data: Path, split: str, title: str, out: Path) -> Path:
    return prediction_grid([(e.label, e.predictor) for e in entries], spread(labelled_samples(data, split),
                           FIGURE_IMAGES), title, out)


# --- report -----------------------------------------------------------------------------------------------------


def _labels(models: list[str], refs: list[ModelRef], pruned: list[bool] | None = None) -> list[str]:
    """Model names; a shipped model is "name (shipped)" ("name (shipped, pruned)" where its channels were pruned, so
    that its parameters differ from the network's), and runs sharing a name get their run folder's name where it
    says something (not "fastlinknet (fastlinknet)"), or as much of its path as tells it from the others."""
    trained = [name for name, ref in zip(models, refs, strict=True) if not ref.shipped]
    out = []
    for name, ref, cut in zip(models, refs, pruned or [False] * len(refs), strict=True):
        if ref.shipped:
            out.append(f"{name} (shipped{', pruned' if cut else ''})")
        else:
            out.append(f"{name} ({ref.name})" if trained.count(name) > 1 and ref.name != name else name)
    # still the same (a/fastlinknet and b/fastlinknet): as much of each run folder as tells them apart
    for label in dict.fromkeys(out):
        same = [i for i, other in enumerate(out) if other == label]
        if len(same) > 1:
            paths = [refs[i].path.resolve() for i in same]
            folders = [path.parent if path.name == "best" else path for path in paths]
            depth = next((k for k in range(1, 64) if len({f.parts[-k:] for f in folders}) == len(folders)), None)
            if depth is not None:
                for i, folder in zip(same, folders, strict=True):
                    out[i] = f"{models[i]} ({'/'.join(folder.parts[-depth:])})"
    return out


def _plain_label(label: str) -> str:
    """A label as ``_labels`` writes it now: "fastlinknet (fastlinknet)", which an older report wrote, is the name."""
    name, _, where = label.partition(" (")
    return name if where == f"{name})" else label


def _images_seen(e: _Entry) -> str:
    """Training images a run went through (epochs done x steps x batch), from its config and history."""
    try:
        cfg = json.loads((e.run / "config.json").read_text()) if e.run else {}
        return f"{e.history['epochs'] * int(cfg['steps_per_epoch']) * int(cfg['batch_size']):,}"
    except (OSError, ValueError, KeyError, TypeError):
        return _DASH


BRIEF_HEADING = "Trained in this run, for minutes: a demonstration, not the thesis's comparison"


def _brief_section(entries: list[_Entry], figure: str | None) -> list[str]:
    rows = [[e.label, _images_seen(e), "x".join(map(str, e.predictor.input_size)), f"{e.cost['params'] / 1e6:.3f} M",
             f"{e.cost['latency_ms']:.1f}", _pct(e.test, "iou"), _pct(e.real, "iou")] for e in entries]
    return [
        f"## {BRIEF_HEADING}",
        "",
        "These networks went through a few hundred to a few thousand images each (column 2), so that the whole "
        "pipeline runs in minutes, each at its own input size (latencies at different sizes do not compare). Their "
        "scores show that it works end to end; they do not say how the architectures compare at a real training "
        "budget (the thesis's tables and figure hold only fully trained models).",
        "",
        _table(["Model", "Training images seen", "Input", "Params", "PyTorch CPU latency (ms, 1 thread)",
                "Test IoU (%)", "Real IoU (%)"], rows),
        "",
        *([f"![their predictions on test images]({figure})", ""] if figure else []),
    ]


def read_study(path: Path) -> dict:
    """What a report quotes of a committed ``footseg study`` report.json: source, date, command, budget and the
    fully trained models' rows. A one-line error naming the file where it is no such report."""
    try:
        study = json.loads(path.read_text())
        about = study.get("about") or {}
        if not str(about.get("command", "")).startswith("footseg study"):
            raise ValueError("it was not made by `footseg study`")
        if not about.get("budget"):
            raise ValueError("it states no training budget")
        models = [{k: m[k] for k in ("label", "input_size", "params", "gflops", "latency_ms", "test", "real")}
                  | {"label": _plain_label(m["label"])} for m in study["models"] if not m.get("brief")]
        return {"source": "/".join(path.resolve().parts[-3:]), "created": str(study["created"])[:10],
                "command": about["command"], "budget": about["budget"], "real_data": study.get("real_data"),
                "pending": list(about.get("pending") or []), "models": models}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise FootsegError(f"not a footseg study report ({exc})", path) from exc


def _quoted_section(study: dict) -> list[str]:
    rows = [[m["label"], "x".join(map(str, m["input_size"])), f"{m['params'] / 1e6:.3f} M", f"{m['gflops']:.3f}",
             f"{m['latency_ms']:.1f}", _pct(m["test"], "iou"), _pct(m["real"], "iou")] for m in study["models"]]
    real = f"`{Path(study['real_data']).name}` photos, reported, never chosen by" if study["real_data"] else "none"
    return [
        "## The thesis's networks at one training budget: quoted from the committed study",
        "",
        f"Not measured in this run: quoted from `{study['source']}` in the repository (made {study['created']} by "
        f"`{study['command']}`). Budget: {study['budget']}. Test: that study's synthetic test split; real: {real}. "
        "Latency: that machine's CPU, one thread, PyTorch."
        + (f" That study had not finished: stages {', '.join(study['pending'])} still to run; the networks "
           "among them have no rows."
           if study["pending"] else ""),
        "",
        _table(["Model", "Input", "Params", "GFLOPs", "PyTorch CPU latency (ms, 1 thread)", "Test IoU (%)",
                "Real IoU (%)"], rows),
        "",
    ]


def _count(entries: list[_Entry], which: str) -> str:
    """ " (N images)" that the models were scored on in ``which`` ("test" or "real"), or "" where none was."""
    n = {(getattr(e, which) or {}).get("n") for e in entries} - {None}
    return f" ({n.pop()} images)" if len(n) == 1 else ""


def _shown(path: Path, root: str | Path | None) -> str:
    """How the report names a folder: relative to ``root`` where it lies under it, else as given."""
    if root is not None:
        resolved, base = Path(path).resolve(), Path(root).resolve()
        if resolved.is_relative_to(base):
            return resolved.relative_to(base).as_posix()
    return str(path)


def _markdown(entries: list[_Entry], test_data: str | None, real_data: str | None, figures: dict[str, str],
              preface: str = "", quoted: dict | None = None, command: str = "footseg report") -> str:
    created = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    brief = [e for e in entries if e.brief]
    entries = [e for e in entries if not e.brief]
    cost_rows = []
    for e in entries:
        c = e.cost
        h, w = e.predictor.input_size
        cost_rows.append(
            [
                e.label,
                f"{h}x{w}",
                f"{c['params'] / 1e6:.3f} M",
                f"{c['gflops']:.3f}",
                f"{c['size_mb']:.2f}",
                f"{c['latency_ms']:.1f}",
            ]
        )
    quality_rows = [
        [e.label, _pct(e.test, "accuracy"), _pct(e.test, "iou"), _pct(e.real, "accuracy"), _pct(e.real, "iou")]
        for e in entries
    ]
    parts = [
        "# footseg results",
        "",
        f"Generated {created} by `{command}` from {len(entries) + len(brief)} model(s). All numbers are also in "
        "[report.json](report.json).",
        "",
        *([preface, ""] if preface else []),
        "## Table 4.1 — cost of each model",
        "",
        "Measured on this machine's CPU with one thread, at the size each model runs at (Input: its config's "
        "input_size, which a recipe's threshold stage may have set above the size it was trained at). "
        "Params: trainable weights; GFLOPs: multiply-adds x2 for one image; Size: the float32 weights (parameters "
        "and buffers, 4 bytes each; a model.safetensors adds its header). Latency: one image in PyTorch (eager, "
        "float32), as the thesis timed its networks; the shipped models run in ONNX Runtime, faster (int8 too): "
        "`footseg bench MODEL --runtimes torch,onnx,onnx-int8` times each runtime.",
        "",
        _table(["Model", "Input", "Params", "GFLOPs", "Size (MB)", "PyTorch CPU latency (ms, 1 thread)"], cost_rows),
        "",
        "## Table 4.2 — segmentation quality (%)",
        "",
        "Accuracy: share of pixels labelled correctly. IoU: overlap of predicted and true foot area divided by "
        "their union (the stricter score: 100 is perfect, and a model that predicts no foot at all scores 0). "
        "Scores are over all pixels of all images, at each photo's own resolution. "
        f"Test: {f'`{test_data}`' if test_data else 'not given'}{_count(entries, 'test')}. "
        f"Real: {f'`{real_data}`' if real_data else 'not given'}{_count(entries, 'real')}. "
        f"{_DASH} = dataset not given. report.json holds each IoU's 95 % bootstrap interval over the images "
        "(`iou_interval`): a few dozen photos pin a score down to a few points.",
        "",
        _table(["Model", "Test accuracy", "Test IoU", "Real accuracy", "Real IoU"], quality_rows),
        "",
        *(_quoted_section(quoted) if quoted else []),
        *(_brief_section(brief, figures.get("brief")) if brief else []),
    ]
    for key, caption in (
        ("test", "Figure 4.1 — test images"),
        ("real", "Figure 4.1 (real photos)"),
    ):
        if key in figures:
            parts += [
                f"## {caption}",
                "",
                "Top row: input photos; second row: the true foot mask (green); then one row per fully trained model "
                "(Table 4.2's), each picture labelled with that prediction's IoU.",
                "",
                f"![{caption}]({figures[key]})",
                "",
            ]
    trained = [e for e in entries + brief if e.history]
    if trained:
        rows = []
        for e in trained:
            h = e.history
            curve = " → ".join(f"{100 * v:.0f}" for v in h["val_iou"])
            loss = _DASH if h["final_train_loss"] is None else f"{h['final_train_loss']:.3f}"
            label = f"{e.label} (trained for minutes)" if e.brief else e.label
            rows.append(
                [label, str(h["epochs"]), str(h["best_epoch"]), f"{100 * h['best_val_iou']:.1f}", loss, curve]
            )
        parts += [
            "## Training",
            "",
            "From each run's history.json. The saved model (best/) is the epoch with the best validation IoU.",
            "",
            _table(
                ["Model", "Epochs", "Best epoch", "Best val IoU (%)", "Last train loss", "Val IoU per epoch (%)"], rows
            ),
            "",
        ]
    return "\n".join(parts)


def write_report(
    runs: list[str | Path],
    out: str | Path,
    test_data: str | Path | None = None,
    real_data: str | Path | None = None,
    bench_runs: int = 20,
    brief: Sequence[str | Path] = (),
    preface: str = "",
    about: dict | None = None,
    quote: str | Path | None = None,
    shown_from: str | Path | None = None,
) -> Path:
    """Write ``out/README.md``, ``out/report.json`` and the figures for ``runs``; returns the README path.

    ``runs``: run folders (with best/ and history.json) or saved model folders. ``test_data``: a dataset whose test
    split (or flat folder) is scored; ``real_data``: a flat folder of real photos with masks. ``brief``: those of
    ``runs`` trained only for minutes, reported apart from the thesis's tables so nobody takes them for its numbers.
    ``preface``: markdown put before the tables (how the models were trained, e.g. ``footseg study``'s budget);
    ``about``: what made them, kept in report.json (``footseg study`` records its command and budget there).
    ``quote``: the report.json of a committed ``footseg study``, whose thesis tables are quoted, with their source and
    date, beside models trained for minutes (``make run``), so its report has real numbers that it did not measure.
    ``shown_from``: the report names the folders under it relative to it (a report committed to a repository then
    names no machine's folders); others as given (a relative one, from where the command ran).
    """
    if not runs:
        raise FootsegError("no runs given to report on")
    test_data = Path(test_data) if test_data else None
    real_data = Path(real_data) if real_data else None
    # Check every dataset before the slow work, so a typo fails in a second.
    for data in (test_data, real_data):
        if data is not None:
            labelled_samples(data)
    resolved = [_resolve(r) for r in runs]
    predictors = [Predictor(ref, runtime="torch") for ref, _ in resolved]  # Table 4.1 times the PyTorch network
    labels = _labels([p.name for p in predictors], [ref for ref, _ in resolved],
                     [LAYER_SHAPES_KEY in p.info.extra for p in predictors])
    brief_paths = {Path(b).resolve() for b in brief}
    entries = [
        _Entry(label=label, folder=ref.folder, run=run, predictor=p,
               brief=Path(raw).resolve() in brief_paths)
        for raw, label, (ref, run), p in zip(runs, labels, resolved, predictors, strict=True)
    ]
    for e in entries:  # the quick checks first: a bad folder fails before minutes of benchmarking
        h, w = e.predictor.input_size
        if h != w:
            raise FootsegError(f"benchmark needs a square input size, got {h}x{w}", e.folder / CONFIG_NAME)
        e.history = _history_summary(e.run) if e.run else None
    quoted = read_study(Path(quote)) if quote is not None else None
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for e in entries:
        size = e.predictor.input_size[0]
        e.cost = dict(measure_model(e.predictor.model, size=size, threads=1, runs=bench_runs))
        e.test = _scores(evaluate(e.predictor, test_data)) if test_data else None
        e.real = _scores(evaluate(e.predictor, real_data)) if real_data else None

    # Figure 4.1 shows the fully trained models only; networks trained for minutes get a grid of their own.
    full = [e for e in entries if not e.brief]
    short = [e for e in entries if e.brief]
    figures: dict[str, str] = {}
    if test_data and full:
        figures["test"] = _figure(full, test_data, "test", "Figure 4.1: test images", out / "figure_4_1.png").name
    if real_data and full:
        name = "figure_4_1_real.png"
        figures["real"] = _figure(full, real_data, "test", "Figure 4.1: real photos", out / name).name
    if test_data and short:
        figures["brief"] = _figure(short, test_data, "test", "Trained in this run for minutes: test images",
                                   out / "figure_brief.png").name

    report = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "about": about or {},
        "test_data": _shown(test_data, shown_from) if test_data else None,
        "real_data": _shown(real_data, shown_from) if real_data else None,
        "figures": figures,
        "quoted": quoted,  # a committed study's numbers, not measured here (None: none quoted)
        "models": [
            {
                "label": e.label,
                "brief": e.brief,
                "model": e.predictor.name,
                "folder": _shown(e.folder, shown_from),
                "input_size": list(e.predictor.input_size),
                **e.cost,
                "test": e.test,
                "real": e.real,
                "history": e.history,
            }
            for e in entries
        ],
    }
    atomic_write_text(out / "report.json", json.dumps(report, indent=2) + "\n")  # `make run` quotes a study's
    readme = out / "README.md"
    command = str((about or {}).get("command") or "footseg report")
    atomic_write_text(readme, _markdown(entries, report["test_data"], report["real_data"], figures, preface, quoted,
                                        command) + "\n")
    return readme

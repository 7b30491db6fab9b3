"""``footseg study``: the thesis's comparison (Tables 4.1 and 4.2, Figure 4.1) from a recipe of its own.

The study recipe (``study.toml`` next to this file) renders one synthetic dataset, trains the five networks on it at
one budget, picks the strongest of the larger ones on synthetic validation images and distils FastLinkNet from it.
``run_study`` runs that recipe (resuming like ``footseg recipe run``), then writes ``DIR/report/``: the thesis's tables
over every trained network, scored on the render's test split and, where given, on real photos, which only report.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from footseg.errors import FootsegError, require_folder
from footseg.models.info import CHOICE_NAME
from footseg.recipe.runner import RecipeRun
from footseg.recipe.schema import Recipe, parse_recipe

STUDY_RECIPE = Path(__file__).with_name("study.toml")
REPORT = "report"


def study_recipe(recipe: str | Path | None = None) -> Recipe:
    """The recipe a study runs (None: ``STUDY_RECIPE``), refused where it is not one: no network trained, networks
    trained on different data, a budget not stated in steps. ``--dry-run`` refuses what the run would."""
    parsed = parse_recipe(recipe or STUDY_RECIPE)
    trains = [s for s in parsed.stages if s.kind == "train"]
    if not trains:
        raise FootsegError("a study recipe trains at least one network", parsed.path)
    if len({s.settings["data"] for s in trains}) > 1:
        raise FootsegError("a study trains every network on one dataset (its test split scores them all)", parsed.path)
    budget(parsed)
    return parsed


def budget(recipe: Recipe) -> str:
    """One line per distinct training budget of the recipe's train stages: images seen and input size."""
    lines: dict[str, list[str]] = {}
    for stage in recipe.stages:
        if stage.kind != "train":
            continue
        s = stage.settings
        if not s["steps_per_epoch"]:
            raise FootsegError(f"stage '{stage.name}': a study states its budget in steps (steps_per_epoch > 0)",
                               recipe.path)
        seen = s["epochs"] * s["steps_per_epoch"] * s["batch_size"]
        key = (f"{seen:,} training images seen ({s['epochs']} epoch{'s' * (s['epochs'] != 1)} x "
               f"{s['steps_per_epoch']} steps x batch "
               f"{s['batch_size']}) at {s['size']}x{s['size']}")
        lines.setdefault(key, []).append(stage.name)
    if len(lines) == 1:
        return f"every network: {next(iter(lines))}"
    return "; ".join(f"{', '.join(names)}: {key}" for key, names in lines.items())


def _preface(run: RecipeRun, pending: list[str]) -> str:
    recipe = run.recipe
    parts = [
        "## How these models were trained",
        "",
        f"`footseg study` with the recipe `{recipe.path.name}` ({len(recipe.stages)} stages, into `{run.out.name}/`). "
        f"Budget: {budget(recipe)}.",
    ]
    if pending:
        stages = f"stage{'s' if len(pending) > 1 else ''} {', '.join(pending)}"
        parts.append(f"\n**Not finished yet:** {stages} still to run "
                     f"(the same command without `--report-only` continues {'them' if len(pending) > 1 else 'it'}, "
                     "then rewrites this report); the tables hold the networks that finished their whole budget.")
    for stage in recipe.stages:
        if stage.kind == "select" and stage.name not in pending:
            choice = json.loads((run.folder(stage) / CHOICE_NAME).read_text())
            scores = ", ".join(f"{name} {100 * v:.2f}" for name, v in choice["val_iou"].items())
            parts.append(f"\nStage `{stage.name}` chose **{choice['chosen']}** by best foot IoU on the synthetic "
                         f"validation split ({scores}).")
    teachers = [s for s in recipe.stages if s.kind == "train" and s.settings["teacher"] and s.name not in pending]
    distilled = []
    for s in teachers:
        attention = s.settings["attention_weight"]
        distilled.append(f"- `{s.name}`: distilled from `{s.settings['teacher']}` (Hinton KD, T "
                         f"{s.settings['distill_temperature']:g}, weight {s.settings['distill_weight']:g}"
                         f"{', FitNets anneal to 0' if s.settings['distill_anneal'] else ''}"
                         f"{f', attention transfer {attention:g}' if attention else ''}).")
    if distilled:  # a list after a paragraph: markdown needs the blank line
        parts.append("\n" + "\n".join(distilled))
    spent = {s.name: run.read_stamp(s) or {} for s in recipe.stages if s.name not in pending}  # finished: stamped
    devices = sorted({stamp["device"] for stamp in spent.values() if stamp.get("device")})
    parts.append("\nTime each finished stage took, wall clock from its stamp (`stamps/STAGE.json`, interrupted runs "
                 "summed): " + ", ".join(f"{name} {stamp['seconds']:,.0f} s" for name, stamp in spent.items())
                 + "." + (f" Training ran on: {', '.join(devices)}." if devices else ""))
    return "\n".join(parts)


def run_study(out: str | Path, recipe: str | Path | None = None, floors: str | Path | None = None,
              find: str | Path | None = None, real: str | Path | None = None, device: str = "auto",
              bench_runs: int = 20, report_only: bool = False, log: Callable[[str], None] = print,
              workers: int | None = None) -> Path:
    """Run the study recipe into ``out`` and write its report; returns ``out/report/README.md``.

    ``real``: a folder of real photos with masks to report on beside the synthetic test split (never to choose by).
    ``workers``: processes of every render and data loader instead of the recipe's (``footseg recipe run --workers``).
    ``report_only``: train nothing; report the networks that have finished so far, naming the stages still to run
    (a study takes hours: its tables can be read, and kept, before it ends).
    """
    from footseg.report import write_report

    # everything that can refuse the study, before hours of training
    parsed = study_recipe(recipe)
    if real is not None:
        require_folder(real, "folder of real photos")
    trains = [s for s in parsed.stages if s.kind == "train"]
    stated = budget(parsed)
    run = RecipeRun(parsed, out, floors=floors, find=find, device=device, log=log, verb="footseg study",
                    workers=workers)
    if report_only:
        run.inputs_as_made()
        done = run.finished_stages()
        pending = [s.name for s in parsed.stages if s.name not in done]
        trains = [s for s in trains if s.name not in pending]
        if not trains:
            raise FootsegError("no network of the study has finished training here yet: nothing to report", run.out)
    else:
        run.run()
        pending = []
    test_data = run.folder(parsed.stage(trains[0].settings["data"]))
    log(f"scoring {len(trains)} networks on {test_data} (test split)" + (f" and {real}" if real else ""))
    command = " ".join(["footseg study", *([f"--recipe {Path(recipe).name}"] if recipe is not None else []),
                        f"--out {run.out.name}", *(["--floors DIR"] if floors else []),
                        *(["--find DIR"] if find else []), *([f"--real {real}"] if real else []),
                        *(["--report-only"] if report_only else [])])
    return write_report([run.folder(s) for s in trains], run.out / REPORT, test_data=test_data, real_data=real,
                        bench_runs=bench_runs, preface=_preface(run, pending), shown_from=run.out.parent,
                        about={"command": command, "recipe": parsed.name, "budget": stated, "pending": pending})

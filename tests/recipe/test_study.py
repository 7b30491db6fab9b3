"""``footseg study``: the study recipe states one budget, a select stage picks the teacher on synthetic validation
images only, and the report holds every trained network in the thesis's tables.

The end-to-end study is tiny (a 12-image render at 64 px, three width-0.25 networks for two steps each): it checks
the plumbing, not the networks.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from footseg.cli import main
from footseg.data.io import write_jpeg
from footseg.errors import FootsegError
from footseg.recipe.runner import RecipeRun
from footseg.recipe.schema import find_recipe, parse_recipe
from footseg.recipe.study import STUDY_RECIPE, budget, run_study
from footseg.train.history import best_val_iou, write_history

TINY_STUDY = """\
[recipe]
name = "tiny-study"
result = "student_kd"

[defaults.train]
data = "synth"
width = 0.25
num_classes = 2
size = 64
epochs = 2
steps_per_epoch = 2
batch_size = 2
lr = 0.002
weight_decay = 0.0001
loss = "ce+iou"
seed = 0
ema = 0.0
distill_weight = 0.5
distill_temperature = 4.0
distill_anneal = true
attention_weight = 0.0
augment = true
prior = false
self_prior = 0.0
workers = 0

[[stage]]
kind = "render"
name = "synth"
seed = 43
n = 12
size = 64
floors = true

[[stage]]
kind = "train"
name = "student"
model = "fastlinknet"

[[stage]]
kind = "train"
name = "big"
model = "linknet"

[[stage]]
kind = "train"
name = "other"
model = "mobileseg"

[[stage]]
kind = "select"
name = "strongest"
candidates = ["big", "other"]

[[stage]]
kind = "train"
name = "student_kd"
model = "fastlinknet"
teacher = "strongest"
attention_weight = 1000.0
"""


def test_the_study_recipe_trains_the_five_networks_at_one_budget() -> None:
    recipe = parse_recipe(STUDY_RECIPE)
    trains = [s for s in recipe.stages if s.kind == "train"]
    assert {s.settings["model"] for s in trains} == {"enet", "linknet", "mobileseg", "fastlinknet", "emilseg"}
    for key in ("epochs", "steps_per_epoch", "batch_size", "size", "lr", "data"):
        assert len({s.settings[key] for s in trains}) == 1, f"{key} differs between the study's networks"
    s = trains[0].settings
    seen = s["epochs"] * s["steps_per_epoch"] * s["batch_size"]
    assert budget(recipe).startswith(f"every network: {seen:,} training images seen ({s['epochs']} epochs x ")
    select = next(s for s in recipe.stages if s.kind == "select")
    assert "fastlinknet" not in select.settings["candidates"]
    distilled = [s for s in trains if s.settings["teacher"]]
    assert [s.settings["teacher"] for s in distilled] == [select.name] * 2
    assert sorted(s.settings["attention_weight"] > 0 for s in distilled) == [False, True]
    assert all(s.settings["distill_anneal"] for s in distilled)


def test_dry_run_prints_the_stages_and_the_budget(capsys: pytest.CaptureFixture) -> None:
    assert main(["study", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "select strongest" in out and "by foot IoU on synthetic validation images" in out
    assert f"budget: {budget(parse_recipe(STUDY_RECIPE))}" in out


def test_dry_run_refuses_what_the_run_refuses(capsys: pytest.CaptureFixture) -> None:
    shipped = find_recipe("fastlinknet_ctx")  # trains its student and its tune on two datasets
    assert main(["study", "--recipe", str(shipped), "--dry-run"]) == 2
    assert capsys.readouterr().err == (f"footseg: error: {shipped}: a study trains every network on one dataset (its "
                                       "test split scores them all)\n")


def test_a_select_stage_takes_only_train_stages(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(TINY_STUDY.replace('candidates = ["big", "other"]', 'candidates = ["big", "synth"]'))
    with pytest.raises(FootsegError, match="candidates 'synth' is a render stage; it must name a train stage"):
        parse_recipe(path)


def test_select_keeps_the_best_and_the_first_written_of_equals(tmp_path: Path) -> None:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_STUDY.replace('candidates = ["big", "other"]', 'candidates = ["student", "big", "other"]'))
    recipe = parse_recipe(path)
    run = RecipeRun(recipe, tmp_path / "run", log=lambda line: None)
    for name, curve in (("student", [0.2, 0.5]), ("big", [0.6, 0.7]), ("other", [0.7, 0.4])):
        best = tmp_path / "run" / name / "best"
        best.mkdir(parents=True)
        (best / "model.safetensors").write_bytes(name.encode())
        (best / "config.json").write_text("{}")
        write_history(tmp_path / "run" / name, [{"epoch": i + 1, "val_iou": v} for i, v in enumerate(curve)])
    record = run._select(recipe.stage("strongest"))
    assert record == {"chosen": "big", "val_iou": {"student": 0.5, "big": 0.7, "other": 0.7}}
    assert (tmp_path / "run" / "strongest" / "model.safetensors").read_bytes() == b"big"
    assert run.complete(recipe.stage("strongest"))


def test_select_candidates_must_share_data_and_input_size(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    other = 'name = "other"\nmodel = "mobileseg"'
    path.write_text(TINY_STUDY.replace(other, other + "\nsize = 96"))
    with pytest.raises(FootsegError, match="stage 'strongest': candidates were trained on different data or input "
                                           "sizes"):
        parse_recipe(path)


def test_study_passes_workers_on_to_its_recipe_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from footseg.recipe import study

    class SeenError(Exception):
        pass

    def record(*args: object, **kwargs: object) -> None:
        raise SeenError(kwargs.get("workers"))

    monkeypatch.setattr(study, "RecipeRun", record)
    with pytest.raises(SeenError) as seen:
        main(["study", "--out", str(tmp_path / "run"), "--workers", "6"])
    assert seen.value.args == (6,)
    with pytest.raises(SeenError) as seen:
        main(["study", "--out", str(tmp_path / "run")])
    assert seen.value.args == (None,)  # the recipe's own


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from footseg.data.synth.render import headless_gl_problem

    problem = headless_gl_problem()
    if problem:
        pytest.skip(f"no headless OpenGL (EGL) context here: {problem}")
    root = tmp_path_factory.mktemp("study")
    recipe = root / "tiny.toml"
    recipe.write_text(TINY_STUDY)
    floors = root / "floors"
    floors.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        write_jpeg(floors / f"floor{i}.jpg", rng.integers(0, 255, (48, 48, 3), dtype=np.uint8))
    run_study(root / "run", recipe, floors=floors, device="cpu", bench_runs=2, log=lambda line: None)
    return root / "run"


def test_select_keeps_the_candidate_with_the_best_validation_iou(tiny_study: Path) -> None:
    choice = json.loads((tiny_study / "strongest" / "choice.json").read_text())
    scores = {name: best_val_iou(tiny_study / name) for name in ("big", "other")}
    assert choice["val_iou"] == scores
    assert choice["chosen"] == max(scores, key=lambda name: scores[name])
    chosen = tiny_study / choice["chosen"] / "best" / "model.safetensors"
    assert (tiny_study / "strongest" / "model.safetensors").read_bytes() == chosen.read_bytes()
    teacher = json.loads((tiny_study / "student_kd" / "config.json").read_text())["teacher"]
    assert Path(teacher) == tiny_study / "strongest"


def test_the_report_holds_every_network_and_says_how_they_were_trained(tiny_study: Path) -> None:
    readme = (tiny_study / "report" / "README.md").read_text()
    report = json.loads((tiny_study / "report" / "report.json").read_text())
    assert [m["label"] for m in report["models"]] == ["fastlinknet (student)", "linknet", "mobileseg",
                                                     "fastlinknet (student_kd)"]
    assert all(m["test"]["iou"] is not None and not m["brief"] for m in report["models"])
    assert "Budget: every network: 8 training images seen (2 epochs x 2 steps x batch 2) at 64x64" in readme
    chosen = json.loads((tiny_study / "strongest" / "choice.json").read_text())["chosen"]
    assert f"\n\nStage `strongest` chose **{chosen}**" in readme
    assert "\n\n- `student_kd`: distilled from `strongest` (Hinton KD, T 4, weight 0.5, FitNets anneal to 0, " \
           "attention transfer 1000)" in readme
    for section in ("## Table 4.1", "## Table 4.2", "Figure 4.1"):
        assert section in readme
    assert (tiny_study / "report" / "figure_4_1.png").is_file()
    # named from the folder that holds the study, as its command line does (`--out run`): no machine's paths
    assert report["test_data"] == "run/synth" and re.search(r"Test: `run/synth` \(\d+ images\)\.", readme)
    assert report["models"][0]["folder"] == "run/student/best"
    assert str(tiny_study.parent) not in readme + json.dumps(report)


def test_report_only_reports_the_finished_networks_and_names_the_rest(tiny_study: Path, tmp_path: Path) -> None:
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(TINY_STUDY)
    with pytest.raises(FootsegError, match="no network of the study has finished training here yet"):
        run_study(tmp_path / "empty", recipe, report_only=True, log=lambda line: None)
    run = tmp_path / "run"
    shutil.copytree(tiny_study, run, ignore=shutil.ignore_patterns("report"))
    stamp = run / "stamps" / "student_kd.json"  # as if the machine went away during the last training
    stamp.write_text(json.dumps({**json.loads(stamp.read_text()), "state": "started"}))
    history = (run / "student_kd" / "history.json").read_bytes()
    # no --floors: the folder the render was made with is taken from its stamp (the render is not "still to run")
    readme = run_study(run, recipe, bench_runs=1, report_only=True, log=lambda line: None).read_text()
    assert "**Not finished yet:** stage student_kd still to run (the same command without `--report-only` continues " \
           "it, then" in readme
    assert (run / "student_kd" / "history.json").read_bytes() == history  # nothing trained
    report = json.loads((run / "report" / "report.json").read_text())
    assert [m["label"] for m in report["models"]] == ["fastlinknet", "linknet", "mobileseg"]
    assert report["about"]["pending"] == ["student_kd"]
    assert report["about"]["command"].endswith("--report-only")
    assert "chose **" in readme and "distilled from" not in readme
    seconds = {name: json.loads((run / "stamps" / f"{name}.json").read_text())["seconds"]
               for name in ("synth", "student", "big", "other", "strongest")}
    assert ", wall clock from its stamp (`stamps/STAGE.json`, interrupted runs summed): " + ", ".join(
        f"{name} {v:,.0f} s" for name, v in seconds.items()) + "." in readme


def test_report_only_holds_back_what_reads_an_unfinished_stage(tiny_study: Path, tmp_path: Path) -> None:
    """A candidate training again (its folder redone) leaves the select stage and the distillation from its choice
    unfinished too, whatever their own stamps say."""
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(TINY_STUDY)
    run = tmp_path / "run"
    shutil.copytree(tiny_study, run, ignore=shutil.ignore_patterns("report"))
    stamp = run / "stamps" / "big.json"
    stamp.write_text(json.dumps({**json.loads(stamp.read_text()), "state": "started"}))
    readme = run_study(run, recipe, bench_runs=1, report_only=True, log=lambda line: None).read_text()
    report = json.loads((run / "report" / "report.json").read_text())
    assert report["about"]["pending"] == ["big", "strongest", "student_kd"]
    assert "**Not finished yet:** stages big, strongest, student_kd still to run (the same command without " \
           "`--report-only` continues them, then" in readme
    assert [m["label"] for m in report["models"]] == ["fastlinknet", "mobileseg"]
    assert "chose **" not in readme and "distilled from" not in readme


def test_report_only_refuses_what_a_run_would_refuse(tiny_study: Path, tmp_path: Path) -> None:
    """A network trained with other settings, or trained on by hand after it finished, is not the study's: reporting
    it under the study's budget would be false."""
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(TINY_STUDY)
    run = tmp_path / "run"
    shutil.copytree(tiny_study, run, ignore=shutil.ignore_patterns("report"))
    stamp = run / "stamps" / "other.json"
    made = json.loads(stamp.read_text())
    stamp.write_text(json.dumps({**made, "settings": {**made["settings"], "epochs": 5}}))
    with pytest.raises(FootsegError, match=r"other: made with other settings \(epochs 5 there, 2 in the recipe\)"):
        run_study(run, recipe, report_only=True, log=lambda line: None)
    stamp.write_text(json.dumps(made))
    weights = run / "other" / "best" / "model.safetensors"
    weights.write_bytes(weights.read_bytes() + b" ")
    with pytest.raises(FootsegError, match="other: its output changed after the stage finished"):
        run_study(run, recipe, report_only=True, log=lambda line: None)

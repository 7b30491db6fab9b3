from __future__ import annotations

import json
from pathlib import Path

import pytest

from footseg.data.io import read_image
from footseg.data.synth.render import headless_gl_problem
from footseg.errors import FootsegError
from footseg.models.info import pretrained_models
from footseg.models.registry import THESIS_MODELS
from footseg.one_writer import one_writer
from footseg.pipeline import PLANS, REAL_DATA_ENV, STUDY_REPORT, _make_data, find_real_data, run_main


def test_every_model_has_a_plan_that_trains() -> None:
    assert tuple(PLANS) == THESIS_MODELS
    for plan in PLANS.values():
        assert plan.size % 32 == 0 and plan.epochs >= 1 and plan.steps_per_epoch >= 1 and plan.batch_size >= 1


def test_real_data_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "real" / "images").mkdir(parents=True)
    monkeypatch.setenv(REAL_DATA_ENV, str(tmp_path / "real"))
    assert find_real_data() == tmp_path / "real"
    monkeypatch.setenv(REAL_DATA_ENV, "none")
    assert find_real_data() is None
    monkeypatch.setenv(REAL_DATA_ENV, str(tmp_path / "missing"))
    with pytest.raises(FootsegError, match=REAL_DATA_ENV):
        find_real_data()


def test_a_render_made_with_other_settings_is_made_afresh_with_its_runs(tmp_path: Path) -> None:
    # What a `make run` after an upgrade of footseg finds: its render and runs made by the older one.
    if headless_gl_problem() is not None:
        pytest.skip("no headless OpenGL to render with")
    data, runs = tmp_path / "main" / "data", tmp_path / "main" / "runs" / "enet"
    synth = _make_data(data, quick=True, started=0.0)
    manifest = json.loads((synth / "manifest.json").read_text())
    runs.mkdir(parents=True)
    older = {**manifest, "settings": {**manifest["settings"], "seed": 1}}
    (synth / "manifest.json").write_text(json.dumps(older))
    assert _make_data(data, quick=True, started=0.0) == synth
    assert json.loads((synth / "manifest.json").read_text())["settings"] == manifest["settings"]
    assert not runs.exists()  # trained on the old render: retrained


@pytest.mark.slow
def test_quick_main_job_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv(REAL_DATA_ENV, "none")  # the job must not need ../shared
    readme = run_main(tmp_path / "main", quick=True)
    assert readme == tmp_path / "main" / "report" / "README.md"
    text = readme.read_text()
    report = json.loads((readme.parent / "report.json").read_text())
    assert [m["model"] for m in report["models"]] == list(PLANS) + pretrained_models()  # shipped ones last
    for name in PLANS:
        assert (tmp_path / "main" / "runs" / name / "best" / "model.safetensors").is_file()
        # Trained for minutes: a row among the demonstration runs and one in the training table, none in the thesis's
        # tables (the committed study's quoted rows have the same names: they are that study's, not this run's)
        brief = text.split("## Trained in this run")[1].split("\n## ")[0].splitlines()
        assert sum(line.startswith(f"| {name} |") for line in brief) == 1
        assert sum(line.startswith(f"| {name} (trained for minutes) |") for line in text.splitlines()) == 1
        thesis = text.split("## Table 4.1")[1].split("## The thesis's networks at one training budget")[0]
        thesis = thesis.split("## Trained in this run")[0].splitlines()
        assert not any(line.startswith((f"| {name} |", f"| {name} (trained")) for line in thesis)
    assert [m["brief"] for m in report["models"]] == [True] * len(PLANS) + [False] * len(pretrained_models())
    assert all(m["test"]["n"] == 4 and m["real"] is None for m in report["models"])
    # Figure 4.1: input, truth and the shipped models; the five trained for minutes in a grid of their own
    thesis_rows = read_image(readme.parent / "figure_4_1.png").shape[0]
    brief_rows = read_image(readme.parent / "figure_brief.png").shape[0]
    assert len(pretrained_models()) < len(PLANS) and thesis_rows < brief_rows
    assert "by `footseg run --out" in text and "--quick`" in text
    assert ("benchmarks/study/report.json` is not committed yet" in text) != STUDY_REPORT.is_file()
    assert ("## The thesis's networks at one training budget: quoted from the committed study" in text) == \
        STUDY_REPORT.is_file()
    progress = capsys.readouterr().out
    assert "training emilseg" in progress and "done" in progress

    # A second run reuses the finished runs instead of training again.
    before = {n: (tmp_path / "main" / "runs" / n / "best" / "model.safetensors").stat().st_mtime_ns for n in PLANS}
    run_main(tmp_path / "main", quick=True)
    after = {n: (tmp_path / "main" / "runs" / n / "best" / "model.safetensors").stat().st_mtime_ns for n in PLANS}
    assert before == after
    again = capsys.readouterr().out  # and says so
    assert ("rendered before" in again) == (headless_gl_problem() is None)  # else: procedural images, made again
    assert again.count(": trained before, all") == len(PLANS)
    assert "rendering" not in again and "resuming" not in again


def test_a_stopped_main_job_says_the_same_command_continues(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    from footseg import pipeline
    from footseg.cli import main

    def stopped(out: Path, quick: bool = False) -> Path:
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "run_main", stopped)
    assert main(["run", "--out", str(tmp_path / "m"), "--quick"]) == 130
    assert f"`footseg run --out {tmp_path / 'm'} --quick` continues where it stopped" in capsys.readouterr().err
    assert main(["run"]) == 130  # make run's folder
    assert "`footseg run --out runs/main` (or `make run`) continues" in capsys.readouterr().err


def test_a_second_main_job_into_the_same_folder_is_refused_before_it_renders(tmp_path: Path) -> None:
    out = tmp_path / "main"
    busy = r"main: another footseg job( \(pid \d+\))? is writing here now"
    with one_writer(out), pytest.raises(FootsegError, match=busy):  # as `make run` in another terminal holds it
        run_main(out, quick=True)
    assert not out.exists()

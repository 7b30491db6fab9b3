from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from footseg.data.io import read_image
from footseg.errors import FootsegError
from footseg.eval.figures import worst_cases_figure
from footseg.models import SavedModelInfo, create_model, save_model
from footseg.report import write_report


@pytest.fixture
def runs(tmp_path: Path, saved_model: Path) -> list[Path]:
    """A run folder (best/ + history.json) and a bare saved model folder of another architecture."""
    run = tmp_path / "runs" / "fast"
    shutil.copytree(saved_model, run / "best")
    history = [
        {"epoch": 1, "train_loss": 0.9, "val_iou": 0.41, "val_accuracy": 0.8, "val_miou": 0.6},
        {"epoch": 2, "train_loss": 0.7, "val_iou": 0.63, "val_accuracy": 0.9, "val_miou": 0.75},
        {"epoch": 3, "train_loss": 0.6, "val_iou": 0.58, "val_accuracy": 0.88, "val_miou": 0.72},
    ]
    (run / "history.json").write_text(json.dumps(history))
    torch.manual_seed(1)
    bare = save_model(
        create_model("enet", width=0.25), tmp_path / "enet-model", SavedModelInfo("enet", 0.25, 2, (64, 64))
    )
    return [run, bare]


def test_tables_figures_and_json_cover_every_model(runs: list[Path], tiny_dataset: Path, blob_folder: Path) -> None:
    out = runs[0].parent.parent / "report"
    readme = write_report(runs, out, test_data=tiny_dataset, real_data=blob_folder, bench_runs=2)
    assert readme == out / "README.md"
    text = readme.read_text()
    assert "Table 4.1" in text and "Table 4.2" in text
    for name in ("fastlinknet", "enet"):
        rows = [line for line in text.splitlines() if line.startswith(f"| {name} |")]
        assert len(rows) == (3 if name == "fastlinknet" else 2)  # cost, quality (+ training)
    training = next(line for line in text.splitlines() if line.startswith("| fastlinknet |") and "→" in line)
    assert "| 3 | 2 | 63.0 |" in training  # epochs, best epoch, best val IoU

    report = json.loads((out / "report.json").read_text())
    assert [m["model"] for m in report["models"]] == ["fastlinknet", "enet"]
    for m in report["models"]:
        assert m["params"] > 0 and m["latency_ms"] > 0 and m["gflops"] > 0
        assert m["test"]["n"] == 4 and m["real"]["n"] == 4
        assert "iou_interval" in m["test"] and "iou_interval" in m["real"]
        assert f"{100 * m['test']['iou']:.1f}" in text
    assert report["models"][0]["history"]["best_epoch"] == 2 and report["models"][1]["history"] is None
    assert f"Test: `{tiny_dataset}` (4 images)" in text and f"Real: `{blob_folder}` (4 images)" in text

    for name, cols in (("figure_4_1.png", 4), ("figure_4_1_real.png", 4)):
        figure = read_image(out / name)
        assert figure.ndim == 3 and figure.shape[0] > 4 * 150 and figure.shape[1] > cols * 150  # input, truth, 2 models
        assert figure.std() > 10  # not a blank canvas
        assert name in text


def test_without_datasets_quality_is_a_dash(runs: list[Path], tmp_path: Path) -> None:
    readme = write_report(runs[1:], tmp_path / "r", bench_runs=1)
    row = [line for line in readme.read_text().splitlines() if line.startswith("| enet |")][1]
    assert row.count("—") == 4
    assert not (tmp_path / "r" / "figure_4_1.png").exists()
    assert json.loads((tmp_path / "r" / "report.json").read_text())["models"][0]["test"] is None


def test_shown_from_names_the_folders_under_it_relative_to_it(runs: list[Path], tiny_dataset: Path,
                                                               tmp_path: Path) -> None:
    assert not tiny_dataset.resolve().is_relative_to(tmp_path.resolve())
    readme = write_report(runs, tmp_path / "r", test_data=tiny_dataset, bench_runs=1, shown_from=tmp_path)
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert [m["folder"] for m in report["models"]] == ["runs/fast/best", "enet-model"]
    assert report["test_data"] == str(tiny_dataset)  # outside it: as given
    assert f"Test: `{tiny_dataset}` (4 images)." in readme.read_text()


def test_two_runs_of_one_model_get_told_apart(runs: list[Path], tmp_path: Path) -> None:
    other = tmp_path / "runs" / "fast-again"
    shutil.copytree(runs[0], other)
    text = write_report([runs[0], other], tmp_path / "r", bench_runs=1).read_text()
    assert "| fastlinknet (fast) |" in text and "| fastlinknet (fast-again) |" in text


def test_bad_run_folder_and_bad_history_name_the_file(runs: list[Path], tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(FootsegError, match="run folder") as err:
        write_report([tmp_path / "empty"], tmp_path / "r")
    assert str(tmp_path / "empty") in str(err.value)
    (runs[0] / "history.json").write_text("{not json")
    with pytest.raises(FootsegError, match="history") as err:
        write_report(runs[:1], tmp_path / "r", bench_runs=1)
    assert str(runs[0] / "history.json") in str(err.value)


def test_figure_rows_follow_the_models(runs: list[Path], tiny_dataset: Path, tmp_path: Path) -> None:
    one = read_image(
        write_report(runs[:1], tmp_path / "a", test_data=tiny_dataset, bench_runs=1).parent / "figure_4_1.png"
    )
    two = read_image(write_report(runs, tmp_path / "b", test_data=tiny_dataset, bench_runs=1).parent / "figure_4_1.png")
    assert one.shape[1] == two.shape[1] and two.shape[0] > one.shape[0]
    assert np.array_equal(one[:300], two[:300])  # same inputs and ground truth on top


def test_worst_cases_figure_shows_the_lowest_iou_images(saved_model: Path, tiny_dataset: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from footseg.eval import figures
    from footseg.eval.evaluate import evaluate

    scores = evaluate(saved_model, tiny_dataset)
    drawn: list[list[str]] = []
    real_grid = figures.prediction_grid
    monkeypatch.setattr(figures, "prediction_grid",
                        lambda models, samples, title, out: drawn.append([s.stem for s in samples])
                        or real_grid(models, samples, title, out))
    out = worst_cases_figure(saved_model, tiny_dataset, tmp_path / "worst.png", k=2, scores=scores)
    expected = [r["stem"] for r in sorted(scores["per_image"], key=lambda r: r["iou"])[:2]]
    assert drawn == [expected]
    assert read_image(out).shape[0] > 3 * 100  # input, truth, prediction rows


def test_eval_cli_writes_the_worst_figure(saved_model: Path, tiny_dataset: Path, tmp_path: Path) -> None:
    from footseg.cli import main

    assert main(["eval", str(saved_model), "--data", str(tiny_dataset), "--worst-figure", str(tmp_path / "w.png"),
                 "--worst", "3"]) == 0
    assert read_image(tmp_path / "w.png").ndim == 3


def test_labels_mark_shipped_models_and_tell_same_named_runs_apart() -> None:
    from footseg.report import _labels
    from footseg.runtime.resolve import ModelRef

    shipped = ModelRef(path=Path("pretrained/fastlinknet"), name="fastlinknet", shipped=True)
    run = ModelRef(path=Path("r/fastlinknet/best"), name="fastlinknet")
    assert _labels(["fastlinknet", "fastlinknet"], [run, shipped]) == ["fastlinknet", "fastlinknet (shipped)"]
    assert _labels(["fastlinknet"], [shipped], [True]) == ["fastlinknet (shipped, pruned)"]
    a, b = ModelRef(path=Path("a/best"), name="a"), ModelRef(path=Path("b"), name="b")
    assert _labels(["enet", "enet"], [a, b]) == ["enet (a)", "enet (b)"]
    kd = ModelRef(path=Path("r/fastlinknet_kd/best"), name="fastlinknet_kd")
    assert _labels(["fastlinknet", "fastlinknet"], [run, kd]) == ["fastlinknet", "fastlinknet (fastlinknet_kd)"]
    # two runs of one name in two folders: their folders, as far back as tells them apart
    other = ModelRef(path=Path("q/fastlinknet/best"), name="fastlinknet")
    assert _labels(["fastlinknet"] * 3, [run, other, kd]) == [
        "fastlinknet (r/fastlinknet)", "fastlinknet (q/fastlinknet)", "fastlinknet (fastlinknet_kd)"]


def test_a_study_quoted_from_an_older_report_names_its_plain_run_plainly() -> None:
    from footseg.report import _plain_label

    assert _plain_label("fastlinknet (fastlinknet)") == "fastlinknet"
    assert _plain_label("fastlinknet (fastlinknet_kd)") == "fastlinknet (fastlinknet_kd)"
    assert _plain_label("enet") == "enet"


def test_briefly_trained_runs_stay_out_of_the_thesis_tables(runs: list[Path], tiny_dataset: Path,
                                                            tmp_path: Path) -> None:
    text = write_report(runs, tmp_path / "r", test_data=tiny_dataset, bench_runs=1, brief=[runs[0]]).read_text()
    thesis, demo = text.split("## Trained in this run")
    assert not any(line.startswith("| fastlinknet |") for line in thesis.split("## Figure")[0].splitlines())
    assert any(line.startswith("| enet |") for line in thesis.splitlines())
    row = next(line for line in demo.splitlines() if line.startswith("| fastlinknet |"))
    assert "a demonstration, not the thesis's comparison" in text and row.count("|") == 8
    assert "| 64x64 |" in row  # each brief run at its own input size, which the table shows
    # its training curve is labelled too, and Figure 4.1 holds the fully trained model only
    assert any(line.startswith("| fastlinknet (trained for minutes) |") for line in text.splitlines())
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert [m["brief"] for m in report["models"]] == [True, False]
    assert report["figures"] == {"test": "figure_4_1.png", "brief": "figure_brief.png"}
    assert "![their predictions on test images](figure_brief.png)" in demo
    assert report["quoted"] is None and "by `footseg report`" in text


def test_a_committed_study_is_quoted_with_its_source_and_date(runs: list[Path], tmp_path: Path) -> None:
    study = tmp_path / "study"
    write_report(runs, study, bench_runs=1, about={"command": "footseg study", "budget": "every network: 8 images"})
    recorded = json.loads((study / "report.json").read_text())
    assert recorded["about"]["budget"] == "every network: 8 images"
    text = write_report(runs[1:], tmp_path / "r", bench_runs=1, brief=runs[1:],
                        quote=study / "report.json").read_text()
    quoted = text.split("## The thesis's networks at one training budget: quoted from the committed study")[1]
    quoted = quoted.split("## Trained in this run")[0]
    assert f"made {recorded['created'][:10]} by `footseg study`" in quoted
    assert "Budget: every network: 8 images" in quoted and "/study/report.json` in the repository" in quoted
    for m in recorded["models"]:
        assert f"| {m['label']} | {'x'.join(map(str, m['input_size']))} | {m['params'] / 1e6:.3f} M |" in quoted
    kept = json.loads((tmp_path / "r" / "report.json").read_text())["quoted"]  # all numbers are in report.json
    assert kept["budget"] == "every network: 8 images" and len(kept["models"]) == len(recorded["models"])
    assert kept["pending"] == [] and "had not finished" not in quoted
    # a study quoted before it ended says which of its rows are still to come
    write_report(runs, tmp_path / "partial", bench_runs=1,
                 about={"command": "footseg study", "budget": "every network: 8 images", "pending": ["kd", "kd_at"]})
    text = write_report(runs[1:], tmp_path / "r5", bench_runs=1, brief=runs[1:],
                        quote=tmp_path / "partial" / "report.json").read_text()
    assert "That study had not finished: stages kd, kd_at still to run; the networks among them have no rows." in text
    write_report(runs, tmp_path / "vague", bench_runs=1, about={"command": "footseg study"})
    with pytest.raises(FootsegError, match="states no training budget"):
        write_report(runs[1:], tmp_path / "r4", bench_runs=1, quote=tmp_path / "vague" / "report.json")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(FootsegError, match="not a footseg study report") as err:
        write_report(runs[1:], tmp_path / "r2", bench_runs=1, quote=tmp_path / "bad.json")
    assert str(tmp_path / "bad.json") in str(err.value)
    with pytest.raises(FootsegError, match="not made by `footseg study`"):  # e.g. a `make run` report
        write_report(runs[1:], tmp_path / "r3", bench_runs=1, quote=tmp_path / "r" / "report.json")

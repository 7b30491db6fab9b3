"""Pareto front and recommendation on hand-made points; the sweep and the plot on a tiny model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from footseg.bench.pareto import format_points, pareto_front, plot_pareto, recommend, sweep
from footseg.models import SavedModelInfo, create_model, save_model


def _pt(latency: float, iou: float, **extra: object) -> dict:
    return {"latency_ms": latency, "iou": iou, **extra}


POINTS = [
    _pt(1.0, 0.50),  # 0 front: fastest
    _pt(2.0, 0.70),  # 1 front
    _pt(2.5, 0.65),  # 2 dominated by 1
    _pt(4.0, 0.70),  # 3 dominated by 1 (slower, same IoU)
    _pt(5.0, 0.90),  # 4 front
    _pt(6.0, 0.85),  # 5 dominated by 4
    _pt(9.0, 0.91),  # 6 front: most accurate
    _pt(1.0, 0.40),  # 7 dominated by 0 (same speed, worse)
]


def test_front_of_hand_made_points() -> None:
    assert pareto_front(POINTS) == [0, 1, 4, 6]
    assert pareto_front([POINTS[3]]) == [0]
    assert pareto_front([]) == []
    # Exact duplicates do not dominate each other.
    assert pareto_front([_pt(1.0, 0.5), _pt(1.0, 0.5), _pt(2.0, 0.4)]) == [0, 1]


def test_recommendation_is_the_best_iou_within_budget() -> None:
    assert recommend(POINTS, 5.5) == 4
    assert recommend(POINTS, 2.2) == 1
    assert recommend(POINTS, 100) == 6
    assert recommend(POINTS, 0.5) is None
    assert recommend([_pt(3.0, 0.8), _pt(2.0, 0.8)], 5) == 1  # ties go to the faster point


def test_sweep_plot_and_table(tiny_dataset: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    folders = []
    for width in (0.25, 0.5):
        info = SavedModelInfo("fastlinknet", width, 2, (64, 64))
        folders.append(save_model(create_model("fastlinknet", width=width), tmp_path / f"w{width}", info))
    points = sweep(folders, tiny_dataset, sizes=[32, 64], runs=2)
    assert [(p["width"], p["size"]) for p in points] == [(0.25, 32), (0.25, 64), (0.5, 32), (0.5, 64)]
    assert all(p["trained_size"] == 64 and 0.0 <= p["iou"] <= 1.0 and p["latency_ms"] > 0 for p in points)
    assert {p["runtime"] for p in points} == {"onnx"}  # timed where it is deployed, by default
    eager = sweep(folders[:1], tiny_dataset, sizes=[64], runs=1, runtime="torch")
    assert eager[0]["runtime"] == "torch" and eager[0]["iou"] == pytest.approx(points[1]["iou"])
    with pytest.raises(ValueError, match="unknown runtime 'tflite'"):
        sweep(folders, tiny_dataset, sizes=[64], runtime="tflite")
    assert points[1]["gflops"] == pytest.approx(4 * points[0]["gflops"], rel=0.01)  # FLOPs scale with pixels
    assert points[2]["params"] > points[0]["params"]
    table = format_points(points, budget_ms=1e9)
    assert table.count("**recommended**") == 1 and table.count("\n") == len(points) + 2
    with pytest.raises(ValueError, match="multiples of 32"):
        sweep(folders, tiny_dataset, sizes=[48])
    pytest.importorskip("matplotlib")
    png = plot_pareto(points, tmp_path / "plot" / "pareto.png", budget_ms=1e9)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_pruned_models_are_labelled(tiny_dataset: Path, tmp_path: Path) -> None:
    from footseg.compress.prune import channel_prune, pruned_info

    model = channel_prune(create_model("fastlinknet", width=0.25), 0.25)
    info = pruned_info(model, SavedModelInfo("fastlinknet", 0.25, 2, (64, 64)))
    plain = save_model(create_model("fastlinknet", width=0.25), tmp_path / "plain", SavedModelInfo("fastlinknet", 0.25))
    points = sweep([save_model(model, tmp_path / "pruned", info), plain], tiny_dataset, sizes=[64], runs=1)
    thousands = round(points[0]["params"] / 1000)
    assert [p["label"] for p in points] == [f"fastlinknet (pruned, {thousands}K params)", "fastlinknet"]
    assert points[0]["params"] < points[1]["params"]
    assert f"| fastlinknet (pruned, {thousands}K params) |" in format_points(points)

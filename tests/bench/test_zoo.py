"""The zoo table: cost from one int8 benchmark run with the peer, IoU per dataset, Markdown in percent."""

from __future__ import annotations

from pathlib import Path

import pytest

from footseg.bench import peer, zoo
from footseg.eval.evaluate import evaluate


def test_rows_join_cost_and_accuracy(saved_model: Path, tiny_dataset: Path, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(peer, "PEER_VENV", tmp_path / "no-venv")  # no MediaPipe here: the ratio is missing, said why
    rows, why = zoo.zoo_rows([str(saved_model)], tiny_dataset, own_feet=tiny_dataset, rounds=1, min_time=0.0)
    assert why and len(rows) == 1
    row = rows[0]
    assert row["params"] > 0 and row["size_mb"] > 0 and row["latency_ms"] > 0 and row.get("x_peer") is None
    assert row["synth_iou"] == row["own_feet_iou"] == pytest.approx(evaluate(str(saved_model), tiny_dataset)["iou"])
    assert row["real_iou"] is None and row["default"] is False


def test_table_in_percent_with_the_peer_as_unit() -> None:
    rows = [
        {"model": "fastlinknet_ctx", "default": True, "params": 199554, "size_mb": 0.3104, "latency_ms": 2.0,
         "x_peer": 0.8, "synth_iou": 0.7012, "own_feet_iou": 0.5, "real_iou": None},
        {"model": "mediapipe-selfie (litert)", "default": False, "params": 106336, "size_mb": 0.25,
         "latency_ms": 2.5, "x_peer": 1.0},
    ]
    lines = zoo.format_zoo(rows).splitlines()
    assert lines[0].startswith("| model | params | int8 file (KB) |") and "x MediaPipe" in lines[0]
    assert lines[2] == "| `fastlinknet_ctx` (default) | 199,554 | 310 | 2.00 | 0.80 | 70.1 | 50.0 | – |"
    assert lines[3] == "| `mediapipe-selfie (litert)` | 106,336 | 250 | 2.50 | 1.00 | – | – | – |"

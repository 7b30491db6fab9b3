"""The zoo table: cost from one int8 benchmark run with the peer, IoU per dataset, Markdown in percent."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from footseg.bench import peer, zoo
from footseg.errors import FootsegError
from footseg.eval.evaluate import evaluate
from footseg.runtime.resolve import DEFAULT_MODEL


def _fake_peer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, latency_ms: float) -> None:
    """A stand-in for .venv-bench running benchmarks/mediapipe_peer.py: one litert row per thread count."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    row = {"model": "mediapipe-selfie", "runtime": "litert", "threads": 1, "size": 256, "params": 10, "gflops": 0.1,
           "size_mb": 0.25, "latency_ms": latency_ms, "p90_ms": latency_ms, "fps": 1.0, "iou": None,
           "samples_ms": [latency_ms]}
    script = tmp_path / "peer.py"
    script.write_text(f"import json\nprint(json.dumps([{row!r}]))\n")
    monkeypatch.setattr(peer, "PEER_VENV", venv)
    monkeypatch.setattr(peer, "PEER_SCRIPT", script)


def test_rows_join_cost_and_accuracy(saved_model: Path, tiny_dataset: Path, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_peer(tmp_path, monkeypatch, latency_ms=1000.0)
    rows, why = zoo.zoo_rows([str(saved_model)], tiny_dataset, own_feet=tiny_dataset, rounds=1, min_time=0.0)
    assert why is None and [r["model"] for r in rows] == [str(saved_model), "mediapipe-selfie (litert)"]
    ours, mediapipe = rows
    assert ours["params"] > 0 and ours["size_mb"] > 0 and ours["latency_ms"] > 0
    assert (ours["side"], mediapipe["side"]) == (64, 256)  # saved_model at its own 64x64, not the peer's side
    assert ours["x_peer"] == pytest.approx(ours["latency_ms"] / 1000.0) and mediapipe["x_peer"] == 1.0
    assert ours["synth_iou"] == ours["own_feet_iou"] == pytest.approx(evaluate(str(saved_model), tiny_dataset)["iou"])
    assert ours["real_iou"] is None and ours["default"] is False


def test_without_the_peer_the_ratio_is_missing_and_said_why(saved_model: Path, tiny_dataset: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(peer, "PEER_VENV", tmp_path / "no-venv")
    rows, why = zoo.zoo_rows([str(saved_model)], tiny_dataset, rounds=1, min_time=0.0)
    assert why and len(rows) == 1 and rows[0].get("x_peer") is None


@pytest.mark.parametrize("case", ["architecture", "onnx", "folder"])
def test_bad_input_is_refused_before_timing(case: str, saved_model: Path, tiny_dataset: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zoo, "benchmark", lambda *a, **k: pytest.fail("timed before checking"))
    onnx_file = tmp_path / "net.onnx"
    onnx_file.write_bytes(b"")
    models, real = {"architecture": (["enet"], None), "onnx": ([str(onnx_file)], None),
                    "folder": ([str(saved_model)], tmp_path / "missing")}[case]
    with pytest.raises(FootsegError):
        zoo.zoo_rows(models, tiny_dataset, real=real)


def test_table_in_percent_with_the_peer_as_unit() -> None:
    rows = [
        {"model": DEFAULT_MODEL, "default": True, "params": 199554, "size_mb": 0.2959, "side": 288,
         "latency_ms": 2.0, "x_peer": 0.8, "synth_iou": 0.7012, "own_feet_iou": 0.5, "real_iou": None},
        {"model": "mediapipe-selfie (litert)", "default": False, "params": 106336, "size_mb": 0.25, "side": 256,
         "latency_ms": 2.5, "x_peer": 1.0},
    ]
    lines = zoo.format_zoo(rows).splitlines()
    assert lines[0].startswith("| model | params | file (KB) | side | ms, 1 thread | x MediaPipe |")
    assert lines[2] == f"| `{DEFAULT_MODEL}` (default) | 199,554 | 296 | 288 | 2.00 | 0.80 | 70.1 | 50.0 | – |"
    assert lines[3] == "| `mediapipe-selfie (litert)` | 106,336 | 250 | 256 | 2.50 | 1.00 | – | – | – |"


def test_models_are_timed_at_their_own_side(saved_model: Path, tiny_dataset: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict] = []
    row = {"model": "best", "runtime": zoo.RUNTIME, "size": 64, "params": 1, "size_mb": 0.1, "latency_ms": 1.0}
    monkeypatch.setattr(zoo, "benchmark", lambda *a, **k: calls.append(k) or ([row], "no peer"))
    monkeypatch.setattr(zoo, "evaluate", lambda *a, **k: {"iou": 0.5})
    rows, why = zoo.zoo_rows([str(saved_model)], tiny_dataset)
    assert calls[0]["size"] is None and calls[0]["peer"] is True  # benchmark's default: own sides, the peer at 256
    assert why == "no peer" and rows[0]["side"] == 64

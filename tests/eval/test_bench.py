"""Benchmark rows: cost numbers of a model, the Markdown table and the ``footseg bench`` command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from footseg.cli import main
from footseg.errors import FootsegError
from footseg.eval.bench import benchmark, format_table, measure_model

REQUIRED = {"model", "params", "gflops", "size_mb", "latency_ms"}


def test_measure_model_counts_a_known_model() -> None:
    # one 3x3 conv 3->8 with bias at 32x32: 8*3*9 multiply-adds per pixel
    model = nn.Conv2d(3, 8, 3, padding=1).train()
    before = torch.get_num_threads()
    row = measure_model(model, size=32, threads=1, runs=3)
    assert row["params"] == 8 * 3 * 9 + 8
    assert row["gflops"] == pytest.approx(2 * 8 * 3 * 9 * 32 * 32 / 1e9)
    assert row["size_mb"] == pytest.approx((8 * 3 * 9 + 8) * 4 / 1e6)
    assert 0 < row["latency_ms"] <= row["p90_ms"]
    assert torch.get_num_threads() == before
    assert model.training  # mode restored


def test_benchmark_rows_and_table() -> None:
    rows = benchmark(["fastlinknet"], size=64, threads=1, runs=2)
    assert len(rows) == 1 and set(rows[0]) >= REQUIRED
    assert rows[0]["model"] == "fastlinknet" and rows[0]["threads"] == 1 and rows[0]["size"] == 64
    table = format_table(rows)
    assert table.splitlines()[0].startswith("| model | params | GFLOPs")
    assert "| fastlinknet |" in table
    assert "FlopCounterMode" in table and "2 FLOPs" in table and "1 thread" in table


def test_unknown_model_lists_the_valid_names() -> None:
    with pytest.raises(FootsegError, match=r"unknown model 'nope'.*fastlinknet"):
        benchmark(["nope"], runs=1)


def test_cli_bench_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sub" / "bench.json"
    assert main(["bench", "fastlinknet", "--runs", "2", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [r["model"] for r in rows] == ["fastlinknet"]
    assert set(rows[0]) >= REQUIRED
    assert 0.1 < rows[0]["gflops"] <= 0.3 and rows[0]["latency_ms"] > 0
    assert "| fastlinknet |" in capsys.readouterr().out


def test_size_must_be_a_multiple_of_32() -> None:
    with pytest.raises(FootsegError, match="not a multiple of 32"):
        benchmark(["fastlinknet"], size=100, runs=1)

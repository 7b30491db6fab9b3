"""``footseg compress`` end to end on the tiny dataset: every step written, smaller, scored and decodable."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from footseg.cli import main
from footseg.compress.compressed_file import load_compressed
from footseg.compress.pipeline import CompressSettings, compress
from footseg.compress.prune import weight_layers
from footseg.errors import FootsegError
from footseg.eval.evaluate import evaluate
from footseg.models import load_model
from footseg.models.info import LAYER_SHAPES_KEY
from footseg.one_writer import one_writer


@pytest.mark.slow
def test_compress_cli_end_to_end(
    trained_dir: Path, tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    rc = main(
        [
            "compress",
            str(trained_dir),
            "--data",
            str(tiny_dataset),
            "--real",
            str(tiny_dataset / "test"),
            "--out",
            str(out),
            "--finetune-steps",
            "2",
            "--clusters",
            "8",
        ]
    )
    assert rc == 0
    assert "report:" in capsys.readouterr().out
    result = json.loads((out / "compress.json").read_text())
    rows = result["rows"]
    assert [r["step"].split(" (")[0] for r in rows] == [
        "fp32 input model",
        "channel pruning",
        "magnitude pruning",
        "weight sharing",
        "Huffman coding",
    ]
    sizes = [r["bytes"] for r in rows]
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == len(sizes)
    for row in rows:
        assert row["bytes"] == Path(row["artefact"]).stat().st_size
        assert row["ratio"] == pytest.approx(sizes[0] / row["bytes"])
        assert 0.0 <= row["test_iou"] <= 1.0 and row["real_iou"] == pytest.approx(row["test_iou"])
    base, channel, magnitude, shared, coded = rows
    assert channel["params"] < base["params"] and channel["gflops"] < base["gflops"]
    assert magnitude["sparsity"] == pytest.approx(0.5, abs=0.01)
    assert coded["decodes_exactly"] and coded["test_iou"] == shared["test_iou"]
    assert coded["ratio"] > 4

    model, info = load_model(out / "channel")
    assert info.extra[LAYER_SHAPES_KEY] and sum(p.numel() for p in model.parameters()) == channel["params"]
    decoded, _ = load_compressed(out / "model.fsdc")
    shared_model, _ = load_model(out / "shared")
    for key, value in shared_model.state_dict().items():
        assert torch.equal(decoded.state_dict()[key], value), key
    for name, module in decoded.named_modules():
        if isinstance(module, torch.nn.Conv2d):  # each channel: its scale times one of the 8 shared values
            for channel in module.weight.detach():
                assert torch.unique(channel[channel != 0]).numel() <= 8, name
    channels = sum(len(m.weight) for _, m in weight_layers(decoded))
    assert shared["bits"]["scales"] == 16 * channels  # the default shares in units of a scale per channel
    table = (out / "compress.md").read_text()
    assert table.count("\n| ") == 6 and "real IoU" in table  # header + five steps


def test_skipped_steps_and_scores_of_the_input(trained_dir: Path, tiny_dataset: Path, tmp_path: Path) -> None:
    settings = CompressSettings(prune_amount=0.0, channel_ratio=0.0, clusters=32, finetune_steps=0, runs=1)
    result = compress(trained_dir, tiny_dataset, tmp_path / "out", settings=settings)
    steps = [r["step"].split(" (")[0] for r in result["rows"]]
    assert steps == ["fp32 input model", "weight sharing", "Huffman coding"]
    assert result["rows"][0]["test_iou"] == pytest.approx(evaluate(trained_dir, tiny_dataset)["iou"])
    assert result["rows"][0]["real_iou"] is None
    assert all(r["sparsity"] == 0.0 for r in result["rows"])
    assert "real IoU" not in (tmp_path / "out" / "compress.md").read_text()
    before = (tmp_path / "out" / "compress.md").read_text()
    with pytest.raises(FootsegError, match="already holds files: choose another --out"):
        compress(trained_dir, tiny_dataset, tmp_path / "out", settings=settings)  # an earlier compression's report
    assert (tmp_path / "out" / "compress.md").read_text() == before


def test_every_row_is_scored_at_the_argmax_the_input_too(trained_dir: Path, tiny_dataset: Path, tmp_path: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(trained_dir, model)
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "threshold": 0.9}))  # an operating point of its own
    settings = CompressSettings(prune_amount=0.0, channel_ratio=0.0, clusters=256, finetune_steps=0, runs=1)
    result = compress(model, tiny_dataset, tmp_path / "out", settings=settings)
    at_argmax = evaluate(trained_dir, tiny_dataset)["iou"]
    assert evaluate(model, tiny_dataset)["iou"] != pytest.approx(at_argmax)  # (else this test could not fail)
    assert result["rows"][0]["test_iou"] == pytest.approx(at_argmax)
    assert "every row at the argmax" in (tmp_path / "out" / "compress.md").read_text()


def test_layer_codebooks_share_as_the_paper_did(trained_dir: Path, tiny_dataset: Path, tmp_path: Path) -> None:
    plain = CompressSettings(prune_amount=0.0, channel_ratio=0.0, clusters=4, finetune_steps=0, runs=1,
                             channel_scales=False)
    rows = compress(trained_dir, tiny_dataset, tmp_path / "out", settings=plain)["rows"]
    assert rows[1]["step"] == "weight sharing (4 clusters, 2-bit indices, one codebook per layer, BN folded)"
    assert rows[1]["bits"]["scales"] == 0 and (tmp_path / "out" / "model.fsdc").read_bytes()[:5] == b"FSDC\x01"
    shared, _ = load_model(tmp_path / "out" / "shared")
    for name, module in shared.named_modules():
        if isinstance(module, torch.nn.Conv2d):  # four values in the whole layer
            assert torch.unique(module.weight[module.weight != 0]).numel() <= 4, name


def test_a_folder_another_job_writes_is_refused_before_the_model_loads(trained_dir: Path, tiny_dataset: Path,
                                                                        tmp_path: Path) -> None:
    settings = CompressSettings(prune_amount=0.0, channel_ratio=0.0, clusters=32, finetune_steps=0, runs=1)
    busy = r"out: another footseg job( \(pid \d+\))? is writing here now"
    with one_writer(tmp_path / "out"), pytest.raises(FootsegError, match=busy):  # a compression started before
        compress(trained_dir, tiny_dataset, tmp_path / "out", settings=settings)
    assert not (tmp_path / "out").exists()


def test_user_errors(trained_dir: Path, tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flat = tmp_path / "flat"
    shutil.copytree(tiny_dataset / "test", flat)
    assert main(["compress", str(trained_dir), "--data", str(flat), "--out", str(tmp_path / "o")]) == 2
    assert "splits" in capsys.readouterr().err
    rc = main(
        [
            "compress",
            str(trained_dir),
            "--data",
            str(tiny_dataset),
            "--out",
            str(tmp_path / "o"),
            "--channel-ratio",
            "1.5",
        ]
    )
    assert rc == 2
    assert "footseg: error: --channel-ratio" in capsys.readouterr().err
    assert main(["compress", str(tmp_path / "nope"), "--data", str(tiny_dataset)]) == 2
    assert f"{tmp_path / 'nope'}: model not found" in capsys.readouterr().err


def test_a_shipped_model_compresses_by_name(tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)  # without --out the result goes next to the model: here, not into the package
    argv = ["compress", "fastlinknet", "--data", str(tiny_dataset), "--channel-ratio", "0", "--prune-amount", "0",
            "--finetune-steps", "0", "--clusters", "64"]
    assert main(argv) == 0
    result = json.loads((tmp_path / "fastlinknet-compressed" / "compress.json").read_text())
    assert result["rows"][0]["params"] == 96_138 and result["rows"][-1]["decodes_exactly"]


def test_a_prior_mask_network_fine_tunes_on_its_four_channel_input(trained_dir: Path, tiny_dataset: Path,
                                                                     tmp_path: Path) -> None:
    from footseg.models.saved import add_prior_input, save_model

    model, info = load_model(trained_dir)
    wide, wide_info = add_prior_input(model, info)
    prior_dir = save_model(wide, tmp_path / "prior", wide_info)
    settings = CompressSettings(prune_amount=0.5, channel_ratio=0.0, clusters=16, finetune_steps=1, runs=1)
    result = compress(prior_dir, tiny_dataset, tmp_path / "out", settings=settings)
    assert [r["step"].split(" (")[0] for r in result["rows"]][:2] == ["fp32 input model", "magnitude pruning"]
    assert load_model(tmp_path / "out" / "magnitude")[1].in_channels == 4


def test_fine_tuning_runs_at_the_side_the_network_was_trained_at(trained_dir: Path, tiny_dataset: Path,
                                                                   tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                                   ) -> None:
    import dataclasses

    from footseg.compress import pipeline
    from footseg.models.saved import save_model

    model, info = load_model(trained_dir)
    trained = info.input_size[0]
    # a model whose threshold stage chose to run it at another side than its training settings say it was trained at
    chosen = save_model(model, tmp_path / "chosen", dataclasses.replace(
        info, input_size=(trained + 32,) * 2, extra={**info.extra, "train_config": {"size": trained}}))
    sides = []
    original = pipeline.finetune

    def spy(net: torch.nn.Module, cfg: pipeline.TrainConfig) -> list[dict]:
        sides.append(cfg.size)
        return original(net, cfg)

    monkeypatch.setattr(pipeline, "finetune", spy)
    settings = CompressSettings(prune_amount=0.5, channel_ratio=0.0, clusters=16, finetune_steps=1, runs=1)
    compress(chosen, tiny_dataset, tmp_path / "out", settings=settings)
    assert sides and set(sides) == {trained}


def test_a_channel_step_that_prunes_nothing_is_refused_not_reported(trained_dir: Path, tiny_dataset: Path,
                                                                   tmp_path: Path) -> None:
    settings = CompressSettings(prune_amount=0.0, channel_ratio=0.25, channel_multiple=100000, clusters=16,
                                finetune_steps=0, runs=1)
    with pytest.raises(FootsegError, match="channel pruning removed nothing: --channel-multiple 100000"):
        compress(trained_dir, tiny_dataset, tmp_path / "out", settings=settings)

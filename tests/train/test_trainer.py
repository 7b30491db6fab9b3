import dataclasses
import functools
import io
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from footseg.config import TrainConfig
from footseg.data import dataset as dataset_module
from footseg.data.dataset import SegmentationDataset
from footseg.data.procedural import make_procedural_dataset
from footseg.data.samples import Sample
from footseg.errors import FootsegError
from footseg.metrics import ConfusionMeter
from footseg.models.saved import load_model
from footseg.one_writer import one_writer
from footseg.train import trainer
from footseg.train.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]


def _cfg(data: Path, out: Path, **kw: object) -> TrainConfig:
    settings: dict = dict(
        model="fastlinknet", width=0.25, size=64, epochs=2, batch_size=2, workers=0, progress=False, lr=5e-3
    )
    settings.update(kw)
    return TrainConfig(data=str(data), out=str(out), **settings)


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run / "checkpoint.pt")["model"]


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@torch.no_grad()
def _val_iou(model: torch.nn.Module, data: Path) -> float:
    meter = ConfusionMeter()
    for image, mask in SegmentationDataset(data / "val", 64):
        meter.update(model(image[None]).argmax(1)[0], mask)
    return meter.compute()["iou"]


def test_train_writes_config_history_checkpoint_and_a_loadable_best_model(
    tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    cfg = _cfg(tiny_dataset, run)
    best = trainer.train(cfg)

    assert best == run / "best"
    assert TrainConfig.load(run / "config.json") == cfg
    history = json.loads((run / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]
    for h in history:
        assert h["train_loss"] > 0 and 0 <= h["val_iou"] <= 1 and 0 <= h["val_accuracy"] <= 1
    model, info = load_model(best)
    assert (info.model, info.width, info.input_size) == ("fastlinknet", 0.25, (64, 64))
    assert info.extra["val_iou"] == max(h["val_iou"] for h in history)
    assert info.extra["train_config"] == cfg.to_dict()
    # The recorded score is the saved model's score on the whole validation split.
    assert _val_iou(model, tiny_dataset) == pytest.approx(info.extra["val_iou"], abs=1e-12)
    progress = load_checkpoint(run / "checkpoint.pt")["progress"]
    assert (progress["epoch"], progress["step"], progress["global_step"]) == (2, 0, 8)
    out = capsys.readouterr().out
    assert "epoch 1/2" in out and "epoch 2/2" in out


def test_on_a_terminal_a_progress_bar_shows_loss_iou_and_speed(
    tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    # tqdm redraws at most every 0.1 s; four tiny batches can finish inside that and never show their postfix
    monkeypatch.setattr(trainer, "tqdm", functools.partial(trainer.tqdm, mininterval=0))
    trainer.train(_cfg(tiny_dataset, tmp_path / "run", epochs=1, progress=True))
    assert re.search(r"epoch 1/1: .*/4 .*loss \d\.\d{4}  iou \d\.\d{3}  [\d.]+ img/s", terminal.getvalue())


def test_training_and_validation_run_channels_last(
    tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The layout is the trainer's speed on a CPU (benchmarks/train_speed.py); a batch in NCHW would still train, only
    # slower, so nothing else would notice.
    layouts: list[tuple[bool, bool, bool]] = []
    real_create_model = trainer.create_model

    def create_model_recording_layouts(*args: object, **kw: object) -> torch.nn.Module:
        net = real_create_model(*args, **kw)
        conv = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d))

        def record(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            channels_last = torch.channels_last
            layouts.append((module.training, inputs[0].is_contiguous(memory_format=channels_last),
                            conv.weight.is_contiguous(memory_format=channels_last)))

        net.register_forward_pre_hook(record)
        return net

    monkeypatch.setattr(trainer, "create_model", create_model_recording_layouts)
    best = trainer.train(_cfg(tiny_dataset, tmp_path / "run", epochs=1, device="cpu"))  # on a GPU it stays NCHW
    assert {training for training, _, _ in layouts} == {True, False}  # training batches and validation batches
    assert all(batch and weight for _, batch, weight in layouts)
    load_model(best)  # safetensors stores contiguous tensors only: the saved copy is made so


@pytest.mark.parametrize("bad", [{"init": "no/such/model"}, {"teacher": "no/such/model"}])
def test_a_refused_start_writes_nothing_and_the_corrected_command_runs(
    tiny_dataset: Path, tmp_path: Path, bad: dict[str, str]
) -> None:
    run = tmp_path / "run"
    with pytest.raises(FootsegError):
        trainer.train(_cfg(tiny_dataset, run, epochs=1, **bad))
    assert not run.exists()  # no config.json left to call the corrected command's run "a different run"
    trainer.train(_cfg(tiny_dataset, run, epochs=1))
    assert (run / "best" / "config.json").is_file()


def test_a_run_folder_another_job_writes_is_refused_before_anything_is_written(tiny_dataset: Path,
                                                                               tmp_path: Path) -> None:
    run = tmp_path / "run"
    busy = r"run: another footseg job( \(pid \d+\))? is writing here now"
    with one_writer(run), pytest.raises(FootsegError, match=busy):  # as a training of the run started earlier would
        trainer.train(_cfg(tiny_dataset, run, epochs=1, steps_per_epoch=1), resume=True)
    assert not run.exists()


@pytest.mark.parametrize("budget", [trainer.KEPT_VALIDATION_BYTES, 0])
def test_validation_images_are_read_once_where_they_fit_in_memory(
    tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, budget: int
) -> None:
    reads: list[str] = []
    real_read_sample = dataset_module.read_sample

    def counting(sample: Sample, scaled_mask: bool = False) -> tuple[object, object]:
        reads.append(sample.image.parent.parent.name)  # the split
        return real_read_sample(sample, scaled_mask)

    monkeypatch.setattr(dataset_module, "read_sample", counting)
    monkeypatch.setattr(trainer, "KEPT_VALIDATION_BYTES", budget)
    trainer.train(_cfg(tiny_dataset, tmp_path / "run", epochs=3))
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    val_images = len(list((tiny_dataset / "val" / "images").iterdir()))
    assert reads.count("val") == val_images * (1 if budget else 3)
    assert reads.count("train") == 3 * 8 and len(history) == 3


def test_kept_validation_in_a_loader_process_scores_as_read_from_files(
    tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each persistent loader process keeps the batches it loads; which ones it gets must not change between epochs.
    runs, kept = {}, trainer.KEPT_VALIDATION_BYTES
    for budget in (kept, 0):
        monkeypatch.setattr(trainer, "KEPT_VALIDATION_BYTES", budget)
        run = tmp_path / f"kept{budget}"
        trainer.train(_cfg(tiny_dataset, run, epochs=3, workers=1))
        runs[budget] = [(e["val_iou"], e["val_accuracy"]) for e in json.loads((run / "history.json").read_text())]
    assert runs[kept] == runs[0] and len(runs) == 2 and len(runs[0]) == 3


def test_finetune_hands_the_network_back_in_the_default_layout(tiny_dataset: Path, tmp_path: Path) -> None:
    # Its callers time and export it next (compression's rows): a channels-last network fed NCHW frames would time
    # another path than the rows beside it.
    net = trainer.create_model("fastlinknet", 0.25, 2)
    trainer.finetune(net, _cfg(tiny_dataset, tmp_path / "run", epochs=1, steps_per_epoch=2))
    assert net.training is False
    assert all(p.is_contiguous() for p in net.parameters())


def test_same_seed_gives_identical_weights(tiny_dataset: Path, tmp_path: Path) -> None:
    runs = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        trainer.train(_cfg(tiny_dataset, tmp_path / name, seed=seed))
        runs[name] = _weights(tmp_path / name)
    assert _same(runs["a"], runs["b"])
    assert not _same(runs["a"], runs["c"])


def test_a_folder_holding_a_run_is_refused_unless_resumed_with_the_same_identity(
    tiny_dataset: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    trainer.train(_cfg(tiny_dataset, run, epochs=1, steps_per_epoch=1))
    with pytest.raises(FootsegError, match="already holds a run; pass --resume"):
        trainer.train(_cfg(tiny_dataset, run, epochs=1, steps_per_epoch=1))
    with pytest.raises(
        FootsegError,
        match=r"holds a different run; cannot resume with another seed \(0 there, 3 now\), lr \(0\.005 there, 0\.001",
    ) as info:
        trainer.train(_cfg(tiny_dataset, run, epochs=1, steps_per_epoch=1, lr=1e-3, seed=3), resume=True)
    assert str(info.value).startswith(str(run))
    # A new epoch length would reshape the LR and distillation schedules under the run's feet.
    with pytest.raises(FootsegError, match=r"cannot resume with another steps_per_epoch \(1 there, 2 now\)"):
        trainer.train(_cfg(tiny_dataset, run, epochs=2, steps_per_epoch=2), resume=True)
    # More epochs on resume continue the same run.
    trainer.train(_cfg(tiny_dataset, run, epochs=2, steps_per_epoch=1), resume=True)
    assert [h["epoch"] for h in json.loads((run / "history.json").read_text())] == [1, 2]
    assert load_checkpoint(run / "checkpoint.pt")["progress"]["global_step"] == 2


def test_resume_of_an_empty_folder_starts_a_new_run(tiny_dataset: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert trainer.train(_cfg(tiny_dataset, run, epochs=1, steps_per_epoch=1), resume=True) == run / "best"
    assert len(json.loads((run / "history.json").read_text())) == 1


def test_a_checkpoint_from_another_model_is_a_user_error(tiny_dataset: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    trainer.train(_cfg(tiny_dataset, run, epochs=1, steps_per_epoch=1))
    other = tmp_path / "other"
    trainer.train(_cfg(tiny_dataset, other, epochs=1, steps_per_epoch=1, model="mobileseg"))
    (run / "checkpoint.pt").write_bytes((other / "checkpoint.pt").read_bytes())
    with pytest.raises(FootsegError, match=r"checkpoint\.pt: checkpoint does not fit this run"):
        trainer.train(_cfg(tiny_dataset, run, epochs=2, steps_per_epoch=1), resume=True)


def test_init_starts_from_a_saved_models_weights(tiny_dataset: Path, tmp_path: Path) -> None:
    first = trainer.train(_cfg(tiny_dataset, tmp_path / "first", epochs=1, steps_per_epoch=2))
    start, _ = load_model(first)
    # lr 0 and no weight decay: fine-tuning changes nothing, so the run's weights are exactly the --init weights
    run = tmp_path / "tuned"
    trainer.train(_cfg(tiny_dataset, run, epochs=1, steps_per_epoch=1, lr=0.0, weight_decay=0.0, init=str(first)))
    tuned = _weights(run)
    params = {k: v for k, v in start.state_dict().items() if "running" not in k and "num_batches" not in k}
    assert _same(params, {k: tuned[k] for k in params})
    fresh = tmp_path / "fresh"
    trainer.train(_cfg(tiny_dataset, fresh, epochs=1, steps_per_epoch=1, lr=0.0, weight_decay=0.0))
    assert not _same(params, {k: _weights(fresh)[k] for k in params})


def test_init_from_a_channel_pruned_model_trains_the_pruned_network(tiny_dataset: Path, tmp_path: Path) -> None:
    from footseg.compress.prune import channel_prune, pruned_info
    from footseg.models.saved import save_model

    first = trainer.train(_cfg(tiny_dataset, tmp_path / "first", epochs=1, steps_per_epoch=1, width=1.0))
    model, info = load_model(first)
    full = sum(p.numel() for p in model.parameters())
    channel_prune(model, 0.25, round_to=8)
    pruned = save_model(model, tmp_path / "pruned", pruned_info(model, info))
    run = tmp_path / "tuned"
    trainer.train(_cfg(tiny_dataset, run, epochs=1, steps_per_epoch=1, width=1.0, init=str(pruned)))
    trainer.train(_cfg(tiny_dataset, run, epochs=2, steps_per_epoch=1, width=1.0, init=str(pruned)), resume=True)
    tuned, tuned_info = load_model(run / "best")
    assert tuned_info.extra["layer_shapes"] == pruned_info(model, info).extra["layer_shapes"]
    assert sum(p.numel() for p in tuned.parameters()) == sum(p.numel() for p in model.parameters()) < full
    assert json.loads((run / "history.json").read_text())[-1]["epoch"] == 2
    # an operating point belongs to the weights it was chosen for: pruned and retrained ones start at the argmax
    assert pruned_info(model, dataclasses.replace(info, threshold=0.7)).threshold == tuned_info.threshold == 0.5
    # ... and at the side the network was trained at, not one a threshold stage chose for the old weights
    at_other_side = dataclasses.replace(info, input_size=(info.trained_size[0] + 32,) * 2)
    assert pruned_info(model, at_other_side).input_size == info.trained_size == tuple(info.input_size)


def test_a_fine_tune_keeps_its_inits_operating_point_and_scores_the_init_first(
    tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from footseg.models.info import read_info, write_info

    first = trainer.train(_cfg(tiny_dataset, tmp_path / "first", epochs=1, steps_per_epoch=1))
    info = read_info(first)
    write_info(first, dataclasses.replace(info, threshold=0.7, region_peak=0.98,
                                          extra={**info.extra, "int8_min_stride": 8}))
    capsys.readouterr()
    run = tmp_path / "tuned"
    # lr 0 and frozen BatchNorms: the network stays the --init's, so its epoch scores what it scored before the first
    # step
    best = trainer.train(_cfg(tiny_dataset, run, epochs=1, steps_per_epoch=1, lr=0.0, weight_decay=0.0,
                              freeze_bn=True, init=str(first)))
    tuned = read_info(best)
    assert (tuned.threshold, tuned.region_peak, tuned.extra["int8_min_stride"]) == (0.7, 0.98, 8)
    out = capsys.readouterr()
    assert f"{run / 'best'} keeps its threshold 0.7, region peak 0.98 and int8 min stride 8" in out.out
    init_iou = load_checkpoint(run / "checkpoint.pt")["progress"]["init_iou"]
    assert f"as it is: val iou {init_iou:.4f}" in out.out
    assert init_iou == json.loads((run / "history.json").read_text())[0]["val_iou"]
    assert "no epoch beat" not in out.err
    # what the run keeps is its own from its start: a resume carries the same, whatever the --init's config says now
    write_info(first, info)
    trainer.train(_cfg(tiny_dataset, run, epochs=2, steps_per_epoch=1, lr=0.0, weight_decay=0.0, freeze_bn=True,
                       init=str(first)), resume=True)
    assert load_checkpoint(run / "checkpoint.pt")["progress"]["carried"] == {
        "threshold": 0.7, "region_peak": 0.98, "int8_min_stride": 8}
    # a model trained from nothing keeps nothing: it decides at the argmax, and there is no init to beat
    fresh = read_info(trainer.train(_cfg(tiny_dataset, tmp_path / "fresh", epochs=1, steps_per_epoch=1)))
    assert (fresh.threshold, fresh.region_peak, "int8_min_stride" in fresh.extra) == (0.5, None, False)
    assert load_checkpoint(tmp_path / "fresh" / "checkpoint.pt")["progress"]["init_iou"] is None


def test_a_fine_tune_that_never_beats_its_init_says_so(
    tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = trainer.train(_cfg(tiny_dataset, tmp_path / "first", epochs=1, steps_per_epoch=1))
    scores = iter([0.9, 0.5, 0.6])  # the init as it is, then two epochs worse than it
    real_validate = trainer._Trainer._validate
    monkeypatch.setattr(trainer._Trainer, "_validate",
                        lambda self: {**real_validate(self), "iou": next(scores)})
    capsys.readouterr()
    trainer.train(_cfg(tiny_dataset, tmp_path / "tuned", epochs=2, steps_per_epoch=1, init=str(first)))
    err = capsys.readouterr().err
    assert "warning: no epoch beat --init" in err
    assert "(val iou 0.6000 at best, 0.9000 before the first step, both at the argmax)" in err


def test_init_from_another_architecture_is_a_user_error(tiny_dataset: Path, tmp_path: Path) -> None:
    first = trainer.train(_cfg(tiny_dataset, tmp_path / "first", epochs=1, steps_per_epoch=1))
    with pytest.raises(FootsegError, match=r"first/best is fastlinknet width 0\.25 .* this run trains mobileseg width "
                                           r"0\.25 .*: a fine-tune trains the network it starts from \(leave --model"):
        trainer.train(_cfg(tiny_dataset, tmp_path / "run", epochs=1, steps_per_epoch=1, model="mobileseg",
                           init=str(first)))


def test_a_run_resumes_whatever_its_datasets_folder_is_called(tiny_dataset: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tiny_dataset.parent)
    run = tmp_path / "run"
    trainer.train(_cfg(Path(tiny_dataset.name), run, epochs=1, steps_per_epoch=1))
    # the same folder, spelled otherwise: the same run
    trainer.train(_cfg(Path(f"./{tiny_dataset.name}/"), run, epochs=2, steps_per_epoch=1), resume=True)
    trainer.train(_cfg(tiny_dataset, run, epochs=3, steps_per_epoch=1), resume=True)
    assert [h["epoch"] for h in json.loads((run / "history.json").read_text())] == [1, 2, 3]
    # another folder: another run
    other = tmp_path / "other"
    shutil.copytree(tiny_dataset, other)
    with pytest.raises(FootsegError, match="cannot resume with another data"):
        trainer.train(_cfg(other, run, epochs=4, steps_per_epoch=1), resume=True)


def test_a_dataset_without_val_is_refused_as_such(tiny_dataset: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(tiny_dataset, data)
    shutil.rmtree(data / "val")
    with pytest.raises(FootsegError, match=r"data: training needs train/ and val/ split folders; this dataset has no "
                                           r"val/$"):
        trainer.train(_cfg(data, tmp_path / "run", epochs=1, steps_per_epoch=1))


def test_a_dataset_failing_the_check_is_refused_before_anything_is_written(tiny_dataset: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    for split in ("train", "val"):
        for kind in ("images", "masks"):
            (broken / split / kind).mkdir(parents=True)
            for f in (tiny_dataset / split / kind).iterdir():
                (broken / split / kind / f.name).write_bytes(f.read_bytes())
    next((broken / "val" / "masks").iterdir()).unlink()
    run = tmp_path / "run"
    with pytest.raises(FootsegError, match=r"val_\d+\.jpg: .*run `footseg check"):
        trainer.train(_cfg(broken, run))
    assert not run.exists()


def test_a_flat_folder_is_refused_it_would_validate_on_training_images(tiny_dataset: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    with pytest.raises(FootsegError, match=r"train: training needs train/ and val/ split folders"):
        trainer.train(_cfg(tiny_dataset / "train", run))
    assert not run.exists()


@pytest.mark.slow
def test_without_data_training_says_what_it_needs(tmp_path: Path) -> None:
    run = tmp_path / "run"
    cfg = TrainConfig(model="fastlinknet", width=0.25, size=64, epochs=1, batch_size=2, steps_per_epoch=1)
    cfg.out, cfg.workers, cfg.progress = str(run), 0, False
    with pytest.raises(FootsegError, match="training needs --data DIR"):
        trainer.train(cfg)
    assert not run.exists()  # refused before anything was written


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_asking_for_cuda_without_it_is_a_user_error(tiny_dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(FootsegError, match="no CUDA device"):
        trainer.train(_cfg(tiny_dataset, tmp_path / "run", device="cuda"))
    assert not (tmp_path / "run").exists()


def _build_loss_killed_at(call: int):
    """``build_loss`` whose loss sends this process SIGTERM at its ``call``-th evaluation."""
    real_build_loss = trainer.build_loss

    def build_loss_that_gets_killed(name: str) -> trainer.Loss:
        loss_fn, calls = real_build_loss(name), [0]

        def loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            calls[0] += 1
            if calls[0] == call:
                os.kill(os.getpid(), signal.SIGTERM)
            return loss_fn(logits, target)

        return loss

    return build_loss_that_gets_killed


@pytest.mark.parametrize("loader_fails", [False, True])
def test_only_a_stop_every_rank_agreed_on_saves_together(tiny_dataset: Path, tmp_path: Path, loader_fails: bool,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # Under DDP a save gathers every rank's state: a rank whose own loader failed on the signal (its workers caught it)
    # must not wait in that gather for ranks still training.
    killed = _build_loss_killed_at(2)

    def build_loss(name: str) -> trainer.Loss:
        loss_fn, calls = killed(name), [0]

        def loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            value = loss_fn(logits, target)  # the second call sends SIGTERM
            calls[0] += 1
            if loader_fails and calls[0] == 2:
                raise RuntimeError("DataLoader worker (pid 1) is killed by signal: Terminated")
            return value

        return loss

    saves: list[bool] = []
    real_save = trainer._Trainer._save_checkpoint
    monkeypatch.setattr(trainer._Trainer, "_save_checkpoint",
                        lambda self, together=True: saves.append(together) or real_save(self, together))
    monkeypatch.setattr(trainer, "build_loss", build_loss)
    with pytest.raises(KeyboardInterrupt):
        trainer.train(_cfg(tiny_dataset, tmp_path / "run", epochs=1))
    assert saves == [not loader_fails]


def test_sigterm_mid_epoch_saves_a_checkpoint_and_resume_matches_an_uninterrupted_run(
    tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    reference = tmp_path / "reference"
    trainer.train(_cfg(tiny_dataset, reference))  # 2 epochs of 4 batches

    real_build_loss = trainer.build_loss
    run = tmp_path / "run"
    monkeypatch.setattr(trainer, "build_loss", _build_loss_killed_at(6))  # the second batch of epoch 2
    with pytest.raises(KeyboardInterrupt):
        trainer.train(_cfg(tiny_dataset, run))
    assert "stopped by SIGTERM at epoch 2, batch 2" in capsys.readouterr().err
    progress = load_checkpoint(run / "checkpoint.pt")["progress"]
    assert (progress["epoch"], progress["step"], progress["global_step"]) == (1, 2, 6)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is removed again

    monkeypatch.setattr(trainer, "build_loss", real_build_loss)
    trainer.train(_cfg(tiny_dataset, run), resume=True)
    assert _same(_weights(run), _weights(reference))
    assert _history_matches(run, reference)


def test_antialias_reaches_the_training_warp(tiny_dataset: Path, tmp_path: Path) -> None:
    # 64 px images warped to 32 px: the warp shrinks them, so an area filter first changes what the network sees
    runs = {flag: tmp_path / f"antialias-{flag}" for flag in (False, True)}
    for flag, run in runs.items():
        trainer.train(_cfg(tiny_dataset, run, size=32, epochs=1, antialias=flag))
    assert not _same(_weights(runs[True]), _weights(runs[False]))
    assert json.loads((runs[True] / "config.json").read_text())["antialias"] is True
    with pytest.raises(FootsegError, match="needs augmentation"):
        _cfg(tiny_dataset, tmp_path / "x", antialias=True, augment=False).validate()


def test_the_weights_do_not_depend_on_the_number_of_workers_even_across_a_resume(
    tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What lets `footseg recipe run --workers N` replace a recipe's workers, also for a stage it continues:
    # augmentation is seeded by (seed, epoch, index), whichever process loads an image.
    reference = tmp_path / "w0"
    trainer.train(_cfg(tiny_dataset, reference))
    with_workers = tmp_path / "w2"
    trainer.train(_cfg(tiny_dataset, with_workers, workers=2))
    assert _same(_weights(with_workers), _weights(reference))

    real_build_loss = trainer.build_loss
    run = tmp_path / "w0-then-w2"
    monkeypatch.setattr(trainer, "build_loss", _build_loss_killed_at(6))  # the second batch of epoch 2
    with pytest.raises(KeyboardInterrupt):
        trainer.train(_cfg(tiny_dataset, run))
    monkeypatch.setattr(trainer, "build_loss", real_build_loss)
    trainer.train(_cfg(tiny_dataset, run, workers=2), resume=True)  # the rest of epoch 2 from worker processes
    assert _same(_weights(run), _weights(reference))


def _history_matches(run: Path, reference: Path) -> bool:
    """Histories agree on every score (speed and timing fields naturally differ)."""
    a = json.loads((run / "history.json").read_text())
    b = json.loads((reference / "history.json").read_text())
    keys = ("epoch", "train_loss", "train_iou", "val_accuracy", "val_iou", "val_miou", "lr")
    return [[h[k] for k in keys] for h in a] == [[h[k] for k in keys] for h in b]


def _footseg(*args: str, **kw: object) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-m", "footseg", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_finishes_the_run(tmp_path: Path) -> None:
    # One epoch of 110 batches: the in-epoch checkpoints come at batches 50 and 100, well before the epoch ends.
    # (Resuming across an epoch boundary is covered by the SIGTERM test above.)
    data = make_procedural_dataset(tmp_path / "data", n_train=110, n_val=4, n_test=1, size=64)
    run = tmp_path / "run"
    args = ["train", "--data", str(data), "--out", str(run), "--model", "fastlinknet", "--width", "0.25"]
    args += ["--size", "64", "--epochs", "1", "--batch-size", "1", "--workers", "0", "--no-progress"]
    proc = _footseg(*args)
    deadline = time.monotonic() + 120
    while not (run / "checkpoint.pt").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no checkpoint within 120 s"
        time.sleep(0.01)
    proc.kill()
    proc.communicate()
    progress = load_checkpoint(run / "checkpoint.pt")["progress"]
    assert progress["epoch"] == 0 and progress["step"] in (50, 100), progress
    assert not (run / "history.json").exists()

    resumed = _footseg(*args, "--resume")
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert f"resuming at epoch 1, batch {progress['step']}" in out
    assert [h["epoch"] for h in json.loads((run / "history.json").read_text())] == [1]
    load_model(run / "best")
    assert load_checkpoint(run / "checkpoint.pt")["progress"]["global_step"] == 110


@pytest.mark.skipif(not hasattr(signal, "SIGCHLD"), reason="POSIX signals")
@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")  # how a handler's OSError surfaces
def test_a_stop_request_takes_a_worker_exit_that_arrives_with_it_quietly() -> None:
    # A process group's SIGTERM kills the loader's workers too: their SIGCHLD can be pending when the stop handler
    # runs (SIGTERM, 15, is handled before SIGCHLD, 17) and must neither reach the loader's handler nor raise.
    calls: list[int] = []
    def loader_handler(signum: int, frame: object) -> None:
        calls.append(signum)

    previous = signal.signal(signal.SIGCHLD, loader_handler)
    both = {signal.SIGTERM, signal.SIGCHLD}
    try:
        with trainer._StopRequest() as stop:
            signal.pthread_sigmask(signal.SIG_BLOCK, both)
            # to this thread, which blocks them: to the process, torch's threads would take them one at a time
            signal.pthread_kill(threading.get_ident(), signal.SIGTERM)
            signal.pthread_kill(threading.get_ident(), signal.SIGCHLD)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, both)  # both are handled here, in number order
            assert stop.signum == signal.SIGTERM
        assert calls == []
        assert signal.getsignal(signal.SIGCHLD) is loader_handler  # back once the stop request ends
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, both)
        signal.signal(signal.SIGCHLD, previous)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_the_whole_process_group_still_saves_a_checkpoint(tmp_path: Path, signum: int) -> None:
    # A scheduler's SIGTERM or a terminal's Ctrl-C reaches the data loader workers too, not only the trainer.
    data = make_procedural_dataset(tmp_path / "data", n_train=110, n_val=4, n_test=1, size=64)
    run = tmp_path / "run"
    args = ["train", "--data", str(data), "--out", str(run), "--model", "fastlinknet", "--width", "0.25"]
    args += ["--size", "64", "--epochs", "1", "--batch-size", "1", "--workers", "2", "--no-progress"]
    proc = _footseg(*args, start_new_session=True)
    deadline = time.monotonic() + 120
    while not (run / "checkpoint.pt").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no checkpoint within 120 s"
        time.sleep(0.01)
    os.killpg(proc.pid, signum)
    _, err = proc.communicate(timeout=120)
    name = signal.Signals(signum).name
    stopped = re.search(rf"training stopped by {name} at epoch 1, batch (\d+); checkpoint saved", err)
    assert stopped, err[-3000:]
    step = load_checkpoint(run / "checkpoint.pt")["progress"]["step"]
    assert step == int(stopped.group(1)) >= 50  # the checkpoint holds the batch the run stopped at

    resumed = _footseg(*args, "--resume")
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert f"resuming at epoch 1, batch {step}" in out


@pytest.mark.slow
def test_ddp_on_two_cpu_processes(tiny_dataset: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    cmd += ["-m", "footseg", "train", "--data", str(tiny_dataset), "--out", str(run), "--model", "fastlinknet"]
    cmd += ["--width", "0.25", "--size", "64", "--epochs", "2", "--batch-size", "2", "--workers", "0"]
    cmd += ["--device", "cpu", "--no-progress"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    history = json.loads((run / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]
    # 8 training images over 2 processes of batch 2: 2 steps per epoch each.
    assert load_checkpoint(run / "checkpoint.pt")["progress"]["global_step"] == 4
    model, info = load_model(run / "best")
    # Validation counts are all-reduced over both processes' halves of the split: the score is the whole split's.
    assert _val_iou(model, tiny_dataset) == pytest.approx(info.extra["val_iou"], abs=1e-12)
    assert done.stdout.count("epoch 1/2") == 1  # only rank 0 prints


@pytest.mark.slow
def test_ddp_stopped_mid_epoch_resumes_as_if_never_stopped(tmp_path: Path) -> None:
    # Each rank resumes its own generators (ENet's dropout draws on them) and its own share of the epoch's running
    # sums: the stopped and resumed run ends with the uninterrupted run's weights and reports its train loss and IoU.
    data = make_procedural_dataset(tmp_path / "data", n_train=240, n_val=4, n_test=1, size=64)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "footseg",
           "train", "--data", str(data), "--model", "enet", "--width", "0.25", "--size", "64", "--epochs", "1",
           "--batch-size", "1", "--workers", "0", "--device", "cpu", "--no-progress"]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    whole, run = tmp_path / "whole", tmp_path / "run"
    done = subprocess.run([*cmd, "--out", str(whole)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    proc = subprocess.Popen([*cmd, "--out", str(run)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 300
    while not (run / "checkpoint.pt").exists():  # the first one comes at batch 50 of 120
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no checkpoint within 300 s"
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGTERM)
    proc.communicate(timeout=300)
    step = load_checkpoint(run / "checkpoint.pt")["progress"]["step"]
    assert 50 <= step < 120
    resumed = subprocess.run([*cmd, "--out", str(run), "--resume"], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming at epoch 1, batch {step}" in resumed.stdout
    assert _same(_weights(run), _weights(whole))
    want, got = (json.loads((r / "history.json").read_text())[0] for r in (whole, run))
    for key in ("train_loss", "train_iou", "val_iou"):
        assert got[key] == pytest.approx(want[key], rel=1e-9), key


def test_learning_rate_warms_up_then_follows_a_cosine_to_the_floor() -> None:
    factors = [trainer._lr_factor(step, total=100, warmup=5) for step in range(101)]
    assert factors[:5] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert factors[5] == pytest.approx(1.0)
    assert all(a >= b for a, b in itertools.pairwise(factors[5:]))
    assert factors[100] == pytest.approx(trainer.MIN_LR_FACTOR)
    assert trainer._lr_factor(500, total=100, warmup=5) == pytest.approx(trainer.MIN_LR_FACTOR)


def test_ema_saves_the_moving_average_and_resumes_it(
    tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = tmp_path / "whole"
    trainer.train(_cfg(tiny_dataset, whole, epochs=1, ema=0.9))
    ckpt = load_checkpoint(whole / "checkpoint.pt")
    average = {k.removeprefix("module."): v for k, v in ckpt["ema"].items() if k.startswith("module.")}
    saved, _ = load_model(whole / "best")
    assert _same(saved.state_dict(), average)
    assert not _same(average, ckpt["model"])  # the average lags the raw weights
    # A run stopped mid-epoch resumes its average too: it ends with the same one as the uninterrupted run.
    run = tmp_path / "run"
    real_build_loss = trainer.build_loss
    monkeypatch.setattr(trainer, "build_loss", _build_loss_killed_at(3))
    with pytest.raises(KeyboardInterrupt):
        trainer.train(_cfg(tiny_dataset, run, epochs=1, ema=0.9))
    monkeypatch.setattr(trainer, "build_loss", real_build_loss)
    trainer.train(_cfg(tiny_dataset, run, epochs=1, ema=0.9), resume=True)
    assert _same(load_checkpoint(run / "checkpoint.pt")["ema"], ckpt["ema"])


def test_ema_decay_outside_zero_to_one_is_a_user_error(tiny_dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(FootsegError, match="--ema"):
        trainer.train(_cfg(tiny_dataset, tmp_path / "run", ema=1.0))
    assert not (tmp_path / "run").exists()


def _inverted_labels(data: Path, out: Path) -> Path:
    """A copy of ``data`` whose training masks say the opposite."""
    import shutil

    from PIL import Image

    shutil.copytree(data, out)
    for mask in (out / "train" / "masks").glob("*.png"):
        m = Image.open(mask)
        Image.eval(m, lambda v: 0 if v else 1).save(mask)
    return out


def test_distillation_with_full_weight_follows_the_teacher_not_the_labels(tiny_dataset: Path, tmp_path: Path) -> None:
    teacher = trainer.train(_cfg(tiny_dataset, tmp_path / "teacher", epochs=1))
    inverted = _inverted_labels(tiny_dataset, tmp_path / "inverted")
    kw = dict(epochs=1, steps_per_epoch=2, teacher=str(teacher), distill_weight=1.0, distill_anneal=False)
    trainer.train(_cfg(tiny_dataset, tmp_path / "a", **kw))
    trainer.train(_cfg(inverted, tmp_path / "b", **kw))
    assert _same(_weights(tmp_path / "a"), _weights(tmp_path / "b"))
    # Without the teacher the labels matter: the same two datasets train different weights.
    trainer.train(_cfg(tiny_dataset, tmp_path / "c", epochs=1, steps_per_epoch=2))
    trainer.train(_cfg(inverted, tmp_path / "d", epochs=1, steps_per_epoch=2))
    assert not _same(_weights(tmp_path / "c"), _weights(tmp_path / "d"))


def test_distillation_weight_is_annealed_and_recorded(tiny_dataset: Path, tmp_path: Path) -> None:
    teacher = trainer.train(_cfg(tiny_dataset, tmp_path / "teacher", epochs=1, steps_per_epoch=1))
    run = tmp_path / "student"
    trainer.train(_cfg(tiny_dataset, run, epochs=2, teacher=str(teacher), distill_weight=0.8))
    weights = [h["distill_weight"] for h in json.loads((run / "history.json").read_text())]
    assert weights[0] < 0.8 and weights[1] == pytest.approx(0.0)
    assert weights[0] > weights[1]


def test_a_teacher_with_other_classes_is_a_user_error(tiny_dataset: Path, tmp_path: Path) -> None:
    teacher = trainer.train(_cfg(tiny_dataset, tmp_path / "teacher", epochs=1, steps_per_epoch=1, num_classes=3))
    with pytest.raises(FootsegError, match="3 classes"):
        trainer.train(_cfg(tiny_dataset, tmp_path / "student", epochs=1, teacher=str(teacher)))


def test_a_prior_mask_teacher_of_an_rgb_student_is_a_user_error(tiny_dataset: Path, tmp_path: Path) -> None:
    teacher = trainer.train(_cfg(tiny_dataset, tmp_path / "teacher", epochs=1, steps_per_epoch=1, prior=True))
    with pytest.raises(FootsegError, match="takes 4 input channels, more than this run's 3"):
        trainer.train(_cfg(tiny_dataset, tmp_path / "student", epochs=1, teacher=str(teacher)))
    # the other way round is fine: an RGB teacher sees a prior-mask student's image channels
    trainer.train(_cfg(tiny_dataset, tmp_path / "prior_student", epochs=1, steps_per_epoch=1, prior=True,
                       teacher=str(trainer.train(_cfg(tiny_dataset, tmp_path / "rgb", epochs=1, steps_per_epoch=1)))))


def test_attention_transfer_changes_what_the_student_learns(tiny_dataset: Path, tmp_path: Path) -> None:
    teacher = trainer.train(_cfg(tiny_dataset, tmp_path / "teacher", epochs=1, steps_per_epoch=1))
    kw = dict(epochs=1, steps_per_epoch=2, teacher=str(teacher))
    trainer.train(_cfg(tiny_dataset, tmp_path / "kd", **kw))
    trainer.train(_cfg(tiny_dataset, tmp_path / "at", attention_weight=1000.0, **kw))
    assert not _same(_weights(tmp_path / "kd"), _weights(tmp_path / "at"))
    with pytest.raises(FootsegError, match="needs a --teacher"):
        trainer.train(_cfg(tiny_dataset, tmp_path / "alone", attention_weight=1000.0))


def test_a_prior_run_from_a_still_image_model_saves_a_four_channel_model(tiny_dataset: Path, tmp_path: Path,
                                                                         saved_model: Path) -> None:
    cfg = _cfg(tiny_dataset, tmp_path / "run", epochs=1, steps_per_epoch=1, prior=True, init=str(saved_model))
    best = trainer.train(cfg)
    model, info = load_model(best)
    assert info.in_channels == 4 and model(torch.rand(1, 4, 64, 64)).shape == (1, 2, 64, 64)
    assert info.extra["train_config"]["prior"] is True
    with pytest.raises(FootsegError, match="has a prior input but this run trains without --prior"):
        trainer.train(_cfg(tiny_dataset, tmp_path / "again", epochs=1, steps_per_epoch=1, init=str(best)))


def test_self_priors_replace_the_fake_ones_with_the_networks_own_output(tiny_dataset: Path, tmp_path: Path) -> None:
    cfg = _cfg(tiny_dataset, tmp_path / "run", epochs=1, steps_per_epoch=1, prior=True, self_prior=1.0)
    run = trainer._Trainer(cfg, tmp_path / "run", tiny_dataset, torch.device("cpu"), trainer._Dist(), resume=False)
    images = torch.rand(3, 4, 64, 64)
    mixed = run._own_priors(images, step=0)
    assert torch.equal(mixed[:, :3], images[:, :3]) and not torch.equal(mixed[:, 3], images[:, 3])
    assert float(mixed[:, 3].min()) >= 0.0 and float(mixed[:, 3].max()) <= 1.0
    assert not mixed.requires_grad  # a constant input: the loss must not train the network through its own prior
    assert torch.equal(mixed, run._own_priors(images, step=0))  # reproducible, so a resumed run replays it
    with pytest.raises(FootsegError, match="needs --prior"):
        _cfg(tiny_dataset, tmp_path / "x", self_prior=0.5).validate()


def test_a_stopped_cli_train_says_how_to_continue_and_a_finished_run_is_not_trained_again(
    tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from footseg.cli import main

    run = tmp_path / "run"
    argv = ["train", "--model", "fastlinknet", "--width", "0.25", "--size", "64", "--epochs", "2", "--batch-size", "2",
            "--workers", "0", "--no-progress", "--data", str(tiny_dataset), "--out", str(run)]
    real_build_loss = trainer.build_loss
    monkeypatch.setattr(trainer, "build_loss", _build_loss_killed_at(3))
    monkeypatch.setattr(sys, "argv", [".venv/bin/footseg", *argv])  # as the README runs it, not on PATH
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert main(argv) == 130
    err = capsys.readouterr().err
    # the command to copy is the one that was typed
    assert f"continue with: .venv/bin/footseg train --out {run} --resume" in err and "footseg: interrupted" in err
    monkeypatch.setattr(trainer, "build_loss", real_build_loss)
    assert main([*argv, "--resume"]) == 0
    assert main([*argv, "--resume"]) == 0  # finished: says so, and trains no epoch 3 of 2
    out = capsys.readouterr().out.split("best model:")[-2]  # what the second resume said
    assert f"{run}: trained before, all 2 epochs (best val IoU" in out and "epoch 3" not in out


def test_a_stop_asked_for_while_the_last_epoch_is_saved_finishes_the_run(tiny_dataset: Path, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch,
                                                                          capsys: pytest.CaptureFixture) -> None:
    # Ctrl-C as the last epoch is scored and saved: the run is complete and says so, not a stop to resume; the stop
    # still stops what called it (a recipe's next stage)
    from footseg.cli import main

    real_end_epoch = trainer._Trainer._end_epoch

    def end_epoch_then_ctrl_c(self: trainer._Trainer) -> None:
        real_end_epoch(self)
        if self.state.epoch == self.cfg.epochs:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(trainer._Trainer, "_end_epoch", end_epoch_then_ctrl_c)
    run = tmp_path / "run"
    with pytest.raises(trainer.StopAfterTheRun, match="SIGINT came after the last epoch: the run is complete"):
        trainer.train(_cfg(tiny_dataset, run, steps_per_epoch=1))
    assert (run / "best" / "config.json").is_file()
    assert load_checkpoint(run / "checkpoint.pt")["progress"]["epoch"] == 2
    assert "stopped by" not in capsys.readouterr().err
    argv = ["train", "--data", str(tiny_dataset), "--out", str(tmp_path / "cli"), "--model", "fastlinknet", "--width",
            "0.25", "--size", "64", "--epochs", "1", "--batch-size", "2", "--steps-per-epoch", "1", "--workers", "0",
            "--no-progress"]
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert "the run is complete" in err and "--resume" not in err and "footseg: interrupted" in err

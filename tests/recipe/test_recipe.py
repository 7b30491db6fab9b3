"""Recipes: the file is checked key by key (every problem is one line naming the file), ``--dry-run`` lists the
stages, and ``footseg recipe run`` makes a model from nothing into one folder, skips what is done, continues what
was interrupted and refuses what was made otherwise.

The end-to-end recipe is tiny (a 12-image render at 64 px, two 2-step training stages of a width-0.25 FastLinkNet,
its threshold, ONNX fp32 and int8 exports): it checks the plumbing, not the model.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import itertools
import json
import re
import shutil
import subprocess
import threading
import time
import types
from pathlib import Path

import cv2
import numpy as np
import pytest

from footseg.cli import main
from footseg.config import TrainConfig
from footseg.deploy.quantize import MIN_STRIDE_KEY
from footseg.errors import FootsegError
from footseg.eval.evaluate import THRESHOLDS, threshold_ious
from footseg.one_writer import one_writer
from footseg.recipe import runner as runner_module
from footseg.recipe.runner import RecipeRun
from footseg.recipe.schema import KEYS, TRAIN_LAUNCH, TRAIN_RUNTIME, describe, find_recipe, parse_recipe
from footseg.runtime.onnx_model import OnnxModel
from footseg.runtime.predictor import Predictor

TINY = """\
[recipe]
name = "tiny"
description = "A 12-image render, two short training stages and an ONNX export."

[defaults.train]
model = "fastlinknet"
width = 0.25
num_classes = 2
size = 64
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
seed = 41
n = 12
size = 64

[[stage]]
kind = "train"
name = "first"
data = "synth"
epochs = 1

[[stage]]
kind = "train"
name = "second"
data = "synth"
init = "first"
epochs = 2
lr = 0.001

[[stage]]
kind = "threshold"
name = "point"
model = "second"
data = "synth"

[[stage]]
kind = "export"
name = "onnx"
model = "point"
format = "onnx"

[[stage]]
kind = "export"
name = "int8"
model = "point"
format = "onnx-int8"
calib = "synth"
calib_n = 4
min_stride = 8
"""


# One stage, no render: a recipe that runs without OpenGL in a second or two.
PRUNE_ONLY = """\
[recipe]
name = "pruned"

[[stage]]
kind = "prune"
name = "p"
model = "shipped:fastlinknet"
ratio = 0.25
multiple = 8
importance = "l1"
"""


def _write(tmp_path: Path, text: str = TINY, name: str = "tiny.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- the file ----------------------------------------------------------------------------------------------------


def test_a_good_file(tmp_path: Path) -> None:
    recipe = parse_recipe(_write(tmp_path))
    assert [(s.kind, s.name) for s in recipe.stages] == [("render", "synth"), ("train", "first"),
                                                         ("train", "second"), ("threshold", "point"),
                                                         ("export", "onnx"), ("export", "int8")]
    assert recipe.result == "point"  # the last model made, when [recipe] names none
    assert recipe.stage("point").refs() == ["second", "synth"]
    second = recipe.stage("second").settings
    assert second["lr"] == 0.001 and second["batch_size"] == 2 and second["init"] == "first"  # stage over defaults
    assert second["teacher"] is None and second["freeze_bn"] is False
    render = recipe.stage("synth").settings
    assert render["floors"] is False and render["without"] == [] and render["seated_prob"] == 0.2
    assert recipe.stage("second").refs() == ["synth", "first"]
    assert recipe.text == TINY


def _replace(old: str, new: str) -> str:
    assert old in TINY
    return TINY.replace(old, new, 1)


BAD = {
    "unknown key": (_replace("epochs = 1\n", "epochs = 1\nlrr = 0.1\n"),
                    "stage 'first': unknown key 'lrr' (train stages take: data, init"),
    "unknown key in defaults": (_replace("workers = 0\n", "workers = 0\nbatch = 4\n"),
                                "[defaults.train]: unknown key 'batch'"),
    "unknown stage reference": (_replace('init = "first"', 'init = "frist"'),
                                "stage 'second': init refers to unknown stage 'frist'"),
    "reference to a later stage": (_replace('data = "synth"\nepochs = 1', 'data = "synth"\nepochs = 1\ninit = '
                                            '"second"'), "stage 'first': init 'second' is a stage after it"),
    "reference to itself": (_replace('init = "first"', 'init = "second"'), "stage 'second': init names the stage "
                                                                            "itself"),
    "reference to the wrong kind": (_replace('data = "synth"\ninit', 'data = "first"\ninit'),
                                    "stage 'second': data 'first' is a train stage; it must name a render or merge"),
    "unknown shipped model": (_replace('init = "first"', 'init = "shipped:nope"'),
                              "stage 'second': init 'shipped:nope': no such shipped model"),
    "bad type": (_replace("lr = 0.001", 'lr = "fast"'), "stage 'second': lr must be a number, got a string 'fast'"),
    "integer for a boolean": (_replace("augment = true", "augment = 1"),
                              "[defaults.train]: augment must be true or false, got an integer 1"),
    "number for an integer": (_replace("epochs = 2", "epochs = 2.5"),
                              "stage 'second': epochs must be an integer, got a number 2.5"),
    "missing key": (_replace("lr = 0.002\n", ""), "stage 'first': missing key 'lr' (set it in the stage or in "
                                                  "[defaults.train])"),
    "bad choice": (_replace('loss = "ce+iou"', 'loss = "dice"'), "[defaults.train]: loss 'dice' is not one of"),
    "unknown ingredient": (_replace("seed = 41\n", 'seed = 41\nwithout = ["sky"]\n'),
                           "stage 'synth': without 'sky' is not one of: distractors"),
    "bad value": (_replace("epochs = 1\n", "epochs = 1\nsize = 50\n"),
                  "stage 'first': size must be a multiple of 32 from 32 to 4096, got 50"),
    "unknown kind": (_replace('kind = "export"', 'kind = "bake"'), "stage 'onnx': kind 'bake' is not one of"),
    "two stages, one name": (_replace('name = "second"', 'name = "first"'), "stage 'first': two stages have this name"),
    "reserved name": (_replace('name = "onnx"', 'name = "model"'), "stage 'model': a name is letters"),
    "int8 without calibration": (_replace('format = "onnx"\n', 'format = "onnx-int8"\n'),
                                 "stage 'onnx': format 'onnx-int8' needs calib"),
    "int8 setting on fp32": (_replace('format = "onnx"\n', 'format = "onnx"\ncalib = "synth"\n'),
                             "stage 'onnx': calib: only for format 'onnx-int8'"),
    "unknown top-level table": (TINY + "\n[extra]\nx = 1\n", "top-level key 'extra': unknown"),
    "stage as a table": (TINY.replace("[[stage]]", "[stage.x]", 1).split("[[stage]]")[0],
                         "stage: must be an array of tables"),
    "unknown result": (_replace('description = "', 'result = "synth"\ndescription = "'),
                       "[recipe]: result 'synth' is not a train, prune, select or threshold stage"),
    "not TOML": (TINY + "\nlr = = 3\n", "not valid TOML"),
    "size the network cannot take": (_replace('model = "second"\n', 'model = "second"\nsizes = [64, 80]\n'),
                                     "stage 'point': sizes must be distinct multiples of 32 from 32 to 4096, got "
                                     "[64, 80]"),
    "sizes not integers": (_replace('model = "second"\n', 'model = "second"\nsizes = ["64"]\n'),
                           "stage 'point': sizes must be an array of integers, got an array"),
    "region peak out of range": (_replace('model = "second"\n', 'model = "second"\nregion_peaks = [0.9, 1]\n'),
                                 "stage 'point': region_peaks must be distinct numbers between 0 and 1, got "
                                 "[0.9, 1.0]"),
    "region peaks not numbers": (_replace('model = "second"\n', 'model = "second"\nregion_peaks = ["0.9"]\n'),
                                 "stage 'point': region_peaks must be an array of numbers, got an array"),
    "presence repeated": (_replace('model = "second"\n', 'model = "second"\npresences = [0.9, 0.9]\n'),
                          "stage 'point': presences must be distinct numbers between 0 and 1, got [0.9, 0.9]"),
    "processes that do not split the batch": (_replace("epochs = 1\n", "epochs = 1\nprocs = 3\n"),
                                              "stage 'first': procs must be at least 1 and divide batch_size 2 "
                                              "(got 3)"),
    "presence out of range": (_replace('model = "second"\n', 'model = "second"\npresences = [0.5, 1.0]\n'),
                              "stage 'point': presences must be distinct numbers between 0 and 1, got [0.5, 1.0]"),
    "blob cap out of range": (_replace('model = "second"\n', 'model = "second"\nmax_blob_rate = 1\n'),
                              "stage 'point': max_blob_rate must be at least 0 and below 1, got 1"),
    # refused before any training, not at the export stage hours later
    "opset torch cannot write": (_replace('format = "onnx"\n', 'format = "onnx"\nopset = 21\n'),
                                 "stage 'onnx': opset must be 13 to 20, got 21"),
    "no calibration images": (_replace("calib_n = 4", "calib_n = 0"),
                              "stage 'int8': calib_n must be at least 1, got 0"),
    # named as the recipe names it, not as `footseg train` does (--batch-size)
    "batch of none": (_replace("batch_size = 2", "batch_size = 0"),
                      "stage 'first': batch_size must be at least 1, got 0"),
    # a shrunk recipe: found before any stage runs, not when training first validates
    "render without a val split": (_replace("n = 12", "n = 8"),
                                   "stage 'first': data 'synth' would have no val images: a render's val split gets "
                                   "every tenth image, from image 9 on (synth: n 8); give a render n of at least 9"),
    # a fine-tune of another network, refused before the stages before it run (the trainer refuses it only then)
    "fine-tune of another network": (_replace("init = \"first\"\n", "init = \"first\"\nwidth = 0.5\n"),
                                     "stage 'second': init 'first' is fastlinknet width 0.25 with 2 classes, where "
                                     "the stage trains fastlinknet width 0.5 with 2 classes"),
    "fine-tune of a shipped model of another network": (
        _replace('init = "first"', 'init = "shipped:fastlinknet_ctx"'),
        "stage 'second': init 'shipped:fastlinknet_ctx' is fastlinknet_ctx width 1 with 2 classes, where the stage "
        "trains fastlinknet width 0.25"),
    # the trainer would cap it at one pass, and the plan and the card state a schedule that was not trained
    "more steps than one pass": (_replace("epochs = 1\n", "epochs = 1\nsteps_per_epoch = 6\n"),
                                 "stage 'first': steps_per_epoch 6 is more than one pass over 'synth''s 10 training "
                                 "images (5 batches of 2): an epoch is at most one pass; set it to at most 5, or 0"),
    "two exports of one file": (_replace('format = "onnx"\n', 'format = "onnx"\n\n[[stage]]\nkind = "export"\n'
                                         'name = "onnx18"\nmodel = "point"\nformat = "onnx"\nopset = 18\n'),
                                "stage 'onnx18': stage 'onnx' exports the result 'point' as onnx already"),
    "side too large": (_replace('model = "second"\n', 'model = "second"\nsizes = [8192]\n'),
                       "stage 'point': sizes must be distinct multiples of 32 from 32 to 4096, got [8192]"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_each_error_is_one_line_naming_the_file_and_the_problem(case: str, tmp_path: Path) -> None:
    text, problem = BAD[case]
    path = _write(tmp_path, text)
    with pytest.raises(FootsegError) as caught:
        parse_recipe(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert problem in message, message


def test_two_exports_of_a_model_that_is_not_the_result_are_two_files(tmp_path: Path) -> None:
    # each export stage writes its own folder; only the result's go into one model folder
    text = TINY + '\n[[stage]]\nkind = "export"\nname = "s17"\nmodel = "second"\nformat = "onnx"\n' \
                  '\n[[stage]]\nkind = "export"\nname = "s18"\nmodel = "second"\nformat = "onnx"\nopset = 18\n'
    recipe = parse_recipe(_write(tmp_path, text))
    assert [s.settings["opset"] for s in recipe.stages if s.name in ("s17", "s18")] == [17, 18]


def test_errors_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = _write(tmp_path, BAD["unknown key"][0])
    assert main(["recipe", "run", str(path), "--out", str(tmp_path / "run"), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"footseg: error: {path}: {BAD['unknown key'][1]}")
    assert not (tmp_path / "run").exists()
    assert main(["recipe", "run", "fastlinknet_cxt", "--dry-run"]) == 2  # a typo: the names it could have meant
    assert "recipe not found (a .toml file, or the name of a shipped model with a recipe: fastlinknet, " \
           "fastlinknet_ctx; default: fastlinknet_ctx's)" in capsys.readouterr().err
    assert main(["recipe", "run", str(tmp_path), "--dry-run"]) == 2
    assert f"{tmp_path}: is a folder: give the recipe's .toml file" in capsys.readouterr().err


def test_every_training_setting_is_a_recipe_key() -> None:
    """A setting added to TrainConfig must be added to the recipe schema too: a train stage lists them all."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    assert set(KEYS["train"]) - set(TRAIN_LAUNCH) | set(TRAIN_RUNTIME) == fields | {"data", "init", "teacher"}
    assert set(KEYS["train"]) - {"workers", "freeze_bn"} >= set(TrainConfig.IDENTITY) - {"data", "init", "teacher",
                                                                                          "freeze_bn"}


def test_the_schema_agrees_with_the_exporters_and_pruning() -> None:
    from footseg.compress.prune import IMPORTANCE
    from footseg.deploy.export import DEFAULT_OPSET
    from footseg.deploy.quantize import CALIB_METHODS, DEFAULT_MIN_STRIDE

    export = KEYS["export"]
    assert export["opset"].default == DEFAULT_OPSET and export["min_stride"].default == DEFAULT_MIN_STRIDE
    assert set(export["calib_method"].choices) == set(CALIB_METHODS) and export["calib_n"].default == 64
    assert set(KEYS["prune"]["importance"].choices) == set(IMPORTANCE)


# --- the shipped model's recipe ----------------------------------------------------------------------------------


def test_the_shipped_recipe_says_what_its_card_says() -> None:
    path = find_recipe("fastlinknet")
    recipe = parse_recipe(path)
    card = (path.parent / "MODEL_CARD.md").read_text()
    trained = json.loads(card.split("## Training settings")[1].split("```json")[1].split("```")[0])
    final = recipe.stage(recipe.result).settings
    for key in ("model", "width", "num_classes", "size", "epochs", "batch_size", "lr", "weight_decay", "loss",
                "seed", "steps_per_epoch", "ema", "distill_weight", "distill_temperature", "distill_anneal",
                "attention_weight"):
        assert final[key] == trained[key], key
    assert final["white_balance"] == trained.get("white_balance", 0.0) == 0.0  # (a setting of later recipes)
    assert final["teacher"] is None and recipe.stage(final["init"]).name == "seat"
    renders = {s.name: s.settings for s in recipe.stages if s.kind == "render"}
    assert {n: (s["seed"], s["n"]) for n, s in renders.items()} == {
        "synth10k": (7, 10000), "synthv2": (11, 12000), "synthv3": (13, 12000), "synthv4": (17, 12000),
        "synthv5": (19, 12000), "synthv6": (23, 12000), "synthv7": (29, 12000)}
    assert [n for n, s in renders.items() if "seated" not in s["without"]] == ["synthv6", "synthv7"]
    assert recipe.stage("synth4567").settings["sources"] == ["synthv4", "synthv5", "synthv6", "synthv7"]
    kd = recipe.stage("kd").settings
    assert (kd["teacher"], kd["ema"], kd["data"]) == ("v3", 0.998, "synth45")
    pruned = recipe.stage("pruned").settings
    assert (pruned["model"], pruned["ratio"], pruned["multiple"], pruned["importance"]) == ("v3", 0.25, 8, "l1")
    chain, stage = [], recipe.result
    while stage:
        chain.append(stage)
        made = recipe.stage(stage)
        stage = made.settings["init"] if made.kind == "train" else made.settings["model"]
    assert chain == ["final", "seat", "kd", "p25", "pruned", "v3", "v2", "base"]


def test_the_default_models_recipe_made_its_weights() -> None:
    # fastlinknet_ctx's weights are its recipe's result: config.json records the settings the recipe trained with.
    path = find_recipe("fastlinknet_ctx")
    assert find_recipe("default") == path  # as every verb takes the default model
    recipe = parse_recipe(path)
    config = json.loads((path.parent / "config.json").read_text())
    result = recipe.stage(recipe.result)  # the trained network at the operating point chosen on validation images
    trained, final = config["extra"]["train_config"], recipe.stage(result.settings["model"]).settings
    # the operating point is chosen on validation images of the scenes its network was trained on: a render made as
    # its first training render is, at more detail (a phone's frames hold more than the renders' 256 px)
    assert result.kind == "threshold" and 0.5 < config["threshold"] < 1
    chosen_on, rendered_as = recipe.stage(result.settings["data"]), recipe.stage("r1")
    assert chosen_on.kind == rendered_as.kind == "render" and chosen_on.settings["size"] > rendered_as.settings["size"]
    assert {k for k, v in chosen_on.output_settings().items() if rendered_as.settings[k] != v} == {"seed", "n", "size"}
    # it runs at the side its threshold stage chose, up to the 288 px whose cost stays under MediaPipe's
    assert config["input_size"][0] == config["input_size"][1] in result.settings["sizes"]
    assert max(result.settings["sizes"]) == 288
    # trained from scratch at 192 px on 256 px renders, then tuned at the side it runs at on the detailed render's kind
    assert trained["size"] == config["input_size"][0] == 288 and trained["antialias"]
    assert final["init"] is not None and recipe.stage(final["init"]).settings["size"] == 192
    for key in ("model", "width", "num_classes", "size", "epochs", "batch_size", "lr", "weight_decay", "loss",
                "seed", "steps_per_epoch", "ema", "augment", "antialias", "prior"):
        assert final[key] == trained[key], key
    assert final["white_balance"] == trained.get("white_balance", 0.0) == 0.0  # (a setting of later recipes)
    assert final["teacher"] is None and trained["data"].endswith(f"/{final['data']}")
    first = final  # a fine-tune's chain goes back to a network trained from scratch, on no shipped model
    while first["init"] is not None:
        first = recipe.stage(first["init"]).settings
        assert first["teacher"] is None
    assert first["model"] == final["model"]
    assert config["extra"][MIN_STRIDE_KEY] == recipe.stage("onnx-int8").settings["min_stride"] == 8
    assert f"```toml\n{path.read_text()}" in (path.parent / "MODEL_CARD.md").read_text()


def test_dry_run_prints_the_stages_and_does_nothing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    assert main(["recipe", "run", "fastlinknet", "--out", str(out), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    recipe = parse_recipe(find_recipe("fastlinknet"))
    assert len(lines) == 1 + len(recipe.stages) + 2  # header, a line per stage, the two input folders
    for line, stage in zip(lines[1:], recipe.stages, strict=False):
        assert re.match(rf"\s*{stage.index}\. {stage.kind}\s+{re.escape(stage.name)}\s", line), line
    text = "\n".join(lines)
    assert "12000 images, seed 17, 256 px, --floors, --find, without seated" in text
    assert "teacher v3 (T 4, weight 0.5 annealed)" in text and "12 epochs x 200 steps" in text
    assert "v3: 25% of the channels" in text and "calibrated on synthv4" in text
    assert "--floors: not given (read by synth10k" in text
    assert main(["recipe", "run", "fastlinknet", "--dry-run", "--floors", str(tmp_path / "flors"), "--find",
                 str(tmp_path)]) == 0  # a plan shows what a run would refuse
    text = capsys.readouterr().out
    assert f"--floors: {tmp_path / 'flors'} (no such folder: a run refuses it) (read by synth10k" in text
    assert f"--find: {tmp_path} (read by" in text
    assert not out.exists()
    assert main(["recipe", "run", "fastlinknet", "--dry-run"]) == 0  # no --out needed to look
    assert main(["recipe", "run", "fastlinknet"]) == 2
    assert "needs --out" in capsys.readouterr().err


def test_missing_input_folders_are_refused_before_anything_runs(tmp_path: Path) -> None:
    recipe = parse_recipe(_write(tmp_path, _replace("seed = 41\n", "seed = 41\nfloors = true\n")))
    with pytest.raises(FootsegError, match=r"renders synth read --floors DIR \(floor photos\): give it to `footseg "
                       r"recipe run`"):
        RecipeRun(recipe, tmp_path / "run").run()
    with pytest.raises(FootsegError, match="give it to `footseg study`"):  # the verb the user typed
        RecipeRun(recipe, tmp_path / "run", verb="footseg study").run()
    with pytest.raises(FootsegError, match="folder not found"):
        RecipeRun(recipe, tmp_path / "run", floors=tmp_path / "nowhere").run()
    # folders that hold the wrong things (the two swapped): refused before a render fails on them and leaves a folder
    # that the corrected command would refuse as made with other settings
    floors, find = tmp_path / "floors", tmp_path / "find"
    (floors / "train").mkdir(parents=True)
    find.mkdir()
    (find / "template.obj").write_text("v 0 0 0\n")
    with pytest.raises(FootsegError) as caught:
        RecipeRun(recipe, tmp_path / "run", floors=find).run()
    assert str(caught.value) == f"{find}: --floors folder: no floor photos (.jpg/.jpeg/.png) found"
    both = parse_recipe(_write(tmp_path, _replace("seed = 41\n", "seed = 41\nfloors = true\nfind = true\n"),
                               name="both.toml"))
    cv2.imwrite(str(floors / "train" / "wood.jpg"), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(FootsegError) as caught:
        RecipeRun(both, tmp_path / "run", floors=floors, find=floors).run()
    assert str(caught.value) == f"{floors}: --find folder: FIND model folder lacks template.obj"
    assert not (tmp_path / "run").exists()


def test_a_plan_without_the_input_folders_does_not_call_a_render_changed(tmp_path: Path) -> None:
    recipe = parse_recipe(_write(tmp_path, _replace("seed = 41\n", "seed = 41\nfloors = true\n")))
    floors = tmp_path / "floors"
    floors.mkdir()
    made = RecipeRun(recipe, tmp_path / "run", floors=floors)
    stage = recipe.stage("synth")
    made.folder(stage).mkdir(parents=True)
    (made.folder(stage) / "manifest.json").write_text("{}")
    made.write_stamp(stage, {"version": 1, "stage": "synth", "kind": "render", "state": "done",
                             "settings": made.stamp_settings(stage), "inputs": {}})

    def render_line(floors_given: Path | None) -> str:
        return RecipeRun(recipe, tmp_path / "run", floors=floors_given).plan()[1]

    incomplete = "[done, but its folder lacks some of what it made: a run continues it]"  # no images in it
    assert render_line(None).endswith(incomplete)  # `--dry-run` with no --floors: the folder it was made with
    assert f"--floors: not given; made with {floors.resolve()} (read by synth)" in \
        RecipeRun(recipe, tmp_path / "run").plan()
    assert render_line(floors).endswith(incomplete)
    assert render_line(tmp_path).endswith("[made with other settings: a run refuses it until its folder is deleted]")


def test_workers_from_the_command_line_replace_the_recipes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture) -> None:
    """`--workers N` sets every render's and data loader's processes (no output depends on them; schema.NOT_OUTPUT)."""
    from footseg.data import synth
    from footseg.train import trainer

    path = _write(tmp_path)
    recipe = parse_recipe(path)
    seen: dict[str, int] = {}
    monkeypatch.setattr(synth, "synthesize", lambda folder, settings, workers, **kw: seen.update(render=workers))
    monkeypatch.setattr(trainer, "train", lambda cfg, resume=False: seen.update(train=cfg.workers))
    monkeypatch.setattr(runner_module, "gl_strings", lambda: {})  # no OpenGL context needed to pass a number on
    for workers, expected in ((None, {"render": 1, "train": 0}), (3, {"render": 3, "train": 3})):
        seen.clear()
        run = RecipeRun(recipe, tmp_path / "run", device="cpu", workers=workers)
        run._render(recipe.stage("synth"))
        run._train(recipe.stage("first"))
        assert seen == expected  # the recipe's (render default 1, [defaults.train] 0), or the command line's
    for how in ([], ["--dry-run"]):
        assert main(["recipe", "run", str(path), "--out", str(tmp_path / "refused"), "--workers", "0", *how]) == 2
        assert "--workers must be at least 1 (got 0)" in capsys.readouterr().err
    assert not (tmp_path / "refused").exists()


def test_procs_trains_in_that_many_cpu_processes_and_a_gpu_in_one(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """`procs` changes the weights (BatchNorm sees each process's share of a batch): a recipe setting, stamped, not a
    command-line choice; on a GPU the stage runs in one process and its stamp says so."""
    from footseg.runtime import device
    from footseg.train import processes

    path = tmp_path / "procs.toml"
    path.write_text(_replace("epochs = 1\n", "epochs = 1\nprocs = 2\n"))
    recipe = parse_recipe(path)
    first = recipe.stage("first")
    assert "batch 2" in describe(first) and describe(first).endswith("2 processes on a CPU")
    assert "processes" not in describe(recipe.stage("second"))
    seen: list[tuple[int, int]] = []
    monkeypatch.setattr(processes, "train_processes", lambda cfg, procs, resume=False: seen.append((procs,
                                                                                                  cfg.batch_size)))
    run = RecipeRun(recipe, tmp_path / "run", device="cpu")
    assert run.stamp_settings(first)["procs"] == 2  # what the output depends on
    assert run._train(first)["processes"] == 2
    assert seen == [(2, 2)]  # the step's batch: the launcher splits it
    monkeypatch.setattr(device, "resolve_device", lambda name: "cuda")
    monkeypatch.setattr(runner_module, "device_name", lambda name: name)
    lines: list[str] = []
    assert RecipeRun(recipe, tmp_path / "gpu", device="cuda", log=lines.append)._train(first)["processes"] == 1
    assert seen[-1] == (1, 2)
    assert lines == ["first: one process on the GPU, where the recipe's 2 are for a CPU"]


# --- running it ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def egl() -> None:
    # The probe makes an OpenGL context current in this process, which leaves a renderer cached here by an earlier
    # test drawing into nothing; the tiny recipe's render settings (seed 41) are its own, so it gets a fresh one.
    from footseg.data.synth.render import headless_gl_problem

    problem = headless_gl_problem()
    if problem:
        pytest.skip(f"no headless OpenGL (EGL) context here: {problem}")


class _Log(list):
    def __call__(self, line: str) -> None:
        self.append(line)

    def of(self, stage: str) -> list[str]:
        return [line.split(": ", 1)[1] for line in self if re.match(rf"\[\d+/\d+\] \w+ {stage}:", line)]


@pytest.fixture(scope="module")
def tiny_run(egl, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The tiny recipe run once, interrupted after the first epoch of stage 'second', then run again to the end."""
    from footseg.train import trainer

    root = tmp_path_factory.mktemp("recipe")
    path, out = _write(root), root / "run"
    original = trainer._Trainer._end_epoch

    def stop_after_an_epoch_of_second(self: trainer._Trainer) -> None:
        original(self)
        if Path(self.cfg.out).name == "second":
            raise KeyboardInterrupt("stopped by the test")

    # The runner's clock: every stage run takes exactly 100 s (one reading before it, one after).
    clock = types.SimpleNamespace(perf_counter=itertools.count(0.0, 100.0).__next__)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runner_module, "time", clock)
        patch.setattr(runner_module, "STAMP_EVERY_S", 1e9)  # the stamp's clock would read the fake one too
        with pytest.MonkeyPatch.context() as stop:
            stop.setattr(trainer._Trainer, "_end_epoch", stop_after_an_epoch_of_second)
            log = _Log()
            with pytest.raises(KeyboardInterrupt):
                RecipeRun(parse_recipe(path), out, device="cpu", log=log).run()
        assert log.of("second")[-1].startswith("stopped")
        stopped = json.loads((out / "stamps" / "second.json").read_text())
        assert (stopped["state"], stopped["seconds"]) == ("started", 100.0)  # the time it spent is kept
        assert len(json.loads((out / "second" / "history.json").read_text())) == 1

        log = _Log()
        RecipeRun(parse_recipe(path), out, device="cpu", log=log).run()
    assert log.of("synth") == log.of("first") == ["done before, skipped"]
    assert log.of("second")[0] == "continuing an unfinished stage"
    assert json.loads((out / "stamps" / "second.json").read_text())["seconds"] == 200.0  # both runs' time
    assert log.of("onnx")[0].startswith("point -> onnx")
    return path, out


def test_a_run_makes_every_stage_and_the_model_folder(tiny_run: tuple[Path, Path]) -> None:
    _, out = tiny_run
    history = json.loads((out / "second" / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]  # the interrupted stage resumed at epoch 2, not from scratch
    assert sorted(p.name for p in (out / "model").iterdir()) == [
        "MODEL_CARD.md", "config.json", "model.int8.onnx", "model.onnx", "model.safetensors", "recipe.toml"]
    assert (out / "model" / "model.safetensors").read_bytes() == (out / "second" / "best" /
                                                                 "model.safetensors").read_bytes()
    assert (out / "model" / "recipe.toml").read_text() == TINY
    config = json.loads((out / "model" / "config.json").read_text())
    assert config["extra"]["train_config"]["init"] == str(out / "first" / "best")
    # later int8 exports of the result (footseg export, the web page, bench) make the recipe's int8 file
    assert config["extra"][MIN_STRIDE_KEY] == parse_recipe(out / "model" / "recipe.toml").stage("int8").settings[
        "min_stride"]
    # the threshold stage: the trained weights, with the operating point that scored best on the validation split
    choice = json.loads((out / "point" / "choice.json").read_text())
    assert list(choice["val_iou"]) == [f"{t:.2f}" for t in THRESHOLDS]
    assert choice["val_iou"][f"{choice['chosen']:.2f}"] == max(choice["val_iou"].values())
    assert config["threshold"] == choice["chosen"] == OnnxModel(out / "model" / "model.int8.onnx").info.threshold
    assert config["input_size"] == [64, 64] and "size" not in choice  # no sizes: it runs where it was trained
    # the digest later stages record of it, as runs from before sizes existed wrote it (they still resume)
    weights = hashlib.sha256((out / "point" / "model.safetensors").read_bytes()).hexdigest()
    assert json.loads((out / "stamps" / "onnx.json").read_text())["inputs"]["point"] == (
        f"{weights} threshold {choice['chosen']:g}")
    # the result's exports carry the folder's config, int8 split included (the export stages ran before it had it): its
    # model.onnx is what `footseg export` makes of the folder, byte for byte, so the card's sha256 holds after one
    from footseg.deploy.export import export_onnx

    again = export_onnx(out / "model", out.parent / "again.onnx")
    assert again.read_bytes() == (out / "model" / "model.onnx").read_bytes()
    assert OnnxModel(out / "model" / "model.int8.onnx").info.extra[MIN_STRIDE_KEY] == config["extra"][MIN_STRIDE_KEY]
    # the threshold stage scored the weights in PyTorch; the result runs its own export
    scores = threshold_ious(Predictor(out / "model", runtime="torch"), out / "synth")
    assert {f"{t:.2f}": v for t, v in scores.items()} == choice["val_iou"]
    assert Predictor(out / "model").runtime == "onnx"
    for name in ("synth", "first", "second", "point", "onnx", "int8"):
        stamp = json.loads((out / "stamps" / f"{name}.json").read_text())
        assert stamp["state"] == "done" and stamp["environment"]["footseg"]


def test_the_card_records_recipe_versions_and_data(tiny_run: tuple[Path, Path]) -> None:
    from footseg.recipe.environment import gl_strings

    _, out = tiny_run
    card = (out / "model" / "MODEL_CARD.md").read_text()
    assert "```toml\n" + TINY in card
    assert f"| torch | {importlib.metadata.version('torch')} |" in card
    assert f"| onnxruntime | {importlib.metadata.version('onnxruntime')} |" in card
    assert "| training processes | 1 |" in card  # the tiny recipe's train stages leave procs at its default
    gl = gl_strings()
    assert gl["GL_RENDERER"] in card and gl["GL_VERSION"] in card
    if "mesa" in gl:
        assert f"| Mesa (renders) | {gl['mesa']} |" in card
    manifest_sha = hashlib.sha256((out / "synth" / "manifest.json").read_bytes()).hexdigest()
    assert f"| synth | 10, 1, 1 | 41 | `{manifest_sha}` |" in card
    repo = Path(__file__).resolve().parents[2]
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
    if head.returncode == 0:
        assert f"| git commit | {head.stdout.strip()}" in card
    for name in ("synth", "first", "second", "point", "onnx"):
        assert re.search(rf"\| \d \| {name} \| \w+ \| .+ \| 20\d\d-", card), name
    chosen = json.loads((out / "point" / "choice.json").read_text())["chosen"]
    assert f"A pixel is foot where its probability exceeds {chosen:g}." in card
    assert f"- `point` set the threshold to {chosen:g} of: 0.10 " in card


def test_a_second_run_skips_every_stage(tiny_run: tuple[Path, Path]) -> None:
    path, out = tiny_run
    weights = out / "second" / "best" / "model.safetensors"
    before = weights.stat().st_mtime_ns
    log = _Log()
    RecipeRun(parse_recipe(path), out, device="cpu", log=log).run()
    assert [line.split(": ")[1] for line in log] == ["done before, skipped"] * 6
    assert weights.stat().st_mtime_ns == before


def test_a_folder_another_run_is_writing_is_refused_before_a_stage_runs(tiny_run: tuple[Path, Path]) -> None:
    path, out = tiny_run
    log = _Log()
    busy = r"run: another footseg job( \(pid \d+\))? is writing here now: .*choose another --out$"
    with one_writer(out), pytest.raises(FootsegError, match=busy):  # as the same command in another terminal would
        RecipeRun(parse_recipe(path), out, device="cpu", log=log).run()
    assert log == []


def test_other_workers_redo_no_finished_stage(tiny_run: tuple[Path, Path]) -> None:
    path, out = tiny_run
    log = _Log()
    RecipeRun(parse_recipe(path), out, device="cpu", log=log, workers=3).run()
    assert [line.split(": ")[1] for line in log] == ["done before, skipped"] * 6


def test_a_finished_stage_whose_output_changed_since_is_refused(tiny_run: tuple[Path, Path], tmp_path: Path) -> None:
    import shutil

    path, shared_out = tiny_run
    out = shutil.copytree(shared_out, tmp_path / "out", symlinks=True)
    weights = out / "first" / "best" / "model.safetensors"  # trained on by hand after the recipe finished it
    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(FootsegError, match="its output changed after the stage finished") as err:
        RecipeRun(parse_recipe(path), out, device="cpu", log=_Log()).run()
    assert str(out / "first") in str(err.value)


def test_a_result_before_the_last_stage_carries_only_its_own_choices(tiny_run: tuple[Path, Path],
                                                                    tmp_path: Path) -> None:
    _, shared_out = tiny_run
    out = shutil.copytree(shared_out, tmp_path / "out", symlinks=True)
    earlier = parse_recipe(_write(tmp_path, _replace('description = "', 'result = "second"\ndescription = "')))
    RecipeRun(earlier, out, device="cpu", log=_Log()).run()  # every stage done: the model folder and card written
    card = (out / "model" / "MODEL_CARD.md").read_text()
    assert "This folder holds the model of stage `second` (train)" in card
    assert "## Choices" not in card and "`point` set the threshold" not in card  # a later stage's, not this model's
    assert not list((out / "model").glob("*.onnx"))  # the exports are the threshold stage's


def test_a_deleted_output_is_made_again(tiny_run: tuple[Path, Path]) -> None:
    path, out = tiny_run
    shutil.rmtree(out / "onnx")
    images = sorted((out / "synth" / "train" / "images").iterdir())[:2]
    kept = {p: p.read_bytes() for p in images}
    for p in images:
        p.unlink()
    log = _Log()
    RecipeRun(parse_recipe(path), out, device="cpu", log=log).run()
    assert log.of("synth")[0] == "continuing an unfinished stage" and log.of("synth")[1].startswith("done in")
    assert {p: p.read_bytes() for p in images} == kept  # the same pixels: later stages stay valid
    assert log.of("first") == log.of("second") == log.of("point") == log.of("int8") == ["done before, skipped"]
    assert log.of("onnx")[0].startswith("point -> onnx") and (out / "onnx" / "model.onnx").is_file()


def test_a_stage_made_otherwise_is_refused(tiny_run: tuple[Path, Path], tmp_path: Path) -> None:
    _, out = tiny_run
    changed = parse_recipe(_write(tmp_path, _replace("lr = 0.001", "lr = 0.0005")))
    # every folder the change invalidates is named at once, not one per run
    with pytest.raises(FootsegError, match=r"second: made with other settings \(lr 0.001 there, 0.0005 in the "
                                           r"recipe\): delete this folder and those of the stages that read it "
                                           r"\(point, onnx, int8\) to redo them$"):
        RecipeRun(changed, out, device="cpu", log=_Log()).run()
    plan = RecipeRun(changed, out).plan()
    assert [line.endswith("[made with other settings: a run refuses it until its folder is deleted]")
            for line in plan[1:]] == [False, False, True, False, False, False]
    assert plan[4].endswith("[reads second, which a run makes otherwise now: a run refuses it until its folder is "
                            "deleted]")
    assert [line.endswith("[done]") for line in plan[1:]] == [True, True, False, False, False, False]
    copy = tmp_path / "copy"  # the fixture's run stays as it is for the tests after this one
    shutil.copytree(out, copy, symlinks=True)
    # the changed stage's folder deleted alone: its readers are refused before it is trained again, not after
    shutil.rmtree(copy / "second")
    with pytest.raises(FootsegError, match=r"point: reads second, which a run makes otherwise now: delete this folder "
                                           r"and those of the stages that read it \(onnx, int8\) to redo them$"):
        RecipeRun(changed, copy, device="cpu", log=_Log()).run()
    assert not (copy / "second").exists()
    assert RecipeRun(changed, copy).plan()[4].endswith("[reads second, which a run makes otherwise now: a run "
                                                       "refuses it until its folder is deleted]")
    for name in ("point", "onnx", "int8"):  # as the error says: then one run redoes them
        shutil.rmtree(copy / name)
    log = _Log()
    RecipeRun(changed, copy, device="cpu", log=log).run()
    assert log.of("first") == ["done before, skipped"] and log.of("int8")[-1].startswith("done in")
    (out / "stray").mkdir()
    (out / "stray" / "x").write_text("")
    stray = parse_recipe(_write(tmp_path, TINY + '\n[[stage]]\nkind = "merge"\nname = "stray"\nsources = ["synth"]\n',
                                "stray.toml"))
    with pytest.raises(FootsegError, match="stray: holds files that `footseg recipe run` did not make"):
        RecipeRun(stray, out, device="cpu", log=_Log()).run()
    shutil.rmtree(out / "stray")


def test_dry_run_shows_how_far_a_folder_got(tiny_run: tuple[Path, Path], capsys: pytest.CaptureFixture) -> None:
    path, out = tiny_run
    assert main(["recipe", "run", str(path), "--out", str(out), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()[1:]
    assert len(lines) == 6 and all(line.endswith("[done]") for line in lines)


def test_a_prune_stage_prunes_as_compress_does(tmp_path: Path) -> None:
    """A recipe may start from a shipped model; its prune stage is ``footseg compress``'s channel step."""
    import torch

    from footseg.compress.prune import channel_prune
    from footseg.models.saved import load_model
    from footseg.runtime.resolve import resolve_model

    path = _write(tmp_path, PRUNE_ONLY)
    out = RecipeRun(parse_recipe(path), tmp_path / "run", log=_Log()).run()
    pruned, info = load_model(out)
    expected, shipped = resolve_model("fastlinknet").load()
    channel_prune(expected, 0.25, size=int(shipped.input_size[0]), importance="l1", round_to=8)
    assert pruned.state_dict().keys() == expected.state_dict().keys()
    assert all(torch.equal(v, expected.state_dict()[k]) for k, v in pruned.state_dict().items())
    assert info.extra["channel_ratio"] == 0.25
    stamp = json.loads((tmp_path / "run" / "stamps" / "p.json").read_text())
    assert stamp["inputs"]["shipped:fastlinknet"] == hashlib.sha256(
        (resolve_model("fastlinknet").folder / "model.safetensors").read_bytes()).hexdigest()


def test_a_running_stage_keeps_its_stamp_current(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run killed outright (SIGKILL: no handler runs) still leaves the time its stage had spent in the stamp."""
    path = _write(tmp_path, PRUNE_ONLY)
    stamp_path = tmp_path / "run" / "stamps" / "p.json"
    seen: list[dict] = []

    def slow_prune(self: RecipeRun, stage: object) -> None:
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:  # until the stamp has been rewritten while the stage runs
            stamp = json.loads(stamp_path.read_text())
            if stamp["seconds"] > 0:
                seen.append(stamp)
                break
            time.sleep(0.01)
        raise KeyboardInterrupt("stopped by the test")

    monkeypatch.setattr(runner_module, "STAMP_EVERY_S", 0.05)
    monkeypatch.setattr(RecipeRun, "_prune", slow_prune)
    with pytest.raises(KeyboardInterrupt):
        RecipeRun(parse_recipe(path), tmp_path / "run", log=_Log()).run()
    assert seen and seen[0]["state"] == "started" and seen[0]["seconds"] > 0
    assert not [t for t in threading.enumerate() if t.name.startswith("stamp ")]  # the clock stopped with the stage


def test_a_stamp_from_before_a_render_setting_reads_as_without_it(tiny_run: tuple[Path, Path]) -> None:
    path, out = tiny_run
    run = RecipeRun(parse_recipe(path), out, device="cpu")
    stage = run.recipe.stage("synth")
    stamp = json.loads((out / "stamps" / "synth.json").read_text())
    settings = run.stamp_settings(stage)
    assert run.mismatch(stamp, settings, stamp["inputs"]) is None
    del stamp["settings"]["own_feet_prob"]  # as a stamp written before own-feet scenes existed
    assert run.mismatch(stamp, {**settings, "own_feet_prob": 0.0}, stamp["inputs"]) is None
    assert "own_feet_prob 0.0 there, 0.2 in the recipe" in run.mismatch(stamp, settings, stamp["inputs"])


def test_a_stamp_from_before_an_optional_setting_reads_as_its_default(tiny_run: tuple[Path, Path]) -> None:
    path, out = tiny_run
    run = RecipeRun(parse_recipe(path), out, device="cpu")
    stage = run.recipe.stage("point")
    stamp = json.loads((out / "stamps" / "point.json").read_text())
    settings = run.stamp_settings(stage)
    del stamp["settings"]["sizes"]  # as a threshold stage's stamp written before it could choose the input size
    assert run.mismatch(stamp, settings, stamp["inputs"]) is None
    changed = run.mismatch(stamp, {**settings, "sizes": [64, 96]}, stamp["inputs"])
    assert "sizes [] there, [64, 96] in the recipe" in changed
    del stamp["settings"]["max_blob_rate"]  # from before a cap existed: no cap
    assert run.mismatch(stamp, settings, stamp["inputs"]) is None
    capped = run.mismatch(stamp, {**settings, "max_blob_rate": 0.2}, stamp["inputs"])
    assert "max_blob_rate null there, 0.2 in the recipe" in capped


def _without_operating_point(tiny_run: tuple[Path, Path], tmp_path: Path) -> Path:
    """A copy of the tiny run without the stages a changed operating point redoes."""
    _, shared_out = tiny_run
    out = shutil.copytree(shared_out, tmp_path / "out", symlinks=True)
    for name in ("point", "onnx", "int8"):
        shutil.rmtree(out / name)
        (out / "stamps" / f"{name}.json").unlink()
    return out


def test_a_threshold_stage_with_sizes_chooses_the_input_size_too(tiny_run: tuple[Path, Path], tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture) -> None:
    from footseg.provenance import sha256_file
    from footseg.runtime.predictor import Predictor

    out = _without_operating_point(tiny_run, tmp_path)
    # trained at 64 px; neither side offered is its own, so the model folder must change side
    path = _write(tmp_path, _replace('model = "second"\n', 'model = "second"\nsizes = [96, 128]\n'))
    assert main(["recipe", "run", str(path), "--out", str(out), "--dry-run"]) == 0
    assert "second's operating point: the input size (96, 128 px) and threshold" in capsys.readouterr().out
    log = _Log()
    RecipeRun(parse_recipe(path), out, device="cpu", log=log).run()
    assert log.of("second") == ["done before, skipped"]
    assert [line.split(":")[0].strip() for line in log if " px: best " in line] == ["96 px", "128 px"]
    choice = json.loads((out / "point" / "choice.json").read_text())
    curves = choice["val_iou_by_size"]
    assert list(curves) == ["96", "128"] and all(list(c) == [f"{t:.2f}" for t in THRESHOLDS] for c in curves.values())
    best = max(v for c in curves.values() for v in c.values())
    size, chosen = choice["size"], choice["chosen"]
    assert curves[str(size)][f"{chosen:.2f}"] == best and choice["val_iou"] == curves[str(size)]
    config = json.loads((out / "model" / "config.json").read_text())
    assert config["input_size"] == [size, size] and config["threshold"] == chosen
    assert config["extra"]["train_config"]["size"] == 64  # trained at 64: only where it runs changed
    assert list(OnnxModel(out / "model" / "model.int8.onnx").info.input_size) == [size, size]
    # later stages record the side in the threshold stage's digest (a run that kept the model's side does not)
    weights = sha256_file(out / "point" / "model.safetensors")
    stamp = json.loads((out / "stamps" / "onnx.json").read_text())
    assert stamp["inputs"]["point"] == f"{weights} threshold {chosen:g} size {size}x{size}"
    # what the stage measured is what the model folder does at that size, and at the other size on request
    other = 224 - size
    weights_run = Predictor(out / "model", runtime="torch")  # the stage scored the weights, in PyTorch
    assert threshold_ious(weights_run, out / "synth")[chosen] == curves[str(size)][f"{chosen:.2f}"]
    at_other = threshold_ious(Predictor(out / "model").at_size(other), out / "synth")
    assert {f"{t:.2f}": v for t, v in at_other.items()} == curves[str(other)]
    card = (out / "model" / "MODEL_CARD.md").read_text()
    assert f"- `point` set the input size to {size} px and the threshold to {chosen:g} of: 96 px: 0.10 " in card
    assert f", input {size}x{size} (trained at 64x64)," in card
    log = _Log()
    RecipeRun(parse_recipe(path), out, device="cpu", log=log).run()  # and a run after it redoes nothing
    assert [line.split(": ")[1] for line in log] == ["done before, skipped"] * 6


def test_a_threshold_stage_with_region_peaks_chooses_one_after_the_threshold(tiny_run: tuple[Path, Path],
                                                                             tmp_path: Path,
                                                                             capsys: pytest.CaptureFixture) -> None:
    from footseg.eval.evaluate import region_peak_ious
    from footseg.provenance import sha256_file
    from footseg.runtime.predictor import Predictor

    out = _without_operating_point(tiny_run, tmp_path)
    path = _write(tmp_path, _replace('model = "second"\n', 'model = "second"\nregion_peaks = [0.6, 0.9, 0.99]\n'))
    assert main(["recipe", "run", str(path), "--out", str(out), "--dry-run"]) == 0
    assert "second's operating point: the threshold, then the region peak (none, 0.6, 0.9, 0.99)" in (
        capsys.readouterr().out)
    RecipeRun(parse_recipe(path), out, device="cpu", log=_Log()).run()
    choice = json.loads((out / "point" / "choice.json").read_text())
    by_peak = choice["val_iou_by_region_peak"]
    assert list(by_peak) == ["0", "0.6", "0.9", "0.99"]
    peak = choice["region_peak"]
    best = [key for key, v in by_peak.items() if v == max(by_peak.values())]
    assert peak == (None if "0" in best else min(float(key) for key in best))  # of equals, none, then the lower peak
    assert peak is not None  # the tiny network's unsure regions: a peak is chosen, so what follows checks one
    # measured at the threshold the stage chose, which the model folder keeps beside the peak
    config = json.loads((out / "model" / "config.json").read_text())
    assert config["threshold"] == choice["chosen"] and config.get("region_peak") == peak
    assert OnnxModel(out / "model" / "model.int8.onnx").info.region_peak == peak
    again = region_peak_ious(Predictor(out / "model", runtime="torch"), out / "synth", [0.0, 0.6, 0.9, 0.99])
    assert {f"{p:g}": v for p, v in again.items()} == by_peak
    weights = sha256_file(out / "point" / "model.safetensors")
    digest = json.loads((out / "stamps" / "onnx.json").read_text())["inputs"]["point"]
    assert digest == f"{weights} threshold {choice['chosen']:g}" + ("" if peak is None else f" region peak {peak:g}")
    card = (out / "model" / "MODEL_CARD.md").read_text()
    shown = "none" if peak is None else f"{peak:g}"
    assert f"; then the region peak to {shown} of: none {100 * by_peak['0']:.2f}, 0.6 " in card


def test_a_threshold_stage_with_presences_chooses_one_after_the_region_peak(tiny_run: tuple[Path, Path],
                                                                           tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture) -> None:
    from footseg.eval.evaluate import presence_ious
    from footseg.runtime.predictor import Predictor

    out = _without_operating_point(tiny_run, tmp_path)
    path = _write(tmp_path, _replace('model = "second"\n',
                                     'model = "second"\nregion_peaks = [0.9]\npresences = [0.3, 0.9, 0.999]\n'))
    assert main(["recipe", "run", str(path), "--out", str(out), "--dry-run"]) == 0
    assert ("second's operating point: the threshold, then the region peak (none, 0.9), then the presence gate "
            "(none, 0.3, 0.9, 0.999)") in capsys.readouterr().out
    RecipeRun(parse_recipe(path), out, device="cpu", log=_Log()).run()
    choice = json.loads((out / "point" / "choice.json").read_text())
    by_presence = choice["val_iou_by_presence"]
    assert list(by_presence) == ["0", "0.3", "0.9", "0.999"]
    best = [key for key, v in by_presence.items() if v == max(by_presence.values())]
    presence = choice["presence"]
    assert presence == (None if "0" in best else min(float(key) for key in best))  # of equals, none, then the lower
    # measured at the threshold and region peak the stage chose, which the model folder keeps beside the gate
    config = json.loads((out / "model" / "config.json").read_text())
    assert (config["threshold"], config.get("region_peak")) == (choice["chosen"], choice["region_peak"])
    assert config.get("presence") == presence  # none, most likely: the next test checks a chosen one travels
    again = presence_ious(Predictor(out / "model", runtime="torch").at_presence(0), out / "synth",
                          [0.0, 0.3, 0.9, 0.999])
    assert {f"{p:g}": v for p, v in again.items()} == by_presence
    assert len(set(by_presence.values())) > 1  # the levels clear different frames: the test can tell them apart
    card = (out / "model" / "MODEL_CARD.md").read_text()
    shown = "none" if presence is None else f"{presence:g}"
    assert f"; then the presence gate to {shown} of: none {100 * by_presence['0']:.2f}, 0.3 " in card


def test_a_chosen_presence_reaches_config_exports_digest_and_card(tiny_run: tuple[Path, Path], tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from footseg.eval import evaluate as evaluate_module
    from footseg.provenance import sha256_file

    # The tiny renders all hold a foot, so a real curve never pays for a gate: this one does, at two levels alike
    # (the lower is taken), whatever the network.
    curve = {0.0: 0.50, 0.3: 0.60, 0.9: 0.60, 0.999: 0.40}
    monkeypatch.setattr(evaluate_module, "presence_ious", lambda model, data, levels, split: dict(curve))
    out = _without_operating_point(tiny_run, tmp_path)
    path = _write(tmp_path, _replace('model = "second"\n', 'model = "second"\npresences = [0.3, 0.9, 0.999]\n'))
    RecipeRun(parse_recipe(path), out, device="cpu", log=_Log()).run()
    choice = json.loads((out / "point" / "choice.json").read_text())
    assert choice["presence"] == 0.3
    assert choice["val_iou_by_presence"] == {"0": 0.5, "0.3": 0.6, "0.9": 0.6, "0.999": 0.4}
    assert json.loads((out / "model" / "config.json").read_text())["presence"] == 0.3
    assert OnnxModel(out / "model" / "model.int8.onnx").info.presence == 0.3
    weights = sha256_file(out / "point" / "model.safetensors")
    digest = json.loads((out / "stamps" / "onnx.json").read_text())["inputs"]["point"]
    assert digest == f"{weights} threshold {choice['chosen']:g} presence 0.3"
    card = (out / "model" / "MODEL_CARD.md").read_text()
    assert "; then the presence gate to 0.3 of: none 50.00, 0.3 60.00, 0.9 60.00, 0.999 40.00." in card
    assert "A frame shows foot only if some pixel of it exceeds 0.3." in card


def _capped_recipe(tmp_path: Path, cap: float, empty_prob: float = 0.5) -> Path:
    """The tiny recipe with a blob cap, its operating point chosen on a render of its own, half of it empty floors."""
    bare = f'[[stage]]\nkind = "render"\nname = "bare"\nseed = 43\nn = 12\nsize = 64\nempty_prob = {empty_prob}\n\n'
    text = _replace('[[stage]]\nkind = "threshold"\nname = "point"\nmodel = "second"\ndata = "synth"\n',
                    f'{bare}[[stage]]\nkind = "threshold"\nname = "point"\nmodel = "second"\ndata = "bare"\n'
                    f'region_peaks = [0.9]\npresences = [0.5, 0.99]\nmax_blob_rate = {cap}\n')
    return _write(tmp_path, text)


# a grid as operating_points returns it, (threshold, region peak, presence) -> (foot IoU, blob rate), over the
# thresholds the stage tries: the best IoU (0.5, none, none) shows blobs on 60 % of the empty frames. Under a 20 % cap
# five points tie at 0.8: the threshold nearest 0.5 wins (0.6 over 0.7), then of 0.4 and 0.6 (as near) the lower, then
# no region peak over one, then no gate over one. Under 5 %, 0.7 IoU beats 0.6; nothing meets 1 %, where the fewest
# blobs win (3 %), and of those the better IoU (0.65 over 0.55).
def _grid(thresholds: list[float], peaks: list[float], presences: list[float]) -> dict:
    grid = {(t, p, q): (0.5, 0.9) for t in thresholds for p in peaks for q in presences}
    grid[0.5, 0.0, 0.0] = (0.9, 0.6)
    grid[0.7, 0.0, 0.0] = (0.8, 0.2)
    grid[0.6, 0.0, 0.0] = (0.8, 0.2)
    grid[0.4, 0.9, 0.0] = (0.8, 0.2)
    grid[0.4, 0.0, 0.5] = (0.8, 0.1)
    grid[0.4, 0.0, 0.0] = (0.8, 0.15)
    grid[0.7, 0.9, 0.99] = (0.7, 0.05)
    grid[0.45, 0.0, 0.99] = (0.6, 0.04)
    grid[0.3, 0.9, 0.99] = (0.55, 0.03)
    grid[0.8, 0.9, 0.99] = (0.65, 0.03)
    return grid


@pytest.mark.parametrize(("cap", "point", "met"), [(0.2, (0.4, None, None), True), (0.05, (0.7, 0.9, 0.99), True),
                                                   (0.01, (0.8, 0.9, 0.99), False)])
def test_a_blob_cap_chooses_threshold_peak_and_gate_together(tiny_run: tuple[Path, Path], tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture, cap: float,
                                                             point: tuple, met: bool) -> None:
    from footseg.eval import evaluate as evaluate_module

    tried = []

    def fake(model: object, data: Path, thresholds: list, peaks: list, presences: list, split: str) -> dict:
        tried.append((list(thresholds), list(peaks), list(presences), split))
        return _grid(list(thresholds), list(peaks), list(presences))

    monkeypatch.setattr(evaluate_module, "operating_points", fake)
    out = _without_operating_point(tiny_run, tmp_path)
    path = _capped_recipe(tmp_path, cap)
    assert main(["recipe", "run", str(path), "--out", str(out), "--dry-run"]) == 0
    assert ("second's operating point: the threshold, region peak (none, 0.9), presence gate (none, 0.5, 0.99) "
            f"together, with the best foot IoU on bare's validation split of those that show a blob on at most "
            f"{100 * cap:g} % of its frames with no foot") in capsys.readouterr().out
    log = _Log()
    RecipeRun(parse_recipe(path), out, device="cpu", log=log).run()
    assert tried == [(list(THRESHOLDS), [0.0, 0.9], [0.0, 0.5, 0.99], "val")]
    choice = json.loads((out / "point" / "choice.json").read_text())
    threshold, peak, presence = point
    assert (choice["chosen"], choice["region_peak"], choice["presence"]) == point
    assert choice["cap_met"] is met and choice["max_blob_rate"] == cap
    assert "val_iou_by_region_peak" not in choice and "val_iou_by_presence" not in choice  # not chosen one by one
    expected = _grid(list(THRESHOLDS), [0.0, 0.9], [0.0, 0.5, 0.99])[threshold, peak or 0.0, presence or 0.0]
    assert (choice["val_iou_at_point"], choice["blob_rate"]) == expected
    assert len(choice["val_points"]) == len(THRESHOLDS) * 6
    config = json.loads((out / "model" / "config.json").read_text())
    assert (config["threshold"], config.get("region_peak"), config.get("presence")) == point
    info = OnnxModel(out / "model" / "model.int8.onnx").info
    assert (info.threshold, info.region_peak, info.presence) == point
    card = (out / "model" / "MODEL_CARD.md").read_text()
    words = ["none" if v is None else f"{v:g}" for v in point]
    shown = (f"set the threshold to {words[0]}, the region peak to {words[1]} and the presence gate to {words[2]}, "
             f"together of {len(THRESHOLDS) * 6} points: foot IoU {100 * expected[0]:.2f}, a blob on "
             f"{100 * expected[1]:.1f} % of the validation frames")
    assert shown in card and "(the best foot IoU of any point: 90.00, with blobs on 60.0 %)" in card
    assert ("under the cap" if met else "none met the cap") in card
    assert [line.strip().startswith(f"threshold {threshold:.2f}") and ("not met" in line) != met
            for line in log if "blobs on" in line] == [True]
    assert len([line for line in log if line.strip().startswith("uncapped threshold ")]) == 1  # the curve's best


def test_a_blob_cap_needs_frames_with_no_foot(tmp_path: Path) -> None:
    # caught when the recipe is read, not after hours of training: no render of the tiny recipe makes empty frames
    # (a split that drew none stops the stage with one line: test_evaluate checks operating_points' error)
    with pytest.raises(FootsegError, match="stage 'point': max_blob_rate is measured on frames with no foot, and no "
                                           r"render of 'bare' makes any \(give one an empty_prob above 0\)"):
        parse_recipe(_capped_recipe(tmp_path, 0.2, empty_prob=0.0))

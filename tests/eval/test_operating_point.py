"""``footseg threshold``: a model's operating point chosen on a dataset's val split and saved as a new model folder."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path

import pytest

from footseg.cli import main
from footseg.eval.evaluate import THRESHOLDS, evaluate, region_peak_ious, threshold_ious
from footseg.eval.operating_point import FEW_VAL_IMAGES
from footseg.provenance import sha256_file
from footseg.runtime.predictor import Predictor


def _other_warnings(err: str) -> list[str]:
    """The warnings printed but the one every threshold on the tiny dataset gets (its few images: tested below)."""
    return [line for line in err.splitlines() if "warning" in line and "too few to tell points apart" not in line]


def test_threshold_saves_the_weights_at_the_best_val_point_and_says_what_it_was_worth(
        saved_model: Path, tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "chosen"
    assert main(["threshold", str(saved_model), "--data", str(tiny_dataset), "--out", str(out),
                 "--region-peaks", "0.6,0.9"]) == 0
    printed = capsys.readouterr().out
    assert sha256_file(out / "model.safetensors") == sha256_file(saved_model / "model.safetensors")
    choice = json.loads((out / "choice.json").read_text())
    config = json.loads((out / "config.json").read_text())
    # the best of the val curve, each threshold scored as evaluate scores it
    curve = threshold_ious(saved_model, tiny_dataset, split="val")
    assert choice["val_iou"] == {f"{t:.2f}": v for t, v in curve.items()} and list(curve) == list(THRESHOLDS)
    assert len(set(curve.values())) > 1  # an untrained network's probabilities spread: the choice is a real one
    assert curve[choice["chosen"]] == max(curve.values()) and config["threshold"] == choice["chosen"]
    # then the region peak at that threshold: the best of none, 0.6 and 0.9 (of equals, none, then the lower)
    peaks = region_peak_ious(Predictor(saved_model).at_threshold(choice["chosen"]), tiny_dataset, [0.0, 0.6, 0.9])
    best = max(peaks, key=lambda p: (peaks[p], p == 0.0, -p))
    assert choice["val_iou_by_region_peak"] == {f"{p:g}": v for p, v in peaks.items()}
    assert config.get("region_peak") == (best or None) == choice["region_peak"]
    # what the saved folder scores on val is what the verb said, beside the point it had
    after = evaluate(out, tiny_dataset, split="val")["iou"]
    before = evaluate(saved_model, tiny_dataset, split="val")["iou"]
    assert (choice["val_iou_after"], choice["val_iou_before"]) == (after, before)
    assert after >= before  # the point it had (0.5 at 64 px, no peak) is one of those tried: never worse
    assert f"data val foot IoU {100 * after:.2f}; at its point before (64 px, threshold 0.5, region peak none, " \
           f"presence none) {100 * before:.2f}" in printed
    assert f"eval {out} --data {tiny_dataset}` scores it on test/" in printed
    assert f"on {tiny_dataset}'s val split (4 images): thresholds 0.10 to 0.90; region peaks 0.6, 0.9" in printed
    # what it was chosen for and on
    assert (choice["model"], choice["data"], choice["val_images"]) == (str(saved_model), str(tiny_dataset), 4)
    # each step's line has what it passed over beside it: none where a level was kept, else the best level
    kept, shown = ("(none: ", f"{best:g}") if best else ("(the best level, ", "none")
    assert f"  region peak {shown}: data val foot IoU {100 * peaks[best]:.2f} {kept}" in printed


def test_threshold_tries_the_region_peaks_the_default_models_recipe_tries(saved_model: Path, tiny_dataset: Path,
                                                                         tmp_path: Path) -> None:
    from footseg.models.info import PRETRAINED_DIR
    from footseg.recipe.schema import RECIPE_NAME, parse_recipe
    from footseg.runtime.resolve import DEFAULT_MODEL

    recipe = parse_recipe(PRETRAINED_DIR / DEFAULT_MODEL / RECIPE_NAME)
    (stage,) = [stage for stage in recipe.stages if stage.kind == "threshold"]
    out = tmp_path / "chosen"
    assert main(["threshold", str(saved_model), "--data", str(tiny_dataset), "--out", str(out)]) == 0
    tried = json.loads((out / "choice.json").read_text())["val_iou_by_region_peak"]
    assert list(tried) == ["0", *(f"{p:g}" for p in stage.settings["region_peaks"])] and len(tried) > 1


def test_threshold_region_peaks_none_tries_none_and_sizes_choose_the_side(saved_model: Path, tiny_dataset: Path,
                                                                         tmp_path: Path) -> None:
    out = tmp_path / "chosen"
    assert main(["threshold", str(saved_model), "--data", str(tiny_dataset), "--out", str(out),
                 "--region-peaks", "none", "--sizes", "64,96"]) == 0
    choice = json.loads((out / "choice.json").read_text())
    config = json.loads((out / "config.json").read_text())
    assert "val_iou_by_region_peak" not in choice and config.get("region_peak") is None
    curves = choice["val_iou_by_size"]
    assert list(curves) == ["64", "96"]
    assert curves["96"] == {f"{t:.2f}": v for t, v in threshold_ious(
        Predictor(saved_model).at_size(96), tiny_dataset, split="val").items()}
    best = max(v for c in curves.values() for v in c.values())
    assert curves[str(choice["size"])][f"{choice['chosen']:.2f}"] == best
    assert config["input_size"] == [choice["size"]] * 2


@pytest.fixture
def model_copy(saved_model: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(saved_model, tmp_path / "model"))


def test_threshold_warns_where_the_point_saved_is_worse_than_the_models_own(
        model_copy: Path, tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from footseg.models.info import read_info, write_info

    own = threshold_ious(model_copy, tiny_dataset, split="val")
    best = max(own, key=lambda t: own[t])
    write_info(model_copy, dataclasses.replace(read_info(model_copy), threshold=best))  # its own point: the best
    at_32 = threshold_ious(Predictor(model_copy).at_size(32), tiny_dataset, split="val")
    assert max(at_32.values()) < own[best]  # what makes the search below a worse one: 32 px only
    assert main(["threshold", str(model_copy), "--data", str(tiny_dataset), "--out", str(tmp_path / "p"),
                 "--sizes", "32"]) == 0
    warning = _other_warnings(capsys.readouterr().err)
    assert len(warning) == 1 and re.search(
        rf"footseg: warning: {tmp_path / 'p'}: scores below the point {model_copy} had on val/ \(.* against "
        rf"{100 * own[best]:.2f}\): the sides tried leave its own out", warning[0]), warning
    choice = json.loads((tmp_path / "p" / "choice.json").read_text())
    assert choice["val_iou_after"] == pytest.approx(evaluate(tmp_path / "p", tiny_dataset, split="val")["iou"])
    assert choice["val_iou_before"] == own[best]


def test_threshold_keeps_the_models_own_point_where_the_search_passed_it_by(
        model_copy: Path, tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # one step after another, a search can pass by a better pair (a threshold chosen without the region peak that
    # then comes: the default on a first-person render); the own point scoring higher stands in for that here
    from footseg.eval import evaluate as evaluate_module
    from footseg.models.info import read_info, write_info

    write_info(model_copy, dataclasses.replace(read_info(model_copy), threshold=0.45, region_peak=0.7))
    real_evaluate = evaluate_module.evaluate

    def own_scores_best(model: object, data: Path, split: str = "test", **kw: object) -> dict:
        return {**real_evaluate(model, data, split=split, **kw), "iou": 0.99}

    monkeypatch.setattr(evaluate_module, "evaluate", own_scores_best)
    out = tmp_path / "p"
    assert main(["threshold", str(model_copy), "--data", str(tiny_dataset), "--out", str(out), "--region-peaks",
                 "0.6,0.9"]) == 0
    printed = capsys.readouterr()
    choice = json.loads((out / "choice.json").read_text())
    config = read_info(out)
    assert (config.input_size, config.threshold, config.region_peak, config.presence) == ((64, 64), 0.45, 0.7, None)
    assert (choice["chosen"], choice["region_peak"], choice["val_iou_after"]) == (0.45, 0.7, 0.99)
    searched = choice["searched_point"]
    curve = choice["val_iou"]  # the search's own point is recorded beside: the best of its curve
    assert curve[f"{searched['threshold']:.2f}"] == max(curve.values()) and searched["val_iou"] < 0.99
    assert "(64 px, threshold 0.45, region peak 0.7, presence none) scores 99.00, the search's (64 px, threshold " \
           f"{float(searched['threshold']):g}" in printed.out and ": its own kept" in printed.out
    assert not _other_warnings(printed.err)
    # asked for other sides only, its own is no candidate: the search's point is saved, with the warning
    assert main(["threshold", str(model_copy), "--data", str(tiny_dataset), "--out", str(tmp_path / "q"), "--sizes",
                 "96"]) == 0
    assert read_info(tmp_path / "q").input_size == (96, 96)
    assert "the sides tried leave its own out" in capsys.readouterr().err


def test_threshold_under_a_blob_cap_chooses_the_point_together(model_copy: Path, tiny_dataset: Path,
                                                               tmp_path: Path, capsys: pytest.CaptureFixture,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    from footseg.data.io import read_mask, write_png

    data = Path(shutil.copytree(tiny_dataset, tmp_path / "data"))
    for mask in sorted((data / "val" / "masks").iterdir())[:2]:  # two frames of no foot to count blobs on
        write_png(mask, np.zeros_like(read_mask(mask)))
    out = tmp_path / "capped"
    assert main(["threshold", str(model_copy), "--data", str(data), "--out", str(out), "--region-peaks", "0.9",
                 "--presences", "0.6", "--max-blob-rate", "0.5"]) == 0
    choice = json.loads((out / "choice.json").read_text())
    assert choice["max_blob_rate"] == 0.5 and len(choice["val_points"]) == len(THRESHOLDS) * 4
    point = (choice["chosen"], choice["region_peak"] or 0.0, choice["presence"] or 0.0)
    rows = {tuple(row[:3]): row[3:] for row in choice["val_points"]}
    assert rows[point] == [choice["val_iou_at_point"], choice["blob_rate"]]
    assert choice["cap_met"]  # the best IoU of the points under the cap
    assert choice["val_iou_at_point"] == max(iou for iou, rate in rows.values() if rate <= 0.5)
    scored = evaluate(out, data, split="val")
    assert choice["val_iou_after"] == choice["val_iou_at_point"] == pytest.approx(scored["iou"])
    capsys.readouterr()
    # a cap no point meets (each shows blobs on 30 % or 40 % of the empty frames): the fewest blobs, said so, with
    # the lever not tried
    from footseg.eval import evaluate as evaluate_module

    real_evaluate = evaluate_module.evaluate

    def blobby(model: object, data: Path, thresholds: tuple, peaks: list, presences: list, split: str) -> dict:
        return {(t, p, q): (0.9, 0.3 if t == 0.8 else 0.4) for t in thresholds for p in peaks for q in presences}

    monkeypatch.setattr(evaluate_module, "operating_points", blobby)
    assert main(["threshold", str(model_copy), "--data", str(data), "--out", str(tmp_path / "strict"),
                 "--max-blob-rate", "0.1"]) == 0
    strict = json.loads((tmp_path / "strict" / "choice.json").read_text())
    assert (strict["cap_met"], strict["chosen"], strict["blob_rate"]) == (False, 0.8, 0.3)
    err = capsys.readouterr().err
    assert (f"{tmp_path / 'strict'}: no point met --max-blob-rate 0.1; the one with the fewest blobs was saved "
            "(30.0 %) (a presence gate, --presences 0.99,0.999, clears whole frames)") in err
    # the model's own point under the cap, scoring above every point of the search: kept, with its own numbers
    own = real_evaluate(model_copy, data, split="val")
    assert own["blob_rate"] <= 0.5 and own["iou"] > 0.002  # what makes its own the better candidate below
    monkeypatch.setattr(evaluate_module, "operating_points", lambda model, data, thresholds, peaks, presences, split: {
        (t, p, q): (0.002 if t == 0.6 else 0.001, 0.3) for t in thresholds for p in peaks for q in presences})
    assert main(["threshold", str(model_copy), "--data", str(data), "--out", str(tmp_path / "own"),
                 "--max-blob-rate", "0.5"]) == 0
    kept = json.loads((tmp_path / "own" / "choice.json").read_text())
    assert (kept["chosen"], kept["cap_met"], kept["blob_rate"]) == (0.5, True, own["blob_rate"])
    assert kept["val_iou_at_point"] == kept["val_iou_after"] == own["iou"]
    assert (kept["searched_point"]["threshold"], kept["searched_point"]["val_iou"]) == (0.6, 0.002)
    assert not _other_warnings(capsys.readouterr().err)
    assert scored["blob_rate"] == choice["blob_rate"]


def test_threshold_says_where_the_point_is_at_the_end_of_the_range(model_copy: Path, tiny_dataset: Path,
                                                                   tmp_path: Path, capsys: pytest.CaptureFixture,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from footseg.eval import evaluate as evaluate_module

    def rising(model: object, data: Path, thresholds: tuple = THRESHOLDS, split: str = "val") -> dict:
        return {t: t / 2 for t in thresholds}  # the higher the better: the best is the last tried

    monkeypatch.setattr(evaluate_module, "threshold_ious", rising)
    out = tmp_path / "p"
    assert main(["threshold", str(model_copy), "--data", str(tiny_dataset), "--out", str(out), "--region-peaks",
                 "none"]) == 0
    assert json.loads((out / "choice.json").read_text())["chosen"] == 0.9
    err = capsys.readouterr().err
    assert (f"{out}: threshold 0.9 is at the end of the range tried (0.10 to 0.90): the best point may lie beyond "
            "it") in err
    n = len(list((tiny_dataset / "val" / "images").iterdir()))
    assert n < FEW_VAL_IMAGES and (f"footseg: warning: {out}: chosen on {n} validation images, too few to tell points "
                                   "apart (the default's was chosen on 600)") in err


def test_threshold_refuses_what_it_cannot_do_well_before_a_pass_over_the_images(
        saved_model: Path, tiny_dataset: Path, fp32_onnx: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from footseg.eval import evaluate as evaluate_module
    from footseg.models.info import read_info, write_info

    def no_pass(*args: object, **kwargs: object) -> None:
        raise AssertionError("scored images before refusing")

    monkeypatch.setattr(evaluate_module, "threshold_ious", no_pass)
    full = tmp_path / "full"
    full.mkdir()
    (full / "note.txt").write_text("mine")
    flat = shutil.copytree(tiny_dataset / "val", tmp_path / "flat")
    model, data, new = str(saved_model), str(tiny_dataset), str(tmp_path / "new")
    (tmp_path / "file").write_text("x")
    no_val = Path(shutil.copytree(tiny_dataset, tmp_path / "no_val", ignore=shutil.ignore_patterns("val")))
    cases = [
        ([model, "--data", data, "--out", str(full)], f"{full}: already holds files: choose another --out"),
        ([model, "--data", data, "--out", model], f"{saved_model}: is the model's folder itself"),
        ([model, "--data", data, "--out", str(tmp_path / "file")], f"{tmp_path / 'file'}: is a file"),
        ([model, "--data", data, "--out", str(saved_model / "sub")],
         f"{saved_model / 'sub'}: is inside the model's folder {saved_model}"),
        ([model, "--data", str(flat), "--out", new],
         f"{flat}: has no split folders: the operating point is chosen on val/ and judged on test/"),
        ([model, "--data", str(no_val), "--out", new], "dataset has no 'val' split (it has train, test)"),
        ([model, "--data", str(tmp_path / "none"), "--out", new], f"{tmp_path / 'none'}: dataset folder not found"),
        ([model, "--data", data, "--out", new, "--max-blob-rate", "0.2"],
         "its val split has no frame without foot, so --max-blob-rate has nothing to count"),
        ([model, "--data", data, "--out", new, "--sizes", "100"],
         "--sizes must be distinct multiples of 32 from 32 to 4096, got [100]"),
        ([model, "--data", data, "--out", new, "--sizes", "64,64"], "--sizes must be distinct"),
        ([model, "--data", data, "--out", new, "--region-peaks", "0.9,1.5"],
         "--region-peaks must be distinct numbers between 0 and 1, got [0.9, 1.5]"),
        ([model, "--data", data, "--out", new, "--presences", "0"], "--presences must be distinct numbers"),
        ([model, "--data", data, "--out", new, "--max-blob-rate", "2"],
         "--max-blob-rate must be at least 0 and below 1, got 2"),
        ([str(fp32_onnx), "--data", data, "--out", new], "an exported ONNX file has no PyTorch weights"),
    ]
    bad = Path(shutil.copytree(tiny_dataset, tmp_path / "bad"))
    for mask in sorted((bad / "val" / "masks").iterdir())[:2]:
        mask.write_bytes(b"not a png")
    cases.append(([model, "--data", str(bad), "--out", new], f"(and 1 more; run `footseg check {bad}`)"))
    square = Path(shutil.copytree(saved_model, tmp_path / "tall"))
    write_info(square, dataclasses.replace(read_info(square), input_size=(96, 64)))
    cases.append(([str(square), "--data", data, "--out", new],
                  f"{square}: runs at 64x96, not square: give --sizes, the square sides to choose among"))
    for args, message in cases:
        assert main(["threshold", *args]) == 2, args
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, (args, err)
    assert not (tmp_path / "new").exists() and not (saved_model / "sub").exists()
    with pytest.raises(SystemExit):  # argparse's own refusal
        main(["threshold", model, "--data", data, "--out", new, "--sizes", "a"])
    assert "not a comma-separated list of ints: 'a'" in capsys.readouterr().err

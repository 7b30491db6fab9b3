from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from footseg.cli import main
from footseg.data.io import read_image, read_mask, write_jpeg, write_png
from footseg.data.samples import find_samples, read_sample, split_folder
from footseg.data.transforms import resize_mask
from footseg.errors import FootsegError
from footseg.eval.evaluate import evaluate, iou_interval, labelled_samples
from footseg.metrics import ConfusionMeter
from footseg.runtime.predictor import Predictor


def _by_hand(predictor: Predictor, folder: Path) -> dict:
    meter = ConfusionMeter()
    samples = find_samples(folder)
    for s in samples:
        pred = predictor.predict_mask(read_image(s.image))
        meter.update(torch.from_numpy(pred), torch.from_numpy(read_mask(s.mask) > 0))
    return {**meter.compute(), "n": len(samples)}


def test_scores_equal_a_confusion_meter_over_the_predictor_outputs(saved_model: Path, tiny_dataset: Path) -> None:
    scores = evaluate(saved_model, tiny_dataset, batch_size=3)
    expected = _by_hand(Predictor(saved_model), split_folder(tiny_dataset, "test"))
    assert scores["n"] == expected["n"] == 4
    for key in ("accuracy", "iou", "miou"):
        assert scores[key] == pytest.approx(expected[key], abs=1e-12)
    assert [r["stem"] for r in scores["per_image"]] == [s.stem for s in find_samples(tiny_dataset / "test")]


def test_flat_folder_of_odd_sized_photos(saved_model: Path, blob_folder: Path) -> None:
    scores = evaluate(saved_model, blob_folder, batch_size=2)
    expected = _by_hand(Predictor(saved_model), blob_folder)
    assert scores["n"] == 4
    for key in ("accuracy", "iou", "miou"):
        assert scores[key] == pytest.approx(expected[key], abs=1e-12)


def test_a_perfect_model_scores_near_one_and_a_blind_one_zero(red_model, red_net, blob_folder: Path) -> None:
    good = evaluate(red_model, blob_folder)
    assert good["iou"] > 0.9 and good["accuracy"] > 0.97 and good["miou"] > 0.9
    assert all(r["iou"] > 0.85 for r in good["per_image"])
    blind = red_net()
    blind.forward = lambda x: torch.stack([torch.ones_like(x[:, 0]), torch.zeros_like(x[:, 0])], 1)  # never foot
    scores = evaluate((blind, red_model[1]), blob_folder)
    assert scores["iou"] == 0.0 and 0.5 < scores["accuracy"] < 1.0


def test_batch_size_does_not_change_scores(red_model, blob_folder: Path) -> None:
    one = evaluate(red_model, blob_folder, batch_size=1)
    many = evaluate(red_model, blob_folder, batch_size=16)
    assert one == many


def test_prediction_is_resized_to_the_mask(red_model, make_blob_folder, tmp_path: Path) -> None:
    folder = make_blob_folder(tmp_path / "d", [(60, 90)])
    write_png(folder / "masks" / "blob0.png", resize_mask(read_mask(folder / "masks" / "blob0.png"), (30, 45)))
    scores = evaluate(red_model, folder)
    assert scores["iou"] > 0.85


def test_a_mask_of_another_shape_is_a_user_error_naming_it(red_model, make_blob_folder, tmp_path: Path) -> None:
    folder = make_blob_folder(tmp_path / "d", [(60, 90)])
    write_png(folder / "masks" / "blob0.png", resize_mask(read_mask(folder / "masks" / "blob0.png"), (60, 60)))
    with pytest.raises(FootsegError, match="mask size 60x60 differs from image size 90x60") as err:
        evaluate(red_model, folder)
    assert str(folder / "masks" / "blob0.png") in str(err.value)


def test_uses_the_requested_split(red_model, blob_dataset) -> None:
    root = blob_dataset(n=(2, 2, 3))
    assert evaluate(red_model, root)["n"] == 3
    assert evaluate(red_model, root, split="val")["n"] == 2
    with pytest.raises(FootsegError, match="no 'nope' split"):
        evaluate(red_model, root, split="nope")


def test_missing_mask_names_the_image(red_model, blob_folder: Path) -> None:
    (blob_folder / "masks" / "blob1.png").unlink()
    with pytest.raises(FootsegError, match="no mask") as err:
        evaluate(red_model, blob_folder)
    assert str(blob_folder / "images" / "blob1.png") in str(err.value) and "is there" not in str(err.value)
    write_jpeg(blob_folder / "masks" / "blob1.jpg", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(FootsegError, match=r"masks/blob1.jpg is there, but masks must be PNG \(lossy"):
        evaluate(red_model, blob_folder)


def test_empty_or_missing_dataset(red_model, tmp_path: Path) -> None:
    (tmp_path / "empty" / "images").mkdir(parents=True)
    with pytest.raises(FootsegError, match="no images"):
        evaluate(red_model, tmp_path / "empty")
    with pytest.raises(FootsegError, match="not found"):
        evaluate(red_model, tmp_path / "absent")
    (tmp_path / "afile").write_text("")
    with pytest.raises(FootsegError, match="is a file, not a dataset folder"):
        evaluate(red_model, tmp_path / "afile")


def test_soft_masks_are_named_and_scored_as_non_zero_is_foot(red_model, saved_model: Path, make_blob_folder,
                                                             tmp_path: Path, capsys) -> None:
    folder = make_blob_folder(tmp_path / "d", [(40, 60), (40, 60), (40, 60)])
    hard = evaluate(red_model, folder)
    assert hard["unlike_labels"] == []
    mask = read_mask(folder / "masks" / "blob1.png")
    soft = mask.copy()
    soft[(mask == 0) & (cv2.dilate(mask, np.ones((3, 3), np.uint8)) > 0)] = 90  # a one-pixel soft fringe
    write_png(folder / "masks" / "blob1.png", soft)
    scores = evaluate(red_model, folder)
    assert scores["unlike_labels"] == [str(folder / "masks" / "blob1.png")]
    assert scores["iou"] < hard["iou"]  # the fringe counts as foot, as the warning says
    assert main(["eval", str(saved_model), "--data", str(folder)]) == 0
    err = capsys.readouterr().err
    assert "1 of 3 images have masks with values other than 0 and one foot value" in err
    assert f"e.g. {folder / 'masks' / 'blob1.png'}:" in err and err.count("\n") == 1


def test_a_soft_mask_of_a_split_is_named_by_its_path(red_model, blob_dataset) -> None:
    root = blob_dataset()
    mask_path = sorted((root / "test" / "masks").iterdir())[1]
    mask = read_mask(mask_path)
    write_png(mask_path, np.where(mask > 0, 255, 1).astype(np.uint8))  # background stored as 1
    assert evaluate(red_model, root, split="test")["unlike_labels"] == [str(mask_path)]
    assert evaluate(red_model, root, split="val")["unlike_labels"] == []


def test_cli_json_holds_the_scores(saved_model: Path, blob_folder: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "scores" / "eval.json"
    assert main(["eval", str(saved_model), "--data", str(blob_folder), "--json", str(out)]) == 0
    scores = json.loads(out.read_text())
    assert {"accuracy", "iou", "miou", "n"} <= set(scores) and scores["n"] == 4
    assert len(scores["per_image"]) == 4
    low, high = scores["iou_interval"]
    assert low <= scores["iou"] <= high
    assert f"iou {scores['iou']:.4f} (95 % interval {low:.4f}-{high:.4f} over the images)" in capsys.readouterr().out


def test_the_iou_interval_is_the_bootstrap_of_the_pooled_iou() -> None:
    rng = np.random.default_rng(1)
    union = rng.integers(500, 2000, 30)
    inter = (union * rng.uniform(0.6, 1.0, 30)).astype(int)
    pooled = inter.sum() / union.sum()
    low, high = iou_interval(inter, union)
    assert low < pooled < high and high - low < 0.2
    assert iou_interval(inter, union) == (low, high)  # a fixed seed: the same scores give the same interval
    # drawn by hand: the images' sums over resampled indices, and the 2.5th and 97.5th percentiles
    picks = np.random.default_rng(0).integers(0, 30, (2000, 30))
    by_hand = np.quantile(inter[picks].sum(1) / union[picks].sum(1), [0.025, 0.975])
    assert (low, high) == pytest.approx(tuple(by_hand), abs=1e-12)
    # four times the images of the same kind narrow it about twofold; images that all score alike leave no width
    wide = iou_interval(np.tile(inter, 4), np.tile(union, 4))
    assert 0.3 < (wide[1] - wide[0]) / (high - low) < 0.7
    assert iou_interval([90, 180], [100, 200]) == pytest.approx((0.9, 0.9))
    assert iou_interval([90], [100]) is None  # one image: nothing to resample
    assert iou_interval([0, 0], [0, 0]) == (1.0, 1.0)  # no foot anywhere and none found: a perfect score, as iou


def test_evaluate_scores_at_the_model_s_threshold_and_threshold_ious_at_each(saved_model: Path,
                                                                            tiny_dataset: Path) -> None:
    import dataclasses

    from footseg.eval.evaluate import threshold_ious

    ious = threshold_ious(saved_model, tiny_dataset, thresholds=(0.3, 0.5, 0.7), split="test", batch_size=3)
    assert list(ious) == [0.3, 0.5, 0.7]
    assert ious[0.5] == pytest.approx(evaluate(saved_model, tiny_dataset)["iou"], abs=1e-12)
    at = evaluate(saved_model, tiny_dataset, threshold=0.7)
    assert at["threshold"] == 0.7 and at["iou"] == pytest.approx(ious[0.7], abs=1e-12)
    stored = Predictor(saved_model)
    stored.info = dataclasses.replace(stored.info, threshold=0.7)  # a model whose own threshold is 0.7
    assert evaluate(stored, tiny_dataset)["iou"] == at["iou"] and evaluate(stored, tiny_dataset, threshold=0.5)[
        "iou"] == pytest.approx(ious[0.5], abs=1e-12)
    assert len(set(ious.values())) > 1  # an untrained network's probabilities spread: thresholds differ
    with pytest.raises(FootsegError, match="between 0 and 1"):
        threshold_ious(saved_model, tiny_dataset, thresholds=(0.5, 1.0))
    assert Predictor(saved_model).at_threshold(None).threshold == 0.5


def test_eval_threshold_option_looks_at_another_operating_point(saved_model: Path, tiny_dataset: Path,
                                                                tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from footseg.eval.evaluate import threshold_ious

    out = tmp_path / "scores.json"
    assert main(["eval", str(saved_model), "--data", str(tiny_dataset), "--threshold", "0.7", "--json", str(out)]) == 0
    at = threshold_ious(saved_model, tiny_dataset, thresholds=(0.7,), split="test")
    assert json.loads(out.read_text())["iou"] == pytest.approx(at[0.7], abs=1e-12)
    capsys.readouterr()
    assert main(["eval", str(saved_model), "--data", str(tiny_dataset), "--threshold", "1.5"]) == 2
    assert "threshold must be a number between 0 and 1, got 1.5" in capsys.readouterr().err


def test_region_peak_ious_score_each_peak_as_evaluate_does(saved_model: Path, tiny_dataset: Path) -> None:
    from footseg.eval.evaluate import region_peak_ious

    predictor = Predictor(saved_model)
    probs = predictor.network_proba([read_sample(s)[0] for s in labelled_samples(tiny_dataset, "test")])
    # peaks between the regions' own: some regions have a pixel above it, some do not
    peaks = [0.0, float(np.quantile(probs[probs > 0.5], 0.5)), float(np.quantile(probs[probs > 0.5], 0.9))]
    ious = region_peak_ious(saved_model, tiny_dataset, peaks, split="test", batch_size=3)
    assert list(ious) == peaks
    assert ious[0.0] == pytest.approx(evaluate(saved_model, tiny_dataset)["iou"], abs=1e-12)
    for peak in peaks[1:]:
        at = evaluate(saved_model, tiny_dataset, region_peak=peak)
        assert at["region_peak"] == peak and at["iou"] == pytest.approx(ious[peak], abs=1e-12)
    assert len(set(ious.values())) > 1  # the peaks clear different regions: the test can tell them apart
    with pytest.raises(FootsegError, match="region_peak must be a number between 0 and 1"):
        region_peak_ious(saved_model, tiny_dataset, [0.5, 1.0])


def test_presence_ious_score_each_gate_as_evaluate_does(saved_model: Path, tiny_dataset: Path) -> None:
    from footseg.eval.evaluate import presence_ious

    predictor = Predictor(saved_model)
    probs = predictor.network_proba([read_sample(s)[0] for s in labelled_samples(tiny_dataset, "test")])
    peaks = sorted(float(p.max()) for p in probs)
    levels = [0.0, (peaks[0] + peaks[1]) / 2, (peaks[-2] + peaks[-1]) / 2]  # clearing one frame, then all but one
    ious = presence_ious(saved_model, tiny_dataset, levels, split="test", batch_size=3)
    assert list(ious) == levels
    assert ious[0.0] == pytest.approx(evaluate(saved_model, tiny_dataset)["iou"], abs=1e-12)
    for level in levels[1:]:
        at = evaluate(saved_model, tiny_dataset, presence=level)
        assert at["presence"] == level and at["iou"] == pytest.approx(ious[level], abs=1e-12)
    assert len(set(ious.values())) == 3  # each level clears other frames: the test can tell them apart
    with pytest.raises(FootsegError, match="presence must be a number between 0 and 1"):
        presence_ious(saved_model, tiny_dataset, [0.5, 1.0])


def test_a_presence_gate_pays_on_frames_with_no_foot(red_model, tmp_path: Path) -> None:
    from footseg.eval.evaluate import presence_ious

    # a frame with a sure foot (red: ~1.0) and one of floor with a foot-like patch the network half-believes (~0.77)
    foot, floor = np.full((64, 64, 3), 128, np.uint8), np.full((64, 64, 3), 128, np.uint8)
    foot[8:24, 8:24] = (230, 77, 77)
    floor[40:56, 40:56] = (170, 86, 86)
    truth = np.zeros((64, 64), np.uint8)
    truth[8:24, 8:24] = 1
    for stem, image, mask in (("foot", foot, truth), ("floor", floor, np.zeros_like(truth))):
        write_png(tmp_path / "val" / "images" / f"{stem}.png", image)
        write_png(tmp_path / "val" / "masks" / f"{stem}.png", mask)
    net, info = red_model
    ious = presence_ious((net, info), tmp_path, [0.0, 0.5, 0.99], split="val")
    assert ious[0.0] == ious[0.5] == pytest.approx(256 / 512) and ious[0.99] == 1.0


def test_operating_points_score_each_point_as_evaluate_and_count_blobs_as_a_live_frame_shows_them(
        saved_model: Path, tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from footseg.eval.error_kinds import BLOB, largest_region
    from footseg.eval.evaluate import operating_points

    # the tiny test split, and its photos again labelled as frames with no foot (where all the net finds is wrong)
    data = tmp_path / "data"
    for k, sample in enumerate(labelled_samples(tiny_dataset, "test")):
        image, mask = read_sample(sample)
        for stem, truth in ((f"foot{k}", mask), (f"empty{k}", np.zeros_like(mask))):
            write_png(data / "val" / "images" / f"{stem}.png", image)
            write_png(data / "val" / "masks" / f"{stem}.png", truth)
    predictor = Predictor(saved_model)
    probs = predictor.network_proba([read_sample(s)[0] for s in labelled_samples(data, "val")])
    tops = sorted(float(p.max()) for p in probs)
    thresholds, peaks = [0.3, 0.5, 0.7], [0.0, float(np.quantile(probs[probs > 0.5], 0.5))]
    presences = [0.0, (tops[1] + tops[2]) / 2]
    grid = operating_points(saved_model, data, thresholds, peaks, presences, split="val", batch_size=8)
    assert list(grid) == [(t, p, q) for t in thresholds for p in peaks for q in presences]
    empties = [s for s in labelled_samples(data, "val") if s.image.stem.startswith("empty")]
    for (t, p, q), (iou, rate) in grid.items():
        at = predictor.at_threshold(t).at_region_peak(p).at_presence(q)
        scores = evaluate(at, data, split="val")
        assert iou == pytest.approx(scores["iou"], abs=1e-12)
        masks = [at.predict_mask(read_sample(s)[0]) > 0 for s in empties]
        assert rate == sum(largest_region(m) > BLOB * m.size for m in masks) / len(empties) == scores["blob_rate"]
        assert scores["empty"] == len(empties) == 4
    assert len({rate for _, rate in grid.values()}) > 1 and len({iou for iou, _ in grid.values()}) > 2
    all_feet = evaluate(saved_model, tiny_dataset)
    assert (all_feet["empty"], all_feet["blob_rate"]) == (0, None)
    assert main(["eval", str(saved_model), "--data", str(data), "--split", "val"]) == 0
    rate = evaluate(saved_model, data, split="val")["blob_rate"]
    assert f"a blob on {100 * rate:.1f} % of 4 frames with no foot" in capsys.readouterr().out
    without = operating_points(saved_model, tiny_dataset, thresholds, peaks, presences, split="test")
    assert {rate for _, rate in without.values()} == {None}  # no frame without foot: no rate
    with pytest.raises(FootsegError, match="presence must be a number between 0 and 1"):
        operating_points(saved_model, data, thresholds, peaks, [1.0])


def test_eval_region_peak_option(saved_model: Path, tiny_dataset: Path, tmp_path: Path,
                                 capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "scores.json"
    assert main(["eval", str(saved_model), "--data", str(tiny_dataset), "--region-peak", "0.6", "--json",
                 str(out)]) == 0
    scores = json.loads(out.read_text())
    assert scores["region_peak"] == 0.6 and "region peak 0.6" in capsys.readouterr().out
    assert scores["iou"] == pytest.approx(evaluate(saved_model, tiny_dataset, region_peak=0.6)["iou"], abs=1e-12)
    assert main(["eval", str(saved_model), "--data", str(tiny_dataset), "--region-peak", "2"]) == 2
    assert "region_peak must be a number between 0 and 1" in capsys.readouterr().err


def test_eval_presence_option(saved_model: Path, tiny_dataset: Path, tmp_path: Path,
                              capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "scores.json"
    level = float(np.median([p.max() for p in Predictor(saved_model).network_proba(
        [read_sample(s)[0] for s in labelled_samples(tiny_dataset, "test")])]))
    assert main(["eval", str(saved_model), "--data", str(tiny_dataset), "--presence", str(level), "--json",
                 str(out)]) == 0
    scores = json.loads(out.read_text())
    assert scores["presence"] == level and f"presence {level:g}" in capsys.readouterr().out
    assert scores["iou"] == pytest.approx(evaluate(saved_model, tiny_dataset, presence=level)["iou"], abs=1e-12)
    assert scores["iou"] != evaluate(saved_model, tiny_dataset)["iou"]  # the gate cleared some frames
    assert main(["eval", str(saved_model), "--data", str(tiny_dataset), "--presence", "2"]) == 2
    assert "presence must be a number between 0 and 1" in capsys.readouterr().err

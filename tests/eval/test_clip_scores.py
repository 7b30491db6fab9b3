"""``footseg eval --clips``: pooled per-frame IoU, flicker as the issue defines it, frames and clips counted."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from footseg.cli import main
from footseg.data.io import write_png
from footseg.errors import FootsegError
from footseg.eval.clips import FlickerMeter, evaluate_clips


def test_flicker_counts_label_changes_where_the_truth_stood_still() -> None:
    meter = FlickerMeter()
    true = np.zeros((4, 4), bool)
    true[:2] = True  # 8 foot pixels, the same in both frames
    first = true.copy()
    second = true.copy()
    second[0, 0] = False  # a toe lost: flicker
    second[3, 3] = True  # a blob of floor: flicker
    meter.update(first, true)
    meter.update(second, true)
    assert (meter.changed, meter.foot) == (2, 8) and meter.flicker == pytest.approx(25.0)


def test_a_change_that_follows_the_truth_is_no_flicker() -> None:
    meter = FlickerMeter()
    a, b = np.zeros((4, 4), bool), np.zeros((4, 4), bool)
    a[0] = True
    b[1] = True  # the foot moved down a row, and the prediction with it
    meter.update(a, a)
    meter.update(b, b)
    assert meter.changed == 0 and meter.foot == 8 and meter.flicker == 0.0
    meter.reset()  # a new clip: its first frame pairs with nothing
    meter.update(a, a)
    assert meter.foot == 8


def _clip(folder: Path, frames: list[tuple[np.ndarray, np.ndarray]]) -> Path:
    for i, (image, mask) in enumerate(frames):
        write_png(folder / "images" / f"f{i:03d}.png", image)
        write_png(folder / "masks" / f"f{i:03d}.png", mask)
    return folder


def test_scores_pool_every_frame_of_every_clip(red_model, make_photo, tmp_path: Path) -> None:
    data = tmp_path / "clips"
    _clip(data / "a", [make_photo(48, 64, seed=i) for i in range(3)])
    _clip(data / "b", [make_photo(48, 64, seed=10 + i) for i in range(2)])
    scores = evaluate_clips(red_model, data)
    assert (scores["n_clips"], scores["n_frames"], scores["mode"]) == (2, 5, "smooth")  # a still model's default
    assert scores["iou"] > 0.9 and [c["clip"] for c in scores["per_clip"]] == ["a", "b"]
    assert scores["flicker"] < 20 and scores["latency_ms"] > 0


def test_the_cli_writes_the_keys_the_issue_names(saved_model: Path, make_photo, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    _clip(tmp_path / "clips" / "a", [make_photo(40, 40, seed=i) for i in range(2)])
    out = tmp_path / "scores.json"
    assert main(["eval", str(saved_model), "--clips", str(tmp_path / "clips"), "--smooth", "0.5",
                 "--json", str(out)]) == 0
    scores = json.loads(out.read_text())
    assert {"iou", "accuracy", "flicker", "n_clips", "n_frames"} <= set(scores) and scores["mode"] == "smooth"
    assert scores["ratio"] == 0.5 and "mode smooth 0.5  " in capsys.readouterr().out  # runs of two ratios differ


def test_clips_are_timed_at_one_thread_whatever_session_the_predictor_came_with(
        saved_model: Path, make_photo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI makes its predictor before evaluate_clips pins the threads (for --region-peak and the like); an ONNX
    session keeps the count it was made with, so the latency must still be one thread's."""
    import shutil

    import torch

    from footseg.deploy.export import export_onnx
    from footseg.eval import clips
    from footseg.runtime.predictor import Predictor

    folder = tmp_path / "model"
    shutil.copytree(saved_model, folder)
    export_onnx(folder)
    _clip(tmp_path / "clips" / "a", [make_photo(40, 40, seed=i) for i in range(2)])
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        predictor = Predictor(folder)
    finally:
        torch.set_num_threads(threads)
    assert predictor.onnx.threads == 2
    seen = []
    real = clips.VideoSegmenter

    def recording(predictor: Predictor, *args: object) -> object:
        seen.append(predictor.onnx.threads)
        return real(predictor, *args)

    monkeypatch.setattr(clips, "VideoSegmenter", recording)
    assert evaluate_clips(predictor, tmp_path / "clips")["runtime"] == "onnx" and seen == [1]


def test_masks_at_another_resolution_score_as_the_full_size_ones(red_model, make_photo, tmp_path: Path) -> None:
    from footseg.data.transforms import resize_mask

    frames = [make_photo(48, 64, seed=i) for i in range(3)]
    _clip(tmp_path / "full" / "a", frames)
    _clip(tmp_path / "half" / "a", [(image, resize_mask(mask, (24, 32))) for image, mask in frames])
    full, half = evaluate_clips(red_model, tmp_path / "full"), evaluate_clips(red_model, tmp_path / "half")
    assert half["n_frames"] == 3 and half["iou"] > 0.9 and full["iou"] > 0.9  # the small masks blur the edges
    _clip(tmp_path / "odd" / "a", [(image, resize_mask(mask, (48, 48))) for image, mask in frames])
    with pytest.raises(FootsegError, match="mask size 48x48 differs from image size 64x48"):
        evaluate_clips(red_model, tmp_path / "odd")


def test_clips_with_soft_masks_are_named_once(red_model, saved_model: Path, make_photo, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    frames = [make_photo(48, 64, seed=i) for i in range(3)]
    _clip(tmp_path / "clips" / "a", frames)
    odd = [(image, np.where(mask > 0, 200, 30).astype(np.uint8)) for image, mask in frames]  # background stored as 30
    _clip(tmp_path / "clips" / "b", [frames[0], *odd[1:]])
    _clip(tmp_path / "clips" / "c", odd)
    assert evaluate_clips(red_model, tmp_path / "clips")["unlike_labels"] == ["b", "c"]
    assert main(["eval", str(saved_model), "--clips", str(tmp_path / "clips")]) == 0
    err = capsys.readouterr().err
    assert "2 of 3 clips have masks with values other than 0 and one foot value" in err and "e.g. b:" in err


def test_a_frame_without_a_mask_is_named(red_model, make_photo, tmp_path: Path) -> None:
    clip = _clip(tmp_path / "clips" / "a", [make_photo(40, 40, seed=i) for i in range(2)])
    (clip / "masks" / "f001.png").unlink()
    with pytest.raises(FootsegError, match="no mask") as err:
        evaluate_clips(red_model, tmp_path / "clips")
    assert str(clip / "images" / "f001.png") in str(err.value)


def test_eval_wants_photos_or_clips(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval"]) == 2
    assert "one of --data DIR (photos) or --clips DIR" in capsys.readouterr().err


def test_a_folder_of_photos_of_several_sizes_given_as_a_clip_is_one_line(red_model, make_photo, tmp_path: Path
                                                                          ) -> None:
    photos = tmp_path / "photos"  # a dataset of still photos, as real-dev is: some upright, some turned
    _clip(photos, [make_photo(24, 32, seed=0), make_photo(32, 24, seed=1)])
    with pytest.raises(FootsegError, match=r"photos/images/\w+.png: 24x32, the clip's first frame 32x24: a clip's "
                                           r"frames are one video's, of one size \(photos are scored with --data\)"):
        evaluate_clips(red_model, photos)

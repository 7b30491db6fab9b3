from __future__ import annotations

import dataclasses
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from footseg.errors import FootsegError, FootsegWarning
from footseg.metrics import binary_scores
from footseg.models import SavedModelInfo
from footseg.runtime.predictor import Predictor, as_predictor, gate_presence, keep_confident_regions


def _iou(pred: np.ndarray, mask: np.ndarray) -> float:
    return binary_scores(torch.from_numpy(pred), torch.from_numpy(mask > 0))["iou"]


@pytest.mark.parametrize(("h", "w"), [(480, 640), (640, 480), (37, 91), (64, 64)])
def test_probability_comes_back_at_the_photo_size(red_model, make_photo, h: int, w: int) -> None:
    image, mask = make_photo(h, w, seed=h + w)
    predictor = Predictor(red_model)
    prob = predictor.predict_proba(image)
    assert prob.shape == (h, w) and prob.dtype == np.float32
    assert prob.min() >= 0.0 and prob.max() <= 1.0
    assert red_model[0].seen == [(1, 3, 64, 64)]  # the network always sees its training size
    pred = predictor.predict_mask(image)
    assert pred.dtype == np.uint8 and set(np.unique(pred)) <= {0, 1}
    assert _iou(pred, mask) > 0.9


def test_non_square_input_size_is_honoured(red_net, make_photo) -> None:
    net = red_net()
    predictor = Predictor((net, SavedModelInfo("red", input_size=(96, 64))))
    image, mask = make_photo(120, 80)
    assert _iou(predictor.predict_mask(image), mask) > 0.9
    assert net.seen == [(1, 3, 96, 64)]


def test_single_logit_models_use_a_sigmoid(red_net, make_photo) -> None:
    image, mask = make_photo(50, 70)
    predictor = Predictor((red_net(num_classes=1), SavedModelInfo("red", num_classes=1, input_size=(64, 64))))
    assert _iou(predictor.predict_mask(image), mask) > 0.9


def test_batch_matches_one_by_one(saved_model: Path, make_photo) -> None:
    predictor = Predictor(saved_model)
    images = [make_photo(h, w, seed=i)[0] for i, (h, w) in enumerate([(40, 60), (64, 64), (90, 33)])]
    batch = predictor.predict_batch(images)
    assert [p.shape for p in batch] == [im.shape[:2] for im in images]
    for image, prob in zip(images, batch, strict=True):
        np.testing.assert_allclose(prob, predictor.predict_proba(image), atol=1e-5)
    assert predictor.predict_batch([]) == []


def test_loads_a_saved_model_folder(saved_model: Path) -> None:
    predictor = as_predictor(saved_model)
    assert predictor.ref.path == saved_model and predictor.input_size == (64, 64)
    assert not predictor.model.training
    assert as_predictor(predictor) is predictor


def test_rejects_input_sizes_the_network_cannot_take(red_net) -> None:
    with pytest.raises(FootsegError, match="multiples of 32"):
        Predictor((red_net(), SavedModelInfo("red", input_size=(50, 64))))


def test_rejects_non_rgb_arrays(red_model) -> None:
    with pytest.raises(ValueError, match="uint8 RGB"):
        Predictor(red_model).predict_proba(np.zeros((32, 32), dtype=np.uint8))


class _SplitFoot(torch.nn.Module):
    """Three classes, foot split between classes 1 and 2: each alone is less likely than background's share of the
    rest, together they are the argmax-foot the losses and metrics count (any non-zero class)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        return torch.tensor([0.0, 0.3, 0.3]).view(1, 3, 1, 1).expand(n, 3, h, w).clone()


def test_every_non_background_class_counts_as_foot(make_photo) -> None:
    predictor = Predictor((_SplitFoot(), SavedModelInfo("split", num_classes=3, input_size=(64, 64))))
    prob = predictor.predict_proba(make_photo(40, 40)[0])
    # softmax([0, .3, .3]): background 0.27, each foot class 0.365 -- class 1 alone would call it background
    assert np.allclose(prob, 1 - 1 / (1 + 2 * np.exp(0.3)), atol=1e-6)
    assert predictor.predict_mask(make_photo(40, 40)[0]).all()


def test_masks_follow_the_model_s_threshold(red_net, make_photo) -> None:
    image, _ = make_photo(48, 64)
    net = red_net()
    argmax = Predictor((net, SavedModelInfo("red", input_size=(64, 64))))
    strict = Predictor((net, SavedModelInfo("red", input_size=(64, 64), threshold=0.9)))
    prob = argmax.predict_proba(image)
    assert argmax.threshold == 0.5 and strict.threshold == 0.9
    np.testing.assert_array_equal(argmax.predict_mask(image), prob > 0.5)
    np.testing.assert_array_equal(strict.predict_mask(image), prob > 0.9)
    assert ((prob > 0.5) != (prob > 0.9)).any()  # the photo has pixels between the two: the test can tell


def test_a_predictor_runs_its_network_at_another_size_on_request(saved_model: Path, make_photo) -> None:
    image, _ = make_photo(48, 64)
    own = Predictor(saved_model)
    assert own.at_size(None) is own and own.at_size(own.input_size[0]) is own
    larger = own.at_size(own.input_size[0] + 32)
    assert larger.input_size == (own.input_size[0] + 32,) * 2 and own.input_size != larger.input_size
    assert larger.model is own.model  # the same loaded network
    assert larger.network_proba([image]).shape == (1, *larger.input_size)
    assert larger.predict_proba(image).shape == (48, 64)  # back at the photo's size, as at its own size
    with pytest.raises(FootsegError, match="multiple of 32 from 32 to 4096, got 50"):
        own.at_size(50)
    with pytest.raises(FootsegError, match="multiple of 32 from 32 to 4096, got 100000"):  # 30 GB in OpenCV's hands
        own.at_size(100000)


def test_an_exported_file_keeps_its_size(fp32_onnx: Path) -> None:
    exported = Predictor(fp32_onnx)
    assert exported.at_size(exported.input_size[0]) is exported
    with pytest.raises(FootsegError, match="runs at the size it was exported at") as err:
        exported.at_size(exported.input_size[0] + 32)
    assert str(fp32_onnx) in str(err.value)


def _two_blobs() -> np.ndarray:
    """A 64x64 grey photo with a clearly red square (foot to RedIsFoot, ~1.0) and a faintly red one (~0.77)."""
    image = np.full((64, 64, 3), 128, np.uint8)
    image[8:24, 8:24] = (230, 77, 77)  # red - green = 0.6: sigmoid(12)
    image[40:56, 40:56] = (170, 86, 86)  # red - green = 0.33: sigmoid(1.2), above 0.7, below 0.99
    return image


def test_keep_confident_regions_clears_regions_without_a_confident_pixel() -> None:
    prob = np.zeros((8, 10), np.float32)
    prob[1:3, 1:3] = 0.995  # confident
    prob[5:7, 1:3] = 0.8  # unsure, alone: cleared
    prob[1, 6], prob[2, 7] = 0.8, 0.999  # touching diagonally (8-connected): one confident region
    prob[6, 8] = 0.6  # below the threshold: not foot either way, untouched
    out = keep_confident_regions(prob, 0.7, 0.99)
    want = prob.copy()
    want[5:7, 1:3] = 0
    np.testing.assert_array_equal(out, want)
    assert keep_confident_regions(prob, 0.7, 0.5) is prob  # every region has a pixel above 0.5


def test_keep_confident_regions_keeps_the_most_confident_region_of_an_unsure_frame() -> None:
    prob = np.zeros((6, 12), np.float32)
    prob[1:4, 1:4] = 0.9
    prob[1:4, 7:10] = 0.8
    prob[2, 2] = 0.95  # the frame's most confident pixel, below the peak: its region stays, the other goes
    out = keep_confident_regions(prob, 0.7, 0.99)
    assert (out[1:4, 1:4] == prob[1:4, 1:4]).all() and (out[1:4, 7:10] == 0).all()
    single = np.where(prob > 0.85, prob, 0).astype(np.float32)  # one region: nothing to compare it with
    assert keep_confident_regions(single, 0.7, 0.99) is single


def test_a_model_s_region_peak_clears_unsure_regions_everywhere_it_predicts(red_net) -> None:
    image = _two_blobs()
    plain = Predictor((red_net(), SavedModelInfo("red", input_size=(64, 64), threshold=0.7)))
    peaked = Predictor((red_net(), SavedModelInfo("red", input_size=(64, 64), threshold=0.7, region_peak=0.99)))
    assert plain.region_peak is None and peaked.region_peak == 0.99
    both, one = plain.predict_mask(image), peaked.predict_mask(image)
    assert both[8:24, 8:24].all() and both[40:56, 40:56].all()
    assert one[8:24, 8:24].all() and not one[40:56, 40:56].any()
    np.testing.assert_array_equal(peaked.at_region_peak(0).predict_mask(image), both)  # 0: every region kept
    np.testing.assert_array_equal(plain.at_region_peak(0.99).predict_mask(image), one)
    assert plain.at_region_peak(None) is plain
    with pytest.raises(FootsegError, match="region_peak must be a number between 0 and 1"):
        plain.at_region_peak(1.5)


def test_gate_presence_clears_a_frame_without_a_pixel_above_it() -> None:
    prob = np.zeros((6, 8), np.float32)
    prob[1:3, 1:3] = 0.9
    assert gate_presence(prob, 0.8) is prob  # a pixel above it: the frame is untouched
    cleared = gate_presence(prob, 0.95)
    assert cleared.shape == prob.shape and cleared.dtype == prob.dtype and not cleared.any() and prob.any()
    exact = np.full((2, 2), 0.99, np.float32)  # compared in float32, as the web page compares: 0.99 is not above 0.99
    assert not gate_presence(exact, 0.99).any() and gate_presence(exact, 0.985) is exact


def test_a_model_s_presence_clears_frames_it_is_unsure_of(red_net) -> None:
    sure, unsure = _two_blobs(), _two_blobs()
    unsure[8:24, 8:24] = 128  # only the faint square (~0.77) is left
    gated = Predictor((red_net(), SavedModelInfo("red", input_size=(64, 64), threshold=0.7, presence=0.99)))
    plain = gated.at_presence(0)
    assert gated.presence == 0.99 and plain.presence is None and gated.at_presence(None) is gated
    np.testing.assert_array_equal(gated.predict_mask(sure), plain.predict_mask(sure))  # a sure foot: both squares
    assert plain.predict_mask(unsure)[40:56, 40:56].all() and not gated.predict_mask(unsure).any()
    with pytest.raises(FootsegError, match="presence must be a number between 0 and 1"):
        plain.at_presence(1.5)


def test_a_config_with_a_side_no_network_runs_at_is_refused(red_net) -> None:
    for side in (50, 100000):
        with pytest.raises(FootsegError, match=f"input_size must be two multiples of 32 from 32 to 4096, got .*{side}"):
            Predictor((red_net(), SavedModelInfo("red", input_size=(side, 64))))


def _folder_with_own_export(saved_model: Path, tmp_path: Path) -> Path:
    """A copy of ``saved_model`` (a session fixture, not to be written into) holding ``footseg export``'s file."""
    from footseg.deploy.export import export_onnx

    folder = tmp_path / "model"
    shutil.copytree(saved_model, folder)
    assert export_onnx(folder) == folder / "model.onnx"
    return folder


def test_a_folder_holding_its_own_export_runs_it_in_onnx_runtime(saved_model: Path, tmp_path: Path,
                                                                  make_photo) -> None:
    folder = _folder_with_own_export(saved_model, tmp_path)
    image, _ = make_photo(48, 64)
    fast, weights = Predictor(folder), Predictor(folder, runtime="torch")
    assert (fast.runtime, fast.model) == ("onnx", None) and fast.onnx.path == folder / "model.onnx"
    assert weights.runtime == "torch" and weights.model is not None
    assert fast.info == weights.info
    # the same network: the two runtimes differ in float rounding only
    np.testing.assert_allclose(fast.predict_proba(image), weights.predict_proba(image), atol=1e-4)
    assert Predictor(folder, runtime="onnx").runtime == "onnx"
    assert Predictor(folder, device=torch.device("cpu", 0)).runtime == "onnx"  # "cpu:0" is the CPU too
    with pytest.raises(FootsegError, match="unknown device 'gpu'"):
        Predictor(folder, device="gpu")
    assert Predictor(saved_model).runtime == "torch"  # no export beside the weights


def test_an_export_of_other_weights_is_not_run_in_their_place(saved_model: Path, tmp_path: Path) -> None:
    from footseg.models.saved import load_model, save_model

    folder = _folder_with_own_export(saved_model, tmp_path)
    net, info = load_model(folder)
    with torch.no_grad():
        next(net.parameters()).add_(0.01)
    save_model(net, folder, info)  # trained again into the same folder: model.onnx is of the weights before
    stale = r"its model\.onnx was exported from other weights \(trained again since\?\): its weights run in PyTorch"
    with pytest.warns(FootsegWarning, match=stale) as said:
        assert Predictor(folder).runtime == "torch"
    assert len(said) == 1 and str(said[0].message).startswith(f"{folder}: ")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # asked for, the weights run without a word
        assert Predictor(folder, runtime="torch").runtime == "torch"
    with pytest.raises(FootsegError, match=r"its model\.onnx was exported from other weights \(trained again since\?\):"
                                           " run `footseg export` on it first") as err:
        Predictor(folder, runtime="onnx")
    assert str(folder) in str(err.value)
    (folder / "model.onnx").write_bytes(b"not onnx")  # a broken file never stops the weights
    with pytest.warns(FootsegWarning, match="cannot be run"):
        assert Predictor(folder).runtime == "torch"
    with pytest.raises(FootsegError, match=r"its model\.onnx cannot be run \(unreadable ONNX model"):
        Predictor(folder, runtime="onnx")


def test_decisions_come_from_the_config_and_an_int8_file_is_no_fp32_export(saved_model: Path, tmp_path: Path,
                                                                            int8_onnx: Path) -> None:
    from footseg.models.info import read_info, write_info

    folder = _folder_with_own_export(saved_model, tmp_path)
    info = read_info(folder)
    # as a recipe's result: a threshold and notes set after the export change nothing in the graph
    write_info(folder, dataclasses.replace(info, threshold=0.8, region_peak=0.95, extra={**info.extra, "note": 1}))
    fast = Predictor(folder)
    assert fast.runtime == "onnx" and (fast.threshold, fast.region_peak) == (0.8, 0.95)
    side = "x".join(map(str, info.input_size))
    write_info(folder, dataclasses.replace(info, input_size=(96, 96)))  # its side changed: the export's is another
    with pytest.warns(FootsegWarning, match=rf"its model\.onnx takes {side} frames where its config\.json says 96x96"):
        assert Predictor(folder).runtime == "torch"
    write_info(folder, dataclasses.replace(info, width=info.width * 2))  # another network altogether
    with pytest.raises(FootsegError, match=r"is of another network than its config\.json describes"):
        Predictor(folder, runtime="onnx")
    write_info(folder, info)
    shutil.copyfile(int8_onnx, folder / "model.onnx")
    with pytest.raises(FootsegError, match=r"its model\.onnx is int8"):
        Predictor(folder, runtime="onnx")
    assert Predictor(int8_onnx).runtime == "onnx-int8"


def test_runtimes_asked_for_that_cannot_run_the_model_are_refused(saved_model: Path, fp32_onnx: Path,
                                                                  red_model, tmp_path: Path) -> None:
    from footseg.runtime.resolve import resolve_model

    with pytest.raises(FootsegError, match="unknown runtime 'tensorflow'; choose one of: auto, torch, onnx"):
        Predictor(saved_model, runtime="tensorflow")
    with pytest.raises(FootsegError, match="runs in ONNX Runtime, not PyTorch"):
        Predictor(fp32_onnx, runtime="torch")
    with pytest.raises(FootsegError, match="a network in memory runs in PyTorch"):
        Predictor(red_model, runtime="onnx")
    assert Predictor(fp32_onnx, runtime="onnx").runtime == "onnx"
    with pytest.raises(FootsegError, match=r"holds no model\.onnx: run `footseg export` on it first"):
        Predictor(saved_model, runtime="onnx")
    folder = _folder_with_own_export(saved_model, tmp_path)
    with pytest.raises(FootsegError, match="footseg runs ONNX Runtime on the CPU, not cuda"):
        Predictor(folder, device="cuda", runtime="onnx")
    with pytest.raises(FootsegError, match="its export runs at the size it was exported at, not 96"):
        Predictor(resolve_model(folder).at_size(96), runtime="onnx")
    assert Predictor(resolve_model(folder).at_size(96)).runtime == "torch"  # auto: the weights, at that side
    with pytest.raises(FootsegError, match=r"its export runs at the size it was exported at \(64\), not 96"):
        Predictor(folder, runtime="onnx").at_size(96)


def test_a_folder_run_in_onnx_runtime_runs_at_another_size_in_pytorch(saved_model: Path, tmp_path: Path,
                                                                      make_photo) -> None:
    folder = _folder_with_own_export(saved_model, tmp_path)
    fast = Predictor(folder).at_threshold(0.6)
    larger = fast.at_size(96)
    assert larger.runtime == "torch" and larger.input_size == (96, 96) and larger.threshold == 0.6
    image, _ = make_photo(48, 64)
    np.testing.assert_allclose(larger.predict_proba(image), Predictor(folder, runtime="torch").at_size(96)
                               .predict_proba(image), atol=1e-6)


def test_with_threads_remakes_only_an_onnx_session(saved_model: Path, tmp_path: Path) -> None:
    folder = _folder_with_own_export(saved_model, tmp_path)
    weights, fast = Predictor(folder, runtime="torch"), Predictor(folder)
    assert weights.with_threads(3) is weights
    three = fast.with_threads(3)
    assert three.onnx.threads == 3 and three.onnx.session.get_session_options().intra_op_num_threads == 3
    assert three.with_threads(3) is three and fast.onnx.threads == torch.get_num_threads()  # the original kept


@pytest.mark.parametrize("classes", [1, 2, 3])
def test_the_array_foot_probability_is_training_s_foot_probability(classes: int) -> None:
    from footseg.runtime.predictor import foot_probability, foot_probability_array

    logits = torch.randn(2, classes, 5, 7, generator=torch.Generator().manual_seed(classes)) * 8
    logits[0, :, 0, 0] = torch.tensor([-200.0, 150.0, 0.0][:classes])  # far from the boundary: no inf, no nan
    want = foot_probability(logits).numpy()
    got = foot_probability_array(logits.numpy())
    assert got.dtype == np.float32 and got.shape == (2, 5, 7) and np.isfinite(got).all()
    np.testing.assert_allclose(got, want, atol=1e-6)

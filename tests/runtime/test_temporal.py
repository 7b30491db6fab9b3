"""Video modes through one state object: per-frame, MediaPipe's smoothing, and the prior-mask network."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from footseg.errors import FootsegError
from footseg.models import SavedModelInfo
from footseg.runtime.predictor import Predictor
from footseg.runtime.temporal import VideoSegmenter, default_mode, smooth


class _PriorEcho(torch.nn.Module):
    """A 'prior-mask network' whose foot logit is 8 * (prior - 0.5) + (red - green): it shows what prior it got."""

    in_channels = 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        score = 8.0 * (x[:, 3] - 0.5) + (x[:, 0] - x[:, 1])
        return torch.stack([torch.zeros_like(score), score], dim=1)


def _prior_predictor() -> Predictor:
    return Predictor((_PriorEcho(), SavedModelInfo("echo", input_size=(32, 32), in_channels=4)))


def test_smoothing_follows_confident_pixels_and_holds_unsure_ones() -> None:
    previous = np.array([0.9, 0.9, 0.9], np.float32)
    new = np.array([0.0, 0.5, 1.0], np.float32)
    out = smooth(new, previous, ratio=0.7)
    assert out[0] == pytest.approx(0.0, abs=1e-4) and out[2] == pytest.approx(1.0, abs=1e-4)  # certain: unchanged
    assert out[1] == pytest.approx(0.5 + 0.4 * 0.7)  # p = 0.5 is maximally unsure: the full ratio of the pull
    assert np.array_equal(smooth(new, previous, 0.0), new)


def test_the_prior_mode_feeds_the_previous_output_back(make_photo) -> None:
    seg = VideoSegmenter(_prior_predictor(), ratio=0.0)
    assert seg.mode == "prior"
    frame = np.full((40, 50, 3), 128, np.uint8)  # no colour cue: only the prior decides
    first = seg.step(frame)
    assert first.shape == (40, 50) and first.max() < 0.05  # empty prior on the first frame: no foot
    seg.previous = np.ones((32, 32), np.float32)
    assert seg.step(frame).min() > 0.95  # a full prior makes it all foot
    seg.reset()
    assert seg.step(frame).max() < 0.05


def test_smooth_mode_keeps_state_and_per_frame_does_not(red_model, make_photo) -> None:
    image, _ = make_photo(48, 48)
    predictor = Predictor(red_model)
    assert default_mode(predictor.takes_prior) == "smooth"
    per_frame = VideoSegmenter(predictor, "per-frame")
    assert np.array_equal(per_frame.step(image), per_frame.step(image)) and per_frame.previous is None
    smoothed = VideoSegmenter(predictor, mode="smooth", ratio=0.5)
    smoothed.step(image)
    assert smoothed.previous is not None and smoothed.previous.shape == (64, 64)


def test_modes_a_model_cannot_run_are_refused(red_model) -> None:
    with pytest.raises(FootsegError, match="has no prior input"):
        VideoSegmenter(Predictor(red_model), mode="prior")
    with pytest.raises(FootsegError, match="unknown video mode"):
        VideoSegmenter(Predictor(red_model), mode="blend")
    with pytest.raises(FootsegError, match="smoothing ratio"):
        VideoSegmenter(Predictor(red_model), mode="smooth", ratio=1.5)


def test_a_still_image_model_takes_no_prior(red_model, make_photo) -> None:
    with pytest.raises(FootsegError, match="takes no previous-frame mask"):
        Predictor(red_model).network_proba([make_photo(32, 32)[0]], [np.zeros((64, 64), np.float32)])


def test_the_prior_mode_smooths_what_it_shows_and_feeds_back() -> None:
    frame = np.full((32, 32, 3), 128, np.uint8)
    unsure = np.full((32, 32), 0.55, np.float32)
    raw, smoothed = VideoSegmenter(_prior_predictor(), ratio=0.0), VideoSegmenter(_prior_predictor(), ratio=0.7)
    raw.previous, smoothed.previous = unsure.copy(), unsure.copy()
    network = raw.step_small(frame)
    shown = smoothed.step_small(frame)
    assert np.allclose(shown, smooth(network, unsure, 0.7), atol=1e-6) and not np.allclose(shown, network)
    assert np.array_equal(smoothed.previous, shown)  # what was shown is the next frame's prior


def test_each_mode_has_its_own_default_ratio(red_model) -> None:
    from footseg.runtime.temporal import DEFAULT_RATIOS

    assert VideoSegmenter(Predictor(red_model)).ratio == DEFAULT_RATIOS["smooth"] == 1.0
    assert VideoSegmenter(_prior_predictor()).ratio == DEFAULT_RATIOS["prior"]
    assert VideoSegmenter(Predictor(red_model), "per-frame").ratio == 0.0


def test_a_frame_s_mask_is_taken_at_the_model_s_threshold(red_net, make_photo) -> None:
    image, _ = make_photo(48, 64)
    strict = Predictor((red_net(), SavedModelInfo("red", input_size=(64, 64), threshold=0.9)))
    prob = VideoSegmenter(strict, "per-frame").step(image)
    mask = VideoSegmenter(strict, "per-frame").step_mask(image)
    assert mask.dtype == np.uint8
    np.testing.assert_array_equal(mask, prob > 0.9)
    assert ((prob > 0.5) != (prob > 0.9)).any()


@pytest.mark.parametrize("mode", ["per-frame", "smooth"])
def test_each_frame_s_unsure_regions_are_cleared_before_smoothing(red_net, mode: str) -> None:
    image = np.full((64, 64, 3), 128, np.uint8)
    image[8:24, 8:24] = (230, 77, 77)  # foot to RedIsFoot, ~1.0
    image[40:56, 40:56] = (170, 86, 86)  # ~0.77: above the threshold, below the peak
    info = SavedModelInfo("red", input_size=(64, 64), threshold=0.7, region_peak=0.99)
    segmenter = VideoSegmenter(Predictor((red_net(), info)), mode)
    for _ in range(3):  # smoothing would keep an unsure blob alive from frame to frame; cleared, it has none
        mask = segmenter.step_mask(image)
        assert mask[8:24, 8:24].all() and not mask[40:56, 40:56].any()
    plain = VideoSegmenter(Predictor((red_net(), SavedModelInfo("red", input_size=(64, 64), threshold=0.7))), mode)
    assert plain.step_mask(image)[40:56, 40:56].all()  # without the peak the blob is foot: the test can tell


def test_a_prior_model_folder_runs_its_own_export_frame_after_frame(tmp_path, make_photo) -> None:
    """A prior-mask network's export has two inputs; the folder's own export runs in ONNX Runtime in prior mode and
    follows its weights in PyTorch frame after frame (the prior fed back)."""
    from footseg.deploy.export import export_onnx
    from footseg.models import create_model, save_model

    torch.manual_seed(0)
    folder = save_model(create_model("fastlinknet", width=0.25, in_channels=4), tmp_path / "prior",
                        SavedModelInfo("fastlinknet", 0.25, 2, (64, 64), in_channels=4))
    export_onnx(folder)
    fast, weights = VideoSegmenter(Predictor(folder)), VideoSegmenter(Predictor(folder, runtime="torch"))
    assert (fast.predictor.runtime, weights.predictor.runtime, fast.mode) == ("onnx", "torch", "prior")
    for seed in range(3):
        frame = make_photo(48, 64, seed=seed)[0]
        np.testing.assert_allclose(fast.step(frame), weights.step(frame), atol=1e-4)

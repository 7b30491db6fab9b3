"""``footseg video`` and ``footseg live``: a moving red ellipse, the red-is-foot model, and broken inputs."""

from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from footseg.cli import main
from footseg.data.io import read_mask, write_png
from footseg.errors import FootsegError
from footseg.eval import live as live_module
from footseg.eval.live import display_problem, draw_fps, gui_backend, live, run_live
from footseg.eval.video import segment_video
from footseg.eval.video_io import VIDEO_EXTENSIONS, VideoWriter, open_frames
from footseg.one_writer import one_writer
from footseg.runtime.predictor import Predictor
from footseg.runtime.temporal import MODES, VideoSegmenter, describe_mode, video_mode

H, W, N = 96, 128, 12


def moving_blob(k: int, h: int = H, w: int = W) -> tuple[np.ndarray, np.ndarray]:
    """Frame ``k``: grey noise with a red ellipse sliding right, and its (H, W) bool mask."""
    rng = np.random.default_rng(k)
    grey = rng.integers(100, 160, size=(h, w, 1))
    image = np.repeat(grey, 3, axis=2) + rng.integers(-6, 7, size=(h, w, 3))
    yy, xx = np.mgrid[0:h, 0:w]
    inside = ((yy - h * 0.5) / (h * 0.25)) ** 2 + ((xx - w * (0.3 + 0.03 * k)) / (w * 0.18)) ** 2 <= 1
    image[inside] = (205, 45, 40)
    return np.clip(image, 0, 255).astype(np.uint8), inside


def write_video(path: Path, n: int = N, fourcc: str = "mp4v", fps: float = 25.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (W, H))
    assert writer.isOpened()
    for k in range(n):
        writer.write(cv2.cvtColor(moving_blob(k)[0], cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def count_frames(path: Path) -> tuple[int, float, tuple[int, int]]:
    """Frames OpenCV decodes from ``path``, its frame rate and its (height, width)."""
    cap = cv2.VideoCapture(str(path))
    fps, n, shape = cap.get(cv2.CAP_PROP_FPS), 0, (0, 0)
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        n, shape = n + 1, frame.shape[:2]
    cap.release()
    return n, fps, shape


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


@pytest.fixture
def red_predictor(red_model) -> Predictor:
    return Predictor(red_model)


def test_video_file_gives_masks_that_match_the_ellipse_and_a_playable_overlay(tmp_path: Path, red_predictor) -> None:
    video = write_video(tmp_path / "walk.mp4")
    result = segment_video(red_predictor, video, tmp_path / "out", masks=True, progress=False, mode="per-frame")
    assert result.frames == N and result.mode == "per-frame" and result.fps > 0
    masks = sorted((tmp_path / "out" / "masks").iterdir())
    assert [p.name for p in masks] == [f"f{k:05d}.png" for k in range(N)]
    for k, path in enumerate(masks):
        mask = read_mask(path)
        assert set(np.unique(mask)) <= {0, 255}
        assert iou(mask > 0, moving_blob(k)[1]) > 0.9, path.name
    assert count_frames(result.overlay) == (N, 25.0, (H, W))
    assert "12 frames" in result.summary()


def tag_clockwise_quarter_turn(path: Path) -> Path:
    """Mark an MP4 as phones mark a portrait video: its pixels stored sideways, its track's display matrix turning
    them a quarter clockwise (the 'tkhd' box's matrix; version 0, as OpenCV's writer makes it)."""
    data = bytearray(path.read_bytes())
    box = data.find(b"tkhd", data.find(b"moov"))  # in the header, not by chance in the frames' bytes
    assert box > 0 and data[box + 4] == 0
    matrix = box + 4 + 4 + 4 * 5 + 8 + 8  # version/flags, times, track id, reserved, duration; reserved, layer...
    data[matrix:matrix + 36] = struct.pack(">9i", 0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000)
    path.write_bytes(bytes(data))
    return path


def test_a_portrait_phone_video_is_segmented_upright(tmp_path: Path, red_predictor) -> None:
    # FFmpeg's display matrix, applied by OpenCV (CAP_PROP_ORIENTATION_AUTO): the frames, their masks and the
    # overlay all come out as the phone showed them
    video = tag_clockwise_quarter_turn(write_video(tmp_path / "portrait.mp4", n=3))
    result = segment_video(red_predictor, video, tmp_path / "out", masks=True, progress=False, mode="per-frame")
    for k, path in enumerate(sorted((tmp_path / "out" / "masks").iterdir())):
        mask = read_mask(path) > 0
        assert mask.shape == (W, H)
        assert iou(mask, np.rot90(moving_blob(k)[1], -1)) > 0.9, path.name
    assert count_frames(result.overlay)[2] == (W, H)


def test_frame_folder_in_a_clip_keeps_the_frame_names_and_writes_30_fps(tmp_path: Path, red_predictor) -> None:
    # Not zero-padded on purpose: frame2 comes before frame10. Odd sides: the overlay keeps every pixel.
    for k in (1, 2, 10):
        write_png(tmp_path / "clip" / "images" / f"frame{k}.png", moving_blob(k, 45, 67)[0])
    reader = open_frames(tmp_path / "clip")
    assert [name for name, _ in reader] == ["frame1", "frame2", "frame10"]
    result = segment_video(red_predictor, tmp_path / "clip", tmp_path / "out", masks=True, mode="smooth",
                           progress=False)
    assert result.frames == 3 and result.mode == "smooth 1"  # the default ratio
    for k in (1, 2, 10):
        assert iou(read_mask(tmp_path / "out" / "masks" / f"frame{k}.png") > 0, moving_blob(k, 45, 67)[1]) > 0.85
    n, fps, shape = count_frames(result.overlay)
    assert (n, fps) == (3, 30.0) and shape == (46, 68)


def test_masks_are_never_written_over_a_masks_folder_there_before(tmp_path: Path, red_predictor) -> None:
    clip = tmp_path / "clip"
    for k in (1, 2):
        frame, truth = moving_blob(k, 32, 32)
        write_png(clip / "images" / f"frame{k}.png", frame)
        write_png(clip / "masks" / f"frame{k}.png", truth.astype(np.uint8) * 255)
    before = {p.name: p.read_bytes() for p in (clip / "masks").iterdir()}
    with pytest.raises(FootsegError, match=r"already holds masks \(an earlier run") as err:
        segment_video(red_predictor, clip, clip, masks=True, progress=False)  # --out the clip itself
    assert str(clip / "masks") in str(err.value)
    assert {p.name: p.read_bytes() for p in (clip / "masks").iterdir()} == before
    assert not (clip / "overlay.mp4").exists()
    assert segment_video(red_predictor, clip, clip, progress=False).frames == 2  # the overlay alone: nothing to mix


def test_an_overlay_there_before_is_replaced_only_with_overwrite(tmp_path: Path, red_predictor) -> None:
    video = write_video(tmp_path / "walk.mp4", n=3)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "overlay.mp4").write_bytes(b"someone's recording")
    with pytest.raises(FootsegError, match="already exists: --overwrite replaces it") as err:
        segment_video(red_predictor, video, tmp_path / "out", progress=False)
    assert str(tmp_path / "out" / "overlay.mp4") in str(err.value)
    assert (tmp_path / "out" / "overlay.mp4").read_bytes() == b"someone's recording"
    assert segment_video(red_predictor, video, tmp_path / "out", progress=False, overwrite=True).frames == 3
    assert count_frames(tmp_path / "out" / "overlay.mp4")[0] == 3


def test_a_folder_another_job_writes_is_refused_and_left_as_it_is(tmp_path: Path, red_predictor) -> None:
    video = write_video(tmp_path / "walk.mp4", n=3)
    out = tmp_path / "out"
    busy = r"out: another footseg job( \(pid \d+\))? is writing here now: .*, or choose another --out$"
    with one_writer(out):  # as a video into the same --out, still writing its partial overlay, holds it
        (out / "overlay.partial.mp4").write_bytes(b"the other run's frames")
        with pytest.raises(FootsegError, match=busy):
            segment_video(red_predictor, video, out, progress=False)
        assert (out / "overlay.partial.mp4").read_bytes() == b"the other run's frames"


def test_overlay_is_h264_with_its_index_first_and_plays_in_a_browser(tmp_path: Path) -> None:
    import av

    frames = [moving_blob(k, 47, 65)[0] for k in range(9)]  # odd sides: padded to even
    with VideoWriter(tmp_path / "v.mp4", fps=30000 / 1001) as writer:
        for frame in frames:
            writer.write(frame)
    data = (tmp_path / "v.mp4").read_bytes()
    assert -1 < data.find(b"moov") < data.find(b"mdat")  # faststart: a browser plays it while it downloads
    with av.open(str(tmp_path / "v.mp4")) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.codec_context.pix_fmt) == ("h264", "yuv420p")
        assert stream.average_rate == Fraction(30000, 1001)
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    assert len(decoded) == 9 and decoded[0].shape == (48, 66, 3)
    for got, sent in zip(decoded, frames, strict=True):  # in colour and place (the frames' pixel noise aside)
        blur = [cv2.GaussianBlur(f.astype(np.float32), (0, 0), 2) for f in (got[:47, :65], sent)]
        assert np.abs(blur[0] - blur[1]).mean() < 2

    from footseg.bench.browser import CHROMIUM, chromium

    if not CHROMIUM.is_file():
        pytest.skip(f"no {CHROMIUM} (apt-get install chromium)")
    (tmp_path / "play.html").write_text("<video muted src='v.mp4'></video>")
    with chromium("--allow-file-access-from-files") as browser:
        page = browser.new_page()
        page.goto((tmp_path / "play.html").as_uri())
        got = page.evaluate("""() => new Promise((resolve) => {
          const video = document.querySelector('video');
          const done = () => resolve(video.error ? `error ${video.error.code}` : [video.videoWidth, video.videoHeight]);
          if (video.readyState >= 2 || video.error) done();
          video.onloadeddata = done;
          video.onerror = done;
          setTimeout(() => resolve('neither loaded nor failed in 20 s'), 20000);
        })""")
    assert got == [66, 48]  # MPEG-4 Part 2 ('mp4v', what OpenCV's wheels write): "error 4", not supported


def test_what_the_encoder_refuses_is_one_line_naming_the_file_and_leaves_no_file(tmp_path: Path) -> None:
    out = tmp_path / "v.mp4"
    writer = VideoWriter(out, fps=10)
    with pytest.raises(FootsegError, match="cannot write video") as err:
        writer.write(np.zeros((2, 16386, 3), np.uint8))  # wider than H.264 allows
    assert err.value.path == out
    writer.close()  # after the failure: nothing to finish, no second error
    assert list(tmp_path.iterdir()) == []


def test_a_pyav_without_the_encoder_is_one_line_and_leaves_no_file(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from footseg.eval import video_io

    monkeypatch.setattr(video_io, "CODEC", "libx264-that-this-pyav-lacks")  # a distro's PyAV, built without it
    writer = VideoWriter(tmp_path / "v.mp4", fps=10)
    with pytest.raises(FootsegError, match="cannot write video") as err:
        writer.write(moving_blob(0)[0])
    assert err.value.path == tmp_path / "v.mp4"
    writer.close()
    assert list(tmp_path.iterdir()) == []  # its temporary file too


def test_an_overlay_is_at_its_name_only_once_finished(tmp_path: Path) -> None:
    with VideoWriter(tmp_path / "v.mp4", fps=10) as writer:
        writer.write(moving_blob(0)[0])
        assert not (tmp_path / "v.mp4").exists()  # being written beside it
    assert count_frames(tmp_path / "v.mp4")[0] == 1 and sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4"]


@pytest.mark.parametrize(("fps", "stored"), [(29.97002997, Fraction(30000, 1001)), (25.0, Fraction(25)),
                                             (0.5, Fraction(1, 2)), (0.0004, Fraction(1, 2500)), (1000, 1000)])
def test_the_frame_rate_is_stored_as_the_fraction_it_is(fps: float, stored: Fraction) -> None:
    from footseg.eval.video_io import frame_rate_fraction

    assert frame_rate_fraction(fps) == stored


def test_frames_of_another_size_are_fitted_to_the_first(tmp_path: Path) -> None:
    from footseg.errors import FootsegWarning

    warned = pytest.warns(FootsegWarning, match=r"frame 2 is 40x40, the first 96x64: frames of another size")
    with warned as said, VideoWriter(tmp_path / "v.mp4", fps=10) as writer:
        writer.write(moving_blob(0, 64, 96)[0])
        writer.write(moving_blob(1, 40, 40)[0])  # OpenCV's encoder would silently drop it
        writer.write(moving_blob(2, 40, 40)[0])
    assert len(said) == 1  # once, not per frame
    assert count_frames(tmp_path / "v.mp4") == (3, 10.0, (64, 96))


def test_truncated_mp4_is_refused_in_one_line_naming_the_file(tmp_path: Path, red_predictor,
                                                              capfd: pytest.CaptureFixture[str]) -> None:
    video = write_video(tmp_path / "cut.mp4")
    data = video.read_bytes()
    video.write_bytes(data[: len(data) // 2])  # MP4 keeps its index at the end: FFmpeg cannot open what is left
    capfd.readouterr()
    with pytest.raises(FootsegError) as err:
        segment_video(red_predictor, video, tmp_path / "out", masks=True, progress=False)
    message = str(err.value)
    assert "\n" not in message and str(video) in message and "cannot decode video" in message
    native = capfd.readouterr().err  # FFmpeg and OpenCV write to the process's stderr themselves
    assert "moov atom" not in native and "WARN" not in native, native


def test_truncated_avi_keeps_the_frames_before_the_cut(tmp_path: Path, red_predictor) -> None:
    video = write_video(tmp_path / "cut.avi", fourcc="MJPG")  # frames stand alone: half a file decodes to half
    data = video.read_bytes()
    video.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    with pytest.raises(FootsegError) as err:
        segment_video(red_predictor, video, out, masks=True, progress=False)
    message = str(err.value)
    kept = sorted((out / "masks.partial").iterdir())  # a run that did not finish: a stopped run's names
    assert 0 < len(kept) < N
    assert "\n" not in message and message.startswith(f"{video}: video ended after {len(kept)} frames of the {N}")
    assert message.endswith(f"kept in {out / 'overlay.partial.mp4'} and {out / 'masks.partial'}/, which the same "
                            "command replaces")
    assert not (out / "overlay.mp4").exists() and not (out / "masks").exists()
    # The last one kept is the frame the cut goes through: FFmpeg decodes the part of it that is there.
    for k, path in enumerate(kept[:-1]):
        assert iou(read_mask(path) > 0, moving_blob(k)[1]) > 0.9, path.name
    assert count_frames(out / "overlay.partial.mp4")[0] == len(kept)  # finished properly: it plays
    # The input mended, the same command runs again over the partial output, which a finished name would refuse.
    write_video(video, fourcc="MJPG")
    result = segment_video(red_predictor, video, out, masks=True, progress=False)
    assert result.frames == N and len(list((out / "masks").iterdir())) == N
    assert not (out / "overlay.partial.mp4").exists() and not (out / "masks.partial").exists()


def test_inputs_that_are_not_videos_are_refused(tmp_path: Path, red_predictor) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a video")
    fake = tmp_path / "fake.mp4"
    fake.write_text("not a video either")
    (tmp_path / "empty").mkdir()
    cases = {notes: "not a video", fake: "cannot decode video", tmp_path / "missing.mp4": "file not found",
             tmp_path / "empty": "folder has no frames"}
    for path, why in cases.items():
        with pytest.raises(FootsegError, match=why) as err:
            segment_video(red_predictor, path, tmp_path / "out", progress=False)
        assert str(path) in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_video_mode_options() -> None:
    assert video_mode(None, None) == (None, None)  # each mode's own default ratio
    assert video_mode(None, 0.3) == ("smooth", 0.3)
    assert video_mode("prior", 0.0) == ("prior", 0.0)  # the prior network's output, unsmoothed
    with pytest.raises(FootsegError, match="--smooth"):
        video_mode("per-frame", 0.3)


def test_cli_video_with_a_saved_model(tmp_path: Path, saved_model: Path, capsys: pytest.CaptureFixture) -> None:
    video = write_video(tmp_path / "walk.webm", n=4, fourcc="VP80")
    out = tmp_path / "out"
    assert main(["video", str(saved_model), str(video), "--out", str(out), "--masks", "--smooth", "0.5"]) == 0
    assert len(list((out / "masks").glob("f*.png"))) == 4
    assert count_frames(out / "overlay.mp4")[0] == 4
    printed = capsys.readouterr().out.strip()
    assert "segmented 4 frames" in printed and "smooth 0.5" in printed and "\n" not in printed


def test_cli_video_errors_are_one_line(tmp_path: Path, saved_model: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.mov"
    bad.write_bytes(b"\0" * 100)
    assert main(["video", str(saved_model), str(bad), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"footseg: error: {bad}: cannot decode video")
    assert main(["video", str(saved_model), str(bad), str(bad), "--out", str(tmp_path / "out")]) == 2
    assert "takes one video" in capsys.readouterr().err


def test_cli_modes_match_the_runtime() -> None:
    from footseg.cli import build_parser

    for verb in (["video", "clip.mp4", "--out", "o"], ["live"]):
        for mode in MODES:  # the parser spells them out so that --help needs no torch
            assert build_parser().parse_args([*verb, "--mode", mode]).mode == mode
        with pytest.raises(SystemExit):
            build_parser().parse_args([*verb, "--mode", "sharpen"])


def test_live_without_a_gui_or_display_says_so_in_one_line(monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(live_module.sys, "platform", "linux")
    assert main(["live"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("footseg: error: footseg live needs a")


def test_display_problem_names_the_missing_piece(monkeypatch: pytest.MonkeyPatch) -> None:
    assert gui_backend("  GUI:                           NONE\n") == "NONE"
    monkeypatch.setattr(live_module, "gui_backend", lambda: "NONE")
    assert "pip uninstall opencv-python-headless && pip install opencv-python" in display_problem()
    monkeypatch.setattr(live_module, "gui_backend", lambda: "GTK3")
    monkeypatch.setattr(live_module.sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert "DISPLAY" in display_problem()
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    assert display_problem() is None


def test_live_reports_a_missing_camera(monkeypatch: pytest.MonkeyPatch, red_model) -> None:
    monkeypatch.setattr(live_module, "display_problem", lambda: None)
    with pytest.raises(FootsegError, match="cannot open camera 97"):
        live(red_model, camera=97)


def test_live_loop_runs_on_a_fake_camera_until_the_sink_stops(red_predictor) -> None:
    frames = [moving_blob(k)[0] for k in range(10)]
    ticks = iter(np.arange(0.0, 100.0, 0.05))  # a frame every 50 ms: 20 FPS
    shown: list[tuple[np.ndarray, float]] = []

    def sink(image: np.ndarray, fps: float) -> bool:
        shown.append((image, fps))
        return len(shown) < 4

    stats = run_live(VideoSegmenter(red_predictor), iter(frames), sink, clock=lambda: float(next(ticks)))
    assert stats.frames == 4 and len(shown) == 4
    assert stats.fps == pytest.approx(20, rel=0.3) and shown[-1][1] == pytest.approx(20)
    image, inside = shown[2][0], moving_blob(2)[1]
    assert not np.array_equal(image[inside], frames[2][inside])  # the foot is tinted
    assert np.array_equal(image[~inside][:100], frames[2][~inside][:100])  # the floor is not (away from the edge)
    assert draw_fps(image, 19.5).shape == image.shape


@pytest.mark.parametrize("fps", [0, -1, float("nan"), 1e9])
def test_a_frame_rate_no_video_has_is_one_line(fps: float, tmp_path: Path) -> None:
    with pytest.raises(FootsegError, match="frame rate must be a number above 0 and up to 1000"):
        VideoWriter(tmp_path / "v.mp4", fps=fps)


def test_the_cli_refuses_a_frame_rate_before_the_model_loads(tmp_path: Path, capsys) -> None:
    frames = tmp_path / "frames"
    write_png(frames / "0.png", np.zeros((32, 32, 3), np.uint8))
    assert main(["video", str(frames), "--out", str(tmp_path / "o"), "--fps", "1e9"]) == 2
    assert "--fps must be above 0 and up to 1000" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_a_stopped_run_leaves_partial_outputs_that_the_same_command_replaces(tmp_path: Path, red_predictor,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    video = write_video(tmp_path / "walk.mp4")
    out = tmp_path / "out"
    real_step = VideoSegmenter.step_mask
    steps = []

    def ctrl_c_at_the_fifth_frame(self: VideoSegmenter, frame: np.ndarray) -> np.ndarray:
        steps.append(1)
        if len(steps) == 5:
            raise KeyboardInterrupt
        return real_step(self, frame)

    monkeypatch.setattr(VideoSegmenter, "step_mask", ctrl_c_at_the_fifth_frame)
    with pytest.raises(KeyboardInterrupt, match=rf"after 4 of {N} frames \({out / 'overlay.partial.mp4'} and "
                                                rf"{out / 'masks.partial'}/\); the same command starts again"):
        segment_video(red_predictor, video, out, masks=True, progress=False)
    # not under the names of finished outputs, which a rerun would refuse (masks/ of a dataset are its truth)
    assert sorted(p.name for p in out.iterdir()) == ["masks.partial", "overlay.partial.mp4"]
    assert count_frames(out / "overlay.partial.mp4")[0] == 4  # finished properly: it plays
    assert len(list((out / "masks.partial").iterdir())) == 4
    result = segment_video(red_predictor, video, out, masks=True, progress=False)  # the same command
    assert (result.overlay, result.masks, result.frames) == (out / "overlay.mp4", out / "masks", N)
    assert sorted(p.name for p in out.iterdir()) == ["masks", "overlay.mp4"]
    assert count_frames(out / "overlay.mp4")[0] == N and len(list((out / "masks").iterdir())) == N


def test_an_m4v_from_a_phone_is_a_video(tmp_path: Path, red_predictor) -> None:
    video = write_video(tmp_path / "walk.mp4").rename(tmp_path / "walk.m4v")  # MP4 by another name (iOS, iTunes)
    assert segment_video(red_predictor, video, tmp_path / "out", progress=False).frames == N
    (tmp_path / "walk.gif").write_bytes(b"GIF89a")
    with pytest.raises(FootsegError, match=r"walk.gif: not a video file type footseg reads \(\.gif; it reads \.mp4, "
                                           r"\.m4v"):
        segment_video(red_predictor, tmp_path / "walk.gif", tmp_path / "out2", progress=False)



def test_masks_whose_name_is_taken_during_the_run_keep_the_partial_names(tmp_path: Path, red_predictor,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    video = write_video(tmp_path / "walk.mp4", n=3)
    out = tmp_path / "out"
    (out / "masks").mkdir(parents=True)
    (out / "masks.partial").mkdir()  # a stopped run's
    (out / "masks.partial" / "f00007.png").write_bytes(b"stale")
    real_step = VideoSegmenter.step_mask

    def someone_writes_masks_meanwhile(self: VideoSegmenter, frame: np.ndarray) -> np.ndarray:
        (out / "masks" / "theirs.png").write_bytes(b"someone's")
        return real_step(self, frame)

    monkeypatch.setattr(VideoSegmenter, "step_mask", someone_writes_masks_meanwhile)
    with pytest.raises(FootsegError, match=rf"{out / 'masks'}: cannot take this name \(.*\): this run's masks are in "
                                           rf"{out / 'masks.partial'}, its overlay in {out / 'overlay.partial.mp4'}"):
        segment_video(red_predictor, video, out, masks=True, progress=False)
    assert sorted(p.name for p in (out / "masks.partial").iterdir()) == ["f00000.png", "f00001.png", "f00002.png"]
    assert (out / "overlay.partial.mp4").is_file() and not (out / "overlay.mp4").exists()
    monkeypatch.setattr(VideoSegmenter, "step_mask", real_step)
    assert segment_video(red_predictor, video, out, progress=False).masks is None  # without --masks: partial ones go
    assert sorted(p.name for p in out.iterdir()) == ["masks", "overlay.mp4"]
    (tmp_path / "out2").mkdir()
    (tmp_path / "out2" / "masks").write_text("a file")  # refused before the first frame, not after the last
    with pytest.raises(FootsegError, match="out2/masks: is a file, where --masks writes a folder"):
        segment_video(red_predictor, video, tmp_path / "out2", masks=True, progress=False)


def test_a_mode_is_described_with_its_smoothing() -> None:
    # runs at two ratios must not read the same: a prior network's output is smoothed too
    assert [describe_mode(*m) for m in (("smooth", 0.7), ("prior", 1.0), ("prior", 0.0), ("per-frame", 0.0))] == [
        "smooth 0.7", "prior, smooth 1", "prior, smooth 0", "per-frame"]


def test_the_help_names_every_kind_of_video_it_reads(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["video", "--help"])
    said = " ".join(capsys.readouterr().out.split())
    assert f"one video ({' '.join(VIDEO_EXTENSIONS)})" in said

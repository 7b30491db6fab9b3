from __future__ import annotations

import os
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from footseg.data.io import read_image, read_mask, write_png
from footseg.errors import FootsegError
from footseg.eval.predict import FOOT_COLOUR, collect_images, overlay_mask, predict
from footseg.one_writer import one_writer


def test_files_and_folders_get_full_size_masks_and_overlays(red_model, make_blob_folder, tmp_path: Path) -> None:
    nested = make_blob_folder(tmp_path / "dataset", [(40, 70), (66, 50)])  # a folder with images/ inside
    loose = make_blob_folder(tmp_path / "loose", [(33, 47)], prefix="loose") / "images"  # images directly inside
    single = make_blob_folder(tmp_path / "one", [(80, 61)], ext=".jpg", prefix="single") / "images" / "single0.jpg"
    out = tmp_path / "out"
    assert predict(red_model, [nested, loose, single], out).done == 4
    for stem, folder in [("blob0", nested / "images"), ("blob1", nested / "images"), ("loose0", loose)]:
        image = read_image(folder / f"{stem}.png")
        mask = read_mask(out / f"{stem}_mask.png")
        assert mask.shape == image.shape[:2] and set(np.unique(mask)) <= {0, 255}
        truth = read_mask(folder.parent / "masks" / f"{stem}.png") if folder.name == "images" else None
        if truth is not None:
            assert ((mask > 0) == (truth > 0)).mean() > 0.95
        assert read_image(out / f"{stem}_overlay.jpg").shape == image.shape
    assert read_mask(out / "single0_mask.png").shape == (80, 61)


def test_a_heic_photo_gets_a_mask_the_shape_it_is_shown(red_model, tmp_path: Path) -> None:
    photo = Path(__file__).parents[1] / "data" / "files" / "rotated.heic"  # stored 32x24, shown 24 wide, 32 high
    assert collect_images([photo.parent]) == [photo]
    assert predict(red_model, [photo], tmp_path / "out").done == 1
    assert read_mask(tmp_path / "out" / "rotated_mask.png").shape == (32, 24)


def test_runs_a_saved_model_folder(saved_model: Path, make_blob_folder, tmp_path: Path) -> None:
    folder = make_blob_folder(tmp_path / "d", [(48, 80)])
    assert predict(saved_model, [folder], tmp_path / "out").done == 1
    assert read_mask(tmp_path / "out" / "blob0_mask.png").shape == (48, 80)


def test_a_folder_predicted_again_skips_its_own_outputs(red_model, make_blob_folder, tmp_path: Path
                                                                    ) -> None:
    photos = make_blob_folder(tmp_path / "d", [(48, 80), (40, 40)]) / "images"
    assert predict(red_model, [photos], photos).done == 2
    assert predict(red_model, [photos], photos, overwrite=True).done == 2  # not 6: blob0_mask.png is no photo
    assert sorted(p.name for p in photos.iterdir()) == [
        "blob0.png", "blob0_mask.png", "blob0_overlay.jpg", "blob1.png", "blob1_mask.png", "blob1_overlay.jpg"]
    elsewhere = predict(red_model, [photos], tmp_path / "out")  # the folder segmented again into another
    assert (elsewhere.done, elsewhere.skipped) == (2, 4)  # not blob0_mask_mask.png and blob0_overlay_overlay.jpg
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "blob0_mask.png", "blob0_overlay.jpg", "blob1_mask.png", "blob1_overlay.jpg"]
    (photos / "blob1.png").unlink()  # a mask whose photo is gone could be anyone's photo now: it is segmented
    assert predict(red_model, [photos], photos, overwrite=True).done == 3  # blob0, blob1_mask.png, blob1_overlay.jpg


def test_outputs_already_there_are_refused_unless_overwrite(red_model, make_blob_folder, tmp_path: Path,
                                                            capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # where an empty --out would write, were it let through
    photos = make_blob_folder(tmp_path / "d", [(48, 80), (40, 40)]) / "images"
    out = tmp_path / "out"
    write_png(out / "blob1_mask.png", np.full((40, 40), 7, np.uint8))  # someone's own mask, by chance so named
    with pytest.raises(FootsegError, match="already exists: --overwrite replaces them") as err:
        predict(red_model, [photos], out)
    assert str(out / "blob1_mask.png") in str(err.value)
    assert read_mask(out / "blob1_mask.png").max() == 7 and sorted(p.name for p in out.iterdir()) == ["blob1_mask.png"]
    from footseg.cli import main

    assert main(["predict", str(photos), "--out", str(out)]) == 2  # refused before the default model loads
    assert "blob1_mask.png: already exists" in capsys.readouterr().err
    assert main(["predict", str(photos), "--out", ""]) == 2
    assert "--out is empty" in capsys.readouterr().err  # for every verb: Path("") is the working folder
    assert predict(red_model, [photos], out, overwrite=True).done == 2
    assert set(np.unique(read_mask(out / "blob1_mask.png"))) <= {0, 255}


def test_overlay_tints_only_the_foot(make_photo) -> None:
    image = make_photo(100, 120)[0]
    mask = np.zeros((100, 120), dtype=np.uint8)
    mask[40:60, 30:90] = 1
    out = overlay_mask(image, mask)
    assert out.shape == image.shape and out.dtype == np.uint8
    far = np.ones((100, 120), dtype=bool)
    far[35:65, 25:95] = False  # leave room for the outline
    assert np.array_equal(out[far], image[far])
    inner = np.zeros_like(far)
    inner[43:57, 33:87] = True
    green = np.array(FOOT_COLOUR, dtype=float)
    assert np.abs(out[inner] - green).mean() < 0.7 * np.abs(image[inner] - green).mean()


@pytest.mark.parametrize(("colour", "alpha"), [(FOOT_COLOUR, 0.45), ((255, 0, 0), 0.3)])
def test_the_tint_is_each_foot_pixel_blended_in_float32(colour: tuple[int, int, int], alpha: float) -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)
    mask = (rng.random((50, 70)) > 0.5).astype(np.uint8) * 255  # scattered: the outline covers some, not all
    tinted = (image.astype(np.float32) * (1 - alpha) + np.array(colour, np.float32) * alpha).round().astype(np.uint8)
    out = overlay_mask(image, mask, colour, alpha)
    outline = np.zeros(mask.shape, np.uint8)
    contours, _ = cv2.findContours((mask > 0).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(outline, contours, -1, 1, 3)  # wider than the drawn outline: its anti-aliased fringe
    clear = outline == 0
    foot = (mask > 0) & clear
    assert foot.sum() > 100 and np.array_equal(out[foot], tinted[foot])
    assert np.array_equal(out[~(mask > 0) & clear], image[~(mask > 0) & clear])


def test_unreadable_photos_are_each_reported_and_the_rest_finished(red_model, make_blob_folder, tmp_path: Path
                                                                    ) -> None:
    folder = make_blob_folder(tmp_path / "d", [(40, 48), (40, 48), (40, 48)])
    for name in ("blob0.png", "blob2.png"):  # the first photo and one in the middle, so reading order cannot hide it
        (folder / "images" / name).write_bytes(b"\x89PNG not really a png")
    result = predict(red_model, [folder], tmp_path / "out")
    assert result.done == 1 and (tmp_path / "out" / "blob1_mask.png").is_file()
    assert [p.name for p, _ in result.failed] == ["blob0.png", "blob2.png"]
    assert all("unreadable" in why and "\n" not in why for _, why in result.failed)


def test_cli_predict_exits_non_zero_naming_each_bad_file(red_model, saved_model: Path, make_blob_folder,
                                                         tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from footseg.cli import main

    folder = make_blob_folder(tmp_path / "d", [(40, 48), (40, 48)])
    bad = folder / "images" / "blob0.png"
    bad.write_bytes(b"broken")
    assert main(["predict", str(saved_model), str(folder), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert f"{bad}: " in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "out" / "blob1_mask.png").is_file()


@pytest.mark.parametrize("case", ["not-an-image", "missing", "empty-folder"])
def test_bad_inputs_name_the_path(case: str, tmp_path: Path) -> None:
    path = {"not-an-image": tmp_path / "notes.txt", "missing": tmp_path / "nope.jpg", "empty-folder": tmp_path / "e"}[
        case
    ]
    if case == "not-an-image":
        path.write_text("hello")
    if case == "empty-folder":
        path.mkdir()
        (path / "readme.txt").write_text("no pictures here")
    with pytest.raises(FootsegError) as err:
        collect_images([path])
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_two_inputs_with_one_name_are_refused(make_blob_folder, tmp_path: Path) -> None:
    a = make_blob_folder(tmp_path / "a", [(32, 32)])
    b = make_blob_folder(tmp_path / "b", [(32, 32)])
    with pytest.raises(FootsegError, match="overwrite"):
        collect_images([a, b])
    assert collect_images([a, a / "images" / "blob0.png"]) == [a / "images" / "blob0.png"]


def test_every_pair_of_photos_with_one_name_is_named_at_once(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    for name in ("IMG_1.HEIC", "IMG_1.JPG", "IMG_2.jpg", "IMG_2.png", "IMG_3.jpg"):
        (folder / name).write_bytes(b"")  # a phone's export: a HEIC and a JPEG of each photo
    with pytest.raises(FootsegError) as err:
        collect_images([folder])
    assert str(err.value) == (f"{folder / 'IMG_1.JPG'}: same name as {folder / 'IMG_1.HEIC'}; their outputs would "
                              "overwrite each other (so would 1 more pair: IMG_2.png and IMG_2.jpg): give one of each "
                              "pair, or move it to another folder")


def test_photos_in_subfolders_are_said_not_searched(saved_model: Path, make_blob_folder, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from footseg.cli import main

    dcim = tmp_path / "DCIM"
    make_blob_folder(dcim / "100APPLE" / "x", [(32, 32)])  # photos two levels down
    with pytest.raises(FootsegError) as err:
        collect_images([dcim])
    assert str(err.value).endswith("; its subfolders hold some (100APPLE/x): give them, which are not searched")
    photos = make_blob_folder(tmp_path / "d", [(32, 32)]) / "images"
    make_blob_folder(photos / "more", [(32, 32)])
    (photos / "empty").mkdir()
    assert main(["predict", str(saved_model), str(photos), "--out", str(tmp_path / "out")]) == 0
    assert capsys.readouterr().out.endswith("; did not look into 1 subfolder with photos (give it too)\n")
    # its own outputs are no photos to give: neither a folder of them nor the --out inside the folder given
    assert main(["predict", str(saved_model), str(photos), "--out", str(photos / "masks")]) == 0
    assert main(["predict", str(saved_model), str(photos), "--out", str(photos / "masks"), "--overwrite"]) == 0
    assert capsys.readouterr().out.endswith("; did not look into 1 subfolder with photos (give it too)\n")


def test_cli_predict_says_what_it_left_out(saved_model: Path, make_blob_folder, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    from footseg.cli import main

    photos = make_blob_folder(tmp_path / "d", [(40, 48)]) / "images"
    assert main(["predict", str(saved_model), str(photos), "--out", str(photos)]) == 0
    assert capsys.readouterr().out.startswith(f"wrote masks and overlays for 1 image to {photos}\n")
    assert main(["predict", str(saved_model), str(photos), "--out", str(tmp_path / "again")]) == 0
    out = capsys.readouterr().out
    assert "for 1 image to" in out
    assert "left out an earlier run's masks and overlays beside their photos (2 files)" in out
    (photos / "notes.txt").write_text("shot on a Pixel")
    write_png(photos / "scan.png", np.zeros((8, 8), np.uint8))
    cv2.imwrite(str(photos / "scan.bmp"), np.zeros((8, 8, 3), np.uint8))  # a photo in a type footseg does not read
    assert main(["predict", str(saved_model), str(photos), "--out", str(tmp_path / "third")]) == 0
    out = capsys.readouterr().out
    assert "for 2 images to" in out and "; left out 2 other files in the folders (not .jpg, .jpeg, .png" in out


def test_photos_without_colour_are_named_in_a_warning(saved_model: Path, make_blob_folder, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from footseg.cli import main

    photos = make_blob_folder(tmp_path / "d", [(40, 48), (40, 48)]) / "images"
    grey = read_image(photos / "blob1.png").mean(axis=2, keepdims=True).astype(np.uint8)
    cv2.imwrite(str(photos / "blob1.png"), grey[..., 0])  # a one-channel PNG, read as RGB with R = G = B
    assert main(["predict", str(saved_model), str(photos), "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert f"footseg: warning: 1 photo without colour ({photos / 'blob1.png'}): the models learnt" in err
    assert "blob0" not in err
    # and where their score is measured: eval names them too (its masks are the blob folder's own)
    assert main(["eval", str(saved_model), "--data", str(photos.parent)]) == 0
    assert f"footseg: warning: 1 photo without colour ({photos / 'blob1.png'}): the models learnt" in (
        capsys.readouterr().err)


def test_a_photo_of_a_type_footseg_does_not_read_is_named_with_its_type(tmp_path: Path) -> None:
    for name, kind in (("scan.bmp", ".bmp"), ("IMG_0042", "no suffix")):
        (tmp_path / name).write_bytes(b"\xff\xd8\xff")
        with pytest.raises(FootsegError, match=rf"{name}: not a photo file type footseg reads \({kind}; it reads "
                                               r"\.jpg, \.jpeg, \.png"):
            collect_images([tmp_path / name])


def _stopping_at_call(monkeypatch: pytest.MonkeyPatch, stop_at: int) -> list[int]:
    """Predictor.predict_batch raising KeyboardInterrupt (a Ctrl-C) at its ``stop_at``-th call; the calls' sizes."""
    from footseg.eval import predict as predict_module
    from footseg.runtime.predictor import Predictor

    monkeypatch.setattr(predict_module, "_BATCH", 1)
    real_batch = Predictor.predict_batch
    calls: list[int] = []

    def batch(self: Predictor, images: list) -> list:
        calls.append(len(images))
        if len(calls) == stop_at:
            raise KeyboardInterrupt
        return real_batch(self, images)

    monkeypatch.setattr(Predictor, "predict_batch", batch)
    return calls


def test_a_stopped_run_continues_where_it_stopped(red_model, make_blob_folder, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from footseg.runtime.predictor import Predictor

    photos = make_blob_folder(tmp_path / "d", [(48, 80), (40, 40), (30, 50)]) / "images"
    out = tmp_path / "out"
    calls = _stopping_at_call(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt, match=f"1 of 3 photos done, their masks and overlays in {out}; the same "
                                                "command continues"):
        predict(red_model, [photos], out)
    assert sorted(p.name for p in out.iterdir()) == [".footseg-predict.json", "blob0_mask.png", "blob0_overlay.jpg"]
    first = (out / "blob0_mask.png").stat().st_mtime_ns
    # another operating point would mix its masks with the stopped run's: refused, naming what differs
    with pytest.raises(FootsegError, match=r"blob0_mask.png: already exists \(as does 1 more output\): a stopped run "
                                           r"with another threshold 0.5 \(now 0.9\) wrote them: --overwrite"):
        predict(Predictor(red_model).at_threshold(0.9), [photos], out)
    # a file at the name of a photo that run was not given is someone's: refused, and left alone
    elsewhere = make_blob_folder(tmp_path / "e", [(20, 20)], prefix="mine") / "images"
    write_png(out / "mine0_mask.png", np.full((20, 20), 7, np.uint8))
    with pytest.raises(FootsegError, match=r"mine0_mask.png: already exists: --overwrite replaces them"):
        predict(red_model, [photos, elsewhere], out)
    assert read_mask(out / "mine0_mask.png").max() == 7
    (out / "mine0_mask.png").unlink()
    again = predict(red_model, [photos], out)  # the same command
    assert (again.kept, again.done) == (1, 2) and calls[2:] == [1, 1]  # blob0 not segmented again
    assert (out / "blob0_mask.png").stat().st_mtime_ns == first
    assert sorted(p.name for p in out.iterdir()) == [f"blob{i}_{kind}" for i in range(3)
                                                    for kind in ("mask.png", "overlay.jpg")]  # the record gone
    with pytest.raises(FootsegError, match="already exists"):  # a finished run's outputs are refused again
        predict(red_model, [photos], out)


def test_a_stopped_overwrite_continues_and_a_changed_photo_is_segmented_again(
        red_model, make_blob_folder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    photos = make_blob_folder(tmp_path / "d", [(48, 80), (40, 40), (30, 50)]) / "images"
    out = tmp_path / "out"
    assert predict(red_model, [photos], out).done == 3  # an earlier run's outputs, which --overwrite replaces
    for output in out.iterdir():  # made a minute ago: older than the next run's start by more than any clock's slack
        os.utime(output, ns=(time.time_ns() - 60 * 10**9,) * 2)
    calls = _stopping_at_call(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt, match="2 of 3 photos done"):
        predict(red_model, [photos], out, overwrite=True)
    # blob2's outputs are the earlier run's, older than the stopped one: not kept; blob1's photo changed since
    write_png(photos / "blob1.png", read_image(photos / "blob1.png")[::-1].copy())
    again = predict(red_model, [photos], out, overwrite=True)
    assert (again.kept, again.done) == (1, 2) and calls[3:] == [1, 1]


def test_a_run_still_writing_is_not_taken_for_a_stopped_one(red_model, make_blob_folder, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    photos = make_blob_folder(tmp_path / "d", [(48, 80), (40, 40)]) / "images"
    out = tmp_path / "out"
    _stopping_at_call(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        predict(red_model, [photos], out)
    before = sorted(p.name for p in out.iterdir())
    busy = r"out: another footseg job( \(pid \d+\))? is writing here now"
    with one_writer(out), pytest.raises(FootsegError, match=busy):  # held as a predict still writing holds it
        predict(red_model, [photos], out)
    assert sorted(p.name for p in out.iterdir()) == before
    assert predict(red_model, [photos], out).kept == 1  # once it has ended, a stopped run's record is what it is


def test_cli_says_what_a_stopped_run_kept(saved_model: Path, make_blob_folder, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from footseg.cli import main

    photos = make_blob_folder(tmp_path / "d", [(48, 80), (40, 40), (30, 50)]) / "images"
    out = tmp_path / "out"
    argv = ["predict", str(saved_model), str(photos), "--out", str(out)]
    _stopping_at_call(monkeypatch, 3)
    assert main(argv) == 130
    assert capsys.readouterr().err.endswith(f"footseg: interrupted: 2 of 3 photos done, their masks and overlays in "
                                            f"{out}; the same command continues\n")
    assert main(argv) == 0
    assert capsys.readouterr().out == (f"wrote masks and overlays for 1 image to {out}; kept the 2 a stopped run of "
                                       "this model had finished\n")


def test_a_run_that_wrote_nothing_says_so(saved_model: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    from footseg.cli import main

    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    assert main(["predict", str(saved_model), str(bad), "--out", str(tmp_path / "out")]) == 1
    assert capsys.readouterr().out == "wrote no masks; 1 could not be read\n"


def test_photos_are_read_in_batches_of_a_count_and_a_pixel_budget(make_blob_folder, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from footseg.eval import predict as predict_module

    folder = make_blob_folder(tmp_path / "d", [(40, 50), (40, 50), (40, 50), (80, 100)]) / "images"
    paths = sorted(folder.iterdir())
    (folder / "broken.jpg").write_bytes(b"not a photo")
    paths.insert(1, folder / "broken.jpg")
    result = predict_module.PredictResult()
    monkeypatch.setattr(predict_module, "_BATCH_PIXELS", 4000)  # two 2,000-pixel photos, or one of 8,000
    batches = [[p.name for p, _ in chunk] for chunk in predict_module._read_in_batches(paths, result)]
    assert batches == [["blob0.png", "blob1.png"], ["blob2.png"], ["blob3.png"]]
    assert [p.name for p, _ in result.failed] == ["broken.jpg"]
    monkeypatch.setattr(predict_module, "_BATCH", 3)
    monkeypatch.setattr(predict_module, "_BATCH_PIXELS", 10**9)
    assert [len(c) for c in predict_module._read_in_batches(paths, predict_module.PredictResult())] == [3, 1]

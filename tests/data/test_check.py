from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from footseg.cli import main
from footseg.data import check
from footseg.data.check import check_dataset, passed_record, require_valid
from footseg.data.io import read_mask, write_jpeg, write_png
from footseg.errors import FootsegError

REAL_DEV = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real-dev"


def _image(path: Path, h: int = 24, w: int = 32) -> None:
    write_jpeg(path, np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8))


def _mask(path: Path, h: int = 24, w: int = 32, values: tuple[int, ...] = (0, 255)) -> None:
    m = np.full((h, w), values[0], np.uint8)
    for i, v in enumerate(values[1:], start=1):
        m[i * 4 : i * 4 + 4] = v
    write_png(path, m)


def _good(folder: Path, stems: tuple[str, ...] = ("a", "b")) -> Path:
    for s in stems:
        _image(folder / "images" / f"{s}.jpg")
        _mask(folder / "masks" / f"{s}.png")
    return folder


def _only(result, fragment: str) -> Path:
    assert len(result.problems) == 1, [str(p) for p in result.problems]
    problem = result.problems[0]
    assert fragment in problem.message
    assert str(problem) == f"{problem.path}: {problem.message}"
    return problem.path


def test_good_datasets_pass(tiny_dataset: Path, tmp_path: Path) -> None:
    result = check_dataset(tiny_dataset)
    assert result.ok and result.problems == []
    assert result.summary() == "ok: train 8, val 4, test 4 images"
    flat = check_dataset(_good(tmp_path))
    # fit for scoring, not training: check says so, before train refuses it
    assert flat.ok and flat.summary() == "ok: 2 images (`footseg train` needs train/ and val/ splits)"
    no_val = tmp_path / "no_val"
    shutil.copytree(tiny_dataset, no_val)
    shutil.rmtree(no_val / "val")
    assert check_dataset(no_val).summary() == ("ok: train 8, test 4 images (`footseg train` needs train/ and val/ "
                                               "splits)")
    # frames with no foot, what a blob rate is counted on, are said where there are any
    bare = shutil.copytree(tiny_dataset, tmp_path / "bare")
    for split, n in (("val", 2), ("test", 1)):
        for mask in sorted((bare / split / "masks").iterdir())[:n]:
            write_png(mask, np.zeros_like(read_mask(mask)))
    assert check_dataset(bare).summary() == "ok: train 8, val 4, test 4 images (train 0, val 2, test 1 with no foot)"
    for mask in (tmp_path / "masks").iterdir():  # the flat folder's
        write_png(mask, np.zeros_like(read_mask(mask)))
    assert check_dataset(tmp_path).summary() == (
        "ok: 2 images (2 with no foot) (`footseg train` needs train/ and val/ splits)")


def test_truncated_jpeg(tmp_path: Path) -> None:
    folder = _good(tmp_path)
    data = (folder / "images" / "b.jpg").read_bytes()
    (folder / "images" / "b.jpg").write_bytes(data[: len(data) // 2])
    assert _only(check_dataset(folder), "truncated") == folder / "images" / "b.jpg"


def test_missing_mask_and_mask_without_image(tmp_path: Path) -> None:
    folder = _good(tmp_path)
    (folder / "masks" / "a.png").rename(folder / "masks" / "z.png")
    result = check_dataset(folder)
    assert {(p.path.name, p.message.split(" (")[0]) for p in result.problems} == {
        ("a.jpg", "mask missing"),
        ("z.png", "mask without image"),
    }
    assert result.summary() == f"2 problems in {folder}"


def test_unreadable_mask(tmp_path: Path) -> None:
    folder = _good(tmp_path)
    (folder / "masks" / "a.png").write_bytes(b"not a png")
    assert _only(check_dataset(folder), "unreadable") == folder / "masks" / "a.png"


def test_size_mismatch(tmp_path: Path) -> None:
    folder = _good(tmp_path)
    _mask(folder / "masks" / "b.png", h=20)
    path = _only(check_dataset(folder), "mask is 32x20 but its image is 32x24")
    assert path == folder / "masks" / "b.png"


def test_exif_rotated_image_is_compared_after_orientation(tmp_path: Path) -> None:
    folder = tmp_path
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape 32x24, shown portrait 24x32
    (folder / "images").mkdir()
    Image.fromarray(np.zeros((24, 32, 3), np.uint8)).save(folder / "images" / "p.jpg", exif=exif)
    _mask(folder / "masks" / "p.png", h=32, w=24)
    assert check_dataset(folder).ok
    _mask(folder / "masks" / "p.png", h=24, w=32)  # matches the stored pixels, not what the user sees
    _only(check_dataset(folder), "mask is 32x24 but its image is 24x32")


def test_three_valued_mask_and_mask_without_background(tmp_path: Path) -> None:
    folder = _good(tmp_path)
    _mask(folder / "masks" / "a.png", values=(0, 128, 255))
    _only(check_dataset(folder), "3 distinct values")
    _mask(folder / "masks" / "a.png", values=(0, 1))  # any single foot value is fine
    assert check_dataset(folder).ok
    _mask(folder / "masks" / "a.png", values=(1, 255))
    _only(check_dataset(folder), "expected 0 for background")


def test_empty_split_and_missing_images_folder(tiny_dataset: Path, tmp_path: Path) -> None:
    root = tmp_path / "d"
    shutil.copytree(tiny_dataset, root)
    for f in (root / "val" / "images").iterdir():
        f.unlink()
    shutil.rmtree(root / "val" / "masks")
    shutil.rmtree(root / "test" / "images")
    result = check_dataset(root)
    messages = {(p.path.relative_to(root).as_posix(), p.message.split(" (")[0]) for p in result.problems}
    assert messages == {
        ("val/images", "empty split: no images"),
        ("val/masks", "missing masks/ folder"),
        ("test/images", "missing images/ folder"),
    }
    assert result.counts == {"train": 8, "val": 0, "test": 0}


def test_a_datasets_images_folder_given_as_the_dataset_names_the_folder_to_check(tiny_dataset: Path) -> None:
    images = tiny_dataset / "train" / "images"
    (problem,) = check_dataset(images).problems
    assert (problem.path, problem.message) == (
        images / "images", f"missing images/ folder (this is a dataset's images/ folder: check {images.parent})")


def test_duplicate_stems_and_stray_files(tmp_path: Path) -> None:
    folder = _good(tmp_path)
    _image(folder / "images" / "a.png")
    (folder / "images" / "notes.txt").write_text("x")
    (folder / "images" / ".DS_Store").write_text("x")  # hidden files are ignored
    result = check_dataset(folder)
    names = sorted((p.path.name, p.message.split(" ")[0]) for p in result.problems)
    assert names == [("a.png", "duplicate"), ("notes.txt", "not")]


def test_lossy_mask_format(tmp_path: Path) -> None:
    folder = _good(tmp_path)
    _image(folder / "masks" / "b.jpg")
    assert _only(check_dataset(folder), "must be a .png").name == "b.jpg"


def test_every_problem_is_reported(tmp_path: Path) -> None:
    folder = _good(tmp_path, ("a", "b", "c", "d"))
    (folder / "images" / "a.jpg").write_bytes(b"")
    (folder / "masks" / "b.png").unlink()
    _mask(folder / "masks" / "c.png", h=10)
    _mask(folder / "masks" / "d.png", values=(0, 1, 2, 3))
    result = check_dataset(folder)
    assert sorted(p.path.name for p in result.problems) == ["a.jpg", "b.jpg", "c.png", "d.png"]


def test_missing_root_raises(tmp_path: Path) -> None:
    with pytest.raises(FootsegError, match="dataset folder not found"):
        check_dataset(tmp_path / "nope")


def test_require_valid(tiny_dataset: Path, tmp_path: Path) -> None:
    assert require_valid(tiny_dataset).counts == {"train": 8, "val": 4}
    root = tmp_path / "d"
    shutil.copytree(tiny_dataset, root)
    (root / "train" / "masks" / "train_00001.png").unlink()
    (root / "train" / "masks" / "train_00002.png").write_bytes(b"")
    shutil.rmtree(root / "test")
    with pytest.raises(FootsegError) as info:
        require_valid(root, ("train", "val"))
    text = str(info.value)
    assert text.startswith(str(root / "train" / "images" / "train_00001.jpg") + ": mask missing")
    assert f"(and 1 more; run `footseg check {root}`)" in text
    with pytest.raises(FootsegError, match="missing test/ split"):
        require_valid(root, ("test",))


def test_an_unfinished_render_is_a_problem_that_training_refuses(tiny_dataset: Path, tmp_path: Path) -> None:
    from footseg.data.synth.engine import FORMAT

    root = shutil.copytree(tiny_dataset, tmp_path / "render")
    manifest = {"format": FORMAT, "counts": {"train": 8, "val": 4, "test": 4}}
    (root / "manifest.json").write_text(json.dumps(manifest))
    assert require_valid(root).counts == {"train": 8, "val": 4}  # a render its manifest says is whole
    manifest["counts"]["train"] = 20  # stopped at 8 of 20, and not resumed
    (root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(FootsegError) as info:
        require_valid(root)  # as `footseg train` checks its data at every start
    assert str(info.value).startswith(f"{root / 'train'}: an unfinished render: 8 of the 20 images its manifest plans "
                                      "here (finish it with `footseg synth ... --resume`, or render its other shards; "
                                      "images taken out on purpose: delete its manifest.json")
    assert check_dataset(root, ("val",)).problems == []  # its val split is whole


def _files_of(root: Path) -> list[Path]:
    return sorted(root.rglob("*"))


def test_require_valid_decodes_a_split_again_only_when_its_files_changed(tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "d"
    for split in ("train", "val"):
        _good(root / split)
    before = _files_of(root)
    assert require_valid(root).counts == {"train": 2, "val": 2}
    assert passed_record(root / "train").is_file() and passed_record(root / "val").is_file()
    assert _files_of(root) == before  # recorded outside the dataset

    decoded: list[str] = []
    real_check_pair = check._check_pair

    def counting_check_pair(image: Path, mask: Path | None):
        decoded.append(f"{image.parent.parent.name}/{image.name}")
        return real_check_pair(image, mask)

    monkeypatch.setattr(check, "_check_pair", counting_check_pair)
    assert require_valid(root).counts == {"train": 2, "val": 2}
    assert decoded == []  # nothing changed: nothing decoded

    (root / "train" / "masks" / "a.png").write_bytes(b"not a png")
    for _ in range(2):  # a split that failed is not recorded: checked in full again, and refused again
        with pytest.raises(FootsegError, match=str(root / "train" / "masks" / "a.png")):
            require_valid(root)
    assert decoded == ["train/a.jpg", "train/b.jpg"] * 2  # only the changed split, every file of it

    decoded.clear()
    (root / "val" / "images" / "c.jpg").write_bytes((root / "val" / "images" / "a.jpg").read_bytes())
    with pytest.raises(FootsegError, match="mask missing"):  # a file added to a split that passed
        require_valid(root, ("val",))
    assert decoded == ["val/a.jpg", "val/b.jpg", "val/c.jpg"]


def test_a_file_damaged_in_place_with_its_size_and_time_kept_is_checked_again(tmp_path: Path) -> None:
    root = _good(tmp_path / "flat")
    assert require_valid(root, ("train",)).counts == {"": 2}
    image = root / "images" / "a.jpg"
    stat = image.stat()
    image.write_bytes(b"\0" * stat.st_size)  # as a copy that keeps the old modification time
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    with pytest.raises(FootsegError, match=str(image)):  # the change time gives it away
        require_valid(root, ("train",))


def test_require_valid_falls_back_to_the_full_check_where_it_cannot_fingerprint(tmp_path: Path, monkeypatch) -> None:
    root = _good(tmp_path / "flat")
    (root / "images" / ".gone").symlink_to(tmp_path / "nowhere")  # a dangling link: its stat fails
    assert require_valid(root, ("train",)).counts == {"": 2}
    assert not passed_record(root).exists()
    monkeypatch.setenv("XDG_CACHE_HOME", "relative")  # not a cache folder by the XDG spec: ~/.cache is used
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert passed_record(root).is_relative_to(tmp_path / "home" / ".cache" / "footseg")


def test_cli_check_exit_codes_and_problem_lines(tiny_dataset: Path, tmp_path: Path, capsys) -> None:
    assert main(["check", str(tiny_dataset)]) == 0
    assert "ok: train 8, val 4, test 4 images" in capsys.readouterr().out
    folder = _good(tmp_path / "bad")
    (folder / "masks" / "a.png").unlink()
    _mask(folder / "masks" / "b.png", values=(0, 5, 9))
    assert main(["check", str(folder)]) == 1
    captured = capsys.readouterr()
    assert f"{folder / 'images' / 'a.jpg'}: mask missing" in captured.err
    assert f"{folder / 'masks' / 'b.png'}: mask has 3 distinct values" in captured.err
    assert f"2 problems in {folder}" in captured.out
    assert main(["check", str(tmp_path / "nope")]) == 2


@pytest.mark.skipif(not REAL_DEV.is_dir(), reason="../shared real-dev photos not available")
def test_real_dev_photos_pass() -> None:
    result = check_dataset(REAL_DEV)
    assert result.ok, [str(p) for p in result.problems]
    assert result.counts[""] == 20


def test_a_file_given_as_the_dataset_is_called_a_file(tmp_path: Path) -> None:
    (tmp_path / "photo.jpg").write_bytes(b"")
    with pytest.raises(FootsegError, match="is a file, not a dataset folder"):
        check_dataset(tmp_path / "photo.jpg")
    with pytest.raises(FootsegError, match="dataset folder not found"):
        check_dataset(tmp_path / "missing")


def test_a_split_that_passed_before_keeps_its_count_of_frames_with_no_foot(tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "d"
    for split in ("train", "val"):
        _good(root / split)
    mask = root / "val" / "masks" / "a.png"
    write_png(mask, np.zeros_like(read_mask(mask)))
    assert require_valid(root).empty == {"train": 0, "val": 1}  # decoded

    def no_decoding(image: Path, mask: Path | None) -> None:
        raise AssertionError(f"decoded {image} again")

    monkeypatch.setattr(check, "_check_pair", no_decoding)
    assert require_valid(root).empty == {"train": 0, "val": 1}  # from the record of the pass
    record = passed_record(root / "val")
    stored = json.loads(record.read_text())
    del stored["empty"]  # a record from before the count was kept: the split is checked again
    record.write_text(json.dumps(stored))
    with pytest.raises(AssertionError, match="decoded"):
        require_valid(root, ("val",))

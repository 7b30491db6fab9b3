"""``footseg synth OUT --merge SRC...`` and the code version in every render's manifest.

A merge must keep split discipline (each split the union of the sources' same split; no floor photo in two splits),
name files so they never clash, record its sources, and refuse what would silently be wrong: the same render twice,
an unfinished render, another dataset in the output folder. A render's manifest names the footseg (and commit) that
made it, without the images changing and without an older manifest being refused on resume.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from footseg import __version__
from footseg.cli import main
from footseg.data.check import check_dataset
from footseg.data.synth import SynthSettings, synthesize
from footseg.data.synth.floors import SPLITS
from footseg.data.synth.merge import check_split_discipline, merge_renders, merged_is_complete, parse_sources
from footseg.errors import FootsegError, FootsegWarning


@pytest.fixture(scope="module")
def renders(egl, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("renders")
    plain = SynthSettings(n=12, size=32, seed=1)
    unseated = SynthSettings(n=12, size=32, seed=2)
    unseated.remove(["seated"])
    synthesize(root / "a", plain, progress=False)
    synthesize(root / "b", unseated, progress=False)
    return {"a": root / "a", "b": root / "b"}


def _stems(folder: Path, split: str, kind: str = "images") -> list[str]:
    return sorted(p.stem for p in (folder / split / kind).iterdir())


def _images(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.suffix in (".jpg", ".png")}


def test_merge_keeps_splits_and_prefixes_stems(renders: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "merged"
    manifest = merge_renders(out, {"v1": renders["a"], "v2": renders["b"]})
    for split in SPLITS:
        want = sorted([f"v1_{s}" for s in _stems(renders["a"], split)]
                      + [f"v2_{s}" for s in _stems(renders["b"], split)])
        assert _stems(out, split) == want
        assert _stems(out, split, "masks") == want
        for name, src in (("v1", renders["a"]), ("v2", renders["b"])):
            for image in (src / split / "images").iterdir():
                merged = out / split / "images" / f"{name}_{image.name}"
                assert merged.read_bytes() == image.read_bytes()
                assert os.path.samefile(merged, image)  # one file system here: hard links, no copies
    assert manifest["counts"] == {"train": 20, "val": 2, "test": 2}
    assert manifest["n"] == 24 and manifest["seed"] == [1, 2] and manifest["size"] == 32
    assert manifest["format"] == "footseg-synth-merge/1"
    for name, src in (("v1", renders["a"]), ("v2", renders["b"])):
        source = json.loads((src / "manifest.json").read_text())
        record = manifest["sources"][name]
        assert record["seed"] == source["seed"] and record["counts"] == source["counts"]
        assert record["settings"] == source["settings"] and record["code"] == source["code"]
        assert record["path"] == str(src.resolve())
    # what the sources share, and only that: seated scenes are on in one and off in the other
    assert manifest["settings"]["size"] == 32 and "seated_prob" not in manifest["settings"]
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert check_dataset(out).ok
    assert merged_is_complete(out)


def test_merge_again_finishes_an_interrupted_one_and_changes_nothing_in_a_finished_one(
        renders: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "merged"
    merge_renders(out, {"a": renders["a"], "b": renders["b"]})
    before = (out / "manifest.json").read_bytes()
    gone = sorted((out / "train" / "masks").iterdir())[:3]
    for path in gone:
        path.unlink()
    assert not merged_is_complete(out)
    merge_renders(out, {"a": renders["a"], "b": renders["b"]})
    assert merged_is_complete(out) and all(p.is_file() for p in gone)
    assert (out / "manifest.json").read_bytes() == before


def test_merge_refuses_what_would_be_wrong(renders: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "merged"
    merge_renders(out, {"a": renders["a"], "b": renders["b"]})
    with pytest.raises(FootsegError, match="holds another dataset"):
        merge_renders(out, {"a": renders["a"]})
    with pytest.raises(FootsegError, match="is itself a merge"):
        merge_renders(tmp_path / "nested", {"m": out, "a": renders["a"]})
    with pytest.raises(FootsegError, match="same render"):
        merge_renders(tmp_path / "twice", {"a": renders["a"], "again": renders["a"]})
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    with pytest.raises(FootsegError, match="not empty"):
        merge_renders(tmp_path / "full", {"a": renders["a"]})
    unfinished = tmp_path / "unfinished"
    shutil.copytree(renders["b"], unfinished)
    next((unfinished / "train" / "masks").iterdir()).unlink()
    with pytest.raises(FootsegError, match=r"incomplete render: its train split has 9 of 10"):
        merge_renders(tmp_path / "m2", {"a": renders["a"], "u": unfinished})
    with pytest.raises(FootsegError, match=r"no manifest\.json"):
        merge_renders(tmp_path / "m3", {"x": tmp_path / "full"})
    with pytest.raises(FootsegError, match="render folder not found"):
        merge_renders(tmp_path / "m4", {"x": tmp_path / "nowhere"})
    added = shutil.copytree(renders["b"], tmp_path / "added")  # a pair of files put into a finished render
    for kind, suffix in (("images", ".jpg"), ("masks", ".png")):
        shutil.copy(next((added / "train" / kind).iterdir()), added / "train" / kind / f"extra{suffix}")
    with pytest.raises(FootsegError) as err:  # not "incomplete", which --resume would never mend
        merge_renders(tmp_path / "m5", {"a": renders["a"], "x": added})
    assert str(err.value) == (f"{added}: its train split holds 11 images where the render made 10: files were added "
                              "to it since (take them out, or render them as a source of their own)")


def test_merging_two_renders_of_one_seed_warns_that_scenes_repeat(renders: dict[str, Path], tmp_path: Path) -> None:
    socks = SynthSettings(n=12, size=32, seed=1, sock_prob=1.0)  # renders["a"]'s scenes, feet in socks
    synthesize(tmp_path / "socks", socks, progress=False)
    with pytest.warns(FootsegWarning, match="sources 'a' and 'socks' share seed 1: their scenes are drawn from the"):
        merge_renders(tmp_path / "m", {"a": renders["a"], "socks": tmp_path / "socks"})


def test_cli_merge(renders: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "m"
    assert main(["synth", str(out), "--merge", f"first={renders['a']}", str(renders["b"])]) == 0
    assert "merged 2 renders" in capsys.readouterr().out
    assert _stems(out, "val") == sorted([f"first_{s}" for s in _stems(renders["a"], "val")]
                                        + [f"b_{s}" for s in _stems(renders["b"], "val")])
    assert main(["synth", str(tmp_path / "m2"), "--merge", str(renders["a"]), "--seed", "3"]) == 2
    assert "takes no --seed" in capsys.readouterr().err
    assert main(["synth", str(tmp_path / "m2"), "--merge", str(renders["a"]), "--sock-prob", "0"]) == 2
    assert "takes no --sock-prob" in capsys.readouterr().err
    # the folder now holds a merge: rendering into it is refused, not mixed
    assert main(["synth", str(out), "--n", "12", "--size", "32", "--seed", "1", "--resume"]) == 2
    assert "holds a merged dataset" in capsys.readouterr().err


def test_source_names() -> None:
    assert parse_sources(["v4=/data/synthv4", "/data/synthv5/"]) == {"v4": Path("/data/synthv4"),
                                                                     "synthv5": Path("/data/synthv5")}
    with pytest.raises(FootsegError, match="two sources are named 'x'"):
        parse_sources(["x=/a", "x=/b"])
    with pytest.raises(FootsegError, match="source name"):
        parse_sources(["a b=/a"])


def _fake(floors: Path, splits: dict[str, list[str]]) -> dict:
    return {"settings": {"floors": str(floors)},
            "splits": {sp: {"floor_photos": splits.get(sp, [])} for sp in SPLITS}}


def test_split_discipline_across_floor_folders(tmp_path: Path) -> None:
    """The photos the sources used are compared by their contents, whatever folder each read, and a photo that lands
    in two splits is refused: across folders, and within one (a render made before copies across splits were left
    out)."""
    flat, split = tmp_path / "flat", tmp_path / "split"
    (flat / "wood").mkdir(parents=True)
    (split / "test" / "wood").mkdir(parents=True)
    (split / "train" / "wood").mkdir(parents=True)
    (flat / "wood" / "1.jpg").write_bytes(b"photo one")
    (split / "test" / "wood" / "1.jpg").write_bytes(b"photo one")  # the same photo, filed under test
    (split / "train" / "wood" / "1.jpg").write_bytes(b"another photo with the same name")
    same = {"a": _fake(flat, {"train": ["wood/1.jpg"]}), "b": _fake(flat, {"train": ["wood/1.jpg"]})}
    check_split_discipline(same)
    fine = {"a": _fake(flat, {"train": ["wood/1.jpg"]}), "b": _fake(split, {"train": ["train/wood/1.jpg"],
                                                                             "val": []})}
    check_split_discipline(fine)  # same name, other photo: no leak
    leak = {"a": _fake(flat, {"train": ["wood/1.jpg"]}), "b": _fake(split, {"test": ["test/wood/1.jpg"]})}
    with pytest.raises(FootsegError, match=r"train split of source 'a' and test/wood/1\.jpg .* test split of 'b'"):
        check_split_discipline(leak)
    (split / "val" / "wood").mkdir(parents=True)
    (split / "val" / "wood" / "2.jpg").write_bytes(b"another photo with the same name")  # a copy of train's 1.jpg
    old = {"a": _fake(split, {"train": ["train/wood/1.jpg"], "val": ["val/wood/2.jpg"]})}
    with pytest.raises(FootsegError, match=r"train/wood/1\.jpg is in the train split .* val/wood/2\.jpg .* val split"):
        check_split_discipline(old)
    unreadable = {"a": _fake(flat, {"train": ["wood/1.jpg"]}), "b": _fake(tmp_path / "gone", {"test": ["x.jpg"]})}
    with pytest.raises(FootsegError, match="cannot be read"):
        check_split_discipline(unreadable)


def test_a_render_records_the_code_that_made_it(egl, tmp_path: Path) -> None:
    out = tmp_path / "r"
    synthesize(out, SynthSettings(n=3, size=32, seed=4), progress=False)
    code = json.loads((out / "manifest.json").read_text())["code"]
    assert code["footseg"] == __version__
    repo = Path(__file__).resolve().parents[2]
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
    if head.returncode == 0:
        assert code["commit"] == head.stdout.strip() and isinstance(code["dirty"], bool)
    else:
        assert "commit" not in code


def test_resume_of_a_manifest_without_code(egl, tmp_path: Path) -> None:
    """A render from before manifests named their code resumes (code is not a setting), its images unchanged, and
    its manifest says part of it was made by unrecorded code."""
    out = tmp_path / "old"
    settings = SynthSettings(n=4, size=32, seed=6)
    synthesize(out, settings, progress=False)
    images = _images(out)
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["code"]
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    next((out / "train" / "images").iterdir()).unlink()
    synthesize(out, settings, resume=True, progress=False)
    assert _images(out) == images
    resumed = json.loads((out / "manifest.json").read_text())
    assert resumed["earlier_code"] == [{"unrecorded": True}] and resumed["code"]["footseg"] == __version__
    assert {k: v for k, v in resumed.items() if k not in ("code", "earlier_code")} == manifest


def test_code_version_outside_a_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No commit is claimed outside a checkout of footseg, nor for a copy inside another repository (a virtual
    environment in some project's folder), where footseg's files are not tracked."""
    from footseg import provenance

    monkeypatch.setattr(provenance, "_PACKAGE", tmp_path)
    provenance.code_version.cache_clear()
    try:
        assert provenance.code_version() == {"footseg": __version__}
        if shutil.which("git"):
            subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
            package = tmp_path / "venv" / "footseg"
            package.mkdir(parents=True)
            (package / "__init__.py").write_text("")
            monkeypatch.setattr(provenance, "_PACKAGE", package)
            provenance.code_version.cache_clear()
            assert provenance.code_version() == {"footseg": __version__}
    finally:
        provenance.code_version.cache_clear()

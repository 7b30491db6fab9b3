"""Atomic writes: a reader sees the old file or the new one, never half of one, and results are readable by all."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from footseg.atomic import atomic_copy, atomic_path, atomic_paths, atomic_write_text, check_writable
from footseg.errors import FootsegError


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "result.json"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old" and sorted(p.name for p in target.parent.iterdir()) == ["result.json"]


def test_files_that_belong_together_are_all_written_before_any_replaces_its_old_self(tmp_path: Path,
                                                                                     monkeypatch) -> None:
    weights, config = tmp_path / "model.safetensors", tmp_path / "config.json"
    atomic_write_text(weights, "old weights")
    atomic_write_text(config, "old config")
    with pytest.raises(RuntimeError), atomic_paths(weights, config) as (w, c):  # a crash while the config is written
        w.write_text("new weights")
        c.write_text("half a con")
        raise RuntimeError("killed mid-write")
    assert (weights.read_text(), config.read_text()) == ("old weights", "old config")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
    replaced, real_replace = [], os.replace

    def replace(src: str | Path, dst: str | Path) -> None:
        if not replaced:  # every file is whole before the first rename
            assert [Path(t).read_text() for t in written] == ["new weights", "new config"]
        replaced.append(Path(dst).name)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with atomic_paths(weights, config) as written:
        written[0].write_text("new weights")
        written[1].write_text("new config")
    assert replaced == ["model.safetensors", "config.json"]  # in the order given
    assert (weights.read_text(), config.read_text()) == ("new weights", "new config")


def test_written_files_follow_the_umask_not_mkstemps_0600(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        atomic_copy(tmp_path / "a.txt", tmp_path / "b.txt")
    finally:
        os.umask(previous)
    for name in ("a.txt", "b.txt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644
    assert (tmp_path / "b.txt").read_text() == "x"


def test_check_writable_refuses_what_could_not_be_written_and_passes_the_rest(tmp_path: Path) -> None:
    afile, adir = tmp_path / "afile", tmp_path / "adir"
    afile.write_text("")
    adir.mkdir()
    for ok, folder in [(afile, False), (tmp_path / "new" / "deeper" / "x.json", False), (adir, True),
                       (tmp_path / "new" / "run", True)]:
        check_writable(ok, folder=folder)  # an existing file is written again; missing folders are made
    for bad, folder, message in [(adir, False, "is a folder; name a file"), (afile, True, "exists and is not a folder"),
                                 (afile / "x.json", False, "cannot be made: .* is a file")]:
        with pytest.raises(FootsegError, match=f"{message}; choose another --out"):
            check_writable(bad, folder=folder, hint="choose another --out")
    assert not (tmp_path / "new").exists()  # a check writes nothing


def test_what_cannot_be_written_is_named_by_its_own_path_not_a_temporary_one(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "file").write_text("")
    under_a_file = rf"^{tmp_path / 'file' / 'x.json'}: cannot be made: {tmp_path / 'file'} is a file$"
    with pytest.raises(FootsegError, match=under_a_file):
        atomic_write_text(tmp_path / "file" / "x.json", "{}")

    def full(self: Path, data: bytes) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(FootsegError, match=rf"^{tmp_path / 'y.json'}: cannot be written: No space left on device$"):
        atomic_write_text(tmp_path / "y.json", "{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # and no temporary left behind

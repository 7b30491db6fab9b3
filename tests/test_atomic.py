"""Atomic writes: a reader sees the old file or the new one, never half of one, and results are readable by all."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from footseg.atomic import atomic_copy, atomic_path, atomic_write_text


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "result.json"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old" and sorted(p.name for p in target.parent.iterdir()) == ["result.json"]


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

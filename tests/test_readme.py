"""The README's Python example runs as written."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
HEIC = Path(__file__).resolve().parent / "data" / "files" / "rotated.heic"


def test_the_python_example_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    section = README.read_text().split("## From Python", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    shutil.copy(HEIC, tmp_path / "IMG_0042.HEIC")  # the photo it names: shown 24 wide, 32 high
    names: dict = {}
    exec(compile(code, "README.md", "exec"), names)
    assert names["mask"].shape == (32, 24) and names["mask"].dtype == np.uint8
    assert names["foot"].shape == (32, 24) and names["foot"].dtype == np.float32
    assert [m.shape for m in names["masks"]] == [(32, 24)] * 2

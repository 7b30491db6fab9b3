from pathlib import Path

import pytest

from footseg.errors import FootsegError, require_folder


def test_a_folder_is_required_in_one_line_that_says_what_is_wrong(tmp_path: Path) -> None:
    assert require_folder(tmp_path) == tmp_path
    with pytest.raises(FootsegError, match="dataset folder not found") as err:
        require_folder(tmp_path / "absent", "dataset folder")
    assert str(err.value) == f"{tmp_path / 'absent'}: dataset folder not found"
    (tmp_path / "afile").write_text("")
    with pytest.raises(FootsegError, match="is a file, not a dataset folder"):  # there, but not what was asked for
        require_folder(tmp_path / "afile", "dataset folder")

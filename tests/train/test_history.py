from pathlib import Path

import pytest

from footseg.errors import FootsegError
from footseg.train.history import HISTORY, best_val_iou, read_history, write_history


def _epochs(*ious: float) -> list[dict]:
    return [{"epoch": i + 1, "train_loss": 1.0 / (i + 1), "val_iou": v} for i, v in enumerate(ious)]


def test_written_history_reads_back_and_a_missing_one_is_none(tmp_path: Path) -> None:
    assert read_history(tmp_path) is None
    write_history(tmp_path, _epochs(0.5, 0.75))
    assert read_history(tmp_path) == _epochs(0.5, 0.75)
    assert not list(tmp_path.glob(".*")), "the atomic write leaves no temporary file behind"


def test_best_val_iou_is_the_best_epoch_not_the_last(tmp_path: Path) -> None:
    write_history(tmp_path, _epochs(0.5, 0.75, 0.25))
    assert best_val_iou(tmp_path) == 0.75
    with pytest.raises(FootsegError, match="no validation IoU to choose by"):
        best_val_iou(tmp_path / "missing")
    write_history(tmp_path, [])
    with pytest.raises(FootsegError, match="no finished epoch"):
        best_val_iou(tmp_path)


@pytest.mark.parametrize("text", ["{not json", '{"epoch": 1}', '[{"epoch": 1}]', '[{"epoch": 1, "val_iou": "x"}]'])
def test_a_bad_history_names_the_file(tmp_path: Path, text: str) -> None:
    (tmp_path / HISTORY).write_text(text)
    with pytest.raises(FootsegError, match="invalid training history") as err:
        read_history(tmp_path)
    assert str(tmp_path / HISTORY) in str(err.value)

"""``resolve_device``: the one reading of ``--device`` that training, recipes and scoring share."""

from __future__ import annotations

import pytest
import torch

from footseg.errors import FootsegError
from footseg.runtime.device import resolve_device


def test_auto_is_cuda_where_there_is_one_and_cpu_stays_cpu() -> None:
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == "cpu"


def test_an_unknown_name_is_a_user_error() -> None:
    with pytest.raises(FootsegError, match="unknown device 'gpu'; choose auto, cpu or cuda"):
        resolve_device("gpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_cuda_device_is_a_user_error() -> None:
    with pytest.raises(FootsegError, match="no CUDA device"):
        resolve_device("cuda")

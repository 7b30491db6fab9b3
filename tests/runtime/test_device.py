"""``resolve_device``: the one reading of ``--device`` that training, recipes and scoring share; ``cpu_threads``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from footseg.errors import FootsegError
from footseg.runtime import device
from footseg.runtime.device import cpu_threads, resolve_device


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


def test_a_cpu_only_torch_build_is_known_to_have_no_cuda_without_asking_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    from footseg.runtime import device

    monkeypatch.setattr(device, "_torch_version", lambda: "2.13.0+cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: pytest.fail("torch was asked"))
    assert resolve_device("auto") == "cpu"
    with pytest.raises(FootsegError, match="no CUDA device"):
        resolve_device("cuda")
    monkeypatch.setattr(device, "_torch_version", lambda: "2.13.0")  # a CUDA build: torch says whether a GPU is there
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda" or device.sys.platform == "darwin"


def test_cpu_threads_follow_torch_where_it_is_loaded_else_omp_num_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert cpu_threads() == 1  # torch is loaded here: a count set there holds for exports too
    finally:
        torch.set_num_threads(previous)
    monkeypatch.delitem(sys.modules, "torch")  # as in a process that never imported it (put back after the test)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert cpu_threads() == 3
    monkeypatch.setenv("MKL_NUM_THREADS", "2")
    assert cpu_threads() == 3  # OMP's first, as torch reads them
    for unset in ("", "0", "lots"):
        monkeypatch.setenv("OMP_NUM_THREADS", unset)
        monkeypatch.setenv("MKL_NUM_THREADS", unset)
        assert cpu_threads() == 0  # ONNX Runtime's own default: one thread per physical core
    monkeypatch.setenv("MKL_NUM_THREADS", "2")
    assert cpu_threads() == 2


def test_the_cpu_model_comes_from_proc_cpuinfo_else_the_platform(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Some CPU @ 2.0GHz\nflags\t: fpu\n")
    real_path = device.Path
    monkeypatch.setattr(device, "Path", lambda p: info if p == "/proc/cpuinfo" else real_path(p))
    assert device.cpu_model() == "Some CPU @ 2.0GHz"
    monkeypatch.setattr(device, "Path", lambda p: tmp_path / "missing")
    monkeypatch.setattr(device.platform, "processor", lambda: "")
    monkeypatch.setattr(device.platform, "machine", lambda: "x86_64")
    assert device.cpu_model() == "x86_64"

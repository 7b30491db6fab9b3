"""What a recipe's stamps and card record about the machine a stage ran on."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from footseg.recipe import environment


def test_a_cpu_is_named_with_the_instruction_set_its_kernels_use() -> None:
    # weights trained with AVX-512 kernels differ from AVX2 ones, so the card must say which ran
    name = environment.device_name("cpu")
    assert name == f"cpu ({environment.cpu_model()}, {torch.backends.cpu.get_cpu_capability()})"
    assert torch.backends.cpu.get_cpu_capability() in name and environment.cpu_model()


def test_the_cpu_model_comes_from_proc_cpuinfo_else_the_platform(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Some CPU @ 2.0GHz\nflags\t: fpu\n")
    real_path = environment.Path
    monkeypatch.setattr(environment, "Path", lambda p: info if p == "/proc/cpuinfo" else real_path(p))
    assert environment.cpu_model() == "Some CPU @ 2.0GHz"
    monkeypatch.setattr(environment, "Path", lambda p: tmp_path / "missing")
    monkeypatch.setattr(environment.platform, "processor", lambda: "")
    monkeypatch.setattr(environment.platform, "machine", lambda: "x86_64")
    assert environment.cpu_model() == "x86_64"

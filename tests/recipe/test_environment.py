"""What a recipe's stamps and card record about the machine a stage ran on."""

from __future__ import annotations

import torch

from footseg.recipe import environment


def test_a_cpu_is_named_with_the_instruction_set_its_kernels_use() -> None:
    # weights trained with AVX-512 kernels differ from AVX2 ones, so the card must say which ran
    name = environment.device_name("cpu")
    assert name == f"cpu ({environment.cpu_model()}, {torch.backends.cpu.get_cpu_capability()})"
    assert torch.backends.cpu.get_cpu_capability() in name and environment.cpu_model()

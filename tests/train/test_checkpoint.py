import random
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from footseg.errors import FootsegError
from footseg.train.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state


def test_round_trip_keeps_tensors_numbers_and_optimizer_state(tmp_path: Path) -> None:
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 3, "name": "x"})
    state = load_checkpoint(path)
    assert state["epoch"] == 3 and state["name"] == "x"
    assert torch.equal(state["model"]["weight"], model.weight.detach())
    opt2 = torch.optim.AdamW(torch.nn.Linear(3, 2).parameters(), lr=0.1)
    opt2.load_state_dict(state["optimizer"])
    assert torch.equal(opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])


def test_a_failed_write_leaves_the_old_file_intact(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"epoch": 1, "w": torch.arange(4)})
    old = path.read_bytes()
    # A lambda cannot be pickled: torch.save fails after it has started writing.
    with pytest.raises(Exception, match=r"lambda|pickle"):
        save_checkpoint(path, {"epoch": 2, "w": torch.zeros(1000), "bad": lambda: 0})
    assert path.read_bytes() == old
    assert load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temp file left behind


def test_load_refuses_pickled_objects(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"epoch": Fraction(1, 3)}, path)  # loadable by a bare pickle, not with weights_only
    with pytest.raises(FootsegError, match=r"evil\.pt: unreadable checkpoint") as info:
        load_checkpoint(path)
    # torch's advice to load it unsafely ("This file can still be loaded ...") is not passed on
    message = str(info.value)
    assert "damaged, or not a checkpoint footseg wrote" in message and "can still be loaded" not in message


@pytest.mark.parametrize("content", [b"", b"not a checkpoint", b"PK\x03\x04truncated"])
def test_corrupt_file_names_the_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(content)
    with pytest.raises(FootsegError, match=r"checkpoint\.pt: unreadable checkpoint") as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value) and "weights_only" not in str(info.value)


def test_missing_and_non_dict_files(tmp_path: Path) -> None:
    with pytest.raises(FootsegError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "nope.pt")
    torch.save(torch.zeros(2), tmp_path / "tensor.pt")
    with pytest.raises(FootsegError, match="not a footseg checkpoint"):
        load_checkpoint(tmp_path / "tensor.pt")


def test_rng_states_survive_a_checkpoint(tmp_path: Path) -> None:
    random.seed(5)
    np.random.seed(5)
    torch.manual_seed(5)
    np.random.randn()  # leaves a cached gaussian in NumPy's state
    save_checkpoint(tmp_path / "rng.pt", {"rng": rng_state()})
    first = (random.random(), random.gauss(0, 1), np.random.rand(), np.random.randn(), torch.rand(3).tolist())
    set_rng_state(load_checkpoint(tmp_path / "rng.pt")["rng"])
    again = (random.random(), random.gauss(0, 1), np.random.rand(), np.random.randn(), torch.rand(3).tolist())
    assert first == again

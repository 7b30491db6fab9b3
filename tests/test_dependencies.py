"""Dependencies whose internals footseg uses are pinned to the range it was tested with."""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

from packaging.requirements import Requirement

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
# footseg.deploy.quantize calls onnxruntime.quantization's calibrator internals; torch is pinned by the brief.
INTERNALS_USED = ("onnxruntime", "torch")


def _requirements() -> dict[str, Requirement]:
    deps = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    return {req.name: req for req in map(Requirement, deps)}


def test_packages_used_through_their_internals_have_an_upper_bound() -> None:
    reqs = _requirements()
    for name in INTERNALS_USED:
        spec = reqs[name].specifier
        assert any(s.operator in ("<", "<=", "==", "~=") for s in spec), f"{name} has no upper bound: {spec}"


def test_the_installed_versions_are_inside_the_pins() -> None:
    for name, req in _requirements().items():
        assert req.specifier.contains(version(name), prereleases=True), f"{name} {version(name)} not in {req}"

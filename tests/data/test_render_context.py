"""A renderer keeps drawing the same images after another OpenGL context was made in the process."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from footseg.data.synth import SynthSettings, synthesize
from footseg.data.synth.render import headless_gl_problem


def _digests(root: Path) -> list[str]:
    return sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*.jpg"))


def test_a_probe_context_between_two_renders_changes_nothing(tmp_path: Path) -> None:
    if (problem := headless_gl_problem()) is not None:
        pytest.skip(f"no headless OpenGL: {problem}")
    settings = SynthSettings(n=6, seed=41, size=64)
    synthesize(tmp_path / "a", settings, workers=1, progress=False)
    assert headless_gl_problem() is None  # a second context, made and released while the renderer is cached
    synthesize(tmp_path / "b", settings, workers=1, progress=False)
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b")

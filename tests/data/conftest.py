"""Fixtures of the data tests: ``egl`` skips a test cleanly where no headless OpenGL context can be made."""

from __future__ import annotations

import pytest

from footseg.data.synth.render import headless_gl_problem


@pytest.fixture(scope="session")
def egl() -> None:
    problem = headless_gl_problem()
    if problem:
        pytest.skip(f"no headless OpenGL (EGL) context here: {problem}")

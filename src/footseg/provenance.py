"""Which footseg made a file: the package's version and, in a git checkout of footseg, the commit.

Renders and recipe runs record it, so a dataset or a model can be traced to the code that made it. The commit is only
reported where footseg runs from a checkout: an installed copy that happens to sit inside some other repository (a
virtual environment in a project's folder) must not claim that repository's commit.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import platform
import subprocess
from pathlib import Path

from footseg import __version__

_PACKAGE = Path(__file__).resolve().parent


def _git(*args: str) -> str | None:
    """The output of ``git -C <package> ARGS``, or None where git or a repository is missing."""
    try:
        done = subprocess.run(["git", "-C", str(_PACKAGE), *args], capture_output=True, text=True, timeout=10,
                              check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


@functools.cache
def code_version() -> dict[str, object]:
    """``{"footseg": version}``, plus ``"commit"`` (HEAD) and ``"dirty"`` (tracked files changed since) in a checkout.

    Cached: a process runs one version of the code, and renders ask once per manifest written.
    """
    out: dict[str, object] = {"footseg": __version__}
    # __init__.py is tracked in every commit of footseg; a copy in an ignored folder of another repository is not.
    if _git("ls-files", "--error-unmatch", "--", "__init__.py") is None:
        return out
    commit = _git("rev-parse", "HEAD")
    if commit:
        out["commit"] = commit
        status = _git("status", "--porcelain", "--untracked-files=no")
        if status is not None:
            out["dirty"] = bool(status)
    return out


def versions() -> dict[str, object]:
    """footseg (version, commit, dirty), torch, onnxruntime, Python and the platform, without importing torch."""
    return {**code_version(), "torch": _package_version("torch"), "onnxruntime": _package_version("onnxruntime"),
            "python": platform.python_version(), "platform": platform.platform()}


def _package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def sha256_file(path: str | Path) -> str:
    """The sha256 of a file's bytes, in hex: what model cards, recipe stamps and exports name a file by."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()

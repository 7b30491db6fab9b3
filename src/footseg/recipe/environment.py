"""What a recipe stage ran on beyond the code and package versions (``provenance.versions``): the device, and for
renders the OpenGL driver (Mesa's llvmpipe on a CPU machine), whose version can change the rendered pixels."""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys

from footseg.runtime.device import cpu_model

_GL_PROBE = """
import json, moderngl
ctx = moderngl.create_standalone_context(backend="egl")
print(json.dumps({key: str(ctx.info.get(key, "")) for key in ("GL_VENDOR", "GL_RENDERER", "GL_VERSION")}))
"""


@functools.cache
def gl_strings() -> dict[str, str]:
    """GL_VENDOR, GL_RENDERER and GL_VERSION of a headless context made as the renderer makes its own (moderngl on
    EGL), and Mesa's version where the driver is Mesa; ``{"problem": ...}`` where no context can be made.

    Asked in a child process: a context made here would become the current one and leave a renderer this process
    already holds drawing into nothing (its next images would differ).
    """
    try:
        done = subprocess.run([sys.executable, "-c", _GL_PROBE], capture_output=True, text=True, timeout=60,
                              check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return {"problem": f"{type(exc).__name__}: {exc}"}
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"problem": last}
    out = json.loads(done.stdout)
    mesa = re.search(r"Mesa (\S+)", out["GL_VERSION"])
    if mesa:
        out["mesa"] = mesa.group(1)
    return out


def device_name(device: str) -> str:
    """The device a train stage runs on, in words: on a CPU its model and the instruction set PyTorch's kernels use.

    The instruction set is part of what a run's weights depend on: 20 training steps of the default's network give the
    same weights bit for bit run after run, and other weights with oneDNN held to AVX2 on the same AVX-512 machine
    (`ONEDNN_MAX_CPU_ISA=AVX2`; docs/history.md, "Recipe candidates and runs").
    """
    import torch

    from footseg.runtime.device import resolve_device  # (its torch import waits for a device to be named)

    if resolve_device(device) == "cuda":
        return f"cuda ({torch.cuda.get_device_name(0)})"
    return f"cpu ({cpu_model()}, {torch.backends.cpu.get_cpu_capability()})"

"""MediaPipe's selfie segmenter as a peer in ``footseg bench --peer``: the same timing, in its own environment.

``benchmarks/mediapipe_peer.py`` runs in ``.venv-bench`` (mediapipe pins numpy<2 and protobuf<5, which footseg must
not inherit) and prints its rows as JSON; a peer that cannot run is a reason to skip its rows, never to fail.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from pathlib import Path

from footseg.bench.cost import add_roofline, parse_threads
from footseg.runtime.timing import WARMUP_RUNS

PEER_RUNTIMES = ("litert", "mediapipe-tasks")  # what benchmarks/mediapipe_peer.py reports
PEER_TIMEOUT_S = 900
REPO_ROOT = Path(__file__).resolve().parents[3]
PEER_VENV = REPO_ROOT / ".venv-bench"
PEER_SCRIPT = REPO_ROOT / "benchmarks" / "mediapipe_peer.py"


def peer_hint() -> str:
    return (
        f"{PEER_VENV}: no benchmark environment, so no MediaPipe peer rows; create it with `make bench` "
        f"(a separate venv with mediapipe==0.10.21)"
    )


def peer_rows(
    threads: int | Sequence[int] = 1,
    size: int = 256,
    runs: int = 20,
    warmup: int = WARMUP_RUNS,
    min_time: float = 0.0,
) -> tuple[list[dict], str | None]:
    """Rows of the MediaPipe selfie segmenter, measured by ``benchmarks/mediapipe_peer.py`` in ``.venv-bench``.

    Returns (rows, None), or ([], why) when the peer cannot run here: the peer is a comparison, never a reason for
    the rest of the benchmark to fail.
    """
    python = PEER_VENV / "bin" / "python"
    if not python.is_file():
        return [], peer_hint()
    if not PEER_SCRIPT.is_file():
        return [], f"{PEER_SCRIPT}: peer script not found, so no MediaPipe peer rows"
    counts = parse_threads(threads)
    command = [str(python), str(PEER_SCRIPT), "--threads", ",".join(map(str, counts)), "--size", str(size),
               "--runs", str(runs), "--warmup", str(warmup), "--min-time", str(min_time)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PEER_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [], f"{PEER_SCRIPT}: MediaPipe peer did not run ({type(exc).__name__}: {exc})"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        return [], f"{PEER_SCRIPT}: MediaPipe peer failed (exit {done.returncode}): {last}"
    try:
        rows = json.loads(done.stdout)
        for row in rows:
            row.setdefault("samples_ms", [])
        return [add_roofline(dict(row)) for row in rows], None
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        return [], f"{PEER_SCRIPT}: unreadable peer output ({type(exc).__name__}: {exc})"



"""Start and stop a real server for the benchmarks: ``backprop-api serve`` (or any ASGI app) on loopback."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(
    app: str = "app.main:app", workers: int | None = 1, env: dict[str, str] | None = None, prefix: list[str] | None = None
) -> Iterator[tuple[str, subprocess.Popen, Path]]:
    """Yield (base url, process, log path) for uvicorn serving ``app`` like ``backprop-api serve`` does;
    ``workers`` None: serve's own default (one per core); ``prefix`` runs it under a wrapper (prlimit)."""
    port = free_port()
    full_env = {**os.environ, **(env or {}), "BACKPROP_PORT": str(port), "PYTHONPATH": str(ROOT)}
    full_env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log_path = Path(f"/tmp/backprop-bench-{port}.log")
    if app == "app.main:app":
        cmd = [*(prefix or []), sys.executable, "-m", "app.cli", "serve"] + ([] if workers is None else ["--workers", str(workers)])
    else:
        cmd = [
            sys.executable,
            "-m",
            "uvicorn",
            app,
            "--port",
            str(port),
            "--workers",
            str(workers or 1),
            "--no-access-log",
            "--log-level",
            "warning",
        ]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, env=full_env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(400):
                with contextlib.suppress(OSError):
                    urllib.request.urlopen(f"{base}/healthz", timeout=1)
                    break
                time.sleep(0.05)
            yield base, proc, log_path
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def rss_kib(pid: int) -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", text).group(1))  # type: ignore[union-attr]


def server_durations_ms(log_path: Path, route: str) -> list[float]:
    """The server's own duration of every request to ``route``, from its JSON access log."""
    out = []
    for line in log_path.read_text().splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if entry.get("logger") == "backprop.access" and entry.get("route") == route:
                out.append(entry["duration_ms"])
    return out

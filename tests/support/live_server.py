"""Real servers (``backprop-api serve``) on free loopback ports, and the processes they start.

Tests that use these are marked ``slow`` (left out by ``pytest -m "not slow"``).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_server(
    log_path: Path, workers: int = 1, settings: dict[str, str] | None = None, command: list[str] | None = None
) -> Iterator[tuple[str, subprocess.Popen]]:
    """`backprop-api serve --workers N` on a free loopback port with ``settings`` in its environment
    (or ``command``, another way of starting it), until it answers /healthz; stopped afterwards."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PROMETHEUS_MULTIPROC_DIR", "BACKPROP_WORKERS")}
    env["BACKPROP_PORT"] = str(port)
    env.update(settings or {})
    cmd = command or [sys.executable, "-m", "app.cli", "serve", "--workers", str(workers)]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(400):
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                time.sleep(0.05)
            else:
                pytest.fail("the server did not start: " + log_path.read_text())
            yield url, proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def worker_pids(parent: int) -> set[int]:
    """The ids of the processes whose parent is ``parent`` (uvicorn's workers, read from /proc)."""
    children = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == parent:
                children.add(int(stat.parent.name))
    return children

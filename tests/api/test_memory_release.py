"""An idle worker gives back what a large request used (glibc keeps freed heap memory otherwise)."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from tests.support.live_server import running_server

# Live servers, subprocesses or a browser: left out by `pytest -m "not slow"`.
pytestmark = pytest.mark.slow


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        return int(re.search(r"VmRSS:\s+(\d+)", status.read()).group(1)) / 1024


def test_an_idle_worker_does_not_keep_a_large_requests_memory(tmp_path):
    width, rows = 160, 30_000
    row = "[" + ",".join(["0.25"] * width) + "]"
    body = '{"network":{"layers":[{"weights":[' + row + ']}]},"inputs":[' + ",".join([row] * rows) + "]}"
    with running_server(tmp_path / "server.log", settings={"BACKPROP_WORKERS": "1"}) as (url, proc):
        idle = _rss_mib(proc.pid)
        r = httpx.post(f"{url}/v1/forward", content=body, headers={"content-type": "application/json"}, timeout=60)
        assert r.status_code == 200
        time.sleep(0.5)
        after = _rss_mib(proc.pid)
    # Parsing the 24 MB body holds several hundred MiB; kept, it would stay resident.
    assert after - idle < 120, (idle, after)

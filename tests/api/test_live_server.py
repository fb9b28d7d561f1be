"""A real server (``backprop-api serve``) on loopback: it starts, and stays responsive during long work."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import SEED_LOSSES


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "BACKPROP_PORT": str(port)}
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    log = log_path.open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        else:
            pytest.fail("the server did not start: " + log_path.read_text())
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def test_seed_over_real_http(server):
    body = httpx.get(f"{server}/v1/examples/seed").json()
    r = httpx.post(f"{server}/v1/train", json=body)
    assert r.status_code == 200
    assert [e["loss"] for e in r.json()["trace"]] == pytest.approx(SEED_LOSSES, abs=1e-12)


def test_healthz_answers_while_a_long_training_runs(server):
    body = httpx.get(f"{server}/v1/examples/seed").json()
    body.update(iterations=100_000, record_every=10_000, record=[])
    done = threading.Event()
    result: dict[str, int] = {}

    def long_training() -> None:
        result["status"] = httpx.post(f"{server}/v1/train", json=body, timeout=300).status_code
        done.set()

    worker = threading.Thread(target=long_training)
    worker.start()
    time.sleep(0.3)  # let the training start
    answered_during_training = 0
    for _ in range(5):
        assert httpx.get(f"{server}/healthz", timeout=30).json() == {"status": "ok"}
        small = httpx.post(f"{server}/v1/loss", json={k: body[k] for k in ("network", "inputs", "targets", "loss")}, timeout=30)
        assert small.status_code == 200
        answered_during_training += not done.is_set()
    worker.join(timeout=300)
    assert result.get("status") == 200
    # The ordering, not a timing: health and small requests were answered before the training ended.
    assert answered_during_training == 5

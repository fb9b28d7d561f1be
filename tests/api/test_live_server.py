"""Real servers (``backprop-api serve``) on loopback: start-up, responsiveness, logs, several workers."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.support.live_server import running_server, worker_pids
from tests.support.seed_trace import SEED_LOSSES

# Live servers, subprocesses or a browser: left out by `pytest -m "not slow"`.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    with running_server(log_path) as (url, _):
        yield url


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


def test_logs_are_json_lines_with_request_ids(tmp_path):
    log_path = tmp_path / "server.log"
    with running_server(log_path) as (url, _):
        httpx.get(f"{url}/healthz", headers={"X-Request-ID": "live-check-1"})
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    access = [l for l in lines if l["logger"] == "backprop.access"]
    assert any(l["request_id"] == "live-check-1" and l["status"] == 200 for l in access)
    assert all({"time", "level", "message"} <= set(l) for l in lines)


def test_several_workers_serve_and_metrics_add_up(tmp_path, seed_loss_body):
    with running_server(tmp_path / "server.log", workers=2) as (url, proc):
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda _: httpx.post(f"{url}/v1/gradients", json=seed_loss_body, timeout=30).status_code, range(40)))
        assert statuses == [200] * 40
        # uvicorn's supervisor plus its workers (a resource tracker may be among the children).
        assert len(worker_pids(proc.pid)) >= 2
        text = httpx.get(f"{url}/metrics").text
        counted = sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("backprop_http_requests_total{") and 'route="/v1/gradients"' in line and 'status="200"' in line
        )
        assert counted == 40


def test_long_training_streams_ndjson_over_http(server):
    body = httpx.get(f"{server}/v1/examples/seed").json()
    body.update(iterations=100_000, record_every=1, record=[], trainable=None)
    pieces, lines = 0, []
    with httpx.stream("POST", f"{server}/v1/train", json=body, headers={"Accept": "application/x-ndjson"}, timeout=120) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
        buffer = b""
        for raw in r.iter_raw():
            pieces += 1
            buffer += raw
        lines = buffer.decode().splitlines()
    # Sent as it was computed: many pieces, not one body at the end.
    assert pieces > 10
    assert len(lines) == 100_001
    first, last_entry, summary = json.loads(lines[0]), json.loads(lines[-2]), json.loads(lines[-1])
    assert first == {"iteration": 1, "loss": pytest.approx(SEED_LOSSES[0], abs=1e-12)}
    assert last_entry["iteration"] == 100_000
    assert summary["status"] == "completed" and summary["final_loss"] < last_entry["loss"]

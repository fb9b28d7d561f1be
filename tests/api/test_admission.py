"""Admission control (503 with Retry-After beyond a worker's bounds), clients that go away (their
computation stops, logged as 499), and the metrics labels of answers given before routing."""

from __future__ import annotations

import json
import re
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from app.api.admission import Admission, Overloaded
from tests.support.live_server import running_server

# Seed-network trainings of about this many iterations take about a second here (~12 us each).
ONE_SECOND = 80_000


def test_an_idle_worker_admits_anything():
    admission = Admission(max_work=10, max_memory=10)
    ticket = admission.admit(1e9, 1e9)
    assert admission.count == 1
    ticket.release()
    ticket.release()  # once only
    assert (admission.count, admission.work, admission.memory) == (0, 0, 0)


@pytest.mark.parametrize("work, memory", [(6, 1), (1, 6)])
def test_a_busy_worker_refuses_what_does_not_fit(work, memory):
    admission = Admission(max_work=10, max_memory=10)
    admission.admit(5, 5)
    with pytest.raises(Overloaded) as refused:
        admission.admit(work, memory)
    assert refused.value.retry_after >= 1 and "BACKPROP_MAX_INFLIGHT_WORK" in refused.value.message
    admission.admit(5, 5)  # what fits is admitted
    assert admission.count == 2


def test_integers_too_large_for_a_float_are_counted():
    Admission(max_work=10, max_memory=10).admit(10**400, 10**400)


def _metric(text: str, route: str, status: str) -> float:
    pattern = rf'backprop_http_requests_total\{{method="POST",route="{re.escape(route)}",status="{status}"\}} ([0-9.e+]+)'
    found = re.search(pattern, text)
    return float(found.group(1)) if found else 0.0


def test_a_413_is_counted_under_its_route(make_client, seed_body):
    client = make_client(max_body_bytes=100)
    assert client.post("/v1/train", json=seed_body).status_code == 413
    assert _metric(client.get("/metrics").text, "/v1/train", "413") >= 1


def _seed(seed_body: dict, iterations: int) -> bytes:
    return json.dumps({**seed_body, "iterations": iterations, "record": []}).encode()


def _raw_post(port: int, path: str, body: bytes, send_bytes: int | None = None, extra: str = "") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    sock.sendall(head.encode() + body[: len(body) if send_bytes is None else send_bytes])
    return sock


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks


@pytest.mark.slow
def test_live_overload_refuses_at_once_and_stays_responsive(tmp_path, seed_body):
    settings = {"BACKPROP_WORKERS": "1"}
    with running_server(tmp_path / "server.log", settings=settings) as (url, _):
        body = _seed(seed_body, ONE_SECOND)
        gradients = json.dumps({k: seed_body[k] for k in ("network", "inputs", "targets", "loss")})

        def train(_: int) -> tuple[int, float, str | None]:
            start = time.perf_counter()
            r = httpx.post(f"{url}/v1/train", content=body, headers={"content-type": "application/json"}, timeout=120)
            return r.status_code, time.perf_counter() - start, r.headers.get("retry-after")

        with ThreadPoolExecutor(40) as pool:
            trainings = [pool.submit(train, i) for i in range(30)]
            time.sleep(0.3)
            health, seeds = [], []
            for _ in range(20):
                start = time.perf_counter()
                assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
                health.append(time.perf_counter() - start)
                start = time.perf_counter()
                r = httpx.post(f"{url}/v1/gradients", content=gradients, headers={"content-type": "application/json"}, timeout=5)
                assert r.status_code == 200
                seeds.append(time.perf_counter() - start)
                time.sleep(0.05)
            results = [t.result() for t in trainings]
    done = [seconds for status, seconds, _ in results if status == 200]
    refused = [(seconds, after) for status, seconds, after in results if status == 503]
    assert len(done) + len(refused) == len(results), results
    assert done and refused, results
    # The goal is a refusal within 1 s (bench/attacks.py measures it); generous here, on a shared machine.
    assert all(seconds < 2.5 and after is not None and int(after) >= 1 for seconds, after in refused), refused
    assert max(health) < 0.5, health
    # The goal is a p99 under 200 ms (bench/attacks.py measures it); generous here, on a shared machine.
    seeds.sort()
    assert seeds[len(seeds) // 2] < 0.2 and seeds[-1] < 1.0, seeds
    print(
        f"\n{len(done)} done, {len(refused)} refused in at most {max(s for s, _ in refused):.3f} s; "
        f"healthz max {max(health):.3f} s; seed gradients median {seeds[len(seeds) // 2]:.3f} max {seeds[-1]:.3f} s"
    )


@pytest.mark.slow
def test_live_client_that_goes_away_stops_its_computation(tmp_path, seed_body):
    settings = {"BACKPROP_WORKERS": "1", "BACKPROP_MAX_INFLIGHT_WORK": "1e9"}
    with running_server(tmp_path / "server.log", settings=settings) as (url, proc):
        port = int(url.rsplit(":", 1)[1])
        long_body = _seed(seed_body, 100_000)  # ~1.5 s
        for accept in ("", "Accept: application/x-ndjson\r\n"):
            sock = _raw_post(port, "/v1/train", long_body, extra=accept)
            time.sleep(0.3)
            sock.close()
            time.sleep(0.3)  # within a chunk (a few milliseconds here)
            cpu = _cpu_seconds(proc.pid)
            time.sleep(1.0)
            assert _cpu_seconds(proc.pid) - cpu < 0.3, "still computing for a client that has gone"
        # Nothing is left in flight: a request over the in-flight bound alone is admitted at once.
        r = httpx.post(f"{url}/v1/train", content=_seed(seed_body, 10), headers={"content-type": "application/json"})
        assert r.status_code == 200
        # A client that closes mid-body.
        sock = _raw_post(port, "/v1/train", long_body, send_bytes=100)
        time.sleep(0.2)
        sock.close()
        time.sleep(0.3)
        metrics = httpx.get(f"{url}/metrics").text
        log = (tmp_path / "server.log").read_text()
    assert _metric(metrics, "/v1/train", "499") == 3, metrics
    assert _metric(metrics, "/v1/train", "500") == 0
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    gone = [line for line in lines if line.get("logger") == "backprop.access" and line.get("status") == 499]
    assert len(gone) == 3 and all(line["route"] == "/v1/train" for line in gone), gone


def _large_body(seed_body: dict, rows: int) -> bytes:
    return json.dumps({**seed_body, "inputs": [[0.7, 0.3]] * rows, "targets": [[1.0]] * rows, "iterations": 1}).encode()


def test_a_large_body_waits_for_room_before_it_is_read(make_client, seed_body):
    client = make_client(max_inflight_memory=10 * 1024 * 1024)
    admission = client.app.state.admission
    body = _large_body(seed_body, 80_000)  # ~1.5 MB: its parse reserves ~30 MB, over the bound
    assert len(body) > 1024 * 1024
    busy = admission.admit(1.0, 1.0)  # another request in flight
    r = client.post("/v1/train", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1
    (entry,) = r.json()["detail"]
    assert entry["type"] == "overloaded" and "BACKPROP_MAX_INFLIGHT_MEMORY" in entry["msg"]
    busy.release()
    # An idle worker admits it; and the reservation is given back afterwards.
    assert client.post("/v1/train", content=body, headers={"content-type": "application/json"}).status_code == 200
    assert (admission.count, admission.memory) == (0, 0)


def test_a_large_body_without_a_length_is_admitted_as_the_worst_case(make_client, seed_body):
    client = make_client(max_inflight_memory=10 * 1024 * 1024)
    body = _large_body(seed_body, 80_000)
    busy = client.app.state.admission.admit(1.0, 1.0)

    def chunks():
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    r = client.post("/v1/train", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 503
    busy.release()

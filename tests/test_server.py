"""``backprop-api serve`` against slow, silent and greedy clients (app/server.py), on real servers.

Each server runs under ``taskset -c 0`` without ``--workers``, so it also shows that the
default worker count follows CPU affinity (one worker: no child processes). Timeouts are
set to 2 s through the environment so the whole file takes seconds.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.config import Settings
from tests.support.live_server import running_server as live_server
from tests.support.live_server import worker_pids

# Live servers, subprocesses or a browser: left out by `pytest -m "not slow"`.
pytestmark = pytest.mark.slow

TIMEOUT = 2.0  # BACKPROP_HEADER_TIMEOUT and BACKPROP_BODY_TIMEOUT of the test servers
SLACK = 3.0  # a loaded CI machine; the sweep itself runs every TIMEOUT / 4
TASKSET = shutil.which("taskset")


@contextlib.contextmanager
def running_server(
    log_path: Path, env_extra: dict[str, str] | None = None, fd_limit: int | None = None
) -> Iterator[tuple[int, subprocess.Popen]]:
    """A one-worker server (pinned to core 0 where taskset exists) with the short test timeouts."""
    cmd = [sys.executable, "-m", "app.cli", "serve"]
    if fd_limit is not None:  # the same command in a process limited to fd_limit descriptors
        launch = (
            f"import resource, runpy, sys; resource.setrlimit(resource.RLIMIT_NOFILE, ({fd_limit}, {fd_limit})); "
            "sys.argv = ['app.cli', *sys.argv[1:]]; runpy.run_module('app.cli', run_name='__main__')"
        )
        cmd = [sys.executable, "-c", launch, "serve"]
    cmd = [TASKSET, "-c", "0", *cmd] if TASKSET else [*cmd, "--workers", "1"]
    settings = {"BACKPROP_HEADER_TIMEOUT": str(TIMEOUT), "BACKPROP_BODY_TIMEOUT": str(TIMEOUT), **(env_extra or {})}
    with live_server(log_path, settings=settings, command=cmd) as (url, proc):
        yield int(url.rsplit(":", 1)[1]), proc


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, subprocess.Popen]]:
    with running_server(tmp_path_factory.mktemp("server") / "server.log") as running:
        yield running


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def until_closed(sock: socket.socket, limit: float, piece: bytes = b"", every: float = 0.4) -> tuple[float, bytes]:
    """Read until the server closes; send ``piece`` every ``every`` s meanwhile. (seconds, what was answered)"""
    start, answer = time.monotonic(), b""
    while time.monotonic() - start < limit:
        sock.settimeout(every)
        try:
            data = sock.recv(65536)
        except TimeoutError:
            if piece:
                try:
                    sock.sendall(piece)
                except OSError:
                    break
            continue
        except OSError:
            break
        if not data:
            break
        answer += data
    return time.monotonic() - start, answer


def one_response(sock: socket.socket) -> bytes:
    """One whole response with a Content-Length, leaving the connection open."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, body = data.split(b"\r\n\r\n", 1)
    length = int(re.search(rb"(?i)content-length: (\d+)", head).group(1))
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def healthz_seconds(port: int) -> float:
    start = time.monotonic()
    r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
    assert r.status_code == 200
    return time.monotonic() - start


def detail(answer: bytes) -> dict:
    return json.loads(answer.split(b"\r\n\r\n", 1)[1])["detail"][0]


def vm(pid: int, key: str) -> int:
    return int(re.search(rf"{key}:\s+(\d+)", Path(f"/proc/{pid}/status").read_text()).group(1))


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_a_silent_connection_is_closed_after_the_header_timeout(server):
    port, _ = server
    with connect(port) as sock:
        seconds, answer = until_closed(sock, TIMEOUT + SLACK + 5)
    assert TIMEOUT - 0.1 <= seconds <= TIMEOUT + SLACK
    assert answer == b""  # nothing sent, nothing answered


def test_slow_headers_get_408_and_are_closed(server):
    port, _ = server
    with connect(port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        seconds, answer = until_closed(sock, TIMEOUT + SLACK + 5, piece=b"X-Slow: 1\r\n")
    assert TIMEOUT - 0.1 <= seconds <= TIMEOUT + SLACK
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert detail(answer)["type"] == "timeout" and "BACKPROP_HEADER_TIMEOUT" in detail(answer)["msg"]


def test_slow_headers_after_a_first_request_on_a_kept_alive_connection(server):
    port, _ = server
    with connect(port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert one_response(sock).startswith(b"HTTP/1.1 200 ")
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        seconds, answer = until_closed(sock, TIMEOUT + SLACK + 5, piece=b"X-Slow: 1\r\n")
    assert seconds <= TIMEOUT + SLACK
    assert answer.startswith(b"HTTP/1.1 408 ")


def test_a_trickling_body_gets_408_and_is_closed(server):
    port, _ = server
    with connect(port) as sock:
        sock.sendall(b"POST /v1/gradients HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
        seconds, answer = until_closed(sock, TIMEOUT + SLACK + 5, piece=b" ")
    assert TIMEOUT - 0.1 <= seconds <= TIMEOUT + SLACK
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert detail(answer)["loc"] == ["body"] and "BACKPROP_BODY_MIN_RATE" in detail(answer)["msg"]


def test_a_slow_but_steady_body_is_not_cut(server, seed_loss_body):
    """1,000 bytes/s for 3 s (over the 2 s body timeout, above the 500 bytes/s rate): answered."""
    port, _ = server
    body = json.dumps(seed_loss_body).encode().ljust(3000)
    with connect(port) as sock:
        sock.sendall(
            b"POST /v1/gradients HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
        )
        start = time.monotonic()
        for offset in range(0, len(body), 250):
            time.sleep(0.25)
            sock.sendall(body[offset : offset + 250])
        took = time.monotonic() - start
        _, answer = until_closed(sock, 10)
    assert took > TIMEOUT
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]


def test_healthz_answers_at_once_while_slow_clients_hold_connections(server):
    port, _ = server
    head = b"POST /v1/gradients HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    socks: list[socket.socket] = []
    start = time.monotonic()
    try:
        for n in range(300):
            sock = connect(port)
            if n % 3 == 1:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # headers never finished
            elif n % 3 == 2:
                sock.sendall(head + b"{")  # body never finished
            socks.append(sock)
        opened = time.monotonic()
        latencies = [healthz_seconds(port) for _ in range(5)]
        assert time.monotonic() - start < TIMEOUT  # probed while all 300 were still open
        assert max(latencies) < 0.5, latencies
        # ... and the server then closes every one of them itself.
        for sock in socks:
            sock.settimeout(max(0.1, opened + TIMEOUT + SLACK + 1 - time.monotonic()))
            with contextlib.suppress(ConnectionResetError):
                while data := sock.recv(65536):
                    assert data.startswith(b"HTTP/1.1 408 ")
    finally:
        for sock in socks:
            sock.close()


def test_oversized_headers_get_431_without_the_memory(server):
    port, proc = server
    with connect(port) as sock:  # one piece, headers complete
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n")
        _, answer = until_closed(sock, 10)
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert detail(answer) == {
        "loc": ["header"],
        "msg": "the request line and headers are over BACKPROP_MAX_HEADER_BYTES (65536 bytes)",
        "type": "limit_exceeded",
    }
    peak = vm(proc.pid, "VmHWM")
    with connect(port) as sock:  # 20 MB streamed in 1 MB pieces: refused after the first
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
        with contextlib.suppress(OSError):
            for _ in range(20):
                sock.sendall(b"a" * 1_000_000)
        _, answer = until_closed(sock, 10)
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert vm(proc.pid, "VmHWM") - peak < 8 * 1024  # KiB: the header was never gathered
    with connect(port) as sock:  # just under the cap: served
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: " + b"a" * 60_000 + b"\r\n\r\n")
        _, answer = until_closed(sock, 10)
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert healthz_seconds(port) < 0.5


def test_one_worker_under_taskset(server):
    _, proc = server
    if not TASKSET:
        pytest.skip("no taskset here")
    assert worker_pids(proc.pid) == set()  # one worker: uvicorn serves in the process itself
    out = subprocess.run(
        [TASKSET, "-c", "0", sys.executable, "-c", "from app.config import Settings; print(Settings().workers)"],
        env={k: v for k, v in os.environ.items() if k != "BACKPROP_WORKERS"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "1"


def test_default_workers_follow_cpu_affinity(monkeypatch):
    monkeypatch.delenv("BACKPROP_WORKERS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert Settings().workers == 1
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {1, 3, 5}, raising=False)
    assert Settings().workers == 3
    monkeypatch.delattr(os, "sched_getaffinity")  # elsewhere: every core
    assert Settings().workers == 64


def test_over_the_connection_cap(tmp_path):
    """5 connections: busy ones are kept (503 for others, not for /healthz), waiting ones make room."""
    with running_server(tmp_path / "server.log", {"BACKPROP_MAX_CONNECTIONS": "5", "BACKPROP_BODY_TIMEOUT": "30"}) as (port, _):
        busy = [connect(port) for _ in range(5)]
        try:
            for sock in busy:  # requests in progress: their bodies never finish
                sock.sendall(b"POST /v1/loss HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
            time.sleep(0.3)
            r = httpx.get(f"http://127.0.0.1:{port}/v1/examples", timeout=5)
            assert r.status_code == 503
            assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        finally:
            for sock in busy:
                sock.close()
        time.sleep(0.3)
        silent = [connect(port) for _ in range(8)]  # 3 over the cap: the oldest 3 are closed
        try:
            time.sleep(0.3)
            for sock in silent[:3]:
                assert until_closed(sock, 2)[0] < 1.5
            assert httpx.get(f"http://127.0.0.1:{port}/v1/examples", timeout=5).status_code == 200
            assert until_closed(silent[3], 2)[0] < 1.5  # made room for that request
        finally:
            for sock in silent:
                sock.close()


def test_many_silent_connections_cannot_exhaust_file_descriptors(tmp_path):
    """A 256-descriptor process, 600 silent connections: the cap (100) keeps it answering."""
    log = tmp_path / "server.log"
    with running_server(log, {"BACKPROP_MAX_CONNECTIONS": "100", "BACKPROP_HEADER_TIMEOUT": "30"}, fd_limit=256) as (port, proc):
        socks: list[socket.socket] = []
        try:
            for _ in range(600):
                with contextlib.suppress(OSError):
                    socks.append(connect(port))
            time.sleep(0.3)
            assert open_fds(proc.pid) < 150
            assert max(healthz_seconds(port) for _ in range(5)) < 0.5
        finally:
            for sock in socks:
                sock.close()
    # The limit was below the cap plus the reserve, which the worker said at start-up.
    assert '"fd_limit":256' in log.read_text()


def test_serve_raises_the_soft_descriptor_limit():
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < 1256:
        pytest.skip("hard descriptor limit too low here")
    code = (
        "import resource; from app.server import ensure_fd_room; "
        "resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1])); "
        "print(*ensure_fd_room(1000), resource.getrlimit(resource.RLIMIT_NOFILE)[0])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["64", "1256", "1256"]

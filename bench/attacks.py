"""Issue 11's attack table, replayed against real servers on loopback, one fresh server per row.

    .venv/bin/python bench/attacks.py [--only NAME[,NAME...]]

Each row starts `backprop-api serve` with its default settings (one worker unless the row
says otherwise), runs the attack, and prints what the server answered, how long it took,
how long `/healthz` took at worst meanwhile (polled every 50 ms), and the worker's peak
resident memory above its idle size (VmHWM, reset before the attack). Figures go to
bench/README.md; the regressions are in the test suite (tests/api/test_safe_exposure.py,
test_admission.py, test_hostile_bodies.py, test_server.py).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import ROOT, server_pids  # noqa: E402
from server import serve  # noqa: E402

JSON = {"content-type": "application/json"}
SEED: dict = {}  # the seed example's /v1/train body, read in main()


def _status(pid: int, key: str) -> int:
    with contextlib.suppress(OSError):
        match = re.search(rf"{key}:\s+(\d+)", Path(f"/proc/{pid}/status").read_text())
        return int(match.group(1)) if match else 0
    return 0


def _reset_peak(pid: int) -> None:
    # Writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0).
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


@contextlib.contextmanager
def server(env: dict[str, str] | None = None, workers: int | None = 1, prefix: list[str] | None = None) -> Iterator[tuple[str, int]]:
    with serve(workers=workers, env=env, prefix=prefix) as (url, proc, _log):
        time.sleep(0.3)
        yield url, proc.pid


class Probe:
    """Polls /healthz every 50 ms in a thread; ``worst`` is the longest answer (or timeout) seen."""

    def __init__(self, url: str) -> None:
        self.url, self.worst, self.failures = url, 0.0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                start = time.perf_counter()
                try:
                    client.get(f"{self.url}/healthz")
                except httpx.TransportError:
                    self.failures += 1
                self.worst = max(self.worst, time.perf_counter() - start)
                self._stop.wait(0.05)

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _workers(pid: int) -> list[int]:
    """The processes serving requests: uvicorn's spawned workers, or the server itself with one worker."""
    spawned = []
    for child in server_pids(pid)[1:]:
        with contextlib.suppress(OSError):
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                spawned.append(child)
    return spawned or [pid]


def attack(url: str, pid: int, run: Callable[[], str]) -> str:
    workers = _workers(pid)
    idle = sum(_status(p, "VmRSS") for p in workers)
    for p in workers:
        _reset_peak(p)
    start = time.perf_counter()
    with Probe(url) as probe:
        what = run()
    elapsed = time.perf_counter() - start
    peak = sum(_status(p, "VmHWM") for p in workers)
    time.sleep(1.0)  # the server hands memory back after it has answered
    after = sum(_status(p, "VmRSS") for p in workers)
    return (
        f"{what}; {elapsed:.2f} s; /healthz worst {probe.worst * 1000:.0f} ms"
        f"{f' ({probe.failures} failed)' if probe.failures else ''}; peak +{(peak - idle) / 1024:.0f} MiB, "
        f"idle after +{(after - idle) / 1024:.0f} MiB"
    )


def _post(url: str, path: str, body: bytes | str, headers: dict[str, str] = JSON, timeout: float = 120) -> httpx.Response:
    return httpx.post(f"{url}{path}", content=body, headers=headers, timeout=timeout)


def _answer(r: httpx.Response) -> str:
    return f"{r.status_code}, {len(r.content):,} B answer"


def row_strings(n: int) -> Callable[[], str]:
    body = '{"network":{"layers":[{"weights":[[' + ",".join(['""'] * n) + ']]}]},"inputs":[[1.0]]}'

    def run() -> str:
        with server() as (url, pid):
            return f"{len(body) / 1e6:.1f} MB body: " + attack(url, pid, lambda: _answer(_post(url, "/v1/forward", body)))

    return run


def row_forward_wide() -> str:
    body = json.dumps({"network": {"layers": [{"weights": [[0.1]] * 498, "activation": "tanh"}]}, "inputs": [[0.5]] * 100_000})
    with server() as (url, pid):
        return attack(url, pid, lambda: _answer(_post(url, "/v1/forward", body)))


def row_zeros() -> str:
    width, rows = 160, 100_000
    line = "[" + ",".join(["0"] * width) + "]"
    body = '{"network":{"layers":[{"weights":[' + line + ']}]},"inputs":[' + ",".join([line] * rows) + "]}"
    with server() as (url, pid):
        return f"{len(body) / 2**20:.1f} MiB body: " + attack(url, pid, lambda: _answer(_post(url, "/v1/forward", body)))


def row_explain() -> str:
    w = 1400
    layers = [
        {"weights": [[0.01]] * w, "activation": "tanh"},
        {"weights": [[0.001] * w] * w, "activation": "tanh"},
        {"weights": [[0.001] * w] * w, "activation": "tanh"},
        {"weights": [[0.001] * w], "activation": "sigmoid"},
    ]
    body = json.dumps(
        {
            "network": {"layers": layers},
            "inputs": [[0.5]] * 3,
            "targets": [[1.0]] * 3,
            "loss": "binary_cross_entropy",
            "parameter": {"layer": 0, "kind": "weights", "index": [0, 0]},
        }
    )
    with server() as (url, pid):
        return f"{len(body) / 1e6:.1f} MB body: " + attack(url, pid, lambda: _answer(_post(url, "/v1/explain", body)))


def row_seed_trace() -> str:
    body = json.dumps({**SEED, "iterations": 100_000, "record": ["output", "gradients", "network"]})
    with server() as (url, pid):
        return f"{len(body)} B body: " + attack(url, pid, lambda: _answer(_post(url, "/v1/train", body)))


def row_overload() -> str:
    body = json.dumps({**SEED, "iterations": 95_000, "record": []})  # ~1.2 s each alone
    gradients = json.dumps({k: SEED[k] for k in ("network", "inputs", "targets", "loss")})

    def run_with(url: str) -> str:
        def train(_: int) -> tuple[int, float]:
            start = time.perf_counter()
            try:
                r = _post(url, "/v1/train", body, timeout=58)
                return r.status_code, time.perf_counter() - start
            except httpx.TimeoutException:
                return 0, time.perf_counter() - start

        seeds: list[float] = []
        with ThreadPoolExecutor(110) as pool:
            futures = [pool.submit(train, i) for i in range(100)]
            with httpx.Client(timeout=30) as client:
                while not all(f.done() for f in futures):
                    start = time.perf_counter()
                    client.post(f"{url}/v1/gradients", content=gradients, headers=JSON)
                    seeds.append(time.perf_counter() - start)
                    time.sleep(0.02)
            results = [f.result() for f in futures]
        done = sorted(s for status, s in results if status == 200)
        refused = sorted(s for status, s in results if status == 503)
        timed_out = sum(1 for status, _ in results if status == 0)
        seeds.sort()
        p99 = seeds[min(len(seeds) - 1, int(0.99 * len(seeds)))] if seeds else float("nan")
        return (
            f"{len(done)} completed (first {done[0] if done else float('nan'):.2f} s, last {done[-1] if done else float('nan'):.2f} s), "
            f"{len(refused)} refused with 503 (slowest refusal {refused[-1] if refused else 0:.3f} s), {timed_out} timed out; "
            f"seed /v1/gradients p99 {p99 * 1000:.0f} ms over {len(seeds)}"
        )

    with server(workers=None) as (url, pid):
        return f"{len(_workers(pid))} workers: " + attack(url, pid, lambda: run_with(url))


def _cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _raw(port: int, path: str, body: bytes, send: int | None = None, extra: str = "") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    sock.sendall(head.encode() + body[: len(body) if send is None else send])
    return sock


def row_hangups() -> str:
    body = json.dumps({**SEED, "iterations": 100_000, "record": []}).encode()
    with server(workers=None) as (url, pid):
        port = int(url.rsplit(":", 1)[1])
        workers = _workers(pid)
        socks = [_raw(port, "/v1/train", body) for _ in range(8)]
        time.sleep(0.05)
        for s in socks:
            s.close()
        time.sleep(1.0)
        cpu = _cpu(workers)
        time.sleep(5.0)
        used = _cpu(workers) - cpu
        metrics = httpx.get(f"{url}/metrics").text
        counted = {
            status: sum(float(v) for v in re.findall(rf'route="/v1/train",status="{status}"\}} ([0-9.e+]+)', metrics))
            for status in ("200", "499", "500")
        }
        return f"CPU used in the 5 s after (from 1 s after the hang-ups): {used:.2f} s; /v1/train counted by status {counted}"


def row_mid_body() -> str:
    body = json.dumps({**SEED, "inputs": [[0.7, 0.3]] * 1000, "targets": [[1.0]] * 1000}).encode()
    with server() as (url, _):
        port = int(url.rsplit(":", 1)[1])
        sock = _raw(port, "/v1/train", body, send=1000)
        time.sleep(0.2)
        sock.close()
        time.sleep(0.3)
        lines = [l for l in httpx.get(f"{url}/metrics").text.splitlines() if l.startswith("backprop_http_requests_total{") and "POST" in l]
        return "; ".join(lines)


def _svg_ok(text: str) -> bool:
    return not re.search(r"='[^']*(inf|nan)[^']*'", text, flags=re.I)


def row_edge_answers() -> str:
    plot = {
        "network": {"layers": [{"weights": [[0.0]], "biases": [1e8]}]},
        "inputs": [[0.0]],
        "targets": [[0.0]],
        "loss": "mse",
        "optimizer": {"name": "sgd", "learning_rate": 0.1},
        "iterations": 1,
    }
    grad = {
        "network": {"layers": [{"weights": [[0.5]], "biases": [0.1], "activation": "tanh"}]},
        "inputs": [[1.0]],
        "targets": [[1e-10]],
        "loss": "mse",
        "epsilon": 8e307,
    }
    diagram = {"network": {"layers": [{"weights": [[1e308, 1.0]]}]}}
    with server() as (url, _):
        r1 = _post(url, "/v1/train/plot", json.dumps(plot))
        r2 = _post(url, "/v1/gradcheck", json.dumps(grad))
        r3 = _post(url, "/v1/diagram", json.dumps(diagram))
        blob = httpx.post(f"{url}/v1/train", content=json.dumps(SEED))  # a no-cors Blob: no Content-Type
        unknown = json.dumps({**SEED, "x" * 1_000_000: 1})
        r5 = _post(url, "/v1/train", unknown)
        headers = httpx.get(f"{url}/playground").headers
    return (
        f"plot {r1.status_code} (SVG valid: {_svg_ok(r1.text)}); gradcheck {r2.status_code} max_rel_error {r2.json().get('max_rel_error')!r}; "
        f"diagram {r3.status_code} (SVG valid: {_svg_ok(r3.text)}); no-Content-Type POST {blob.status_code}; "
        f"1 MB unknown key {r5.status_code} with a {len(r5.content):,} B answer; playground headers: "
        + ", ".join(
            f"{k}" for k in ("x-content-type-options", "content-security-policy", "x-frame-options", "cache-control") if k in headers
        )
    )


def row_affinity() -> str:
    with server(workers=None, prefix=["taskset", "-c", "0"]) as (_, pid):
        return f"`taskset -c 0 backprop-api serve` runs {len(_workers(pid))} worker(s)"


ROWS: dict[str, Callable[[], str]] = {
    "strings_1m": row_strings(1_000_000),
    "strings_4m": row_strings(4_000_000),
    "forward_wide": row_forward_wide,
    "zeros_32mib": row_zeros,
    "explain_wide": row_explain,
    "seed_trace": row_seed_trace,
    "overload": row_overload,
    "hangups": row_hangups,
    "mid_body": row_mid_body,
    "edge_answers": row_edge_answers,
    "affinity": row_affinity,
}


def main(argv: list[str] | None = None) -> int:
    global SEED
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated row names: " + ", ".join(ROWS))
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from app.examples import example_body

    SEED = example_body("seed")
    names = [n for n in args.only.split(",") if n] or list(ROWS)
    for name in names:
        print(f"| {name} | {ROWS[name]()} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

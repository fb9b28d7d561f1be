"""Load test: wrk, 64 connections for 60 s, mixing every endpoint, against a real server on loopback.

    .venv/bin/python bench/load.py [--duration 60] [--connections 64] [--workers 1]

Prints throughput, p50/p90/p99 latency, the error count (must be 0) and the server's
resident memory at start and end (must not grow without bound); exits non-zero if
either check fails. Needs wrk (Debian package `wrk`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            match = re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{pid}/status").read_text())
            total += int(match.group(1)) if match else 0
    return total


def server_pids(root: int) -> list[int]:
    """The server process and its descendants (uvicorn workers)."""
    pids = [root]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) in pids:
                pids.append(int(stat.parent.name))
    return pids


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def request_mix(base: str) -> list[str]:
    seed = get_json(f"{base}/v1/examples/seed")
    xor = get_json(f"{base}/v1/examples/xor")
    loss_fields = ("network", "inputs", "targets", "loss", "reduction")
    pick = lambda body, fields: json.dumps({k: body[k] for k in fields})  # noqa: E731
    return [
        f"POST /v1/forward\t{pick(seed, ('network', 'inputs'))}",
        f"POST /v1/loss\t{pick(seed, loss_fields)}",
        f"POST /v1/gradients\t{pick(seed, loss_fields)}",
        f"POST /v1/gradients\t{pick(xor, loss_fields)}",
        f"POST /v1/train\t{json.dumps(seed)}",
        f"POST /v1/train\t{json.dumps(xor)}",
        "GET /v1/examples\t",
        "GET /v1/examples/seed\t",
        "GET /healthz\t",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=60)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--timeout", type=int, default=10, help="seconds before wrk counts a request as timed out")
    parser.add_argument("--max-growth", type=float, default=1.5, help="allowed end/start memory ratio")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "BACKPROP_PORT": str(port)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with tempfile.TemporaryDirectory() as tmp:
        log = open(Path(tmp) / "server.log", "wb")  # noqa: SIM115
        server = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--workers", str(args.workers)], env=env, stdout=log, stderr=log, cwd=ROOT
        )
        try:
            for _ in range(200):
                with contextlib.suppress(OSError):
                    get_json(f"{base}/healthz")
                    break
                time.sleep(0.05)
            bodies = Path(tmp) / "bodies.txt"
            bodies.write_text("\n".join(request_mix(base)) + "\n")
            script = str(ROOT / "bench" / "load.lua")
            # A short warm-up so start-up allocations are not counted as growth.
            subprocess.run(["wrk", "-t1", "-c4", "-d3s", "-s", script, base, "--", str(bodies)], capture_output=True, check=True)
            rss_start = rss_kib(server_pids(server.pid))
            samples = []
            wrk = subprocess.Popen(
                [
                    "wrk",
                    f"-t{args.threads}",
                    f"-c{args.connections}",
                    f"-d{args.duration}s",
                    f"--timeout={args.timeout}s",
                    "--latency",
                    "-s",
                    script,
                    base,
                    "--",
                    str(bodies),
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            while wrk.poll() is None:
                samples.append(rss_kib(server_pids(server.pid)))
                time.sleep(1)
            output = wrk.stdout.read() if wrk.stdout else ""
            rss_end = rss_kib(server_pids(server.pid))
        finally:
            server.terminate()
            server.wait(timeout=30)
            log.close()

    result = json.loads(output.split("RESULT ", 1)[1].splitlines()[0])
    errors = sum(result[k] for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts"))
    figures = {
        "duration_s": round(result["duration_s"], 1),
        "connections": args.connections,
        "workers": args.workers,
        "requests": result["requests"],
        "requests_per_s": round(result["requests"] / result["duration_s"], 1),
        "p50_ms": round(result["p50_ms"], 2),
        "p90_ms": round(result["p90_ms"], 2),
        "p99_ms": round(result["p99_ms"], 2),
        "max_ms": round(result["max_ms"], 2),
        "errors": errors,
        "errors_by_kind": {k: result[k] for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")},
        "rss_start_mib": round(rss_start / 1024, 1),
        "rss_peak_mib": round(max(samples, default=rss_end) / 1024, 1),
        "rss_end_mib": round(rss_end / 1024, 1),
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    ok = errors == 0 and rss_end <= args.max_growth * rss_start
    print("load test:", "ok" if ok else "FAILED (errors, or memory grew more than --max-growth)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

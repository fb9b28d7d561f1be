"""Large payloads: /v1/gradients on a 1,000,000-parameter network (batch 64) vs the in-process limit.

    .venv/bin/python bench/large.py

The limit, measured in this process on the same body: orjson decode + np.asarray of
the network, inputs and targets + one forward/backward + orjson encode of the
gradients. The server's time is its own (from its access log); each of 5 requests is
paired with a measurement of the limit taken just before it. Also reports
the server's peak memory during the request over the request body's size.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import json  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import orjson  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from app.nn.network import Layer, evaluate  # noqa: E402
from bench.server import rss_kib, serve, server_durations_ms  # noqa: E402

WIDTH, BATCH = 999, 64
ROUNDS = 5  # 999 x 999 weights + 999 biases + the output layer ~ 1,000,000 parameters


def make_body() -> bytes:
    rng = np.random.default_rng(0)
    body = {
        "network": {
            "layers": [
                {"weights": rng.normal(0, 0.03, (WIDTH, WIDTH)), "biases": np.zeros(WIDTH), "activation": "tanh"},
                {"weights": rng.normal(0, 0.03, (1, WIDTH)), "biases": np.zeros(1), "activation": "sigmoid"},
            ]
        },
        "inputs": rng.normal(size=(BATCH, WIDTH)),
        "targets": rng.integers(0, 2, (BATCH, 1)).astype(float),
        "loss": "binary_cross_entropy",
    }
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)


def in_process_limit(raw: bytes) -> float:
    t = time.perf_counter()
    body = orjson.loads(raw)
    layers = [
        Layer(np.asarray(l["weights"], dtype=np.float64), np.asarray(l["biases"], dtype=np.float64), l["activation"])
        for l in body["network"]["layers"]
    ]
    x = np.asarray(body["inputs"], dtype=np.float64)
    y = np.asarray(body["targets"], dtype=np.float64)
    ev = evaluate(layers, x, y, body["loss"], "mean")
    orjson.dumps({"loss": ev.loss, "gradients": ev.gradient}, option=orjson.OPT_SERIALIZE_NUMPY)
    return time.perf_counter() - t


def main() -> None:
    raw = make_body()
    params = WIDTH * WIDTH + WIDTH + WIDTH + 1
    limits = []
    with serve() as (base, proc, log):
        with httpx.Client(timeout=120) as client:
            client.post(f"{base}/v1/gradients", content=raw, headers={"content-type": "application/json"})  # warm-up
            base_rss = rss_kib(proc.pid)
            peak = [base_rss]
            done = threading.Event()

            def sample() -> None:
                while not done.is_set():
                    peak[0] = max(peak[0], rss_kib(proc.pid))
                    time.sleep(0.002)

            sampler = threading.Thread(target=sample)
            sampler.start()
            # Interleaved: the machine's speed drifts, so each request is paired with a
            # measurement of the limit taken right before it.
            for _ in range(ROUNDS):
                limits.append(in_process_limit(raw))
                r = client.post(f"{base}/v1/gradients", content=raw, headers={"content-type": "application/json"})
                assert r.status_code == 200, r.text[:300]
            done.set()
            sampler.join()
        time.sleep(0.2)
        servers = [ms / 1000 for ms in server_durations_ms(log, "/v1/gradients")[1:]]
    ratios = sorted(s / lim for s, lim in zip(servers, limits, strict=True))
    limit, server_ms = min(limits), min(servers) * 1000
    figures = {
        "parameters": params,
        "batch": BATCH,
        "body_mib": round(len(raw) / 2**20, 1),
        "in_process_limit_ms": round(limit * 1000, 1),
        "server_ms": round(server_ms, 1),
        "server_over_limit_best": round(server_ms / 1000 / limit, 2),
        "server_over_limit_median_paired": round(ratios[len(ratios) // 2], 2),
        "paired_ratios": [round(r, 2) for r in ratios],
        "peak_extra_rss_mib": round((peak[0] - base_rss) / 1024, 1),
        "peak_extra_rss_over_body": round((peak[0] - base_rss) * 1024 / len(raw), 2),
    }
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()

"""Long traces: a 100,000-iteration /v1/train on the seed network, record_every 1, JSON and NDJSON.

    .venv/bin/python bench/trace.py

Server time is the server's own (its access log), best of 3; the engine alone (the
same training in this process, no HTTP) is the baseline beside it.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import httpx  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from app.examples import example_body  # noqa: E402
from app.nn.network import Layer  # noqa: E402
from app.nn.optimizers import SGD  # noqa: E402
from app.nn.training import train  # noqa: E402
from bench.server import serve, server_durations_ms  # noqa: E402

ITERATIONS = 100_000


def engine_seconds(body: dict) -> float:
    layers = [Layer(np.array(l["weights"]), np.array(l["biases"]), l["activation"]) for l in body["network"]["layers"]]
    t = time.perf_counter()
    train(layers, np.array(body["inputs"]), np.array(body["targets"]), body["loss"], "mean", SGD(0.5), ITERATIONS)
    return time.perf_counter() - t


def main() -> None:
    body = example_body("seed")
    body.update(iterations=ITERATIONS, record_every=1, record=[])
    engine = min(engine_seconds(body) for _ in range(3))
    figures: dict[str, float] = {"iterations": ITERATIONS, "engine_ms": round(engine * 1000)}
    with serve() as (base, _, log):
        with httpx.Client(timeout=120) as client:
            for _ in range(3):
                r = client.post(f"{base}/v1/train", json=body)
                assert r.status_code == 200 and len(r.json()["trace"]) == ITERATIONS
            figures["json_bytes"] = len(r.content)
            for _ in range(3):
                lines = 0
                with client.stream("POST", f"{base}/v1/train", json=body, headers={"Accept": "application/x-ndjson"}) as s:
                    for _line in s.iter_lines():
                        lines += 1
                assert lines == ITERATIONS + 1
        time.sleep(0.2)
        durations = server_durations_ms(log, "/v1/train")
    figures["server_json_ms"] = round(min(durations[:3]))
    figures["server_ndjson_ms"] = round(min(durations[3:]))
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()

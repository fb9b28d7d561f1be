"""Large and hostile bodies: the time, peak memory and event-loop stall of validating them.

    .venv/bin/python bench/parse_memory.py [--only NAME ...] [--pydantic] [--server]

Each body is validated in a fresh subprocess (app.api.body.parse_large_body, what the server
runs in a worker thread for a body over 64 KiB), which reports:

- ``s``: wall time of parsing and validating (and building the 422's entries);
- ``peak_mb`` / ``x_body``: peak resident memory growth during it (VmHWM, reset first
  through /proc/self/clear_refs), in MB and as a multiple of the body's size;
- ``gil_s``: the longest pause of a thread that wakes every millisecond meanwhile: how long
  the GIL was held at a stretch, i.e. how long the event loop would stall;
- ``answer``: 200 (valid), 422 with the number of entries and the last one's count, or 413.

``--pydantic`` runs the old path instead (``model.model_validate_json`` on the whole body,
then every error located), for comparison; it needs minutes and gigabytes for some bodies.
``--server`` also posts each body to a live ``backprop-api serve`` and reports the worst
/healthz latency while it is being answered.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.server import serve  # noqa: E402

MiB = 1 << 20


def _row(token: bytes, n: int) -> bytes:
    return b"[" + (token + b",") * (n - 1) + token + b"]"


def _matrix(row: bytes, n: int) -> bytes:
    return b"[" + (row + b",") * (n - 1) + row + b"]"


def _forward(weights: bytes, inputs: bytes) -> bytes:
    return b'{"network":{"layers":[{"weights":' + weights + b'}]},"inputs":' + inputs + b"}"


def _random_floats() -> bytes:
    # What a real client sends: repr-exact doubles (bench/large.py's body is of this kind).
    import numpy as np
    import orjson

    rng = np.random.default_rng(0)
    body = {
        "network": {
            "layers": [{"weights": rng.normal(0, 0.03, (999, 999)), "activation": "tanh"}, {"weights": rng.normal(0, 0.03, (1, 999))}]
        },
        "inputs": rng.normal(size=(500, 999)),
    }
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)


ZEROS_ROW = _row(b"0", 160)
# name -> (model, body): each at most 32 MiB, the default BACKPROP_MAX_BODY_BYTES.
BODIES = {
    "strings_4M": ("ForwardRequest", lambda: _forward(b"[" + _row(b'""', 4_000_000) + b"]", b"[[1.0]]")),
    "strings_1M": ("ForwardRequest", lambda: _forward(b"[" + _row(b'""', 1_000_000) + b"]", b"[[1.0]]")),
    "zeros_32MiB": ("ForwardRequest", lambda: _forward(b"[" + ZEROS_ROW + b"]", _matrix(ZEROS_ROW, 100_000))),
    "floats_31MB": ("ForwardRequest", _random_floats),
    "rows_of_one_8M": ("ForwardRequest", lambda: _forward(b"[[0]]", _matrix(b"[0]", 8_000_000))),
    "bad_rows_6M": ("ForwardRequest", lambda: _forward(b"[[0]]", _matrix(b'[""]', 6_000_000))),
    "infinity_in_last_row": (
        "ForwardRequest",
        lambda: _forward(b"[" + ZEROS_ROW + b"]", b"[" + (ZEROS_ROW + b",") * 99_999 + _row(b"1e400", 160) + b"]"),
    ),
    "cut_short": ("ForwardRequest", lambda: _forward(b"[" + ZEROS_ROW + b"]", _matrix(ZEROS_ROW, 100_000))[:-200]),
    "layers_1.8M": (
        "ForwardRequest",
        lambda: b'{"network":{"layers":[' + b'{"weights":[[0]]},' * 1_799_999 + b'{"weights":[[0]]}]},"inputs":[[0]]}',
    ),
    "layers_of_numbers_16M": ("ForwardRequest", lambda: b'{"network":{"layers":' + _row(b"0", 16_000_000) + b'},"inputs":[[0]]}'),
    "extra_keys_2.8M": (
        "ForwardRequest",
        lambda: b'{"network":{"layers":[{"weights":[[0]]}]},"inputs":[[0]],' + b",".join(b'"k%d":0' % i for i in range(2_800_000)) + b"}",
    ),
    "record_of_strings_8M": (
        "TrainRequest",
        lambda: (
            b'{"network":{"layers":[{"weights":[[0]]}]},"inputs":[[0]],"targets":[[0]],"loss":"mse",'
            b'"optimizer":{"name":"sgd","learning_rate":0.1},"iterations":1,"record":' + _row(b'"x"', 8_000_000) + b"}"
        ),
    ),
}

CHILD = r"""
import json, re, resource, sys, threading, time
raw = open(sys.argv[1], "rb").read()
from app.api import body as B
from app.schemas import error_entries as E
from app.schemas import requests as R
from app.service.limits import OverLimit
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
model = getattr(R, sys.argv[2])
pydantic_path = sys.argv[3] == "pydantic"
# Warm up (imports, the block-aware models, number tables) on a small large body.
warm = b'{"network":{"layers":[{"weights":[[0.5,1]]}]},"inputs":[' + b"[0.25,1.5]," * 9000 + b"[0,1]]}"
B.parse_large_body(warm, R.ForwardRequest, 1000)

def status():
    return open("/proc/self/status").read()
def kib(key, text):
    return int(re.search(key + r":\s+(\d+)", text).group(1))
try:
    open("/proc/self/clear_refs", "w").write("5")  # reset the peak (VmHWM) to the current size
    reset = True
except OSError:
    reset = False
before = status()
base = kib("VmRSS", before) if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
pause, done = [0.0], threading.Event()
def tick():
    last = time.perf_counter()
    while not done.is_set():
        time.sleep(0.001)
        now = time.perf_counter()
        pause[0] = max(pause[0], now - last)
        last = now
ticker = threading.Thread(target=tick, daemon=True)
ticker.start()
t = time.perf_counter()
try:
    if pydantic_path:
        try:
            model.model_validate_json(raw)
        except ValidationError as exc:
            raise RequestValidationError(B.located(exc)) from None
    else:
        B.parse_large_body(raw, model, 1000)
    answer = "200"
except RequestValidationError as exc:
    entries = E.error_entries(exc.errors(), getattr(exc, "more_errors", 0), getattr(exc, "more_at_least", False))
    answer = f"422: {len(entries)} entries, last: {entries[-1]['msg'][:70]}"
except OverLimit as exc:
    answer = f"413: {exc.message[:90]}"
seconds = time.perf_counter() - t
done.set()
ticker.join()
peak = kib("VmHWM", status()) if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"s": round(seconds, 2), "peak_mb": round((peak - base) / 1024), "gil_s": round(pause[0], 3), "answer": answer}))
"""


def measure(name: str, path: Path, model: str, pydantic_path: bool) -> dict:
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), model, "pydantic" if pydantic_path else "large"],
        capture_output=True,
        text=True,
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin", "OPENBLAS_NUM_THREADS": "1"},
        timeout=3600,
        check=False,
    )
    if out.returncode:
        return {"error": out.stderr.strip().splitlines()[-1:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def healthz_during(base: str, raw: bytes) -> tuple[float, int]:
    """The worst /healthz latency while ``raw`` is posted to /v1/forward, and the answer's status."""
    result: dict[str, int] = {}

    def post() -> None:
        result["status"] = httpx.post(
            f"{base}/v1/forward", content=raw, headers={"content-type": "application/json"}, timeout=600
        ).status_code

    poster = threading.Thread(target=post)
    worst = 0.0
    with httpx.Client(timeout=120) as client:
        poster.start()
        while poster.is_alive():
            t = time.perf_counter()
            client.get(f"{base}/healthz")
            worst = max(worst, time.perf_counter() - t)
            time.sleep(0.01)
    poster.join()
    return worst, result.get("status", 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", choices=sorted(BODIES), help="these bodies only")
    parser.add_argument("--pydantic", action="store_true", help="the old path: pydantic on the whole body")
    parser.add_argument("--server", action="store_true", help="also the /healthz latency of a live server")
    args = parser.parse_args()
    names = args.only or list(BODIES)
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for name in names:
            paths[name] = Path(tmp) / f"{name}.json"
            paths[name].write_bytes(BODIES[name][1]())
        for name in names:
            size = paths[name].stat().st_size
            row = {"body": name, "mb": round(size / 1e6, 1), **measure(name, paths[name], BODIES[name][0], args.pydantic)}
            if "peak_mb" in row:
                row["x_body"] = round(row["peak_mb"] * 1e6 / size, 1)
            print(json.dumps(row), flush=True)
        if args.server:
            with serve() as (base, _, _):
                for name in names:
                    if BODIES[name][0] != "ForwardRequest":
                        continue
                    worst, status = healthz_during(base, paths[name].read_bytes())
                    print(json.dumps({"body": name, "status": status, "healthz_worst_s": round(worst, 3)}), flush=True)


if __name__ == "__main__":
    main()

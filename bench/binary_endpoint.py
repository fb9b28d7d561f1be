"""Binary bodies end to end (issue 17): /v1/gradients sent and answered as safetensors, against the
JSON path, the engine alone, FastAPI + PyTorch written plainly, and a server that moves the same bytes
and does nothing else.

    .venv/bin/python bench/binary_endpoint.py [--sizes 10k,100k,1M,10M] [--rounds N] [--json-10m] [--plain-10m]

The network family: ``[w, w, 10]``, tanh then identity, MSE, batch 64, float64, ``w`` chosen so that its
``(w + 1) * (w + 10)`` parameters are about 10k / 100k / 1M / 10M (w = 95, 311, 995, 3157; the 1M network
has 1,000,980 parameters, an 8.1 MiB binary body). Measured at the client, end to end (httpx, one
keep-alive connection per server, every body prepared once beforehand), one uvicorn worker per server:

- binary: Content-Type and Accept application/x-safetensors to ``backprop-api serve``, the answer read
  with app.schemas.safetensors.decode (arrays viewing the answer's bytes);
- binary, back to back: the same, sent as soon as the previous binary answer is in (what a client's
  loop of requests does): it meets whatever the server still does after an answer;
- json: the orjson-encoded JSON body to the same server, the answer read with orjson.loads;
- compute: in this process, ``app.nn.network.evaluate`` (the engine call of service.run_gradients: loss,
  forward and every gradient) on float64 arrays already in memory: the baseline;
- plain: ``plain_app`` below, the FastAPI + PyTorch server a person writes first (a pydantic model of
  ``list[list[float]]``, torch float64 tensors, ``mse_loss(...).backward()``, gradients returned as
  lists), given the same JSON body;
- floor: ``floor_app`` below, a pure ASGI app under uvicorn that reads the binary body and answers with as
  many bytes as the binary answer has: what moving those bytes through uvicorn and httpx costs.

Rounds interleave the contenders (the machine is shared and its speed drifts); before each measurement
the servers are left to finish what they do after an answer (no CPU used for 30 ms). Each figure is the
median over rounds, each ratio the median of the ratios taken within a round. One BLAS / torch thread
everywhere (the service's default). Also measured: the server's peak memory while it answers binary
(and JSON) requests one after another, from /proc/<pid>/status VmHWM reset (``clear_refs``) once warmed
up, over its idle RSS, per request body; and where one 1M binary request's time and memory go, in this
process: each piece of the server's work, the whole ASGI app without sockets, and the memory release
that follows a large request (gc.collect() + malloc_trim).

The service runs with BACKPROP_MAX_INFLIGHT_MEMORY=4 GiB (a 10M request's admission estimate is over the
default 512 MiB); every other limit is its default, so the JSON path at 10M (a 208 MB body) is over
BACKPROP_MAX_BODY_BYTES (32 MiB): ``--json-10m`` raises that limit (and BACKPROP_MAX_PARAMETERS and
BACKPROP_MAX_OUTPUT_VALUES) to time it anyway; ``--plain-10m`` times the plain server at 10M. Each adds
about half a minute and a few GB of memory.
"""

from __future__ import annotations

import os

# One BLAS thread for numpy and torch alike, here and in the servers started from here.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import contextlib  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import orjson  # noqa: E402
from pydantic import BaseModel  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from app.nn.network import Layer, evaluate  # noqa: E402
from app.schemas.safetensors import decode  # noqa: E402

SAFETENSORS = "application/x-safetensors"
BATCH = 64
OUT = 10
WIDTHS = {"10k": 95, "100k": 311, "1M": 995, "10M": 3157}
# Rounds by size: in each, every contender once, interleaved.
ROUNDS = {"10k": 41, "100k": 21, "1M": 11, "10M": 3}
GiB = 1024**3


def parameters(width: int) -> int:
    return (width + 1) * (width + OUT)


# -- the problem, as arrays and as the two bodies -------------------------------------------------


def problem(width: int, seed: int = 0) -> tuple[list[Layer], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    layers = [
        Layer(rng.normal(0, 1 / np.sqrt(width), (width, width)), rng.normal(0, 0.1, width), "tanh"),
        Layer(rng.normal(0, 1 / np.sqrt(width), (OUT, width)), rng.normal(0, 0.1, OUT), "identity"),
    ]
    return layers, rng.normal(size=(BATCH, width)), rng.normal(size=(BATCH, OUT))


def json_body(layers: list[Layer], x: np.ndarray, y: np.ndarray) -> bytes:
    body = {
        "network": {"layers": [{"weights": l.weights, "biases": l.biases, "activation": l.activation} for l in layers]},
        "inputs": x,
        "targets": y,
        "loss": "mse",
    }
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)


def binary_body(layers: list[Layer], x: np.ndarray, y: np.ndarray) -> bytes:
    """The same request as safetensors, written by Hugging Face's package (as a client would)."""
    from safetensors.numpy import save

    tensors = {"inputs": x, "targets": y}
    for k, l in enumerate(layers):
        tensors[f"network.layers.{k}.weights"] = l.weights
        tensors[f"network.layers.{k}.biases"] = l.biases
    rest = {"loss": "mse", "network": {"layers": [{"activation": l.activation} for l in layers]}}
    return save(tensors, metadata={"request": json.dumps(rest)})


# -- FastAPI + PyTorch written plainly --------------------------------------------------------------


class PlainLayer(BaseModel):
    weights: list[list[float]]
    biases: list[float]
    activation: str


class PlainNetwork(BaseModel):
    layers: list[PlainLayer]


class PlainRequest(BaseModel):
    network: PlainNetwork
    inputs: list[list[float]]
    targets: list[list[float]]
    loss: str = "mse"


def _plain_app() -> Any:
    import torch
    from fastapi import FastAPI

    activations = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid, "identity": lambda z: z}
    app = FastAPI()

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/gradients")
    def gradients(req: PlainRequest) -> dict[str, Any]:
        params = []
        a = torch.tensor(req.inputs, dtype=torch.float64)
        for layer in req.network.layers:
            w = torch.tensor(layer.weights, dtype=torch.float64, requires_grad=True)
            b = torch.tensor(layer.biases, dtype=torch.float64, requires_grad=True)
            params.append((w, b))
            a = activations[layer.activation](a @ w.T + b)
        loss = torch.nn.functional.mse_loss(a, torch.tensor(req.targets, dtype=torch.float64))
        loss.backward()
        return {
            "loss": loss.item(),
            "output": a.detach().tolist(),
            "gradients": [{"weights": w.grad.tolist(), "biases": b.grad.tolist()} for w, b in params],
        }

    return app


async def floor_app(scope: dict[str, Any], receive: Callable[[], Any], send: Callable[[dict[str, Any]], Any]) -> None:
    """The transport floor: a pure ASGI app that reads the whole body and answers with as many zero bytes as
    its ``x-answer-bytes`` header asks (the size of the binary answer), nothing else."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    raw = b"".join(chunks)
    del raw
    size = int(dict(scope["headers"]).get(b"x-answer-bytes", b"2"))
    headers = [(b"content-type", b"application/octet-stream"), (b"content-length", str(size).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": bytes(size)})


def __getattr__(name: str) -> Any:
    # ``uvicorn bench.binary_endpoint:plain_app`` builds the app (and imports torch) only in its own process.
    if name == "plain_app":
        return _plain_app()
    raise AttributeError(name)


# -- measuring ------------------------------------------------------------------------------------


def status_kib(pid: int, field: str) -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+)", text).group(1))  # type: ignore[union-attr]


def reset_peak(pid: int) -> None:
    """VmHWM back to the current RSS (Linux: writing 5 to clear_refs)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime, every thread


def settle(pids: list[int], timeout: float = 3.0) -> None:
    """Wait until the servers use no CPU for 30 ms: what a request left running after its answer (the
    service's memory release after a large request: gc.collect() and malloc_trim in a thread) is over."""
    deadline = time.monotonic() + timeout
    last, quiet = [cpu_ticks(p) for p in pids], 0
    while quiet < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
        now = [cpu_ticks(p) for p in pids]
        quiet = quiet + 1 if now == last else 0
        last = now


class Contenders:
    """The ways of computing one request of one size: each a call that does it once."""

    def __init__(self, client: Any, servers: dict[str, str], width: int, json_ok: bool, plain_ok: bool) -> None:
        self.layers, self.x, self.y = problem(width)
        self.json = json_body(self.layers, self.x, self.y)
        self.binary = binary_body(self.layers, self.x, self.y)
        self.client, self.servers = client, servers
        self.answer_bytes = 0
        # name: (untimed call just before, the timed call)
        self.calls: dict[str, tuple[Callable[[], Any] | None, Callable[[], Any]]] = {
            "compute": (None, self.compute),
            "binary": (None, self.post_binary),
            "binary_b2b": (self.post_binary, self.post_binary),  # sent as soon as the previous answer is in
            "floor": (None, self.post_floor),
        }
        if json_ok:
            self.calls["json"] = (None, self.post_json)
        if plain_ok:
            self.calls["plain"] = (None, self.post_plain)

    def _post(self, server: str, body: bytes, headers: dict[str, str]) -> bytes:
        r = self.client.post(f"{self.servers[server]}/v1/gradients", content=body, headers=headers)
        if r.status_code != 200:
            raise RuntimeError(f"{server}: {r.status_code} {r.text[:500]}")
        return r.content

    def post_binary(self) -> Any:
        answer = self._post("ours", self.binary, {"content-type": SAFETENSORS, "accept": SAFETENSORS})
        self.answer_bytes = len(answer)
        return decode(answer, max_header_bytes=1 << 24)

    def post_json(self) -> Any:
        return orjson.loads(self._post("ours", self.json, {"content-type": "application/json"}))

    def post_plain(self) -> Any:
        return orjson.loads(self._post("plain", self.json, {"content-type": "application/json"}))

    def post_floor(self) -> Any:
        return self._post("floor", self.binary, {"content-type": "application/octet-stream", "x-answer-bytes": str(self.answer_bytes)})

    def compute(self) -> Any:
        return evaluate(self.layers, self.x, self.y, "mse", "mean")

    def check(self) -> None:
        """Every contender's first-layer weight gradient agrees with the engine's (not timed; also the warm-up)."""
        ev = self.compute()
        want = ev.layout.views(ev.gradient)[0][0]
        got = {"binary": self.post_binary().tensors["gradients.0.weights"]}
        if "json" in self.calls:
            got["json"] = np.array(self.post_json()["gradients"][0]["weights"])
        if "plain" in self.calls:
            got["plain"] = np.array(self.post_plain()["gradients"][0]["weights"])
        for name, g in got.items():
            if not np.allclose(g, want, rtol=1e-9, atol=1e-14):
                raise AssertionError(f"{name}: gradients differ from the engine's")
        self.post_floor()


def measure(c: Contenders, rounds: int, pids: list[int]) -> dict[str, Any]:
    c.check()
    per_round: dict[str, list[float]] = {k: [] for k in c.calls}
    for _ in range(rounds):
        for key, (before, fn) in c.calls.items():
            settle(pids)
            if before is not None:
                before()
            t = time.perf_counter()
            fn()
            per_round[key].append(time.perf_counter() - t)
    ms = {k: statistics.median(v) * 1000 for k, v in per_round.items()}
    ratio = {k: statistics.median(a / b for a, b in zip(v, per_round["compute"])) for k, v in per_round.items() if k != "compute"}
    if "json" in per_round:
        ratio["json_over_binary"] = statistics.median(j / b for j, b in zip(per_round["json"], per_round["binary"]))
    return {"ms": ms, "over_compute": ratio, "binary_mib": len(c.binary) / 2**20, "json_mib": len(c.json) / 2**20}


def peak_memory(pid: int, post: Callable[[], Any], body_bytes: int, requests: int = 5) -> dict[str, float]:
    """The server's RSS high-water mark over its idle RSS while it answers ``requests`` posts one after
    another, in MiB and in request bodies."""
    post()  # warm
    settle([pid])
    idle = status_kib(pid, "VmRSS")
    reset_peak(pid)
    for _ in range(requests):
        post()
    extra = (status_kib(pid, "VmHWM") - idle) * 1024
    return {"idle_mib": idle / 1024, "peak_extra_mib": extra / 2**20, "over_body": extra / body_bytes}


# -- one binary request, piece by piece, in this process --------------------------------------------


async def asgi_post(app: Any, body: bytes, headers: list[tuple[bytes, bytes]], chunk: int = 65536) -> tuple[float, float]:
    """One POST /v1/gradients through the whole ASGI app, no sockets (the body in chunks of ``chunk``
    bytes, as uvicorn delivers it): seconds until the answer's last byte is handed to the server, and
    until the app returns (after the memory release that follows a large request)."""
    import asyncio

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/gradients",
        "raw_path": b"/v1/gradients",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-length", str(len(body)).encode()), *headers],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 2),
        "state": {},
    }
    parts = [body[i : i + chunk] for i in range(0, len(body), chunk)]
    done, status, sent = asyncio.Event(), [], [0.0]

    async def receive() -> dict[str, Any]:
        if parts:
            return {"type": "http.request", "body": parts.pop(0), "more_body": bool(parts)}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])
        elif not message.get("more_body"):
            sent[0] = time.perf_counter()

    t = time.perf_counter()
    await app(scope, receive, send)
    end = time.perf_counter()
    done.set()
    if status != [200]:
        raise RuntimeError(f"in-process binary request: {status}")
    return sent[0] - t, end - t


def pieces(width: int, repeats: int = 9) -> dict[str, Any]:
    """Time (medians of ``repeats``, interleaved) and tracemalloc peak of each piece of the server's work on
    one binary request: reading the body (decode + validate), the service (limits + evaluate + payload),
    encoding the answer, the engine call alone; the whole ASGI app in this process (no sockets) and the
    memory release that follows a large request (gc.collect() + malloc_trim, in a thread)."""
    import uvloop

    import app.api.memory_release as memory_release
    from app.api.body import parse_binary_body
    from app.api.compute import binary_answer_settings
    from app.api.metering import metered
    from app.api.response_bodies import SafetensorsBody
    from app.config import Settings
    from app.main import create_app
    from app.schemas.requests import LossRequest
    from app.service.conversion import dtype_of, loss_arguments
    from app.service.gradients import run_gradients

    layers, x, y = problem(width)
    raw = binary_body(layers, x, y)
    settings = binary_answer_settings(Settings())
    app = create_app(Settings(max_inflight_memory=4 * GiB))
    both = [(b"content-type", SAFETENSORS.encode()), (b"accept", SAFETENSORS.encode())]
    releases: list[float] = []
    release = memory_release._collect_and_trim

    def timed_release(trim: Callable[[], object]) -> None:
        t = time.perf_counter()
        release(trim)
        releases.append(time.perf_counter() - t)

    memory_release._collect_and_trim = timed_release  # this process only: timed, not changed

    def read() -> Any:
        body = parse_binary_body(raw, LossRequest, settings.max_binary_header_bytes)
        body.came_binary()
        return body

    req = read()
    args = loss_arguments(req)
    payload = run_gradients(req, settings)
    whole: list[tuple[float, float]] = []
    steps: dict[str, Callable[[], Any]] = {
        "read body (decode + validate)": read,
        "request to engine arrays (loss_arguments)": lambda: loss_arguments(req),
        "engine (evaluate)": lambda: evaluate(*args, dtype=dtype_of(req)),
        "service (run_gradients: limits + evaluate + payload)": lambda: run_gradients(req, settings),
        "encode answer (SafetensorsBody)": lambda: SafetensorsBody(metered(req, payload)),
        "whole app in-process, to answer sent": lambda: whole.append(uvloop.run(asgi_post(app, raw, both))),
    }
    times: dict[str, list[float]] = {k: [] for k in steps}
    steps["whole app in-process, to answer sent"]()  # warm
    releases.clear()
    whole.clear()
    for _ in range(repeats):
        for key, fn in steps.items():
            t = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - t)
    times["whole app in-process, to answer sent"] = [sent for sent, _ in whole]
    times["memory release after it (gc.collect + malloc_trim)"] = releases
    out: dict[str, Any] = {"body_mib": len(raw) / 2**20, "answer_mib": len(SafetensorsBody(payload).body) / 2**20}
    for key in times:
        out[key] = {"ms": statistics.median(times[key]) * 1000}
    for key, fn in list(steps.items())[:5]:
        gc.collect()
        tracemalloc.start()
        result = fn()
        out[key]["peak_alloc_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        del result
    # The request's work in a row, with what each piece leaves alive, as the server holds it.
    gc.collect()
    tracemalloc.start()
    body = read()
    after_read = tracemalloc.get_traced_memory()[0]
    answer = run_gradients(body, settings)
    after_compute = tracemalloc.get_traced_memory()[0]
    encoded = SafetensorsBody(metered(body, answer))
    after_encode, whole_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del body, answer, encoded
    out["in a row, held after read / compute / encode (MiB, the body itself not counted)"] = [
        round(v / 2**20, 1) for v in (after_read, after_compute, after_encode)
    ]
    out["in a row, peak allocated (MiB, the body not counted)"] = whole_peak / 2**20
    # What the memory release's full collection walks: every object of the app, each time.
    collects = []
    for _ in range(5):
        t = time.perf_counter()
        gc.collect()
        collects.append(time.perf_counter() - t)
    out["gc.collect() alone"] = {"ms": statistics.median(collects) * 1000, "objects": len(gc.get_objects())}
    memory_release._collect_and_trim = release
    return out


# -- main -------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    global BATCH
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10k,100k,1M,10M", help="comma-separated, of " + ", ".join(WIDTHS))
    parser.add_argument("--rounds", type=int, help="rounds for every size (default: by size)")
    parser.add_argument("--plain-10m", action="store_true", help="also time the plain FastAPI + PyTorch server at 10M (slow, GBs)")
    parser.add_argument(
        "--json-10m", action="store_true", help="also time our JSON path at 10M, BACKPROP_MAX_BODY_BYTES raised to 1 GiB (slow)"
    )
    parser.add_argument("--no-pieces", action="store_true", help="skip the in-process breakdown of one 1M binary request")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--batch", type=int, default=64, help="input rows per request (default %(default)s)")
    args = parser.parse_args(argv)
    BATCH = args.batch  # the module's figures are all for one batch, chosen here
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    for s in sizes:
        if s not in WIDTHS:
            parser.error(f"unknown size {s!r}")

    import httpx

    from bench.server import serve

    # What a 10M-parameter request needs beyond the defaults: its admission estimate (about 0.8 GB) is over
    # the default 512 MiB of BACKPROP_MAX_INFLIGHT_MEMORY. The JSON body limit is raised only with --json-10m.
    service_env = {"BACKPROP_MAX_INFLIGHT_MEMORY": str(4 * GiB)}
    if args.json_10m:
        service_env |= {
            "BACKPROP_MAX_BODY_BYTES": str(GiB),
            "BACKPROP_MAX_PARAMETERS": "12000000",
            "BACKPROP_MAX_OUTPUT_VALUES": "12000000",
        }
    results: dict[str, Any] = {"service_env": service_env, "sizes": {}}
    print(f"service env: {service_env}; batch {BATCH}; network [w, w, {OUT}] tanh/identity, mse; float64", flush=True)
    with contextlib.ExitStack() as stack:
        ours, ours_proc, _ = stack.enter_context(serve(env=service_env))
        plain, plain_proc, _ = stack.enter_context(serve(app="bench.binary_endpoint:plain_app"))
        floor, floor_proc, _ = stack.enter_context(serve(app="bench.binary_endpoint:floor_app"))
        servers = {"ours": ours, "plain": plain, "floor": floor}
        pids = [ours_proc.pid, plain_proc.pid, floor_proc.pid]
        client = stack.enter_context(httpx.Client(timeout=600))
        for size in sizes:
            width = WIDTHS[size]
            big = size == "10M"
            c = Contenders(client, servers, width, json_ok=not big or args.json_10m, plain_ok=not big or args.plain_10m)
            t = time.perf_counter()
            row = measure(c, args.rounds or ROUNDS[size], pids)
            row |= {"width": width, "parameters": parameters(width), "seconds": round(time.perf_counter() - t, 1)}
            if size in ("1M", "10M"):
                row["memory_binary"] = peak_memory(ours_proc.pid, c.post_binary, len(c.binary), requests=5 if size == "1M" else 2)
            if size == "1M":
                row["memory_json"] = peak_memory(ours_proc.pid, c.post_json, len(c.json), requests=3)
                row["memory_plain"] = peak_memory(plain_proc.pid, c.post_plain, len(c.json), requests=2)
            results["sizes"][size] = row
            print(json.dumps({size: row}, default=lambda v: round(v, 3)), flush=True)
            del c
            gc.collect()
    if not args.no_pieces and "1M" in sizes:
        results["pieces_1M"] = pieces(WIDTHS["1M"])
        print(json.dumps({"pieces_1M": results["pieces_1M"]}, indent=1, default=lambda v: round(v, 3)), flush=True)
    print()
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=float) + "\n")


def cell(d: dict[str, float], key: str, unit: str = "", missing: str = "-") -> str:
    if key not in d:
        return missing
    v = d[key]
    return (f"{v:,.0f}" if v >= 100 else f"{v:.1f}" if v >= 10 else f"{v:.2f}") + unit


def table(results: dict[str, Any]) -> str:
    """The figures as the Markdown table of bench/README.md."""
    lines = [
        "| parameters | body binary / JSON | compute-only | binary | binary, back to back | JSON | plain FastAPI + PyTorch "
        "| transport floor | binary / compute | back to back / compute | JSON / compute | plain / compute | JSON / binary |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size, row in results["sizes"].items():
        ms, r = row["ms"], row["over_compute"]

        lines.append(
            f"| {row['parameters']:,} ({size}) | {row['binary_mib']:.1f} / {row['json_mib']:.1f} MiB | {cell(ms, 'compute', ' ms')} "
            f"| {cell(ms, 'binary', ' ms')} | {cell(ms, 'binary_b2b', ' ms')} | {cell(ms, 'json', ' ms', 'over the JSON limit')} | {cell(ms, 'plain', ' ms')} "
            f"| {cell(ms, 'floor', ' ms')} | {cell(r, 'binary')} | {cell(r, 'binary_b2b')} | {cell(r, 'json')} | {cell(r, 'plain')} "
            f"| {cell(r, 'json_over_binary')} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()

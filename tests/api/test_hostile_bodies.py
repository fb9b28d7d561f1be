"""Large and hostile bodies: answered in seconds, in bounded memory, without stalling the event loop,
and with the answers a small body gets (app.api.large_body)."""

from __future__ import annotations

import copy
import json
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from pydantic import ValidationError

from app.api import body, large_body
from app.examples import example_body
from app.schemas import requests as R
from app.schemas.error_entries import error_entries
from tests.support.body_paths import posted_both_ways
from tests.support.live_server import running_server

ROOT = Path(__file__).resolve().parents[2]
JSON = {"content-type": "application/json"}


def row(token: bytes, n: int) -> bytes:
    return b"[" + (token + b",") * (n - 1) + token + b"]"


def forward_body(weights: bytes, inputs: bytes) -> bytes:
    return b'{"network":{"layers":[{"weights":' + weights + b'}]},"inputs":' + inputs + b"}"


def empty_strings(n: int) -> bytes:
    """One weights row of ``n`` empty strings (the measured attack: 4,000,000 took 47 s and 4.6 GB)."""
    return forward_body(b"[" + row(b'""', n) + b"]", b"[[1.0]]")


ZEROS_ROW = row(b"0", 160)
# 32 MiB of zeros within every limit: network 160 -> 1, 100,000 input rows (1.1 GB through pydantic).
ZEROS = forward_body(b"[" + ZEROS_ROW + b"]", b"[" + (ZEROS_ROW + b",") * 99_999 + ZEROS_ROW + b"]")


@pytest.mark.parametrize("n", [1_000_000, 4_000_000])
def test_a_row_of_millions_of_empty_strings_is_answered_in_seconds(client, n):
    raw = empty_strings(n)
    start = time.perf_counter()
    r = client.post("/v1/forward", content=raw, headers=JSON)
    elapsed = time.perf_counter() - start
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert len(detail) == 101
    assert [e["loc"] for e in detail[:100]] == [["body", "network", "layers", 0, "weights", 0, j] for j in range(100)]
    assert detail[0] == {
        "loc": ["body", "network", "layers", 0, "weights", 0, 0],
        "msg": "Input should be a valid number; found the string ''",
        "type": "float_type",
    }
    assert detail[-1] == {"loc": ["body"], "msg": f"{n - 100} more errors like these were found", "type": "too_many_errors"}
    assert elapsed < 5, elapsed


PEAK_MEMORY = r"""
import json, re, sys
raw = open(sys.argv[1], "rb").read()
from app.api.body import parse_large_body
from app.schemas.requests import ForwardRequest
from fastapi.exceptions import RequestValidationError
def kib(key):
    return int(re.search(key + r":\s+(\d+)", open("/proc/self/status").read()).group(1))
open("/proc/self/clear_refs", "w").write("5")  # the peak (VmHWM) from here on
before = kib("VmRSS")
try:
    parse_large_body(raw, ForwardRequest, 1000)
    status = 200
except RequestValidationError:
    status = 422
print(json.dumps({"status": status, "growth": (kib("VmHWM") - before) * 1024}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("name, raw, status", [("zeros", ZEROS, 200), ("strings", empty_strings(4_000_000), 422)])
def test_peak_memory_of_validating_stays_under_twenty_times_the_body(tmp_path, name, raw, status):
    path = tmp_path / f"{name}.json"
    path.write_bytes(raw)
    out = subprocess.run([sys.executable, "-c", PEAK_MEMORY, str(path)], capture_output=True, text=True, cwd=ROOT, timeout=120, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)
    assert result["status"] == status
    assert 0 < result["growth"] < 20 * len(raw), result["growth"] / len(raw)


@pytest.mark.slow
def test_healthz_answers_while_a_large_invalid_body_is_validated(tmp_path):
    raw = empty_strings(4_000_000)
    with running_server(tmp_path / "server.log") as (url, _):
        answer: dict[str, httpx.Response] = {}

        def post() -> None:
            answer["r"] = httpx.post(f"{url}/v1/forward", content=raw, headers=JSON, timeout=120)

        poster = threading.Thread(target=post)
        latencies = []
        with httpx.Client(timeout=10) as health:
            poster.start()
            while poster.is_alive():
                start = time.perf_counter()
                assert health.get(f"{url}/healthz").json() == {"status": "ok"}
                latencies.append(time.perf_counter() - start)
                time.sleep(0.005)
        poster.join()
    assert answer["r"].status_code == 422
    assert len(latencies) >= 3  # asked while the body was being validated
    assert max(latencies) < 0.5, max(latencies)


def large_training_body(rng: np.random.Generator) -> dict:
    """A body of every kind of number a client sends: repr-exact doubles, integers, short decimals,
    exponents, negative zero; with a trainable mask and a record list."""
    w1 = rng.normal(0, 0.3, (48, 30))
    w1[0, :6] = [0, -0.0, 1, -7, 0.5, 1e-05]
    w1[1, :4] = [1e22, 2.5e-300, 12345678901234567, 0.1]
    w2 = np.round(rng.normal(0, 1, (4, 48)), 2)
    x = rng.integers(-3, 4, (600, 30)).astype(float)
    x[::7] = rng.normal(size=(86, 30))
    targets = rng.dirichlet(np.ones(4), size=600)
    return {
        "network": {
            "layers": [
                {"weights": w1.tolist(), "biases": rng.normal(size=48).tolist(), "activation": "tanh"},
                {"weights": w2.tolist(), "biases": [0, 0, 0, 0], "activation": "softmax"},
            ]
        },
        "inputs": [[int(v) if v.is_integer() and i % 3 else v for i, v in enumerate(r)] for r in x.tolist()],
        "targets": targets.tolist(),
        "loss": "cross_entropy",
        "optimizer": {"name": "adam", "learning_rate": 0.01},
        "iterations": 2,
        "record": ["output", "gradients", "network"],
        "trainable": [{"weights": (rng.random((48, 30)) > 0.3).tolist()}, {"biases": [True, False, True, True]}],
    }


@pytest.mark.parametrize("indent", [None, 1])
def test_large_bodies_give_the_answers_small_ones_get(client, monkeypatch, rng, indent):
    payload = large_training_body(rng)
    raw = json.dumps(payload, indent=indent).encode()
    assert len(raw) > body.THREAD_BODY_BYTES
    for path, fields in [
        ("/v1/train", None),
        ("/v1/gradients", ("network", "inputs", "targets", "loss")),
        ("/v1/forward", ("network", "inputs")),
    ]:
        sent = raw if fields is None else json.dumps({k: payload[k] for k in fields}, indent=indent).encode()
        small, large = posted_both_ways(client, monkeypatch, path, sent)
        assert small.status_code == 200, small.text[:300]
        assert large.content == small.content


def _located(exc: ValidationError) -> list[dict]:
    # pydantic's own errors under "body", before app.schemas.error_hints says them for clients:
    # both paths must agree on these.
    return [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]


def small_path(raw: bytes, model: type) -> object:
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        return error_entries(_located(exc))


def large_path(raw: bytes, model: type) -> object:
    try:
        return large_body.validate_large(raw, model, 1000)
    except large_body.Invalid as exc:
        shown = exc.errors[:100]
        return error_entries([{**e, "loc": ("body", *e["loc"])} for e in shown], len(exc.errors) - len(shown) + exc.more, exc.at_least)


JUNK = [
    None,
    True,
    False,
    0,
    -0.0,
    2.5,
    -1e308,
    "x",
    "",
    "output",
    [],
    [[]],
    [0],
    [1.5, 2],
    [[1.0], [2.0, 3.0]],
    [["a"]],
    [[True]],
    [True, False],
    {},
    {"a": 1},
    [[[0.5]]],
    float("nan"),
    float("inf"),
    10**400,
    10**30,
]


def mutated(rnd: random.Random, base: dict) -> dict:
    """``base`` with a few values replaced by junk, or lists made long, mixed or ragged."""
    result = copy.deepcopy(base)
    for _ in range(rnd.randint(1, 4)):
        paths, stack = [], [((), result)]
        while stack:
            path, node = stack.pop()
            children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
            for key, child in children:
                paths.append(path + (key,))
                stack.append((path + (key,), child))
        where = rnd.choice(paths)
        target = result
        for key in where[:-1]:
            target = target[key]
        choice = rnd.random()
        if choice < 0.5:
            target[where[-1]] = copy.deepcopy(rnd.choice(JUNK))
        elif choice < 0.7:
            target[where[-1]] = [rnd.choice([0.5, 1, -2, "x", None, True, float("nan"), [1]]) for _ in range(rnd.randint(20, 80))]
        elif choice < 0.8 and isinstance(target, dict):
            target[rnd.choice(["extra", "bias"])] = copy.deepcopy(rnd.choice(JUNK))
        elif isinstance(target, list):
            target.append(copy.deepcopy(rnd.choice(JUNK)))
    return result


@pytest.mark.parametrize("seed", range(4))
def test_every_body_gets_the_answer_pydantic_gives(monkeypatch, seed):
    """Differential: app.api.large_body (every array a block, small chunks) against pydantic on the
    seed and xor examples with junk in random places, for every request model."""
    rnd = random.Random(seed)
    bases = [example_body("seed"), example_body("xor")]
    models = [R.ForwardRequest, R.LossRequest, R.TrainRequest, R.GradcheckRequest, R.DiagramRequest]
    for _ in range(150):
        model = rnd.choice(models)
        payload = mutated(rnd, rnd.choice(bases))
        if model is not R.TrainRequest:
            payload = {k: v for k, v in payload.items() if k not in ("optimizer", "iterations", "record", "trainable", "record_every")}
        if model is R.ForwardRequest:
            payload = {k: v for k, v in payload.items() if k in ("network", "inputs")}
        raw = json.dumps(payload, allow_nan=True).encode()
        if rnd.random() < 0.3:
            raw = raw.replace(b", ", b",\n  ")
        assert_pydantics_answer(monkeypatch, rnd, raw, model)


@pytest.mark.parametrize("seed", range(2))
def test_every_check_body_gets_the_answer_pydantic_gives(monkeypatch, seed):
    """The same for /v1/check's bodies, whose claimed arrays hold nulls among their numbers."""
    bases = [example_body(name, "check") for name in ("seed", "xor", "blog")]
    assert_mutations_get_pydantics_answer(monkeypatch, random.Random(seed), bases, R.CheckRequest)


@pytest.mark.parametrize("seed", range(2))
def test_every_graph_body_gets_the_answer_pydantic_gives(monkeypatch, seed):
    """The same for /v1/graph's bodies: a sample that may be null, and labels keyed by node names."""
    bases = [example_body(name, "graph") for name in ("seed", "xor", "blog")]
    assert_mutations_get_pydantics_answer(monkeypatch, random.Random(seed), bases, R.GraphRequest)


def assert_mutations_get_pydantics_answer(monkeypatch: pytest.MonkeyPatch, rnd: random.Random, bases: list[dict], model: type) -> None:
    """150 of ``bases`` with junk in random places (``mutated``), each read as ``model`` both ways."""
    for _ in range(150):
        raw = json.dumps(mutated(rnd, rnd.choice(bases)), allow_nan=True).encode()
        assert_pydantics_answer(monkeypatch, rnd, raw, model)


def assert_pydantics_answer(monkeypatch: pytest.MonkeyPatch, rnd: random.Random, raw: bytes, model: type) -> None:
    """``raw`` read by app.api.large_body (in blocks and chunks of random sizes) gets what pydantic
    gives it: the same error entries, or the same model."""
    monkeypatch.setattr(large_body, "MIN_BLOCK_BYTES", rnd.choice([1, 8, 32]))
    monkeypatch.setattr(large_body, "READ_CHUNK_BYTES", rnd.choice([8, 64, 1 << 20]))
    expected, found = small_path(raw, model), large_path(raw, model)
    if isinstance(expected, list):
        assert found == expected, raw
    else:
        assert not isinstance(found, list), (raw, found)
        assert plain(found.model_dump()) == expected.model_dump()


def plain(value: object) -> object:
    """A model dump with its float64 arrays as the lists pydantic gives."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def test_a_large_body_cut_short_gets_pydantics_own_json_error(client):
    raw = ZEROS[:2_000_000]
    r = client.post("/v1/forward", content=raw, headers=JSON)
    assert r.status_code == 422
    (entry,) = r.json()["detail"]
    assert entry == error_entries(_located(_json_error(raw)))[0]
    assert entry["type"] == "json_invalid" and "line 1 column 2000000" in entry["msg"]


def _json_error(raw: bytes) -> ValidationError:
    try:
        R.ForwardRequest.model_validate_json(raw)
    except ValidationError as exc:
        return exc
    raise AssertionError("valid")


def test_more_objects_and_keys_than_the_layer_limit_allows_is_413_and_the_setting_raises_it(make_client):
    layers = b'{"weights":[[0.5]]},' * 4_999 + b'{"weights":[[0.5]]}'  # 3 objects and keys each
    raw = b'{"network":{"layers":[' + layers + b']},"inputs":[[1.0]]}'
    r = make_client().post("/v1/forward", content=raw, headers=JSON)
    assert r.status_code == 413
    (entry,) = r.json()["detail"]
    assert entry["loc"] == ["body"] and entry["type"] == "limit_exceeded"
    assert "objects and keys" in entry["msg"] and "BACKPROP_MAX_LAYERS" in entry["msg"]
    assert make_client(max_layers=5_000).post("/v1/forward", content=raw, headers=JSON).status_code == 200

"""Safetensors bodies and answers (app.api.binary_body, SafetensorsBody): the same answers and the same
errors as JSON, the container's own faults as 4xx at their place, hostile files fuzzed."""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import save

from app.api import binary_body
from tests.support.binary_bodies import BINARY_BOTH, BINARY_HEADERS, from_binary_answer, header, to_binary
from tests.support.random_bodies import check_body, explain_body, gradcheck_body, loss_body, network_body, train_body

BODIES = {
    "forward": network_body,
    "loss": loss_body,
    "gradients": loss_body,
    "gradcheck": gradcheck_body,
    "explain": explain_body,
    "train": train_body,
    "check": check_body,
}


@pytest.fixture(params=[False, True], ids=["inline-small", "every-tensor-a-block"])
def blocks(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Small tensors go into the JSON as numbers; with INLINE_NUMBERS 0 every tensor takes the block path."""
    if request.param:
        monkeypatch.setattr(binary_body, "INLINE_NUMBERS", 0)
    return bool(request.param)


@pytest.mark.parametrize("endpoint", sorted(BODIES))
def test_binary_body_and_answer_equal_json(client, rng, blocks, endpoint):
    for _ in range(12):
        body = BODIES[endpoint](rng)
        expected = client.post(f"/v1/{endpoint}", json=body)
        raw = to_binary(body)
        got = client.post(f"/v1/{endpoint}", content=raw, headers=BINARY_HEADERS)
        assert got.status_code == expected.status_code, got.text
        assert got.json() == expected.json()
        binary = client.post(f"/v1/{endpoint}", content=raw, headers=BINARY_BOTH)
        assert binary.status_code == expected.status_code
        if expected.status_code == 200:
            assert binary.headers["content-type"] == "application/x-safetensors"
            assert from_binary_answer(binary.content) == expected.json()
        else:
            assert binary.headers["content-type"] == "application/json"


def test_json_body_binary_answer_and_float32_tensors(client, rng):
    body = loss_body(rng)
    expected = client.post("/v1/gradients", json=body).json()
    answer = client.post("/v1/gradients", json=body, headers={"accept": "application/x-safetensors"})
    assert from_binary_answer(answer.content) == expected
    # Float32 tensors are widened exactly: the same answer as JSON holding the same (float32) numbers.
    raw = to_binary(body, np.float32)
    as_float32 = json.loads(json.dumps(body), parse_float=lambda s: float(np.float32(s)))
    assert client.post("/v1/gradients", content=raw, headers=BINARY_HEADERS).json() == client.post("/v1/gradients", json=as_float32).json()


def test_accept_prefers_json_unless_binary_is_asked_for(client, seed_loss_body):
    raw = to_binary(seed_loss_body)
    for accept, media in [
        (None, "application/json"),
        ("*/*", "application/json"),
        ("application/json, application/x-safetensors", "application/json"),
        ("application/json;q=0.5, application/x-safetensors", "application/x-safetensors"),
        ("application/x-safetensors", "application/x-safetensors"),
    ]:
        headers = {**BINARY_HEADERS, **({"accept": accept} if accept else {})}
        assert client.post("/v1/gradients", content=raw, headers=headers).headers["content-type"] == media


def _post(client, raw: bytes, endpoint: str = "gradients") -> Any:
    return client.post(f"/v1/{endpoint}", content=raw, headers=BINARY_HEADERS)


def _body(rng, n: int = 70) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """A /v1/gradients body of tensors large enough to be blocks: 1 -> n -> 2, batch 40."""
    tensors = {
        "network.layers.0.weights": rng.normal(size=(n, 1)),
        "network.layers.1.weights": rng.normal(size=(2, n)),
        "inputs": rng.normal(size=(40, 1)),
        "targets": rng.normal(size=(40, 2)),
    }
    return tensors, {"request": json.dumps({"loss": "mse", "network": {"layers": [{"activation": "tanh"}, {}]}})}


def _errors(response: Any) -> list[tuple[list[Any], str]]:
    assert 400 <= response.status_code < 500, response.text
    return [(e["loc"], e["type"]) for e in response.json()["detail"]]


def test_non_finite_elements_are_located_and_counted(client, rng):
    tensors, meta = _body(rng)
    x = rng.normal(size=(300, 1))
    x[3, 0], x[7, 0] = np.nan, -np.inf
    x[50:, 0] = np.inf  # 250 more
    tensors.update(inputs=x, targets=rng.normal(size=(300, 2)))
    r = _post(client, save(tensors, metadata=meta))
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert detail[0] == {"loc": ["body", "inputs", 3, 0], "msg": "Input should be a finite number; found NaN", "type": "finite_number"}
    assert detail[1]["loc"] == ["body", "inputs", 7, 0] and "-Infinity" in detail[1]["msg"]
    assert all(e["type"] == "finite_number" for e in detail[:-1])
    assert detail[-1]["type"] == "too_many_errors" and detail[-1]["msg"].startswith(f"{252 - (len(detail) - 1)} more")


def test_shape_and_field_errors_match_the_json_path(client, rng):
    tensors, meta = _body(rng)
    tensors["network.layers.1.weights"] = tensors["network.layers.1.weights"][:, :60]
    assert _errors(_post(client, save(tensors, metadata=meta))) == [(["body", "network", "layers", 1, "weights"], "shape_mismatch")]
    tensors, meta = _body(rng)
    tensors["inputs"] = tensors["inputs"][:, 0].copy()
    assert _errors(_post(client, save(tensors, metadata=meta))) == [(["body", "inputs"], "not_2d")]
    tensors, meta = _body(rng)
    del tensors["targets"]
    assert _errors(_post(client, save(tensors, metadata=meta))) == [(["body", "targets"], "missing")]
    tensors, meta = _body(rng)
    tensors["loss"] = rng.normal(size=100)
    meta = {"request": json.dumps({"network": {"layers": [{}, {}]}})}
    assert _errors(_post(client, save(tensors, metadata=meta)))[0] == (["body", "loss"], "literal_error")
    tensors, meta = _body(rng)
    tensors["network.layers.2.weights"] = rng.normal(size=(2, 3))  # layer 1 has 2 outputs
    assert (["body", "network", "layers", 2, "weights"], "shape_mismatch") in _errors(_post(client, save(tensors, metadata=meta)))


def test_tensor_names_that_cannot_be_placed(client, rng):
    tensors, meta = _body(rng)
    for name, loc in [
        ("loss", ["body", "loss"]),  # also in the metadata
        ("network.layers.x.weights", ["body", "network", "layers"]),  # an index wanted
        ("loss.deeper", ["body", "loss"]),  # inside a string
        ("network.layers.5000000.weights", ["body", "network", "layers", 5000000]),
    ]:
        extra = {**tensors, name: rng.normal(size=3)}
        assert _errors(_post(client, save(extra, metadata=meta))) == [(loc, "safetensors_invalid")], name
    cube = {**tensors, "inputs": rng.normal(size=(2, 2, 2))}
    assert _errors(_post(client, save(cube, metadata=meta))) == [(["body", "inputs"], "safetensors_invalid")]


def test_metadata_must_be_a_json_object(client, rng):
    tensors, _ = _body(rng)
    for text in ["not json", "[1, 2]", "[" * 100_000]:
        r = _post(client, save(tensors, metadata={"request": text[:60_000]}))
        assert _errors(r) == [(["body", "__metadata__", "request"], "safetensors_invalid")]
    # Other metadata (what tools write for themselves, e.g. {"format": "pt"}) is ignored.
    _, meta = _body(rng)
    assert _post(client, save(tensors, metadata={**meta, "format": "pt"})).status_code == 200


def _file(header_obj: Any, data: bytes, length: int | None = None) -> bytes:
    text = json.dumps(header_obj).encode()
    return struct.pack("<Q", len(text) if length is None else length) + text + data


def test_container_faults_are_4xx_at_their_place(client):
    good = np.arange(80, dtype="<f8").tobytes()
    entry = {"dtype": "F64", "shape": [80, 1], "data_offsets": [0, 640]}
    cases = [
        (b"", ["body", "header"]),
        (b"\x05\x00", ["body", "header"]),
        (_file({"inputs": entry}, good, length=10_000), ["body", "header"]),  # longer than the body
        (b"\x04\x00\x00\x00\x00\x00\x00\x00[1]x", ["body", "header"]),  # not an object
        (struct.pack("<Q", 4) + b"{\xff}", ["body", "header"]),  # not UTF-8 JSON
        (_file({"inputs": {**entry, "dtype": "I64"}}, good), ["body", "inputs"]),
        (_file({"inputs": {**entry, "dtype": "BF16"}}, good), ["body", "inputs"]),
        (_file({"inputs": {**entry, "shape": [81, 1]}}, good), ["body", "inputs"]),  # size lies
        (_file({"inputs": {**entry, "shape": [-1, 1]}}, good), ["body", "inputs"]),
        (_file({"inputs": {**entry, "data_offsets": [0, 648]}}, good), ["body", "inputs"]),  # past the data
        (_file({"inputs": entry}, good[:-8]), ["body", "inputs"]),  # truncated
        (_file({"inputs": entry}, good + b"\x00" * 8), ["body", "header"]),  # trailing bytes
        (_file({"inputs": entry, "targets": {**entry, "data_offsets": [320, 960]}}, good * 2), ["body", "targets"]),  # overlap
        (_file({"inputs": entry, "targets": {**entry, "data_offsets": [648, 1288]}}, good * 2 + b"\x00" * 8), ["body", "targets"]),  # gap
        (_file({"inputs": {**entry, "extra": 1}}, good), ["body", "inputs"]),
        (_file({"__metadata__": {"request": 5}}, b""), ["body", "__metadata__"]),
    ]
    for raw, loc in cases:
        r = _post(client, raw)
        assert r.status_code == 422, (raw[:80], r.text)
        assert [e["loc"] for e in r.json()["detail"]] == [loc], (raw[:80], r.text)
        assert r.json()["detail"][0]["type"] == "safetensors_invalid"


def test_header_and_body_limits(make_client, rng):
    tensors, meta = _body(rng)
    raw = save(tensors, metadata=meta)
    r = _post(make_client(max_binary_header_bytes=128), raw)
    assert r.status_code == 413 and r.json()["detail"][0]["loc"] == ["body", "header"]
    assert "BACKPROP_MAX_BINARY_HEADER_BYTES" in r.json()["detail"][0]["msg"]
    # Binary bodies have their own size limit; JSON keeps its own.
    small = make_client(max_body_bytes=1000, max_binary_body_bytes=len(raw))
    assert _post(small, raw).status_code == 200
    r = _post(make_client(max_binary_body_bytes=len(raw) - 1), raw)
    assert r.status_code == 413 and "BACKPROP_MAX_BINARY_BODY_BYTES" in r.json()["detail"][0]["msg"]


def test_binary_bodies_have_their_own_parameter_limit(make_client, rng):
    tensors, meta = _body(rng)  # 70 + 70 + 140 + 2 = 282 parameters
    raw = save(tensors, metadata=meta)
    client = make_client(max_parameters=100, max_binary_parameters=282)
    assert _post(client, raw).status_code == 200
    body = from_binary_answer(save(tensors, metadata={"response": meta["request"]}))
    r = client.post("/v1/gradients", json=body)
    assert r.status_code == 413 and "BACKPROP_MAX_PARAMETERS" in r.json()["detail"][0]["msg"]
    r = _post(make_client(max_binary_parameters=281), raw)
    assert r.status_code == 413 and "BACKPROP_MAX_BINARY_PARAMETERS" in r.json()["detail"][0]["msg"]


def test_an_empty_tensor_of_a_billion_rows_costs_nothing(client, rng):
    tensors, meta = _body(rng)
    tensors["inputs"] = np.zeros((10**9, 0))
    r = _post(client, save(tensors, metadata=meta))
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"][:2] == ["body", "inputs"]


def test_unsupported_media_type_names_both(client, seed_loss_body):
    r = client.post("/v1/gradients", content=b"x", headers={"content-type": "application/octet-stream"})
    assert r.status_code == 415
    assert "application/x-safetensors" in r.json()["detail"][0]["msg"]


def test_answer_header_names_tensors_by_path(client, seed_loss_body):
    raw = client.post("/v1/gradients", json=seed_loss_body, headers={"accept": "application/x-safetensors"}).content
    h = header(raw)
    assert set(h) - {"__metadata__"} == {"output", "gradients.0.weights", "gradients.0.biases", "gradients.1.weights", "gradients.1.biases"}
    assert all(spec["dtype"] == "F64" for name, spec in h.items() if name != "__metadata__")
    assert json.loads(h["__metadata__"]["response"]) == {"loss": pytest.approx(0.0, abs=1), "gradients": [{}, {}]}


@pytest.mark.parametrize("seed", range(3))
def test_fuzzed_files_never_fail_the_server(client, seed):
    """Random bytes flipped, cut, or header values replaced in a valid body: 200 or a located 4xx."""
    rng = np.random.default_rng(seed)
    tensors, meta = _body(rng)
    good = save(tensors, metadata=meta)
    n = int.from_bytes(good[:8], "little")
    head = json.loads(good[8 : 8 + n])
    odd = [None, -1, 0, 2**70, 1e308, "F64", [], [0], [1, 2, 3], {}, True, "x" * 50, [[1]], [-5, 3]]
    for _ in range(60):
        kind = rng.integers(4)
        if kind == 0:
            raw = bytearray(good)
            for i in rng.integers(0, len(raw), size=int(rng.integers(1, 8))):
                raw[i] = int(rng.integers(256))
            raw = bytes(raw)
        elif kind == 1:
            raw = good[: int(rng.integers(len(good)))]
        else:
            h = json.loads(json.dumps(head))
            name = list(h)[int(rng.integers(len(h)))]
            if name == "__metadata__":
                h[name] = {"request": json.dumps({"loss": odd[int(rng.integers(len(odd)))], "network": odd[int(rng.integers(len(odd)))]})}
            else:
                key = ["dtype", "shape", "data_offsets"][int(rng.integers(3))]
                h[name][key] = odd[int(rng.integers(len(odd)))]
            text = json.dumps(h).encode()
            raw = struct.pack("<Q", len(text)) + text + good[8 + n :]
        r = _post(client, raw)
        assert r.status_code == 200 or 400 <= r.status_code < 500, r.text
        if r.status_code != 200:
            assert all(e["loc"][:1] == ["body"] or e["loc"] == ["body"] for e in r.json()["detail"]), r.text


@pytest.mark.parametrize("endpoint", ["gradients", "train", "check"])
def test_example_bodies_come_as_safetensors_too(client, endpoint):
    url = f"/v1/examples/seed?for={endpoint}"
    raw = client.get(url, headers={"accept": "application/x-safetensors"})
    assert raw.headers["content-type"] == "application/x-safetensors"
    expected = client.post(f"/v1/{endpoint}", json=client.get(url).json())
    assert expected.status_code == 200
    assert client.post(f"/v1/{endpoint}", content=raw.content, headers=BINARY_HEADERS).json() == expected.json()


def test_a_training_trace_is_tensors_too(client):
    body = {**client.get("/v1/examples/seed?for=train").json(), "iterations": 3, "record": ["output", "gradients", "network"]}
    raw = client.post("/v1/train", json=body, headers={"accept": "application/x-safetensors"}).content
    names = set(header(raw)) - {"__metadata__"}
    assert {"trace.2.output", "trace.2.gradients.1.weights", "trace.2.network.layers.0.weights", "network.layers.1.biases"} <= names
    assert from_binary_answer(raw) == client.post("/v1/train", json=body).json()


PARTS = ["network", "layers", "state_dict", "0.weight", "2.bias", "0", "1", "7", "99999999", "weights", "biases", "activation"]
PARTS += ["inputs", "targets", "loss", "optimizer", "claimed", "iterations", "trainable", "x", "", "-1", "1e3", "__metadata__"]


@pytest.mark.parametrize("endpoint", ["gradients", "train", "check", "explain"])
def test_random_tensor_names_and_shapes_are_answered_or_refused_at_their_place(client, endpoint):
    """Tensors named by random paths, of random shapes and dtypes, beside a valid body's fields: never a
    5xx, and every error located in the body."""
    rng = np.random.default_rng(sorted(BODIES).index(endpoint) if endpoint in BODIES else 0)
    base = BODIES[endpoint](rng)
    statuses: list[int] = []
    for _ in range(40):
        tensors: dict[str, np.ndarray] = {}
        for _ in range(int(rng.integers(1, 5))):
            name = ".".join(PARTS[int(i)] for i in rng.integers(0, len(PARTS), size=int(rng.integers(1, 5))))
            shape = tuple(int(d) for d in rng.integers(0, 4, size=int(rng.integers(0, 4))))
            values = np.asarray(rng.normal(size=shape)) * (np.inf if rng.random() < 0.1 else 1.0)
            tensors[name] = np.asarray(values, dtype=np.float32 if rng.random() < 0.3 else np.float64)
        kept = {k: v for k, v in base.items() if rng.random() < 0.7}
        r = _post(client, save(tensors, metadata={"request": json.dumps(kept)}), endpoint)
        statuses.append(r.status_code)
        assert r.status_code == 200 or 400 <= r.status_code < 500, r.text
        if r.status_code != 200:
            assert all(e["loc"][:1] == ["body"] for e in r.json()["detail"]), r.text
    assert len(statuses) == 40 and set(statuses) & {413, 422}


@pytest.mark.parametrize(
    ("accept", "media"),
    [
        ("application/x-ndjson", "application/x-ndjson"),
        ("application/x-ndjson, application/json", "application/x-ndjson"),
        ("application/x-safetensors;q=1, application/x-ndjson;q=0.9", "application/x-safetensors"),
        ("application/x-ndjson, application/x-safetensors;q=0.5", "application/x-ndjson"),
        ("*/*", "application/json"),
    ],
)
def test_train_answers_the_media_type_ranked_first(client, accept, media):
    body = client.get("/v1/examples/seed?for=train").json()
    assert client.post("/v1/train", json=body, headers={"accept": accept}).headers["content-type"].startswith(media)


def test_a_float32_body_must_fit_float32(client, seed_loss_body):
    r = client.post("/v1/gradients", json={**seed_loss_body, "dtype": "float32", "inputs": [[1e39, 0.0]]})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "inputs"] and r.json()["detail"][0]["type"] == "float32_range"
    state_dict = {"state_dict": {"0.weight": [[1.0, 2.0]], "0.bias": [1e39]}, "activations": ["sigmoid"]}
    body = {"network": state_dict, "inputs": [[1.0, 1.0]], "targets": [[1.0]], "loss": "mse", "dtype": "float32"}
    assert client.post("/v1/gradients", json=body).json()["detail"][0]["loc"] == ["body", "network", "state_dict", "0.bias"]
    huge = {**seed_loss_body, "dtype": "float32", "inputs": [[1e38, 0.0]]}
    huge["network"] = {
        "layers": [
            {**seed_loss_body["network"]["layers"][0], "weights": [[1e38, 1e38], [1.0, 1.0]]},
            seed_loss_body["network"]["layers"][1],
        ]
    }
    r = client.post("/v1/gradients", json=huge)
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "non_finite" and "float32 range" in r.json()["detail"][0]["msg"]


def test_tiny_files_cannot_ask_for_large_work(client):
    """Indices past a list's end, empty rows of a billion rows: counted against a budget before anything is
    made (a file of a few hundred bytes once took 50 s and 6 GB)."""
    import time

    def file(names: list[str], shape: list[int]) -> bytes:
        return save({name: np.zeros(shape) for name in names})

    for raw in [
        file(["inputs.0.999999"], [0]),
        file([f"inputs.{i}.999999" for i in range(4)], [0]),
        file(["inputs.999999.0", "targets.999999.0", "network.layers.999999.weights"], [0]),
        file([f"network.layers.{i}.weights" for i in range(300)], [10**9, 0]),
        file([f"x{i}" for i in range(300)], [10**9, 0]),
        file(["network.layers." + "9" * 5000 + ".weights"], [0]),
    ]:
        started = time.perf_counter()
        r = _post(client, raw)
        assert r.status_code == 422, r.text[:300]
        assert time.perf_counter() - started < 2, "bounded work"


def test_a_valid_claim_that_is_not_an_array_of_numbers_goes_whole(client, rng):
    """A /v1/check claim (numbers or nulls) of more numbers than are cut for errors is taken whole."""
    body = {
        "network": {"layers": [{"weights": rng.normal(size=(100, 50)).tolist()}]},
        "inputs": rng.normal(size=(3, 50)).tolist(),
        "targets": rng.normal(size=(3, 100)).tolist(),
        "loss": "mse",
    }
    truth = client.post("/v1/gradients", json=body).json()["gradients"][0]["weights"]
    claimed = {**body, "claimed": {"gradients": [{"weights": truth}]}}
    expected = client.post("/v1/check", json=claimed).json()
    assert expected["score"] == expected["max_score"] == 1.0
    assert client.post("/v1/check", content=to_binary(claimed), headers=BINARY_HEADERS).json() == expected

"""A table of bad bodies: each gets a 4xx whose loc points at the field and whose msg says what was expected."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.json_strict import strict_json

Body = dict[str, Any]


def set_path(path: tuple, value: Any) -> Callable[[Body], None]:
    def mutate(body: Body) -> None:
        target = body
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


def delete(key: str) -> Callable[[Body], None]:
    return lambda body: body.pop(key)


L0 = ("network", "layers", 0)
L1 = ("network", "layers", 1)

# (id, mutation of the seed /v1/train body, expected loc after "body", words the msg must contain)
CASES = [
    ("nan-weight", set_path(L0 + ("weights", 0, 0), float("nan")), L0 + ("weights", 0, 0), ["finite", "NaN"]),
    ("inf-input", set_path(("inputs", 0, 1), float("inf")), ("inputs", 0, 1), ["finite", "Infinity"]),
    ("neg-inf-target", set_path(("targets", 0, 0), float("-inf")), ("targets", 0, 0), ["finite"]),
    ("string-weight", set_path(L1 + ("weights", 0, 1), "1.0"), L1 + ("weights", 0, 1), ["number", "string"]),
    ("bool-input", set_path(("inputs", 0, 0), True), ("inputs", 0, 0), ["number", "true"]),
    ("null-bias", set_path(L1 + ("biases", 0), None), L1 + ("biases", 0), ["number", "null"]),
    ("huge-int-weight", set_path(L0 + ("weights", 1, 1), 10**400), L0 + ("weights", 1, 1), []),
    ("weights-not-matrix", set_path(L0 + ("weights",), [1.0, 2.0]), L0 + ("weights",), ["2-D [out][in]", "[[w1, w2, ...]]"]),
    ("ragged-weights", set_path(L0 + ("weights",), [[1.0, 2.0], [3.0]]), L0 + ("weights", 1), ["rectangular", "row 1 has 1"]),
    ("empty-weights", set_path(L0 + ("weights",), []), L0 + ("weights",), ["at least 1"]),
    ("empty-weight-row", set_path(L0 + ("weights",), [[], []]), L0 + ("weights", 0), ["at least 1"]),
    ("no-layers", set_path(("network", "layers"), []), ("network", "layers"), ["at least 1"]),
    ("biases-length", set_path(L0 + ("biases",), [0.0]), L0 + ("biases",), ["2 rows", "has 1 value"]),
    ("layer-chain", set_path(L1 + ("weights",), [[1.0, 2.0, 3.0]]), L1 + ("weights",), ["2 inputs", "3 columns"]),
    ("unknown-activation", set_path(L0 + ("activation",), "swish"), L0 + ("activation",), ["relu", "swish"]),
    ("softmax-hidden", set_path(L0 + ("activation",), "softmax"), L0 + ("activation",), ["last layer"]),
    ("inputs-width", set_path(("inputs",), [[0.7, 0.3, 0.1]]), ("inputs",), ["2 values", "have 3"]),
    ("ragged-inputs", set_path(("inputs",), [[0.7, 0.3], [0.1]]), ("inputs", 1), ["rectangular"]),
    ("empty-inputs", set_path(("inputs",), []), ("inputs",), ["at least 1"]),
    ("targets-rows", set_path(("targets",), [[1.0], [0.0]]), ("targets",), ["[1][1]", "[2][1]"]),
    ("targets-width", set_path(("targets",), [[1.0, 0.0]]), ("targets",), ["[1][1]", "[1][2]"]),
    ("bce-needs-sigmoid", set_path(L1 + ("activation",), "relu"), ("loss",), ["sigmoid", "relu"]),
    ("ce-needs-softmax", set_path(("loss",), "cross_entropy"), ("loss",), ["softmax", "sigmoid"]),
    ("bce-target-range", set_path(("targets", 0, 0), 1.5), ("targets", 0, 0), ["[0, 1]", "1.5"]),
    ("unknown-loss", set_path(("loss",), "hinge"), ("loss",), ["mse", "hinge"]),
    ("unknown-reduction", set_path(("reduction",), "none"), ("reduction",), ["mean", "none"]),
    ("extra-field", set_path(("learning_rate",), 0.1), ("learning_rate",), ["not a field here", "optimizer"]),
    ("extra-layer-field", set_path(L0 + ("bias",), [0.0, 0.0]), L0 + ("bias",), ["not a field here", "did you mean 'biases'?"]),
    ("missing-network", delete("network"), ("network",), ["required"]),
    ("missing-loss", delete("loss"), ("loss",), ["required"]),
    ("lr-zero", set_path(("optimizer", "learning_rate"), 0), ("optimizer", "learning_rate"), ["greater than 0", "0"]),
    ("lr-negative", set_path(("optimizer", "learning_rate"), -0.5), ("optimizer", "learning_rate"), ["greater than 0"]),
    ("lr-nan", set_path(("optimizer", "learning_rate"), float("nan")), ("optimizer", "learning_rate"), ["finite"]),
    ("lr-missing", set_path(("optimizer",), {"name": "sgd"}), ("optimizer", "learning_rate"), ["required"]),
    ("unknown-optimizer", set_path(("optimizer",), {"name": "rmsprop", "learning_rate": 0.1}), ("optimizer",), ["sgd", "adam"]),
    ("optimizer-no-name", set_path(("optimizer",), {"learning_rate": 0.1}), ("optimizer",), ["name"]),
    ("nesterov-no-momentum", set_path(("optimizer", "nesterov"), True), ("optimizer", "nesterov"), ["momentum > 0"]),
    ("negative-momentum", set_path(("optimizer", "momentum"), -0.1), ("optimizer", "momentum"), ["greater than or equal"]),
    ("adam-lr-missing", set_path(("optimizer",), {"name": "adam"}), ("optimizer", "learning_rate"), ["required"]),
    (
        "adam-beta-one",
        set_path(("optimizer",), {"name": "adam", "learning_rate": 0.1, "betas": [0.9, 1.0]}),
        ("optimizer", "betas", 1),
        ["less than 1"],
    ),
    (
        "adam-betas-length",
        set_path(("optimizer",), {"name": "adam", "learning_rate": 0.1, "betas": [0.9]}),
        ("optimizer", "betas", 1),
        ["required"],
    ),
    (
        "adam-negative-eps",
        set_path(("optimizer",), {"name": "adam", "learning_rate": 0.1, "eps": -1e-8}),
        ("optimizer", "eps"),
        ["greater than or equal"],
    ),
    (
        "adam-sgd-field",
        set_path(("optimizer",), {"name": "adam", "learning_rate": 0.1, "momentum": 0.9}),
        ("optimizer", "momentum"),
        ["not a field here"],
    ),
    ("iterations-zero", set_path(("iterations",), 0), ("iterations",), ["greater than or equal to 1"]),
    ("iterations-string", set_path(("iterations",), "3"), ("iterations",), ["integer", "string"]),
    ("iterations-float", set_path(("iterations",), 2.5), ("iterations",), ["integer", "2.5"]),
    ("record-every-zero", set_path(("record_every",), 0), ("record_every",), ["greater than or equal to 1"]),
    ("record-unknown", set_path(("record",), ["loss"]), ("record", 0), ["output", "loss"]),
    ("trainable-length", set_path(("trainable",), [{}]), ("trainable",), ["one entry per layer (2)", "has 1"]),
    ("trainable-weights-shape", set_path(("trainable", 1, "weights"), [[True]]), ("trainable", 1, "weights"), ["[1][2]", "[1][1]"]),
    ("trainable-biases-length", set_path(("trainable", 0, "biases"), [True]), ("trainable", 0, "biases"), ["2 values", "has 1"]),
    ("trainable-not-bool", set_path(("trainable", 1, "biases"), [1]), ("trainable", 1, "biases", 0), ["boolean", "1"]),
    ("trainable-ragged", set_path(("trainable", 0, "weights"), [[True, False], [True]]), ("trainable", 0, "weights", 1), ["rectangular"]),
]


# Structural nonsense in the parts every endpoint shares.
CASES += [
    ("network-is-list", set_path(("network",), [1, 2]), ("network",), ["object", "an array of 2 items"]),
    ("network-is-string", set_path(("network",), "2-2-1"), ("network",), ["object", "string"]),
    ("network-is-null", set_path(("network",), None), ("network",), ["null"]),
    ("layers-is-object", set_path(("network", "layers"), {"0": {}}), ("network", "layers"), ["array", "an object"]),
    ("layer-is-number", set_path(("network", "layers", 0), 3), ("network", "layers", 0), ["object", "3"]),
    ("layer-missing-weights", set_path(L0, {"activation": "relu"}), L0 + ("weights",), ["required"]),
    ("weights-is-number", set_path(L0 + ("weights",), 0.5), L0 + ("weights",), ["array", "0.5"]),
    ("weights-too-deep", set_path(L0 + ("weights",), [[[0.4], [0.4]], [[0.5], [0.4]]]), L0 + ("weights", 0, 0), ["number", "an array"]),
    ("weight-is-object", set_path(L0 + ("weights", 0, 1), {"value": 1}), L0 + ("weights", 0, 1), ["number", "an object"]),
    ("activation-is-number", set_path(L0 + ("activation",), 1), L0 + ("activation",), ["relu"]),
    ("activation-wrong-case", set_path(L0 + ("activation",), "ReLU"), L0 + ("activation",), ["relu", "ReLU"]),
    ("biases-is-number", set_path(L0 + ("biases",), 0.0), L0 + ("biases",), ["array"]),
    ("inputs-is-string", set_path(("inputs",), "0.7,0.3"), ("inputs",), ["array", "string"]),
    ("inputs-flat", set_path(("inputs",), [0.7, 0.3]), ("inputs",), ["2-D [batch][in]", "wrap a single sample in []"]),
    ("inputs-too-deep", set_path(("inputs",), [[[0.7, 0.3]]]), ("inputs", 0, 0), ["number", "an array"]),
    ("inputs-nan-second-row", set_path(("inputs",), [[0.7, 0.3], [float("nan"), 0.3]]), ("inputs", 1, 0), ["finite", "NaN"]),
    ("inputs-string-number", set_path(("inputs", 0, 0), "0.7"), ("inputs", 0, 0), ["number", "string"]),
    ("inputs-empty-row", set_path(("inputs",), [[]]), ("inputs", 0), ["at least 1"]),
    ("extra-top-level", set_path(("debug",), True), ("debug",), ["not a field here", "the fields here"]),
]


@pytest.mark.parametrize("case_id, mutate, loc, words", CASES, ids=[c[0] for c in CASES])
def test_bad_train_body(client, seed_body, case_id, mutate, loc, words):
    mutate(seed_body)
    r = client.post("/v1/train", content=json.dumps(seed_body), headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    detail = strict_json(r.text)["detail"]
    assert any(tuple(e["loc"]) == ("body", *loc) for e in detail), detail
    err = next(e for e in detail if tuple(e["loc"]) == ("body", *loc))
    assert set(err) == {"loc", "msg", "type"}
    for word in words:
        assert word in err["msg"], err["msg"]


LOSS_CASES = [c for c in CASES if c[2][0] in ("network", "inputs", "targets", "loss", "reduction", "debug")]
FORWARD_CASES = [c for c in CASES if c[2][0] in ("network", "inputs", "debug") and c[0] not in ("bce-needs-sigmoid",)]


@pytest.mark.parametrize("path", ["/v1/loss", "/v1/gradients"])
@pytest.mark.parametrize("case_id, mutate, loc, words", LOSS_CASES, ids=[c[0] for c in LOSS_CASES])
def test_bad_loss_body(client, seed_loss_body, path, case_id, mutate, loc, words):
    mutate(seed_loss_body)
    r = client.post(path, content=json.dumps(seed_loss_body), headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert any(tuple(e["loc"]) == ("body", *loc) for e in strict_json(r.text)["detail"])


@pytest.mark.parametrize("case_id, mutate, loc, words", FORWARD_CASES, ids=[c[0] for c in FORWARD_CASES])
def test_bad_forward_body(client, seed_loss_body, case_id, mutate, loc, words):
    body = {k: seed_loss_body[k] for k in ("network", "inputs")}
    mutate(body)
    r = client.post("/v1/forward", content=json.dumps(body), headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert any(tuple(e["loc"]) == ("body", *loc) for e in strict_json(r.text)["detail"])


def test_cross_entropy_rows_must_be_distributions(client):
    body = {
        "network": {"layers": [{"weights": [[1.0], [2.0]], "activation": "softmax"}]},
        "inputs": [[1.0], [2.0]],
        "targets": [[0.5, 0.5], [0.7, 0.4]],
        "loss": "cross_entropy",
    }
    r = client.post("/v1/gradients", json=body)
    assert r.status_code == 422
    (err,) = r.json()["detail"]
    assert err["loc"] == ["body", "targets", 1] and "sum to 1" in err["msg"]
    body["targets"] = [[0.5, 0.5], [1.2, -0.2]]
    assert client.post("/v1/gradients", json=body).json()["detail"][0]["loc"] == ["body", "targets", 1, 0]
    body["targets"] = [[0.5, 0.5], [0.3, 0.7 + 5e-7]]
    assert client.post("/v1/gradients", json=body).status_code == 200


RAW_BODIES = [
    ("truncated", b'{"network": {"layers": [', 422),
    ("not-json", b"hello", 422),
    ("empty-object", b"{}", 422),
    ("array", b"[1, 2]", 422),
    ("number", b"42", 422),
    ("null", b"null", 422),
    ("nan-literal", b'{"network": NaN, "inputs": [[1]]}', 422),
    ("deep-nesting", b"[" * 100_000 + b"]" * 100_000, 422),
    ("invalid-utf8", b'{"inputs": "\xff\xfe"}', 422),
]


@pytest.mark.parametrize("path", ["/v1/forward", "/v1/loss", "/v1/gradients", "/v1/train"])
@pytest.mark.parametrize("case_id, raw, status", RAW_BODIES, ids=[c[0] for c in RAW_BODIES])
def test_raw_bodies(client, path, case_id, raw, status):
    r = client.post(path, content=raw, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    (first, *_) = strict_json(r.text)["detail"]
    assert first["loc"][0] == "body" and first["msg"]


def test_wrong_content_type_is_named(client, seed_loss_body):
    r = client.post("/v1/loss", content=json.dumps(seed_loss_body), headers={"content-type": "text/plain"})
    assert r.status_code == 415
    (entry,) = r.json()["detail"]
    assert entry["loc"] == ["header", "content-type"] and entry["type"] == "unsupported_media_type"
    assert "application/json" in entry["msg"] and "'text/plain'" in entry["msg"]


def test_missing_content_type_is_refused(client, seed_loss_body):
    r = client.post("/v1/loss", content=json.dumps(seed_loss_body))
    assert r.status_code == 415
    assert "no Content-Type" in r.json()["detail"][0]["msg"]


def test_server_stays_healthy_after_the_table(client, seed_body):
    for _, raw, _ in RAW_BODIES:
        client.post("/v1/train", content=raw, headers={"content-type": "application/json"})
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.post("/v1/train", json=seed_body).status_code == 200


def test_huge_integers_are_reported_not_crashed_on(client, seed_body):
    seed_body["iterations"] = 10**400
    r = client.post("/v1/train", content=json.dumps(seed_body), headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert "401 digits" in r.json()["detail"][0]["msg"]


def test_many_errors_are_capped(client, seed_body):
    seed_body["inputs"] = [["x", "y"]] * 3000
    seed_body["targets"] = [[1.0]] * 3000
    r = client.post("/v1/train", json=seed_body)
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert len(detail) == 101
    assert detail[-1]["type"] == "too_many_errors" and "5900 more" in detail[-1]["msg"]


def test_every_endpoint_has_at_least_40_hostile_bodies():
    assert len(FORWARD_CASES) + len(RAW_BODIES) >= 40
    assert len(LOSS_CASES) + len(RAW_BODIES) >= 40
    assert len(CASES) + len(RAW_BODIES) >= 40


def test_no_location_carries_a_union_tag(client, seed_body):
    # The contract: loc is a path into the body as sent ("sgd" and "adam" are values, not keys).
    for optimizer in ({"name": "sgd", "lr": 0.1}, {"name": "adam", "learning_rate": -1, "betas": [2, 2]}):
        r = client.post("/v1/train", json={**seed_body, "optimizer": optimizer})
        for entry in r.json()["detail"]:
            assert "sgd" not in entry["loc"] and "adam" not in entry["loc"], entry


def test_an_unknown_key_close_to_a_known_one_is_named(client, seed_body):
    r = client.post("/v1/train", json={**seed_body, "optimizer": {"name": "sgd", "lr": 0.1}})
    entries = {tuple(e["loc"]): e for e in r.json()["detail"]}
    assert "did you mean 'learning_rate'?" in entries[("body", "optimizer", "lr")]["msg"]
    assert entries[("body", "optimizer", "learning_rate")]["type"] == "missing"


def test_a_long_unknown_key_is_quoted_only_in_part(client, seed_body):
    r = client.post("/v1/train", json={**seed_body, "k" * 1_000_000: 1})
    assert r.status_code == 422 and len(r.content) < 1_000
    (entry,) = r.json()["detail"]
    assert entry["loc"][1].startswith("kkkk") and entry["loc"][1].endswith("...")

"""``dtype: "float32"`` over HTTP: /v1/forward, /v1/loss, /v1/gradients and /v1/train compute as PyTorch's
float32; the float64-only endpoints refuse it at ``dtype``; a bad value is a 422 there too.

Skips where torch is absent (``tests.support.torch_reference``); CI installs it (``pip install torch==2.13.0``).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.nn.layout import Layout
from app.nn.losses import LOSSES
from app.nn.network import evaluate
from app.schemas.requests import LossRequest, TrainRequest
from app.schemas.responses import ForwardResponse, GradientsResponse, LossResponse, TrainResponse
from tests.support.random_networks import random_layers, random_targets
from tests.support.torch_float32 import F32, RTOL, assert_close32, f32
from tests.support.torch_reference import HIDDEN, torch, torch_forward, torch_loss, torch_params, torch_train, trainable_masks


def network_json(layers):
    return {"layers": [{"weights": l.weights.tolist(), "biases": l.biases.tolist(), "activation": l.activation} for l in layers]}


def random_case(rng, loss, sizes=(5, 12, 8, 3), batch=6):
    last = LOSSES[loss].requires_activation or "tanh"
    acts = [str(rng.choice(HIDDEN)) for _ in sizes[2:]] + [last]
    layers = random_layers(rng, list(sizes), acts)
    x = rng.normal(size=(batch, sizes[0]))
    y = random_targets(rng, loss, batch, sizes[-1])
    body = {"network": network_json(layers), "inputs": x.tolist(), "targets": y.tolist(), "loss": loss, "dtype": "float32"}
    return layers, acts, x, y, body


def as32(values):
    """A JSON answer's numbers as float32 (each is a float32 number written in its shortest form)."""
    return np.asarray(values, dtype=np.float32)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_gradients_in_float32_match_torch(client, loss, reduction, rng):
    layers, acts, x, y, body = random_case(rng, loss)
    r = client.post("/v1/gradients", json={**body, "reduction": reduction})
    assert r.status_code == 200, r.text
    got = r.json()
    GradientsResponse.model_validate(got)
    params = torch_params(layers, F32)
    pres, posts = torch_forward(params, acts, x, F32)
    value = torch_loss(loss, pres[-1], posts[-1], f32(y), reduction)
    value.backward()
    assert got["loss"] == pytest.approx(value.item(), rel=RTOL, abs=1e-7)
    assert_close32(as32(got["output"]), posts[-1], "output", scale=float(pres[-1].detach().abs().max()))
    for k, (g, (w, b)) in enumerate(zip(got["gradients"], params)):
        assert_close32(as32(g["weights"]), w.grad, f"layer {k} weights")
        assert_close32(as32(g["biases"]), b.grad, f"layer {k} biases")
    # Not the float64 answer: float32 really was computed.
    ev64 = evaluate(layers, x, y, loss, reduction)
    assert got["loss"] != ev64.loss
    assert got["loss"] == float(np.float32(got["loss"]))


def test_forward_and_loss_in_float32_match_torch(client, rng):
    layers, acts, x, y, body = random_case(rng, "cross_entropy")
    with torch.no_grad():
        pres, posts = torch_forward(torch_params(layers, F32), acts, x, F32)
        value = torch_loss("cross_entropy", pres[-1], posts[-1], f32(y), "mean")
    r = client.post("/v1/forward", json={k: body[k] for k in ("network", "inputs", "dtype")})
    assert r.status_code == 200, r.text
    ForwardResponse.model_validate(r.json())
    for k, (layer, pre, post) in enumerate(zip(r.json()["layers"], pres, posts)):
        assert_close32(as32(layer["pre_activation"]), pre, f"pre_activation {k}")
        assert_close32(as32(layer["activation"]), post, f"activation {k}", scale=float(pre.abs().max()))
    r = client.post("/v1/loss", json=body)
    assert r.status_code == 200, r.text
    LossResponse.model_validate(r.json())
    assert r.json()["loss"] == pytest.approx(value.item(), rel=RTOL)


TRAINERS = {
    "sgd": ({"name": "sgd", "learning_rate": 0.1, "momentum": 0.9}, lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)),
    "adam": ({"name": "adam", "learning_rate": 0.01}, lambda p: torch.optim.Adam(p, lr=0.01)),
}


@pytest.mark.parametrize("name", sorted(TRAINERS))
def test_train_in_float32_matches_torch(client, name, rng):
    config, make_theirs = TRAINERS[name]
    loss = "cross_entropy" if name == "adam" else "mse"
    layers, acts, x, y, body = random_case(rng, loss)
    iterations = 4
    body.update(optimizer=config, iterations=iterations, record=["gradients", "network"])
    r = client.post("/v1/train", json=body)
    assert r.status_code == 200, r.text
    got = r.json()
    TrainResponse.model_validate(got)
    ones = trainable_masks(rng, layers, frozen=False)
    losses, grads, snapshots = torch_train(layers, acts, x, y, loss, "mean", make_theirs, iterations, ones, F32)
    assert got["status"] == "completed"
    np.testing.assert_allclose([e["loss"] for e in got["trace"]], losses, rtol=RTOL, atol=1e-7)
    assert all(e["loss"] == float(np.float32(e["loss"])) for e in got["trace"])  # each a float32, as torch's .item()
    for i, entry in enumerate(got["trace"]):
        for k, (g, p) in enumerate(zip(entry["gradients"], entry["network"]["layers"])):
            assert_close32(as32(g["weights"]), grads[i][2 * k], f"iteration {i + 1}: layer {k} weight gradients")
            assert_close32(as32(g["biases"]), grads[i][2 * k + 1], f"iteration {i + 1}: layer {k} bias gradients")
            assert_close32(as32(p["weights"]), snapshots[i][2 * k], f"iteration {i + 1}: layer {k} weights")
            assert_close32(as32(p["biases"]), snapshots[i][2 * k + 1], f"iteration {i + 1}: layer {k} biases")
    assert got["network"] == got["trace"][-1]["network"]
    # The stream computes the same.
    with client.stream("POST", "/v1/train", json=body, headers={"Accept": "application/x-ndjson"}) as stream:
        *entries, summary = [json.loads(line) for line in stream.read().decode().splitlines()]
    assert entries == got["trace"] and summary["network"] == got["network"]


def test_float64_named_answers_as_the_default(client, rng):
    _, _, _, _, body = random_case(rng, "binary_cross_entropy")
    default = {k: v for k, v in body.items() if k != "dtype"}
    for path, extra in (("/v1/gradients", {}), ("/v1/train", {"optimizer": {"name": "sgd", "learning_rate": 0.5}, "iterations": 3})):
        a = client.post(path, json={**default, **extra})
        b = client.post(path, json={**default, **extra, "dtype": "float64"})
        assert a.status_code == b.status_code == 200
        assert a.content == b.content
        c = client.post(path, json={**default, **extra, "dtype": "float32"})
        assert c.status_code == 200 and c.json() != a.json()


def test_the_default_dtype_is_left_out_of_a_dump(seed_loss_body):
    assert "dtype" not in LossRequest.model_validate(seed_loss_body).model_dump()
    assert "dtype" not in LossRequest.model_validate({**seed_loss_body, "dtype": "float64"}).model_dump()
    assert LossRequest.model_validate({**seed_loss_body, "dtype": "float32"}).model_dump()["dtype"] == "float32"
    assert TrainRequest.model_fields["dtype"].default == "float64"


def test_diagram_takes_float32(client, seed_loss_body):
    r = client.post("/v1/diagram", json={**seed_loss_body, "dtype": "float32"})
    assert r.status_code == 200 and r.text.startswith("<svg")


@pytest.mark.parametrize("value", ["float16", "Float32", "fp32", 32, None, ["float32"]])
@pytest.mark.parametrize("path", ["/v1/forward", "/v1/gradients", "/v1/train"])
def test_a_bad_dtype_is_a_422_at_dtype(client, seed_body, path, value):
    r = client.post(path, json={**seed_body, "dtype": value} if path == "/v1/train" else {**_loss_body(seed_body, path), "dtype": value})
    assert r.status_code == 422, r.text
    (entry,) = r.json()["detail"]
    assert entry["loc"] == ["body", "dtype"]
    assert entry["type"] == "literal_error"
    assert "float64" in entry["msg"] and "float32" in entry["msg"]


def _loss_body(seed_body, path):
    fields = ("network", "inputs") if path == "/v1/forward" else ("network", "inputs", "targets", "loss", "reduction")
    return {k: seed_body[k] for k in fields}


FLOAT64_ONLY = {
    "/v1/gradcheck": ({}, "central difference"),
    "/v1/explain": ({"parameter": {"layer": 1, "kind": "weights", "index": [0, 0]}}, "/v1/explain"),
    "/v1/graph": ({}, "/v1/graph"),
    "/v1/check": ({"claimed": {"loss": 0.5}}, "/v1/check"),
}


@pytest.mark.parametrize("path", sorted(FLOAT64_ONLY))
def test_float64_only_endpoints_refuse_float32_at_dtype(client, seed_loss_body, path):
    extra, words = FLOAT64_ONLY[path]
    body = {**seed_loss_body, **extra}
    assert client.post(path, json={**body, "dtype": "float64"}).status_code == 200
    r = client.post(path, json={**body, "dtype": "float32"})
    assert r.status_code == 422, r.text
    (entry,) = r.json()["detail"]
    assert entry["loc"] == ["body", "dtype"]
    assert entry["type"] == "dtype_unsupported"
    assert "float64 only" in entry["msg"] and words in entry["msg"] and "found the string 'float32'" in entry["msg"]


def test_float32_answers_are_float32_numbers_written_short(client, rng):
    """JSON carries a float32 number in its shortest form (0.1, not 0.10000000149011612)."""
    layers, _, x, y, body = random_case(rng, "mse")
    got = client.post("/v1/gradients", json=body).json()
    ev = evaluate(layers, x, y, "mse", "mean", dtype=np.float32)
    assert ev.gradient is not None
    for g, (w, b) in zip(got["gradients"], Layout.of(layers).views(ev.gradient)):
        assert np.array_equal(np.asarray(g["weights"], dtype=np.float32), w)
        assert np.array_equal(np.asarray(g["biases"], dtype=np.float32), b)
    assert got["loss"] == ev.loss

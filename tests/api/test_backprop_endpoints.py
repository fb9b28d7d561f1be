"""/v1/forward, /v1/loss, /v1/gradients and /v1/train on the seed and on random networks; their answers match their models."""

from __future__ import annotations

import numpy as np
import pytest

from app.nn.layout import Layout
from app.nn.network import evaluate
from app.schemas.responses import ForwardResponse, GradientsResponse, LossResponse, TrainResponse
from tests.support.random_networks import random_layers, random_targets
from tests.support.seed_trace import SEED_LOSSES, SEED_OUTPUTS, SEED_W11


def network_json(layers):
    return {"layers": [{"weights": l.weights.tolist(), "biases": l.biases.tolist(), "activation": l.activation} for l in layers]}


def test_forward_seed(client, seed_loss_body):
    r = client.post("/v1/forward", json={k: seed_loss_body[k] for k in ("network", "inputs")})
    assert r.status_code == 200
    body = r.json()
    f1, f2 = 0.7 * 0.436 + 0.3 * 0.420, 0.7 * 0.550 + 0.3 * 0.420
    assert body["layers"][0]["pre_activation"] == [[pytest.approx(f1, abs=1e-15), pytest.approx(f2, abs=1e-15)]]
    assert body["layers"][0]["activation"] == body["layers"][0]["pre_activation"]
    assert body["output"][0][0] == pytest.approx(SEED_OUTPUTS[0], abs=1e-12)
    assert body["output"] == body["layers"][1]["activation"]


def test_loss_seed(client, seed_loss_body):
    r = client.post("/v1/loss", json=seed_loss_body)
    assert r.status_code == 200
    assert r.json()["loss"] == pytest.approx(SEED_LOSSES[0], abs=1e-12)
    assert r.json()["output"][0][0] == pytest.approx(SEED_OUTPUTS[0], abs=1e-12)


def test_gradients_seed_w11_is_the_blogs_factor(client, seed_loss_body):
    r = client.post("/v1/gradients", json=seed_loss_body)
    assert r.status_code == 200
    body = r.json()
    z1 = 0.7 * 0.436 + 0.3 * 0.420
    # The blog's update: w11 += lr * (1/z_hat) * z_hat * (1 - z_hat) * z1, i.e. dL/dw11 = (z_hat - 1) * z1.
    assert body["gradients"][1]["weights"][0][0] == pytest.approx((SEED_OUTPUTS[0] - 1.0) * z1, abs=1e-12)
    assert [len(g["weights"]) for g in body["gradients"]] == [2, 1]
    assert [len(g["biases"]) for g in body["gradients"]] == [2, 1]


def test_biases_and_activation_are_optional(client):
    body = {"network": {"layers": [{"weights": [[2.0, -1.0]]}]}, "inputs": [[1.0, 3.0]]}
    r = client.post("/v1/forward", json=body)
    assert r.status_code == 200
    assert r.json()["output"] == [[-1.0]]


@pytest.mark.parametrize("loss", ["binary_cross_entropy", "cross_entropy", "mse"])
def test_gradients_random_network_matches_the_engine(client, loss, rng):
    last = {"binary_cross_entropy": "sigmoid", "cross_entropy": "softmax", "mse": "tanh"}[loss]
    layers = random_layers(rng, [4, 6, 3], ["leaky_relu", last])
    x = rng.normal(size=(5, 4))
    y = random_targets(rng, loss, 5, 3)
    body = {"network": network_json(layers), "inputs": x.tolist(), "targets": y.tolist(), "loss": loss, "reduction": "sum"}
    r = client.post("/v1/gradients", json=body)
    assert r.status_code == 200
    ev = evaluate(layers, x, y, loss, "sum")
    got = r.json()
    assert got["loss"] == ev.loss  # JSON round-trips float64 exactly
    for g, (w, b) in zip(got["gradients"], Layout.of(layers).views(ev.gradient)):
        assert np.array_equal(g["weights"], w) and np.array_equal(g["biases"], b)


def test_train_seed_reproduces_the_blog(client, seed_body):
    r = client.post("/v1/train", json=seed_body)
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "completed" and "diverged_at" not in body
    assert [e["iteration"] for e in body["trace"]] == [1, 2, 3]
    for entry, loss, out, w11 in zip(body["trace"], SEED_LOSSES, SEED_OUTPUTS, SEED_W11, strict=True):
        assert entry["loss"] == pytest.approx(loss, abs=1e-12)
        assert entry["output"][0][0] == pytest.approx(out, abs=1e-12)
        assert entry["network"]["layers"][1]["weights"][0][0] == pytest.approx(w11, abs=1e-12)
        # Only w11 trains.
        assert entry["network"]["layers"][0] == seed_body["network"]["layers"][0]
        assert entry["network"]["layers"][1]["weights"][0][1] == 1.0
        assert entry["network"]["layers"][1]["biases"] == [0.33]
    assert body["network"]["layers"][1]["weights"][0][0] == pytest.approx(SEED_W11[-1], abs=1e-12)
    assert body["final_loss"] < SEED_LOSSES[-1]


def test_train_optional_keys_appear_only_when_recorded(client, seed_body):
    seed_body["record"] = []
    entry = client.post("/v1/train", json=seed_body).json()["trace"][0]
    assert set(entry) == {"iteration", "loss"}
    seed_body["record"] = ["gradients"]
    entry = client.post("/v1/train", json=seed_body).json()["trace"][0]
    assert set(entry) == {"iteration", "loss", "gradients"}


def test_train_record_every(client, seed_body):
    seed_body.update(iterations=10, record_every=4, record=[])
    trace = client.post("/v1/train", json=seed_body).json()["trace"]
    assert [e["iteration"] for e in trace] == [1, 5, 9, 10]


def test_train_record_every_beyond_any_integer_type(client, seed_body):
    seed_body.update(iterations=5, record_every=10**30, record=[])
    r = client.post("/v1/train", json=seed_body)
    assert r.status_code == 200
    assert [e["iteration"] for e in r.json()["trace"]] == [1, 5]


def test_train_divergence_is_reported_not_a_server_error(client, diverging_body):
    body = diverging_body
    body.update(record_every=100, record=["network"])
    r = client.post("/v1/train", json=body)
    assert r.status_code == 200
    out = r.json()
    assert out["status"] == "diverged"
    k = out["diverged_at"]
    assert [e["iteration"] for e in out["trace"]] == [1, k - 1]
    assert out["network"] == out["trace"][-1]["network"]
    assert out["final_loss"] is None or isinstance(out["final_loss"], float)
    assert "NaN" not in r.text and "Infinity" not in r.text


def test_train_with_adam_and_defaults(client, seed_body):
    seed_body.update(optimizer={"name": "adam", "learning_rate": 0.01}, trainable=None, iterations=5)
    r = client.post("/v1/train", json=seed_body)
    assert r.status_code == 200
    losses = [e["loss"] for e in r.json()["trace"]]
    assert losses == sorted(losses, reverse=True)


def test_xor_example_trains_below_001(client):
    body = client.get("/v1/examples/xor").json()
    r = client.post("/v1/train", json=body)
    assert r.status_code == 200
    out = r.json()
    assert out["status"] == "completed" and out["final_loss"] < 0.01
    assert body["inputs"] == [[0, 0], [0, 1], [1, 0], [1, 1]] and body["targets"] == [[0], [1], [1], [0]]


@pytest.mark.parametrize("path", ["/v1/forward", "/v1/loss", "/v1/gradients"])
def test_overflow_is_a_422_naming_the_layer(client, path):
    body = {
        "network": {"layers": [{"weights": [[1e308, 1e308]]}, {"weights": [[1.0]], "activation": "sigmoid"}]},
        "inputs": [[10.0, 10.0]],
        "targets": [[1.0]],
        "loss": "binary_cross_entropy",
    }
    if path == "/v1/forward":
        body = {k: body[k] for k in ("network", "inputs")}
    r = client.post(path, json=body)
    assert r.status_code == 422
    (err,) = r.json()["detail"]
    assert err["loc"] == ["body", "network", "layers", 0]
    assert "layer 0" in err["msg"] and "finite" in err["msg"]


def test_train_initial_overflow_is_a_422(client, seed_body):
    seed_body["network"]["layers"][1]["weights"] = [[1e308, 1e308]]
    seed_body["inputs"] = [[1e10, 1e10]]
    r = client.post("/v1/train", json=seed_body)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"][:3] == ["body", "network", "layers"]


@pytest.mark.parametrize(
    "path, model",
    [("/v1/forward", ForwardResponse), ("/v1/loss", LossResponse), ("/v1/gradients", GradientsResponse), ("/v1/train", TrainResponse)],
)
def test_responses_match_their_models(client, seed_body, path, model):
    fields = {"/v1/forward": ("network", "inputs"), "/v1/train": tuple(seed_body)}.get(
        path, ("network", "inputs", "targets", "loss", "reduction")
    )
    r = client.post(path, json={k: seed_body[k] for k in fields})
    assert r.status_code == 200
    model.model_validate(r.json())

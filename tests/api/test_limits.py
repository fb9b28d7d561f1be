"""Limits over HTTP: each is a setting, each error (413) names the limit and the setting that raises it;
bodies over ``BACKPROP_MAX_BODY_BYTES`` are refused before they are parsed."""

from __future__ import annotations

import json

import pytest

from app.service.limits import LAYER_WORK_FLOOR


def tiny_network(layers: int = 1, width: int = 1) -> dict:
    return {"layers": [{"weights": [[0.5] * width] * width} for _ in range(layers)]}


def train_body(**overrides) -> dict:
    body = {
        "network": tiny_network(),
        "inputs": [[1.0]],
        "targets": [[0.0]],
        "loss": "mse",
        "optimizer": {"name": "sgd", "learning_rate": 0.1},
        "iterations": 1,
    }
    body.update(overrides)
    return body


@pytest.mark.parametrize(
    "settings, body, loc, setting",
    [
        (
            {"max_parameters": 5},
            train_body(network=tiny_network(width=2), inputs=[[1.0, 1.0]], targets=[[0.0, 0.0]]),
            ["body", "network"],
            "BACKPROP_MAX_PARAMETERS",
        ),
        ({"max_layers": 2}, train_body(network=tiny_network(layers=3)), ["body", "network", "layers"], "BACKPROP_MAX_LAYERS"),
        ({"max_batch": 2}, train_body(inputs=[[1.0]] * 3, targets=[[0.0]] * 3), ["body", "inputs"], "BACKPROP_MAX_BATCH"),
        ({"max_activations": 5}, train_body(inputs=[[1.0]] * 3, targets=[[0.0]] * 3), ["body", "inputs"], "BACKPROP_MAX_ACTIVATIONS"),
        ({"max_iterations": 10}, train_body(iterations=11), ["body", "iterations"], "BACKPROP_MAX_ITERATIONS"),
        ({"max_work": 1e5}, train_body(iterations=11), ["body"], "BACKPROP_MAX_WORK"),
        ({"max_output_values": 20}, train_body(iterations=11, record=["network"]), ["body", "record"], "BACKPROP_MAX_OUTPUT_VALUES"),
    ],
)
def test_limit_errors_name_the_setting(make_client, settings, body, loc, setting):
    r = make_client(**settings).post("/v1/train", json=body)
    assert r.status_code == 413, r.text
    (err,) = r.json()["detail"]
    assert err["loc"] == loc and err["type"] == "limit_exceeded"
    assert setting in err["msg"] and "limit" in err["msg"]


def test_just_under_the_limits_is_accepted(make_client):
    body = train_body(iterations=10, record=["network"])
    client = make_client(max_iterations=10, max_work=10 * LAYER_WORK_FLOOR, max_output_values=10 * 3)
    assert client.post("/v1/train", json=body).status_code == 200


def test_work_counts_iterations_batch_and_parameters(make_client):
    # 10 iterations x 10,000 rows x 2 parameters = 200,000 (above the per-layer floor).
    body = train_body(iterations=10, inputs=[[1.0]] * 10_000, targets=[[0.0]] * 10_000)
    assert make_client(max_work=200_000).post("/v1/train", json=body).status_code == 200
    assert make_client(max_work=199_999).post("/v1/train", json=body).status_code == 413


@pytest.mark.parametrize("path", ["/v1/forward", "/v1/loss", "/v1/gradients"])
def test_limits_apply_to_every_endpoint(make_client, path):
    body = train_body(inputs=[[1.0]] * 3, targets=[[0.0]] * 3)
    fields = ("network", "inputs") if path == "/v1/forward" else ("network", "inputs", "targets", "loss")
    r = make_client(max_batch=2).post(path, json={k: body[k] for k in fields})
    assert r.status_code == 413 and "BACKPROP_MAX_BATCH" in r.json()["detail"][0]["msg"]


@pytest.mark.parametrize("path", ["/v1/forward", "/v1/loss", "/v1/gradients", "/v1/train"])
def test_body_over_the_byte_limit_is_413_before_parsing(make_client, path):
    client = make_client(max_body_bytes=1000)
    raw = json.dumps(train_body(inputs=[[1.0]] * 200, targets=[[0.0]] * 200)).encode()
    assert len(raw) > 1000
    r = client.post(path, content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert "BACKPROP_MAX_BODY_BYTES" in r.json()["detail"][0]["msg"]
    # Not parsed: even invalid JSON over the limit gets the size error.
    r = client.post(path, content=b"{" * 2000, headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_body_limit_without_content_length(make_client):
    client = make_client(max_body_bytes=1000)

    def chunks():
        for _ in range(20):
            yield b" " * 100

    r = client.post("/v1/train", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413

"""Issue 11's attack table as regressions (the in-process rows; live-server rows are in test_server.py
and test_hostile_bodies.py)."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET

import pytest

from app.observability import PARAMETERS_PROCESSED
from tests.support.json_strict import strict_json

COMPUTE_PATHS = [
    "/v1/forward",
    "/v1/loss",
    "/v1/gradients",
    "/v1/gradcheck",
    "/v1/explain",
    "/v1/train",
    "/v1/train/plot",
    "/v1/diagram",
    "/v1/graph",
]


def _processed() -> float:
    return PARAMETERS_PROCESSED._value.get()


@pytest.mark.parametrize("path", COMPUTE_PATHS)
@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"],
)
def test_cross_site_simple_requests_compute_nothing(client, seed_body, path, content_type):
    # What a page on another site can send without a CORS preflight: a Blob or a form.
    before = _processed()
    headers = {} if content_type is None else {"content-type": content_type}
    r = client.post(path, content=json.dumps(seed_body), headers=headers)
    assert r.status_code == 415, r.text
    (entry,) = strict_json(r.text)["detail"]
    assert entry["loc"] == ["header", "content-type"] and entry["type"] == "unsupported_media_type"
    assert _processed() == before


def test_json_variants_are_accepted(client, seed_loss_body):
    for content_type in ("application/json", "application/json; charset=utf-8", "application/merge-patch+json"):
        r = client.post("/v1/loss", content=json.dumps(seed_loss_body), headers={"content-type": content_type})
        assert r.status_code == 200, content_type


def test_a_long_content_type_is_quoted_only_in_part(client, seed_loss_body):
    r = client.post("/v1/loss", content=json.dumps(seed_loss_body), headers={"content-type": "text/" + "x" * 10_000})
    assert r.status_code == 415 and len(r.text) < 400


@pytest.mark.parametrize("path", ["/healthz", "/v1/examples/seed", "/playground", "/metrics", "/openapi.json", "/nowhere"])
def test_every_answer_says_nosniff(client, path):
    r = client.get(path)
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "cache-control" in r.headers


def test_computed_answers_are_not_stored(client, seed_loss_body):
    r = client.post("/v1/gradients", json=seed_loss_body)
    assert r.headers["cache-control"] == "no-store" and r.headers["x-content-type-options"] == "nosniff"


def test_playground_has_a_strict_policy_that_still_runs_its_own_code(client):
    r = client.get("/playground")
    csp = dict(part.strip().split(" ", 1) for part in r.headers["content-security-policy"].split(";"))
    assert csp["default-src"] == "'none'" and csp["frame-ancestors"] == "'none'" and csp["connect-src"] == "'self'"
    assert "unsafe-inline" not in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY"
    # Its code and styles are files served by the service ('self'); an inline block would be allowed
    # by its hash alone (it has none: tests/api/test_playground_assets.py checks the page whole).
    assert csp["script-src"].split()[0] == "'self'" and csp["style-src"].split()[0] == "'self'"
    assert csp["script-src"].count("'sha256-") == r.text.count("<script>")
    assert csp["style-src"].count("'sha256-") == r.text.count("<style>")


def _finite_attributes(svg: str) -> None:
    for element in ET.fromstring(svg).iter():
        for name, value in element.attrib.items():
            assert "inf" not in value.lower() and "nan" not in value.lower(), (element.tag, name, value)
            for token in value.replace(",", " ").split():
                try:
                    assert math.isfinite(float(token)), (name, value)
                except ValueError:
                    pass


def test_plot_of_equal_losses_beyond_2_53(client):
    body = {
        "network": {"layers": [{"weights": [[0.0]], "biases": [1e8]}]},
        "inputs": [[0.0]],
        "targets": [[0.0]],
        "loss": "mse",
        "optimizer": {"name": "sgd", "learning_rate": 0.1},
        "iterations": 1,
    }
    r = client.post("/v1/train/plot", json=body)
    assert r.status_code == 200, r.text
    _finite_attributes(r.text)
    for biases in ([1e150], [1.3e154]):  # losses of 1e300 and near float64's largest
        body["network"]["layers"][0]["biases"] = biases
        r = client.post("/v1/train/plot", json={**body, "iterations": 3})
        assert r.status_code == 200, r.text
        _finite_attributes(r.text)


def test_gradcheck_relative_error_that_overflows_is_a_number(client):
    body = {
        "network": {"layers": [{"weights": [[0.5]], "biases": [0.1], "activation": "tanh"}]},
        "inputs": [[1.0]],
        "targets": [[1e-10]],
        "loss": "mse",
        "epsilon": 8e307,
    }
    r = client.post("/v1/gradcheck", json=body)
    assert r.status_code == 200
    answer = strict_json(r.text)
    assert answer["max_rel_error"] == 1.7976931348623157e308 and answer["passed"] is False


def test_diagram_of_huge_weights_is_valid_svg(client):
    r = client.post("/v1/diagram", json={"network": {"layers": [{"weights": [[1e308, -1.7976931348623157e308], [5e-324, 0.0]]}]}})
    assert r.status_code == 200
    _finite_attributes(r.text)


def _limit_error(r) -> dict:
    assert r.status_code == 413, r.text[:300]
    (entry,) = strict_json(r.text)["detail"]
    assert entry["type"] == "limit_exceeded" and "BACKPROP_MAX_OUTPUT_VALUES" in entry["msg"]
    return entry


def test_a_forward_answer_larger_than_the_limit_is_refused_before_the_work(client):
    # The table's row: a 498-wide tanh layer over 100,000 input rows answered 1,384 MB.
    body = {"network": {"layers": [{"weights": [[0.1]] * 498, "activation": "tanh"}]}, "inputs": [[0.5]] * 100_000}
    before = _processed()
    entry = _limit_error(client.post("/v1/forward", json=body))
    assert entry["loc"] == ["body", "inputs"] and "149,400,000" in entry["msg"]
    assert _processed() == before


def test_forward_output_counts_every_layer_twice_and_the_output(make_client):
    body = {"network": {"layers": [{"weights": [[0.1]] * 3}, {"weights": [[0.1] * 3] * 2}]}, "inputs": [[0.5]] * 4}
    exact = 4 * (2 * (3 + 2) + 2)
    assert make_client(max_output_values=exact).post("/v1/forward", json=body).status_code == 200
    _limit_error(make_client(max_output_values=exact - 1).post("/v1/forward", json=body))


def _wide_explain_body(width: int, batch: int) -> dict:
    layers = [
        {"weights": [[0.01]] * width, "activation": "tanh"},
        {"weights": [[0.01] * width] * width, "activation": "tanh"},
        {"weights": [[0.01] * width], "activation": "sigmoid"},
    ]
    return {
        "network": {"layers": layers},
        "inputs": [[0.5]] * batch,
        "targets": [[1.0]] * batch,
        "loss": "binary_cross_entropy",
        "parameter": {"layer": 0, "kind": "weights", "index": [0, 0]},
    }


def test_the_table_explanation_is_over_the_default_limit():
    # The table's row: ~8,400 steps through two 1,400-wide layers answered 217 MB from 9.4 MB.
    from app.config import Settings
    from app.nn.explain import explanation_size, explanation_steps

    shapes = [(1400, 1), (1400, 1400), (1400, 1400), (1, 1400)]
    assert 8_400 <= explanation_steps(shapes, 3, 0) <= Settings().max_explain_steps
    assert explanation_size(shapes, 3, 0) > 5 * Settings().max_output_values


def test_explanation_size_bounds_the_answer_and_is_checked(make_client):
    body = _wide_explain_body(width=40, batch=3)
    r = make_client().post("/v1/explain", json=body)
    assert r.status_code == 200
    numbers = len(__import__("re").findall(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?", r.text))
    from app.nn.explain import explanation_size

    estimate = explanation_size([(40, 1), (40, 40), (1, 40)], 3, 0)
    # The estimate is an upper bound of the same order as what is written.
    assert numbers / 4 < estimate and numbers <= 2 * estimate, (numbers, estimate)
    entry = _limit_error(make_client(max_output_values=estimate - 1).post("/v1/explain", json=body))
    assert entry["loc"] == ["body", "parameter"]


def test_a_long_recorded_trace_is_refused_before_training(make_client, seed_body):
    # The table's row: 100,000 seed iterations recording everything answered 61.5 MB from 478 B.
    body = {**seed_body, "iterations": 100_000, "record": ["output", "gradients", "network"]}
    entry = _limit_error(make_client(max_output_values=1_000_000).post("/v1/train", json=body))
    assert entry["loc"] == ["body", "record"] and "2,000,000" in entry["msg"]

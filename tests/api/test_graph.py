"""POST /v1/graph over HTTP: the graph against /v1/gradients and /v1/forward on random small networks of
every activation and loss, the seed's graph as the blog post names it, the three answers by Accept
(JSON, DOT, SVG), Graphviz missing or slow, the limits, 406 and the 422s."""

from __future__ import annotations

import json
import math
import os
import shutil
import stat
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from typing import Any

import numpy as np
import pytest

import app.render.graphviz
import app.service.graph
from app.api.accept import negotiate
from app.api.http_errors import NotAcceptable
from app.config import Settings
from app.examples import example_body
from app.nn.activations import ACTIVATIONS, LAST_LAYER_ONLY
from app.nn.errors import Stopped
from app.nn.losses import LOSSES
from app.schemas.requests import GraphRequest
from app.schemas.responses import GraphResponse
from app.service.limits import graph_cost
from app.service.stop import stop_flag
from tests.support.json_strict import strict_json
from tests.support.seed_trace import SEED_LOSSES, SEED_OUTPUTS

DOT = {"Accept": "text/vnd.graphviz"}
SVG = {"Accept": "image/svg+xml"}
SVG_NS = "{http://www.w3.org/2000/svg}"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed (apt-get install graphviz)")

HIDDEN = sorted(set(ACTIVATIONS) - LAST_LAYER_ONLY)
# Every loss with every last activation it takes: a fused loss with its own, mse with any.
LOSS_CASES = [(name, loss.requires_activation) for name, loss in sorted(LOSSES.items()) if loss.requires_activation] + [
    (name, act) for name, loss in sorted(LOSSES.items()) if not loss.requires_activation for act in sorted(ACTIVATIONS)
]
REL, ABS = 1e-9, 1e-13  # the graph sums the same products in another order than backprop


def seed_graph_body(client: Any) -> dict[str, Any]:
    return client.get("/v1/examples/seed", params={"for": "graph"}).json()


def nodes_by_name(graph: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {node["name"]: node for node in graph["nodes"]}


def random_body(rng: np.random.Generator, loss: str, last: str, hidden: str) -> dict[str, Any]:
    """A 2-3 layer network of widths 1-3 with ``hidden`` activations and ``last`` on top, 2-3 samples, ``loss``'s targets."""
    depth = int(rng.integers(2, 4))
    sizes = [int(rng.integers(1, 4)) for _ in range(depth + 1)]
    if last == "softmax":
        sizes[-1] = max(sizes[-1], 2)
    layers = [
        {"weights": rng.normal(0, 0.8, (o, i)).tolist(), "biases": rng.normal(0, 0.3, o).tolist(), "activation": hidden}
        for i, o in zip(sizes, sizes[1:])
    ]
    layers[-1]["activation"] = last
    batch = int(rng.integers(2, 4))
    targets: Any = LOSSES[loss].sample_targets(rng, (batch, sizes[-1])).tolist()
    if LOSSES[loss].accepts_class_indices and rng.random() < 0.5:
        targets = rng.integers(0, sizes[-1], batch).tolist()
    return {
        "network": {"layers": layers},
        "inputs": rng.normal(0, 1, (batch, sizes[0])).tolist(),
        "targets": targets,
        "loss": loss,
        "reduction": "mean" if rng.random() < 0.5 else "sum",
    }


def check_values(graph: dict[str, Any], body: dict[str, Any], forward: dict[str, Any], loss: float) -> None:
    """Every node's value is the forward pass's (exactly): inputs, products w * a, sums, activations, the loss."""
    nodes = nodes_by_name(graph)
    GraphResponse.model_validate(graph)
    assert graph["value"] == loss == graph["nodes"][-1]["value"] and graph["nodes"][-1]["name"] == "loss"
    assert graph["nodes"][-1]["grad"] == 1.0
    for s in graph["samples"]:
        a_prev = body["inputs"][s]
        for i, x in enumerate(a_prev):
            assert nodes[f"inputs[{s}][{i}]"]["value"] == x
        for k, (layer, values) in enumerate(zip(body["network"]["layers"], forward["layers"])):
            for j, row in enumerate(layer["weights"]):
                assert nodes[f"layers[{k}].pre_activation[{s}][{j}]"]["value"] == values["pre_activation"][s][j]
                assert nodes[f"layers[{k}].activation[{s}][{j}]"]["value"] == values["activation"][s][j]
                for i, w in enumerate(row):
                    assert nodes[f"layers[{k}].products[{s}][{j}][{i}]"]["value"] == w * a_prev[i]
            a_prev = values["activation"][s]
    for edge in graph["edges"]:
        assert edge["from"] < edge["to"]  # topological order


def parameter_grads(graph: dict[str, Any], body: dict[str, Any]) -> list[dict[str, Any]]:
    """The parameter leaves' grads in /v1/gradients's shapes."""
    nodes = nodes_by_name(graph)
    return [
        {
            "weights": [
                [nodes[f"layers[{k}].weights[{j}][{i}]"]["grad"] for i in range(len(row))] for j, row in enumerate(layer["weights"])
            ],
            "biases": [nodes[f"layers[{k}].biases[{j}]"]["grad"] for j in range(len(layer["weights"]))],
        }
        for k, layer in enumerate(body["network"]["layers"])
    ]


def flat(grads: list[dict[str, Any]]) -> np.ndarray:
    return np.concatenate([np.ravel(g[part]) for g in grads for part in ("weights", "biases")]).astype(float)


@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("loss, last", LOSS_CASES)
def test_the_graph_is_the_forward_pass_and_backprop(client, rng, loss, last, hidden):
    """Whole batch: every parameter leaf's grad is /v1/gradients's; sample by sample: every value is
    /v1/forward's, and the samples' leaf grads add up to the gradient."""
    body = random_body(rng, loss, last, hidden)
    forward = client.post("/v1/forward", json={k: body[k] for k in ("network", "inputs")}).json()
    expected = client.post("/v1/gradients", json=body).json()
    whole = client.post("/v1/graph", json={**body, "sample": None})
    assert whole.status_code == 200, whole.text
    graph = strict_json(whole.text)
    assert graph["samples"] == list(range(len(body["inputs"]))) and (graph["loss"], graph["reduction"]) == (loss, body["reduction"])
    check_values(graph, body, forward, expected["loss"])
    np.testing.assert_allclose(flat(parameter_grads(graph, body)), flat(expected["gradients"]), rtol=REL, atol=ABS)
    total = np.zeros_like(flat(expected["gradients"]))
    for s in range(len(body["inputs"])):
        one = strict_json(client.post("/v1/graph", json={**body, "sample": s}).text)
        assert one["samples"] == [s]
        check_values(one, body, forward, expected["loss"])
        total += flat(parameter_grads(one, body))
    np.testing.assert_allclose(total, flat(expected["gradients"]), rtol=REL, atol=ABS)


def test_the_seed_graph_reads_like_the_blog_post(client):
    body = seed_graph_body(client)
    assert body["sample"] == 0 and body["labels"]["loss"] == "CE"
    graph = client.post("/v1/graph", json=body).json()
    nodes = nodes_by_name(graph)
    labels = {node["label"]: node for node in graph["nodes"]}
    for label in ("x1", "x2", "f1", "f2", "z1", "z2", "f", "z_hat", "z", "CE", "w1", "w12", "w2", "w11", "w22"):
        assert label in labels, label
    # The post's printed numbers: z_hat and CE of iteration 1; the hidden activations 0.4312 and 0.511.
    assert labels["z_hat"]["value"] == SEED_OUTPUTS[0] and labels["CE"]["value"] == SEED_LOSSES[0] == graph["value"]
    assert labels["z1"]["value"] == pytest.approx(0.4312, abs=1e-15) and labels["z2"]["value"] == pytest.approx(0.511, abs=1e-15)
    assert (labels["x1"]["value"], labels["x2"]["value"], labels["z"]["value"]) == (0.7, 0.3, 1.0)
    assert labels["z"]["grad"] is None and labels["CE"]["grad"] == 1.0
    gradients = client.post("/v1/gradients", json={k: body[k] for k in ("network", "inputs", "targets", "loss", "reduction")}).json()
    assert labels["w11"]["grad"] == pytest.approx(gradients["gradients"][1]["weights"][0][0], rel=1e-12)
    assert labels["w11"]["name"] == "layers[1].weights[0][0]" and labels["w22"]["name"] == "layers[1].biases[0]"
    # dL/dz_hat's local derivative from the loss term, and z_hat's from the sigmoid: their product is z_hat - z.
    z_hat = graph["nodes"].index(labels["z_hat"])
    (into_term,) = [e for e in graph["edges"] if e["from"] == z_hat]
    assert graph["nodes"][into_term["to"]]["op"] == "binary_cross_entropy"
    assert nodes["layers[1].pre_activation[0][0]"]["grad"] == pytest.approx(SEED_OUTPUTS[0] - 1.0, rel=1e-12)
    unlabelled = nodes["layers[0].weights[0][1]"]  # the code's w2 where the text's w21 belongs: its own label
    assert unlabelled["label"] == "W0[0][1]"


def test_dot_names_every_node_and_labels_it(client):
    body = seed_graph_body(client)
    graph = client.post("/v1/graph", json=body).json()
    r = client.post("/v1/graph", json=body, headers=DOT)
    assert r.status_code == 200 and r.headers["content-type"] == "text/vnd.graphviz; charset=utf-8"
    assert r.headers["vary"] == "Accept"
    assert r.text.startswith("digraph computation {")
    for node in graph["nodes"]:
        assert f'"{node["name"]}" [label=<<B>{node["label"]}</B>' in r.text
    assert r.text.count(" -> ") == len(graph["edges"])
    assert "binary_cross_entropy (mean) of sample 0: L = 0.3552" in r.text


@pytest.mark.slow
@needs_dot
@pytest.mark.parametrize("example", ["seed", "xor", "blog"])
def test_dot_parses_with_graphviz(client, example):
    body = client.get(f"/v1/examples/{example}", params={"for": "graph"}).json()
    text = client.post("/v1/graph", json=body, headers=DOT).text
    done = subprocess.run(["dot", "-Tjson0"], input=text, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and not done.stderr, done.stderr
    parsed, graph = json.loads(done.stdout), client.post("/v1/graph", json=body).json()
    assert [o["name"] for o in parsed["objects"]] == [node["name"] for node in graph["nodes"]]
    assert sorted((e["tail"], e["head"]) for e in parsed["edges"]) == sorted((e["from"], e["to"]) for e in graph["edges"])


@pytest.mark.slow
@needs_dot
@pytest.mark.parametrize("example", ["seed", "xor", "blog"])
def test_svg_parses_and_names_every_node(client, example):
    body = client.get(f"/v1/examples/{example}", params={"for": "graph"}).json()
    graph = client.post("/v1/graph", json=body).json()
    r = client.post("/v1/graph", json=body, headers=SVG)
    assert r.status_code == 200 and r.headers["content-type"] == "image/svg+xml" and r.headers["vary"] == "Accept"
    root = ET.fromstring(r.text)
    assert root.tag == f"{SVG_NS}svg"
    titles = sorted(g.find(f"{SVG_NS}title").text for g in root.iter(f"{SVG_NS}g") if g.get("class") == "node")
    assert titles == sorted(node["name"] for node in graph["nodes"])
    texts = {"".join(t.itertext()).strip() for t in root.iter(f"{SVG_NS}text")}
    assert {node["label"] for node in graph["nodes"]} <= texts
    assert len([g for g in root.iter(f"{SVG_NS}g") if g.get("class") == "edge"]) == len(graph["edges"])


def test_without_graphviz_svg_is_a_clear_501_and_json_and_dot_still_work(client, monkeypatch):
    monkeypatch.setattr(app.render.graphviz.shutil, "which", lambda name: None)
    body = seed_graph_body(client)
    r = client.post("/v1/graph", json=body, headers=SVG)
    assert r.status_code == 501 and r.headers["content-type"] == "application/json"
    (entry,) = strict_json(r.text)["detail"]
    assert entry["loc"] == [] and entry["type"] == "graphviz_missing"
    assert "Graphviz's dot program is not installed" in entry["msg"] and "text/vnd.graphviz" in entry["msg"]
    assert client.post("/v1/graph", json=body).status_code == 200
    assert client.post("/v1/graph", json=body, headers=DOT).status_code == 200


def test_a_layout_past_the_timeout_is_a_413_naming_its_setting(make_client, monkeypatch, tmp_path):
    slow = tmp_path / "dot"
    slow.write_text("#!/bin/sh\nexec sleep 30\n")
    slow.chmod(slow.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(app.service.graph, "dot_binary", lambda: str(slow))
    client = make_client(graph_svg_timeout=0.3)
    r = client.post("/v1/graph", json=seed_graph_body(client), headers=SVG)
    assert r.status_code == 413
    (entry,) = r.json()["detail"]
    assert entry["type"] == "limit_exceeded" and "BACKPROP_GRAPH_SVG_TIMEOUT" in entry["msg"] and "0.3 s" in entry["msg"]


def test_the_node_limit_is_a_413_naming_its_setting(make_client):
    client = make_client(max_graph_nodes=25)
    body = seed_graph_body(client)
    r = client.post("/v1/graph", json=body)
    assert r.status_code == 413
    (entry,) = r.json()["detail"]
    assert entry["loc"] == ["body", "network"] and "BACKPROP_MAX_GRAPH_NODES" in entry["msg"] and "26" in entry["msg"]
    assert make_client(max_graph_nodes=26).post("/v1/graph", json=body).status_code == 200
    # All of a batch: the field to change is sample.
    batch = {**body, "inputs": [[0.7, 0.3]] * 2, "targets": [[1.0]] * 2, "sample": None, "labels": {}}
    r = make_client(max_graph_nodes=40).post("/v1/graph", json=batch)
    assert r.status_code == 413 and r.json()["detail"][0]["loc"] == ["body", "sample"]


def test_the_svg_edge_limit_applies_to_svg_only(make_client):
    client = make_client(max_graph_svg_edges=10)
    body = seed_graph_body(client)
    r = client.post("/v1/graph", json=body, headers=SVG)
    assert r.status_code == 413 and "BACKPROP_MAX_GRAPH_SVG_EDGES" in r.json()["detail"][0]["msg"]
    assert client.post("/v1/graph", json=body).status_code == 200
    assert client.post("/v1/graph", json=body, headers=DOT).status_code == 200


def test_an_svg_is_admitted_as_work_and_never_runs_on_the_event_loop(make_client):
    """Graphviz's time counts: even the seed's picture (a subprocess) runs in a worker thread, admitted."""
    body = seed_graph_body(make_client())
    json_work, _ = graph_cost(GraphRequest.model_validate(body), svg=False)
    svg_work, _ = graph_cost(GraphRequest.model_validate(body), svg=True)
    assert Settings().inline_work < json_work < 1e6 < svg_work
    # With another request's work in flight near the bound, the JSON still fits, the picture is refused at once.
    client = make_client(max_inflight_work=2e6)
    held = client.app.state.admission.admit(1e6, 0)
    try:
        r = client.post("/v1/graph", json=body, headers=SVG)
        assert r.status_code == 503 and r.json()["detail"][0]["type"] == "overloaded"
        assert client.post("/v1/graph", json=body).status_code == 200
    finally:
        held.release()


@pytest.mark.parametrize(
    "accept, media",
    [
        (None, "application/json"),
        ("*/*", "application/json"),
        ("application/json", "application/json"),
        ("text/*", "text/vnd.graphviz"),
        ("image/*", "image/svg+xml"),
        ("image/svg+xml, */*;q=0.8", "image/svg+xml"),
        ("application/json;q=0.5, text/vnd.graphviz", "text/vnd.graphviz"),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "application/json"),  # a browser's
        ("image/svg+xml;q=0, */*", "application/json"),
        ("text/vnd.graphviz; charset=utf-8", "text/vnd.graphviz"),
        ("nonsense", "application/json"),
    ],
)
def test_the_answer_is_chosen_by_accept(accept, media):
    assert negotiate(accept, ("application/json", "text/vnd.graphviz", "image/svg+xml")) == media


@pytest.mark.parametrize("accept", ["text/html", "application/xml", "image/png, text/plain", "*/*;q=0", "application/json;q=0"])
def test_an_accept_it_cannot_answer_is_a_406(client, accept):
    with pytest.raises(NotAcceptable):
        negotiate(accept, ("application/json", "text/vnd.graphviz", "image/svg+xml"))
    r = client.post("/v1/graph", json=seed_graph_body(client), headers={"Accept": accept})
    assert r.status_code == 406
    (entry,) = strict_json(r.text)["detail"]
    assert entry["loc"] == ["header", "accept"] and entry["type"] == "not_acceptable" and "text/vnd.graphviz" in entry["msg"]


def test_a_long_accept_is_quoted_only_in_part(client):
    r = client.post("/v1/graph", json=seed_graph_body(client), headers={"Accept": "text/" + "x" * 10_000})
    assert r.status_code == 406 and len(r.text) < 500


@pytest.mark.parametrize(
    "change, loc, kind",
    [
        ({"sample": 1}, ["body", "sample"], "shape_mismatch"),
        ({"sample": -1}, ["body", "sample"], "greater_than_equal"),
        ({"sample": 0.0}, ["body", "sample"], "int_type"),
        ({"sample": "all"}, ["body", "sample"], "int_type"),
        ({"labels": {"x1": "x1"}}, ["body", "labels", "x1"], "unknown_node"),
        ({"labels": {"inputs[1][0]": "x"}}, ["body", "labels", "inputs[1][0]"], "unknown_node"),
        ({"labels": {"layers[2].weights[0][0]": "w"}}, ["body", "labels", "layers[2].weights[0][0]"], "unknown_node"),
        ({"labels": {"loss.other_samples": "rest"}}, ["body", "labels", "loss.other_samples"], "unknown_node"),
        ({"labels": {"loss": "C\nE"}}, ["body", "labels", "loss"], "label_text"),
        ({"labels": {"loss": ""}}, ["body", "labels", "loss"], "string_too_short"),
        ({"labels": {"loss": "x" * 41}}, ["body", "labels", "loss"], "string_too_long"),
        ({"labels": {"loss": 1}}, ["body", "labels", "loss"], "string_type"),
        ({"labels": ["loss"]}, ["body", "labels"], "dict_type"),
        ({"loss": "cross_entropy"}, ["body", "loss"], "loss_activation_mismatch"),
        ({"format": "svg"}, ["body", "format"], "unknown_field"),
    ],
)
def test_bad_bodies_are_422s_at_their_field(client, change, loc, kind):
    r = client.post("/v1/graph", json={**seed_graph_body(client), **change})
    assert r.status_code == 422, r.text
    entry = r.json()["detail"][0]
    assert (entry["loc"], entry["type"]) == (loc, kind), entry


def test_labels_name_the_nodes_of_the_sample_drawn(client):
    body = {**seed_graph_body(client), "inputs": [[0.7, 0.3], [0.1, 0.2]], "targets": [[1.0], [0.0]], "sample": 1}
    body["labels"] = {"inputs[1][0]": "x1", "loss.other_samples": "sample 0", "loss.terms[1][0]": "l"}
    graph = client.post("/v1/graph", json=body).json()
    labels = {n["name"]: n["label"] for n in graph["nodes"]}
    assert labels["inputs[1][0]"] == "x1" and labels["loss.other_samples"] == "sample 0" and labels["inputs[1][1]"] == "x[1]"
    assert graph["samples"] == [1] and nodes_by_name(graph)["loss.other_samples"]["grad"] is None


def test_non_finite_values_are_null(client):
    """A sigmoid output saturated to exactly 1: binary cross-entropy's textbook dl/da = -y/a + (1 - y)/(1 - a) is
    infinite there (the fused loss is finite): that local derivative and the grads it reaches are null."""
    body = {
        "network": {"layers": [{"weights": [[40.0]], "biases": [0.0], "activation": "sigmoid"}]},
        "inputs": [[1.0]],
        "targets": [[0.0]],
        "loss": "binary_cross_entropy",
    }
    r = client.post("/v1/graph", json=body)
    assert r.status_code == 200
    graph = strict_json(r.text)  # no NaN or Infinity tokens
    GraphResponse.model_validate(graph)
    assert math.isfinite(graph["value"])
    assert any(e["local_derivative"] is None for e in graph["edges"] if graph["nodes"][e["from"]]["op"] == "sigmoid")
    assert nodes_by_name(graph)["layers[0].weights[0][0]"]["grad"] is None


def test_an_overflow_is_the_same_422_as_gradients(client):
    body = {
        "network": {"layers": [{"weights": [[1e300, 1e300]], "biases": [0.0]}]},
        "inputs": [[1e300, 1e300]],
        "targets": [[0.0]],
        "loss": "mse",
    }
    graph, gradients = client.post("/v1/graph", json=body), client.post("/v1/gradients", json=body)
    assert graph.status_code == gradients.status_code == 422 and graph.json() == gradients.json()


def test_a_client_that_goes_away_stops_graphviz(monkeypatch, tmp_path):
    """The HTTP layer sets the request's stop flag when its client disconnects: the layout is killed at once
    (not left to its timeout) and the computation stops (answered as 499)."""
    pid_file = tmp_path / "pid"
    slow = tmp_path / "dot"
    slow.write_text(f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 30\n")
    slow.chmod(slow.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(app.service.graph, "dot_binary", lambda: str(slow))
    req = GraphRequest.model_validate(example_body("seed", "graph"))
    flag = threading.Event()
    token = stop_flag.set(flag)
    timer = threading.Timer(0.3, flag.set)
    timer.start()
    started = time.monotonic()
    try:
        with pytest.raises(Stopped):
            app.service.graph.run_graph_svg(req, Settings())
    finally:
        stop_flag.reset(token)
        timer.cancel()
    assert time.monotonic() - started < 3
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)  # killed and reaped


def test_the_specs_501_example_is_what_the_service_answers(client, monkeypatch):
    spec = client.get("/openapi.json").json()
    example = spec["paths"]["/v1/graph"]["post"]["responses"]["501"]["content"]["application/json"]["examples"]["graphviz_missing"]
    monkeypatch.setattr(app.render.graphviz.shutil, "which", lambda name: None)
    assert client.post("/v1/graph", json=seed_graph_body(client), headers=SVG).json() == example["value"]


def test_a_wide_softmax_is_bounded_by_its_edges(client):
    # 1,600 classes: 9,603 nodes (under the node limit) but 2.56 million edges, each a local derivative.
    body = {
        "network": {"layers": [{"weights": [[1.0]] * 1600, "activation": "softmax"}]},
        "inputs": [[1.0]],
        "targets": [3],
        "loss": "cross_entropy",
    }
    r = client.post("/v1/graph", json=body)
    assert r.status_code == 413, r.text
    assert "BACKPROP_MAX_GRAPH_EDGES" in r.json()["detail"][0]["msg"] and "2,569,601" in r.json()["detail"][0]["msg"]

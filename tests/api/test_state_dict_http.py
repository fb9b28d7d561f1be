"""The state_dict form over HTTP: the answers of the layers form, large bodies (app.api.large_body) as
small ones, and a torch model's own state_dict in and out of /v1/train."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import numpy as np
import pytest
from pydantic import BaseModel, ValidationError

from app.api import body as body_module
from app.api import large_body
from app.schemas import requests as R
from app.schemas.error_entries import error_entries
from tests.support import random_bodies
from tests.support.body_paths import posted_both_ways
from tests.support.state_dict_bodies import as_layers, as_state_dict

JSON = {"content-type": "application/json"}


def train_body(rng: np.random.Generator, n_in: int, hidden: int, n_out: int, batch: int) -> dict[str, Any]:
    """A /v1/train body in state_dict form: 0.weight [hidden][n_in], 2.weight [n_out][hidden], their biases."""
    return {
        "network": {
            "state_dict": {
                "0.weight": rng.normal(0, 0.3, (hidden, n_in)).tolist(),
                "0.bias": rng.normal(0, 0.1, hidden).tolist(),
                "2.weight": rng.normal(0, 0.3, (n_out, hidden)).tolist(),
                "2.bias": rng.normal(0, 0.1, n_out).tolist(),
            },
            "activations": ["tanh", "identity"],
        },
        "inputs": rng.normal(0, 1, (batch, n_in)).tolist(),
        "targets": rng.normal(0, 1, (batch, n_out)).tolist(),
        "loss": "mse",
        "optimizer": {"name": "adam", "learning_rate": 0.01},
        "iterations": 2,
        "record": ["network", "gradients"],
    }


def test_train_forward_and_gradients_answer_as_the_layers_form(client, rng):
    for case in range(5):
        body = random_bodies.train_body(np.random.default_rng((7, case)))
        for layer in body["network"]["layers"]:
            layer.setdefault("biases", [0.0] * len(layer["weights"]))  # sent, so trained in both forms
        sent = as_state_dict(body, rng)
        for path, fields in [("/v1/forward", ("inputs",)), ("/v1/gradients", ("inputs", "targets", "loss", "reduction"))]:
            small = {k: body[k] for k in fields}
            got = client.post(path, json={"network": sent["network"], **small})
            assert got.status_code == 200, got.text
            assert got.content == client.post(path, json={"network": body["network"], **small}).content
        got = client.post("/v1/train", json=sent).json()
        expected = client.post("/v1/train", json=body).json()
        assert as_layers(got["network"]) == expected["network"]
        assert [{**e, "network": as_layers(e["network"])} if "network" in e else e for e in got["trace"]] == expected["trace"]


def test_a_streamed_training_sends_its_networks_in_state_dict_form(client, rng):
    sent = train_body(rng, 3, 4, 2, 5)
    with client.stream("POST", "/v1/train", json=sent, headers={"Accept": "application/x-ndjson"}) as r:
        assert r.status_code == 200
        lines = [json.loads(line) for line in r.read().decode().splitlines()]
    assert all(set(line["network"]["state_dict"]) == set(sent["network"]["state_dict"]) for line in lines)
    assert lines[-1]["network"] == client.post("/v1/train", json=sent).json()["network"]


# -- large bodies ------------------------------------------------------------------------------


@pytest.mark.parametrize("indent", [None, 1])
def test_a_large_state_dict_body_gets_the_answer_a_small_one_gets(client, monkeypatch, rng, indent):
    sent = train_body(rng, 30, 48, 4, 300)
    raw = json.dumps(sent, indent=indent).encode()
    assert len(raw) > body_module.THREAD_BODY_BYTES
    small, large = posted_both_ways(client, monkeypatch, "/v1/train", raw)
    assert small.status_code == 200, small.text[:300]
    assert large.content == small.content
    assert set(large.json()["network"]["state_dict"]) == {"0.weight", "0.bias", "2.weight", "2.bias"}


def test_a_large_state_dict_body_claims_its_arrays(monkeypatch, rng):
    """The weights and biases of a large body are parsed at C speed (claimed as blocks), not by pydantic."""
    sent = train_body(rng, 30, 48, 4, 300)
    seen: list[Any] = []
    original = large_body.Walk.node

    def spy(self, node, annotation, path, python=False):
        result = original(self, node, annotation, path, python)
        if len(path) == 3 and path[:2] == ("network", "state_dict"):
            block = self.block(node)
            seen.append((path[2], block is not None and block.claimed))
        return result

    monkeypatch.setattr(large_body.Walk, "node", spy)
    validated = large_body.validate_large(json.dumps(sent).encode(), R.TrainRequest, 1000)
    assert sorted(set(seen)) == [("0.bias", True), ("0.weight", True), ("2.bias", True), ("2.weight", True)]
    assert isinstance(validated.network.state_dict["0.weight"], np.ndarray)
    assert validated.network.layers[0].weights is validated.network.state_dict["0.weight"]


LARGE_MISTAKES = [
    ("a number too large for float64", ("0.weight", 7, 3), "1e400", ["state_dict", "0.weight", 7, 3], "finite_number"),
    ("a NaN", ("2.weight", 1, 20), "NaN", ["state_dict", "2.weight", 1, 20], "finite_number"),
    ("a string", ("0.bias", 5), '"x"', ["state_dict", "0.bias", 5], "float_type"),
    ("a huge integer", ("0.weight", 0, 0), "1" + "0" * 400, ["state_dict", "0.weight", 0, 0], "finite_number"),
]


def _replaced(sent: dict[str, Any], where: tuple[Any, ...], literal: str) -> bytes:
    """``sent`` as JSON with the element at ``where`` (key, indices) written as ``literal``."""
    marked = copy.deepcopy(sent)
    target = marked["network"]["state_dict"][where[0]]
    for i in where[1:-1]:
        target = target[i]
    target[where[-1]] = "@@MARK@@"
    return json.dumps(marked).replace('"@@MARK@@"', literal).encode()


@pytest.mark.parametrize(("where", "literal", "loc", "kind"), [m[1:] for m in LARGE_MISTAKES], ids=[m[0] for m in LARGE_MISTAKES])
def test_a_bad_element_of_a_large_body_is_said_at_its_place_as_in_a_small_one(client, monkeypatch, rng, where, literal, loc, kind):
    raw = _replaced(train_body(rng, 30, 48, 4, 300), where, literal)
    assert len(raw) > body_module.THREAD_BODY_BYTES
    small, large = posted_both_ways(client, monkeypatch, "/v1/train", raw)
    assert large.status_code == small.status_code == 422
    assert large.json() == small.json()
    (error,) = large.json()["detail"]
    assert (error["loc"], error["type"]) == (["body", "network", *loc], kind)


@pytest.mark.parametrize(
    ("change", "loc", "kind"),
    [
        ({"2.weight": "wide"}, ["state_dict", "2.weight"], "shape_mismatch"),
        ({"2.bias": "long"}, ["state_dict", "2.bias"], "shape_mismatch"),
        ({"0.weight": "ragged"}, ["state_dict", "0.weight", 9], "ragged_matrix"),
        ({"0.weight": "flat"}, ["state_dict", "0.weight"], "not_2d"),
        ({"0.bias": "matrix"}, ["state_dict", "0.bias"], "shape_mismatch"),
        ({"4.bias": "alone"}, ["state_dict", "4.bias"], "missing_dependency"),
        ({"0.running_var": "key"}, ["state_dict", "0.running_var"], "state_dict_key"),
    ],
)
def test_a_large_body_says_shape_mistakes_at_the_key_as_a_small_one(client, monkeypatch, rng, change, loc, kind):
    sent = train_body(rng, 30, 48, 4, 300)
    sd = sent["network"]["state_dict"]
    (key, how), = change.items()  # fmt: skip
    if how == "wide":
        sd[key] = [row + [0.5] for row in sd[key]]
    elif how == "long":
        sd[key] = sd[key] + [0.5]
    elif how == "ragged":
        sd[key][9] = sd[key][9][:-1]
    elif how == "flat":
        sd[key] = [x for row in sd[key] for x in row]
    elif how == "matrix":
        sd[key] = [sd[key], sd[key]]
    else:
        sd[key] = rng.normal(size=40).tolist()
    raw = json.dumps(sent).encode()
    small, large = posted_both_ways(client, monkeypatch, "/v1/train", raw)
    assert large.status_code == small.status_code == 422
    assert large.json() == small.json()
    assert [(e["loc"], e["type"]) for e in large.json()["detail"]] == [(["body", "network", *loc], kind)]


JUNK: list[Any] = [None, True, "x", 0, -1e308, [], [[]], [0.5], [[0.5, 1.0]], [[1.0], [2.0, 3.0]], {}, {"a": 1}, [[[0.5]]],
                   float("nan"), float("inf"), 10**400, [["a"]], [True, False]]  # fmt: skip


def _mutated(rnd: random.Random, base: dict[str, Any]) -> dict[str, Any]:
    """``base`` with one to three places of its network (a key's value, an element, a row, a new key) made junk."""
    result = copy.deepcopy(base)
    network = result["network"]
    for _ in range(rnd.randint(1, 3)):
        state_dict = network["state_dict"]
        key = rnd.choice(sorted(state_dict))
        choice = rnd.random()
        if choice < 0.2:
            state_dict[key] = copy.deepcopy(rnd.choice(JUNK))
        elif choice < 0.5 and isinstance(state_dict[key], list) and state_dict[key]:
            value = state_dict[key]
            i = rnd.randrange(len(value))
            if isinstance(value[i], list) and value[i] and rnd.random() < 0.7:
                value[i][rnd.randrange(len(value[i]))] = copy.deepcopy(rnd.choice(JUNK))
            else:
                value[i] = copy.deepcopy(rnd.choice(JUNK))
        elif choice < 0.6:
            state_dict[rnd.choice(["7.bias", "9.weight", "x", "0.running_mean", "03.weight"])] = copy.deepcopy(rnd.choice(JUNK[5:]))
        elif choice < 0.7:
            network["activations"] = rnd.choice([None, [], ["relu"], [*(network.get("activations") or []), "tanh"], ["softmax"] * 3])
        elif choice < 0.8:
            network[rnd.choice(["layers", "extra"])] = copy.deepcopy(rnd.choice(JUNK))
        elif choice < 0.9:
            del state_dict[key]
        else:
            state_dict[key] = [rnd.choice([0.5, 1, -2, "x", None, True, float("nan"), [1.0]]) for _ in range(rnd.randint(20, 80))]
        if not isinstance(network.get("state_dict"), dict) or not network["state_dict"]:
            break
    return result


def _small_path(raw: bytes, model: type[BaseModel]) -> object:
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        return error_entries([{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)])


def _large_path(raw: bytes, model: type[BaseModel]) -> object:
    try:
        return large_body.validate_large(raw, model, 1000)
    except large_body.Invalid as exc:
        shown = exc.errors[:100]
        return error_entries([{**e, "loc": ("body", *e["loc"])} for e in shown], len(exc.errors) - len(shown) + exc.more, exc.at_least)


def _plain(value: object) -> object:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@pytest.mark.parametrize("seed", range(3))
def test_every_state_dict_body_gets_the_answer_pydantic_gives(monkeypatch, seed):
    """Differential, as tests/api/test_hostile_bodies.py: state_dict bodies with junk in random places of
    the network, read by app.api.large_body (every array a block, chunks of random sizes) and by pydantic."""
    rnd = random.Random(seed)
    rng = np.random.default_rng(seed)
    bases = [as_state_dict(random_bodies.train_body(np.random.default_rng((seed, k))), rng) for k in range(6)]
    for _ in range(150):
        payload = _mutated(rnd, rnd.choice(bases))
        model = rnd.choice([R.ForwardRequest, R.LossRequest, R.TrainRequest])
        if model is not R.TrainRequest:
            payload = {k: v for k, v in payload.items() if k not in ("optimizer", "iterations", "record", "trainable", "record_every")}
        if model is R.ForwardRequest:
            payload = {k: v for k, v in payload.items() if k in ("network", "inputs")}
        raw = json.dumps(payload, allow_nan=True).encode()
        monkeypatch.setattr(large_body, "MIN_BLOCK_BYTES", rnd.choice([1, 8, 32]))
        monkeypatch.setattr(large_body, "READ_CHUNK_BYTES", rnd.choice([8, 64, 1 << 20]))
        expected, found = _small_path(raw, model), _large_path(raw, model)
        if isinstance(expected, list):
            assert found == expected, raw
        else:
            assert isinstance(found, BaseModel), (raw, found)
            assert _plain(found.model_dump()) == expected.model_dump()  # type: ignore[attr-defined]


# -- a torch model's own state_dict ------------------------------------------------------------


def _trained_by_both(client, model, x, y, activations, optimizer, make_optimizer, iterations):
    """``model`` (a torch nn.Sequential) trained by /v1/train from its state_dict and by torch itself, step
    for step (mse): the answer, and torch's trained state_dict."""
    torch = pytest.importorskip("torch")
    body = {
        "network": {"state_dict": {k: v.tolist() for k, v in model.state_dict().items()}, "activations": activations},
        "inputs": x.tolist(),
        "targets": y.tolist(),
        "loss": "mse",
        "optimizer": optimizer,
        "iterations": iterations,
    }
    r = client.post("/v1/train", json=body)
    assert r.status_code == 200, r.text
    steps = make_optimizer(model.parameters())
    for _ in range(iterations):
        steps.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        steps.step()
    return r.json(), {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_a_torch_models_state_dict_trains_and_loads_back(client):
    torch = pytest.importorskip("torch")
    nn, F = torch.nn, torch.nn.functional
    torch.manual_seed(17)
    model = nn.Sequential(nn.Linear(3, 4), nn.Sigmoid(), nn.Linear(4, 2)).double()
    x, y = torch.randn(6, 3, dtype=torch.float64), torch.randn(6, 2, dtype=torch.float64)
    sgd = {"name": "sgd", "learning_rate": 0.1}
    answer, trained = _trained_by_both(client, model, x, y, ["sigmoid", "identity"], sgd, lambda p: torch.optim.SGD(p, lr=0.1), 4)
    model.load_state_dict({k: torch.tensor(v, dtype=torch.float64) for k, v in answer["network"]["state_dict"].items()})  # strict
    for k, v in model.state_dict().items():
        assert torch.allclose(v, trained[k], rtol=1e-12, atol=1e-14), k
    with torch.no_grad():
        assert abs(F.mse_loss(model(x), y).item() - answer["final_loss"]) < 1e-12


def test_a_torch_linear_without_bias_keeps_none(client):
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(2, 5, bias=False), nn.ReLU(), nn.Linear(5, 1)).double()
    x, y = torch.randn(8, 2, dtype=torch.float64), torch.randn(8, 1, dtype=torch.float64)
    adam = {"name": "adam", "learning_rate": 0.05}
    answer, trained = _trained_by_both(client, model, x, y, ["relu", "identity"], adam, lambda p: torch.optim.Adam(p, lr=0.05), 5)
    assert sorted(answer["network"]["state_dict"]) == ["0.weight", "2.bias", "2.weight"]
    for k, v in trained.items():
        assert torch.allclose(torch.tensor(answer["network"]["state_dict"][k], dtype=torch.float64), v, rtol=1e-12, atol=1e-14), k


def test_a_check_freezes_a_missing_bias_as_training_does(client):
    """/v1/check trains what /v1/train trains: a layer sent without <index>.bias keeps zeros."""
    network = {
        "state_dict": {"0.weight": [[0.3, -0.2], [0.5, 0.1]], "2.weight": [[0.4, -0.6]], "2.bias": [0.1]},
        "activations": ["tanh", "sigmoid"],
    }
    body = {
        "network": network,
        "inputs": [[0.5, -1.0], [1.5, 0.2]],
        "targets": [[1.0], [0.0]],
        "loss": "mse",
        "optimizer": {"name": "sgd", "learning_rate": 0.5},
        "iterations": 2,
    }
    trained = client.post("/v1/train", json={**body, "record": ["network"]}).json()
    claims = []
    for entry in trained["trace"]:
        sd = entry["network"]["state_dict"]
        assert "0.bias" not in sd
        claims.append(
            {
                "iteration": entry["iteration"],
                "network": {
                    "layers": [{"weights": sd["0.weight"], "biases": [0.0, 0.0]}, {"weights": sd["2.weight"], "biases": sd["2.bias"]}]
                },
            }
        )
    answer = client.post("/v1/check", json={**body, "claimed": {"iterations": claims}}).json()
    assert answer["first_wrong"] is None, answer
    assert answer["score"] == answer["max_score"] > 0


def test_faults_of_a_layer_are_located_at_its_state_dict_key(client, make_client):
    """An overflow and the layer-count limit name the network as it was sent."""
    network = {
        "state_dict": {"0.weight": [[1.0, 1.0]], "0.bias": [0.0], "2.weight": [[1e308]], "2.bias": [0.0]},
        "activations": ["identity", "identity"],
    }
    body = {"network": network, "inputs": [[1e308, 1e308]], "targets": [[0.0]], "loss": "mse"}
    r = client.post("/v1/gradients", json=body)
    assert r.status_code == 422
    entry = r.json()["detail"][0]
    assert entry["type"] == "non_finite" and entry["loc"] == ["body", "network", "state_dict", "0.weight"]
    assert "layer 0 (0.weight)" in entry["msg"]
    r = make_client(max_layers=1).post("/v1/gradients", json=body)
    assert r.status_code == 413 and r.json()["detail"][0]["loc"] == ["body", "network", "state_dict"]


def test_a_missing_bias_cannot_be_marked_trainable(client):
    body = {
        "network": {"state_dict": {"0.weight": [[0.3, -0.2]], "2.weight": [[0.4]], "2.bias": [0.1]}, "activations": ["tanh", "sigmoid"]},
        "inputs": [[0.5, -1.0]],
        "targets": [[1.0]],
        "loss": "mse",
        "optimizer": {"name": "sgd", "learning_rate": 0.5},
        "iterations": 2,
    }
    r = client.post("/v1/train", json={**body, "trainable": [{"biases": [True]}, {}]})
    assert r.status_code == 422
    entry = r.json()["detail"][0]
    assert entry["loc"] == ["body", "trainable", 0, "biases"] and "0.bias" in entry["msg"]
    assert client.post("/v1/train", json={**body, "trainable": [{"biases": [False]}, {}]}).status_code == 200

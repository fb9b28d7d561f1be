"""A network sent as a torch state_dict (``{"state_dict": {"0.weight": ..., "0.bias": ...}, "activations": [...]}``):
the same answers as the layers form, bit for bit; every mistake a 422 at the client's own key; the trained
network comes back in the form it was sent."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
import pytest
from pydantic import BaseModel, ValidationError

from app.config import Settings
from app.schemas import responses
from app.schemas.error_entries import body_errors, error_entries
from app.schemas.network import NetworkSpec
from app.schemas.requests import CheckRequest, ExplainRequest, ForwardRequest, GradcheckRequest, GraphRequest, LossRequest, TrainRequest
from app.service.check import run_check
from app.service.explain import run_explain
from app.service.forward import run_forward
from app.service.gradcheck import run_gradcheck
from app.service.gradients import run_gradients
from app.service.graph import run_graph
from app.service.loss import run_loss
from app.service.train import run_train, stream_train
from tests.support import random_bodies
from tests.support.state_dict_bodies import as_layers, as_state_dict

CASES = 30


def answer(run: Callable[..., Any], model: type[BaseModel], body: dict[str, Any]) -> Any:
    return orjson.loads(orjson.dumps(run(model.model_validate_json(json.dumps(body)), Settings()), option=orjson.OPT_SERIALIZE_NUMPY))


# -- the same answers --------------------------------------------------------------------------

NETWORK_FREE = {
    "forward": (run_forward, ForwardRequest, random_bodies.network_body),
    "loss": (run_loss, LossRequest, random_bodies.loss_body),
    "gradients": (run_gradients, LossRequest, random_bodies.loss_body),
    "gradcheck": (run_gradcheck, GradcheckRequest, random_bodies.gradcheck_body),
    "explain": (run_explain, ExplainRequest, random_bodies.explain_body),
    "graph": (run_graph, GraphRequest, random_bodies.graph_body),
}


@pytest.mark.parametrize("use_case", sorted(NETWORK_FREE))
@pytest.mark.parametrize("case", range(CASES))
def test_answers_without_a_network_are_those_of_the_layers_form_bit_for_bit(use_case: str, case: int) -> None:
    run, model, make_body = NETWORK_FREE[use_case]
    rng = np.random.default_rng((20261201, sorted(NETWORK_FREE).index(use_case), case))
    body = make_body(rng)
    assert answer(run, model, as_state_dict(body, rng)) == answer(run, model, body)


@pytest.mark.parametrize("case", range(10))
def test_a_check_is_that_of_the_layers_form(case: int) -> None:
    # Its claims name layers by position (claimed.network.layers[k]), in either form of the network.
    rng = np.random.default_rng((20261201, 98, case))
    body = random_bodies.check_body(rng)
    for layer in body["network"]["layers"]:
        layer.setdefault("biases", [0.0] * len(layer["weights"]))  # sent, so trained in both forms
    assert answer(run_check, CheckRequest, as_state_dict(body, rng)) == answer(run_check, CheckRequest, body)


def _layers_body_freezing_absent_biases(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` (layers form) with the biases it leaves out frozen: what a state_dict without them means."""
    out = copy.deepcopy(body)
    layers = out["network"]["layers"]
    if all("biases" in layer for layer in layers):
        return out
    trainable = out.get("trainable") or [{} for _ in layers]
    for mask, layer in zip(trainable, layers):
        if "biases" not in layer:
            mask["biases"] = [False] * len(layer["weights"])
    out["trainable"] = trainable
    return out


@pytest.mark.parametrize("case", range(CASES))
def test_a_training_is_that_of_the_layers_form_and_its_networks_come_back_as_state_dicts(case: int) -> None:
    rng = np.random.default_rng((20261201, 99, case))
    body = random_bodies.train_body(rng)
    body["record"] = sorted(set(body["record"]) | {"network"}) if rng.random() < 0.7 else body["record"]
    sent = as_state_dict(body, rng)
    got = answer(run_train, TrainRequest, sent)
    expected = answer(run_train, TrainRequest, _layers_body_freezing_absent_biases(body))
    keys = set(sent["network"]["state_dict"])
    networks = [got["network"]] + [entry["network"] for entry in got["trace"] if "network" in entry]
    for network in networks:
        assert set(network) == {"state_dict", "activations"}
        assert set(network["state_dict"]) == keys  # the request's keys, a bias not sent still absent
        assert network["activations"] == sent["network"]["activations"]
    layers_form = {**got, "network": as_layers(got["network"])}
    layers_form["trace"] = [{**e, "network": as_layers(e["network"])} if "network" in e else e for e in got["trace"]]
    assert layers_form == expected
    # The answer is valid against its response model, and dumps back to itself.
    assert responses.TrainResponse.model_validate(got, strict=True).model_dump(exclude_unset=True) == got


def test_a_bias_not_sent_stays_zero_as_a_linear_without_bias() -> None:
    body = {
        "network": {
            "state_dict": {"0.weight": [[0.5, -0.2], [0.1, 0.3]], "2.weight": [[1.0, -1.0]], "2.bias": [0.1]},
            "activations": ["tanh", "identity"],
        },
        "inputs": [[1.0, 2.0], [0.5, -1.0]],
        "targets": [[1.0], [0.0]],
        "loss": "mse",
        "optimizer": {"name": "adam", "learning_rate": 0.1},
        "iterations": 5,
    }
    got = answer(run_train, TrainRequest, body)
    assert sorted(got["network"]["state_dict"]) == ["0.weight", "2.bias", "2.weight"]
    assert got["network"]["state_dict"]["2.bias"] != [0.1]  # sent, so trained
    # final_loss is the loss of the network returned, whose layer 0 has no bias: zero throughout.
    again = {k: body[k] for k in ("inputs", "targets", "loss")} | {"network": got["network"]}
    assert answer(run_loss, LossRequest, again)["loss"] == got["final_loss"]


@pytest.mark.parametrize("case", range(10))
def test_each_streamed_line_comes_back_in_state_dict_form(case: int) -> None:
    rng = np.random.default_rng((20261201, 7, case))
    body = random_bodies.train_body(rng)
    body["record"] = ["network"]
    sent = as_state_dict(body, rng)
    lines = [
        orjson.loads(orjson.dumps(item, option=orjson.OPT_SERIALIZE_NUMPY))
        for batch in stream_train(TrainRequest.model_validate(sent), Settings())
        for item in batch
    ]
    *entries, summary = lines
    for line in [*(e for e in entries), summary]:
        assert set(line["network"]["state_dict"]) == set(sent["network"]["state_dict"])
    assert [responses.TraceEntry.model_validate(e, strict=True).model_dump(exclude_unset=True) for e in entries] == entries
    assert responses.TrainSummary.model_validate(summary, strict=True).model_dump(exclude_unset=True) == summary


def test_the_validated_network_holds_the_layers_and_dumps_as_it_was_sent() -> None:
    sent = {"state_dict": {"10.weight": [[1.0, 2.0, 3.0]], "2.weight": [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], "2.bias": [0.0, 1.0, 2.0]},
            "activations": ["relu", "sigmoid"]}  # fmt: skip
    network = NetworkSpec.model_validate(sent)
    assert [layer.weights for layer in network.layers] == [sent["state_dict"]["2.weight"], sent["state_dict"]["10.weight"]]
    assert [layer.biases for layer in network.layers] == [[0.0, 1.0, 2.0], None]
    assert [layer.activation for layer in network.layers] == ["relu", "sigmoid"]
    assert network.state_dict_keys == [("2.weight", "2.bias"), ("10.weight", None)]
    assert (network.n_in, network.n_out) == (2, 1)
    assert network.model_dump() == sent
    assert network.model_dump(exclude_unset=True) == sent
    assert NetworkSpec.model_validate_json(network.model_dump_json()).model_dump() == sent
    layers = {"layers": [{"weights": [[1.0]], "biases": None, "activation": "identity"}]}
    assert NetworkSpec.model_validate(layers).model_dump() == layers  # the layers form dumps as it always did
    assert NetworkSpec.model_validate(layers).state_dict_keys is None


# -- every mistake at its place ---------------------------------------------------------------

SD = {"0.weight": [[0.1, 0.2], [0.3, -0.4]], "0.bias": [0.0, 0.1], "2.weight": [[0.5, -0.6]], "2.bias": [0.2]}
ACTS = ["sigmoid", "sigmoid"]


def errors(network: dict[str, Any], model: type[BaseModel] = ForwardRequest, **fields: Any) -> list[dict[str, Any]]:
    """The error entries a client gets for ``network`` (and inputs [[1, 2]]): loc, msg, type."""
    body = {"network": network, "inputs": [[1.0, 2.0]], **fields}
    with pytest.raises(ValidationError) as caught:
        model.model_validate_json(json.dumps(body))
    said = body_errors(caught.value.errors(include_url=False), model)
    return error_entries(said.shown, said.more, said.at_least)


def located(network: dict[str, Any], model: type[BaseModel] = ForwardRequest, **fields: Any) -> list[tuple[list[str | int], str]]:
    return [(e["loc"], e["type"]) for e in errors(network, model, **fields)]


def _with(**entries: Any) -> dict[str, Any]:
    state_dict = {**SD, **entries}
    return {k: v for k, v in state_dict.items() if v is not None}


MISTAKES = [
    ("a key that is no parameter", {"state_dict": _with(**{"0.running_mean": [1.0]}), "activations": ACTS}, ["state_dict", "0.running_mean"], "state_dict_key"),
    ("a key with a leading zero", {"state_dict": _with(**{"02.bias": [1.0]}), "activations": ACTS}, ["state_dict", "02.bias"], "state_dict_key"),
    ("a negative index", {"state_dict": _with(**{"-1.weight": [[1.0]]}), "activations": ACTS}, ["state_dict", "-1.weight"], "state_dict_key"),
    ("a bare name", {"state_dict": _with(weight=[[1.0, 1.0]]), "activations": ACTS}, ["state_dict", "weight"], "state_dict_key"),
    ("a weight as one row", {"state_dict": _with(**{"2.weight": [0.5, -0.6]}), "activations": ACTS}, ["state_dict", "2.weight"], "not_2d"),
    ("an empty weight", {"state_dict": _with(**{"2.weight": []}), "activations": ACTS}, ["state_dict", "2.weight"], "not_2d"),
    ("a bias as a matrix", {"state_dict": _with(**{"2.bias": [[0.2]]}), "activations": ACTS}, ["state_dict", "2.bias"], "shape_mismatch"),
    ("a bias without its weight", {"state_dict": _with(**{"4.bias": [0.2]}), "activations": ACTS}, ["state_dict", "4.bias"], "missing_dependency"),
    ("too few activations", {"state_dict": SD, "activations": ["sigmoid"]}, ["activations"], "shape_mismatch"),
    ("too many activations", {"state_dict": SD, "activations": [*ACTS, "relu"]}, ["activations"], "shape_mismatch"),
    ("no activations", {"state_dict": SD}, ["activations"], "missing_dependency"),
    ("an unknown activation", {"state_dict": SD, "activations": ["sigmoid", "swish"]}, ["activations", 1], "literal_error"),
    ("softmax before the last layer", {"state_dict": SD, "activations": ["softmax", "sigmoid"]}, ["activations", 0], "activation_position"),
    ("both forms", {"layers": [{"weights": [[1.0, 1.0]]}], "state_dict": SD, "activations": ACTS}, ["state_dict"], "network_form"),
    ("neither form", {}, ["layers"], "missing"),
    ("activations with layers", {"layers": [{"weights": [[1.0, 1.0]]}], "activations": ["relu"]}, ["activations"], "network_form"),
    ("an empty state_dict", {"state_dict": {}, "activations": []}, ["state_dict"], "too_short"),
    ("a state_dict that is a list", {"state_dict": [[1.0]], "activations": ACTS}, ["state_dict"], "dict_type"),
    ("a weight that is a string", {"state_dict": _with(**{"0.weight": "w"}), "activations": ACTS}, ["state_dict", "0.weight"], "list_type"),
    ("a ragged weight", {"state_dict": _with(**{"0.weight": [[0.1, 0.2], [0.3]]}), "activations": ACTS}, ["state_dict", "0.weight", 1], "ragged_matrix"),
    ("a weight that does not take the layer before", {"state_dict": _with(**{"2.weight": [[0.5, -0.6, 1.0]]}), "activations": ACTS}, ["state_dict", "2.weight"], "shape_mismatch"),
    ("a bias too long", {"state_dict": _with(**{"2.bias": [0.2, 0.3]}), "activations": ACTS}, ["state_dict", "2.bias"], "shape_mismatch"),
    ("a string in a weight", {"state_dict": _with(**{"0.weight": [[0.1, 0.2], [0.3, "x"]]}), "activations": ACTS}, ["state_dict", "0.weight", 1, 1], "float_type"),
    ("a string in a bias", {"state_dict": _with(**{"0.bias": [0.0, "x"]}), "activations": ACTS}, ["state_dict", "0.bias", 1], "float_type"),
    ("an empty row of a weight", {"state_dict": _with(**{"0.weight": [[0.1, 0.2], []]}), "activations": ACTS}, ["state_dict", "0.weight", 1], "too_short"),
    ("a number among a weight's rows", {"state_dict": _with(**{"0.weight": [[0.1, 0.2], 0.3]}), "activations": ACTS}, ["state_dict", "0.weight"], "not_2d"),
]  # fmt: skip


@pytest.mark.parametrize(("network", "loc", "kind"), [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES])
def test_each_mistake_is_a_422_at_the_clients_own_key(network: dict[str, Any], loc: list[str | int], kind: str) -> None:
    assert located(network)[0] == (["body", "network", *loc], kind)


def test_messages_name_the_keys() -> None:
    (shape,) = errors({"state_dict": _with(**{"2.weight": [[0.5, -0.6, 1.0]]}), "activations": ACTS})
    assert shape["msg"] == "2.weight must have 2 columns, one per output of the layer before (0.weight has 2 rows), but has 3 columns"
    (bias,) = errors({"state_dict": _with(**{"2.bias": [0.2, 0.3]}), "activations": ACTS})
    assert bias["msg"] == "2.bias must have one value per output unit: 2.weight has 1 row, but 2.bias has 2 values"
    (key,) = errors({"state_dict": _with(**{"0.running_mean": [1.0]}), "activations": ACTS})
    assert "0.weight, 0.bias, 2.weight" in key["msg"] and "'0.running_mean'" in key["msg"]
    (count,) = errors({"state_dict": SD, "activations": ["sigmoid"]})
    assert (
        count["msg"]
        == "activations must name one activation per Linear layer: state_dict has 2 weights (0.weight and 2.weight), but activations has 1 name"
    )
    (neither,) = errors({})
    assert neither["msg"] == "Field required"


def test_an_input_width_that_does_not_fit_the_first_weight_is_said_at_inputs() -> None:
    (error,) = errors({"state_dict": {"3.weight": [[1.0, 2.0, 3.0]]}, "activations": ["identity"]})
    assert (error["loc"], error["type"]) == (["body", "inputs"], "shape_mismatch")


def test_the_layers_form_still_says_what_it_said() -> None:
    assert located({"layers": [{"weights": [[1.0, 1.0]]}, {"weights": [[1.0, 1.0, 1.0]]}]}) == [
        (["body", "network", "layers", 1, "weights"], "shape_mismatch")
    ]
    assert located({"layers": []}) == [(["body", "network", "layers"], "too_short")]
    assert located({"layers": [{"weights": [[1.0, 1.0]], "biases": [1.0, 2.0]}]}) == [
        (["body", "network", "layers", 0, "biases"], "shape_mismatch")
    ]


def test_a_long_bad_key_is_cut_in_its_location_and_message() -> None:
    key = "x" * 10_000
    (error,) = errors({"state_dict": _with(**{key: [1.0]}), "activations": ACTS})
    assert error["type"] == "state_dict_key" and len(error["loc"][-1]) < 100 and len(error["msg"]) < 300


def test_a_huge_index_is_ordered_without_arithmetic() -> None:
    huge = "9" * 5000  # int() refuses strings this long
    network = NetworkSpec.model_validate(
        {"state_dict": {f"{huge}.weight": [[1.0, 1.0]], "7.weight": [[1.0, 1.0], [2.0, 2.0]]}, "activations": ["relu", "identity"]}
    )
    assert network.state_dict_keys == [("7.weight", None), (f"{huge}.weight", None)]


def test_loss_errors_of_a_state_dict_network() -> None:
    found = located({"state_dict": SD, "activations": ["sigmoid", "identity"]}, LossRequest, targets=[[1.0]], loss="binary_cross_entropy")
    assert found == [(["body", "loss"], "loss_activation_mismatch")]

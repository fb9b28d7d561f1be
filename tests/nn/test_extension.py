"""One place per concept: an activation, a loss or an optimizer is added to its table alone.

The proof is a subprocess that registers a throwaway of each (swish, soft_margin, sign_sgd) in
copies of ``ACTIVATIONS``, ``LOSSES`` and ``OPTIMIZERS`` before anything else imports them, then
asks the rest of the app to use them: the request schemas accept and validate them, the spec
lists them, the engine computes them, /v1/gradients and /v1/explain answer for them (the
explanation's LaTeX too), and the scalar computation graph draws them. A name list
or a name branch written anywhere outside the tables (a ``Literal`` of loss names, an ``else`` in
explain.py that calls every other loss "the squared error", a config model written by hand)
makes it fail. The rest checks, in this process, that the schemas are derived from the tables.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import typing
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.nn.activations import ACTIVATIONS, LAST_LAYER_ONLY
from app.nn.losses import LOSSES, REDUCTIONS
from app.nn.optimizers import OPTIMIZERS
from app.schemas.network import LayerSpec
from app.schemas.requests import OPTIMIZER_CONFIGS, AdamConfig, LossRequest, OptimizerConfig, SGDConfig, TrainRequest

ROOT = Path(__file__).resolve().parents[2]

THROWAWAYS = r'''
from dataclasses import dataclass
from types import MappingProxyType
from typing import ClassVar

import numpy as np

import app.nn.activations as A

# -- an activation: one table entry (and its two functions) --------------------------------------
sigmoid = A.ACTIVATIONS["sigmoid"].forward


def swish(z, out=None):
    return np.multiply(z, sigmoid(z), out=out)


def swish_backward(z, a, grad, out=None):
    s = sigmoid(z)
    return np.multiply(grad, s + a * (1.0 - s), out=out)


A.ACTIVATIONS = MappingProxyType({**A.ACTIVATIONS, "swish": A.Activation("swish", swish, swish_backward, note="swish is z * sigmoid(z)")})

import app.nn.losses as L


# -- a loss: one class -----------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class SoftMargin(L.Loss):
    """soft_margin_loss: log(1 + exp(-y x)) per element, targets -1 or 1."""

    name: ClassVar[str] = "soft_margin"
    targets_text: ClassVar[str] = "-1 or 1"

    def terms(self, x, y):
        return np.logaddexp(0.0, -y * x)

    def grad(self, x, y, reduction, out=None):
        out = np.multiply(-y, sigmoid(-y * x), out=out)
        if reduction == "mean" and x.size > 1:
            np.divide(out, x.size, out=out)
        return out

    def sample_targets(self, rng, shape):
        return rng.choice([-1.0, 1.0], size=shape)

    def target_problem(self, rows):
        for i, row in enumerate(rows):
            for j, t in enumerate(row):
                if t not in (-1.0, 1.0):
                    return L.TargetProblem((i, j), f"soft_margin targets are -1 or 1, but found {t!r}")
        return None

    def explain_output(self, unit):
        y, out = unit.target, unit.out
        slope = -y * float(sigmoid(np.array([-y * out]))[0])
        return L.through_activation(unit, L.Term(f"dl/dout{unit.layer}[{unit.unit}]", "the soft margin's slope: -y * sigmoid(-y * out)", slope))


L.LOSSES = MappingProxyType({**L.LOSSES, "soft_margin": SoftMargin()})

import app.nn.optimizers as O


# -- an optimizer: one class, its hyper-parameters declared on it ---------------------------------
@dataclass(frozen=True)
class SignSGD(O.Optimizer[O.OptimizerState]):
    """signSGD: each parameter steps by the learning rate against its gradient's sign."""

    name: ClassVar[str] = "sign_sgd"
    learning_rate: float = O.hyper(gt=0, description="The step size.")
    limit: float = O.hyper(1.0, ge=0, le=10, description="Unused bound, to check le.")

    def init(self, n):
        return O.OptimizerState(0)

    def update(self, params, grad, state, out=None):
        np.subtract(params, self.learning_rate * np.sign(grad), out=params if out is None else out)
        state.step += 1


O.OPTIMIZERS = MappingProxyType({**O.OPTIMIZERS, "sign_sgd": SignSGD})

# -- nothing else is edited: the rest of the app imports the tables from here on ---------------------
from fastapi.testclient import TestClient
from pydantic import ValidationError

from app.main import create_app
from app.nn.network import Layer, evaluate
from app.schemas.requests import LossRequest, TrainRequest

body = {
    "network": {"layers": [{"weights": [[0.3, -0.2], [0.1, 0.4]], "activation": "swish"}, {"weights": [[0.5, -0.7]], "activation": "swish"}]},
    "inputs": [[1.0, 2.0], [-0.5, 0.25]],
    "targets": [[1.0], [-1.0]],
    "loss": "soft_margin",
}
req = LossRequest.model_validate(body)
assert L.LOSSES["soft_margin"].target_problem(L.LOSSES["soft_margin"].sample_targets(np.random.default_rng(0), (4, 2)).tolist()) is None
try:
    LossRequest.model_validate({**body, "targets": [[1.0], [0.5]]})
    raise AssertionError("the loss's own target check did not run")
except ValidationError as e:
    (error,) = e.errors()
    assert (error["loc"], error["type"], error["msg"]) == (("targets", 1, 0), "target_range", "soft_margin targets are -1 or 1, but found 0.5"), error

train = TrainRequest.model_validate({**body, "optimizer": {"name": "sign_sgd", "learning_rate": 0.5}, "iterations": 2})
assert train.optimizer.build() == SignSGD(0.5, 1.0), train.optimizer
for bad, kind in (({"learning_rate": 0}, "greater_than"), ({"learning_rate": 1, "limit": 11}, "less_than_equal"), ({"learning_rate": 1, "momentum": 0.9}, "extra_forbidden")):
    try:
        TrainRequest.model_validate({**body, "optimizer": {"name": "sign_sgd", **bad}, "iterations": 2})
        raise AssertionError(f"sign_sgd took {bad}")
    except ValidationError as e:
        assert [x["type"] for x in e.errors()] == [kind], e.errors()

client = TestClient(create_app())
spec = client.get("/openapi.json").json()
schemas = spec["components"]["schemas"]
assert "soft_margin" in schemas["LossRequest"]["properties"]["loss"]["enum"]
assert "soft_margin: -1 or 1" in schemas["LossRequest"]["properties"]["targets"]["oneOf"][0]["description"]
assert "swish" in schemas["LayerSpec"]["properties"]["activation"]["enum"]
assert "swish is z * sigmoid(z)" in schemas["LayerSpec"]["properties"]["activation"]["description"]
assert schemas["SignSGDConfig"]["properties"]["limit"]["maximum"] == 10
assert schemas["TrainRequest"]["properties"]["optimizer"]["discriminator"]["mapping"]["sign_sgd"].endswith("/SignSGDConfig")

gradients = client.post("/v1/gradients", json=body)
assert gradients.status_code == 200, gradients.text
layers = [Layer(np.array(l["weights"]), np.zeros(len(l["weights"])), l["activation"]) for l in body["network"]["layers"]]
ev = evaluate(layers, np.array(body["inputs"]), np.array(body["targets"]), "soft_margin", "mean")
assert gradients.json()["loss"] == ev.loss
explained = client.post("/v1/explain", json={**body, "parameter": {"layer": 1, "kind": "weights", "index": [0, 1]}})
assert explained.status_code == 200, explained.text
output_step = explained.json()["samples"][0]["steps"][0]
assert output_step["factors"][0]["meaning"] == "the soft margin's slope: -y * sigmoid(-y * out)", output_step
assert output_step["factors"][1]["symbol"] == "swish'(pre1[0])", output_step
assert abs(output_step["factors"][0]["value"] * output_step["factors"][1]["value"] - output_step["value"]) < 1e-15
assert explained.json()["gradient"] == ev.gradient[1 * 0 + 6 + 1]  # layer 1's block starts after layer 0's 6 parameters

from app.nn.explain import explain
from app.nn.graph import build_graph

step = explain(layers, np.array(body["inputs"]), np.array(body["targets"]), "soft_margin", "mean", 1, "weights", (0, 1)).samples[0].steps[0]
assert r"\operatorname{swish}'(z^{(1)}_{0})" in step.latex, step.latex
graph = build_graph(layers, np.array(body["inputs"]), np.array(body["targets"]), "soft_margin", "mean")
assert graph.root.value == ev.loss and graph.node("loss.terms[1][0]").op == "soft_margin"
assert abs(graph.node("layers[1].weights[0][1]").grad - ev.gradient[6 + 1]) < 1e-15, graph.node("layers[1].weights[0][1]")
print("ok")
'''


def test_a_new_activation_loss_and_optimizer_need_only_their_own_module():
    done = subprocess.run([sys.executable, "-c", THROWAWAYS], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stdout + done.stderr


# -- in this process: the schemas are the tables' --------------------------------------------------


def test_the_schemas_take_every_name_from_the_tables():
    assert typing.get_args(LossRequest.model_fields["loss"].annotation) == tuple(LOSSES)
    assert typing.get_args(LossRequest.model_fields["reduction"].annotation) == REDUCTIONS
    assert typing.get_args(LayerSpec.model_fields["activation"].annotation) == tuple(ACTIVATIONS)
    members = typing.get_args(TrainRequest.model_fields["optimizer"].annotation)
    assert members == tuple(OPTIMIZER_CONFIGS.values()) and tuple(OPTIMIZER_CONFIGS) == tuple(OPTIMIZERS)
    assert [typing.get_args(m.model_fields["name"].annotation) for m in members] == [(name,) for name in OPTIMIZERS]
    assert (SGDConfig, AdamConfig) == (OPTIMIZER_CONFIGS["sgd"], OPTIMIZER_CONFIGS["adam"])
    assert typing.get_origin(OptimizerConfig) is typing.Annotated


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_each_config_model_is_its_optimizers_fields(name):
    optimizer, config = OPTIMIZERS[name], OPTIMIZER_CONFIGS[name]
    fields = dataclasses.fields(optimizer)
    assert list(config.model_fields) == ["name"] + [f.name for f in fields]
    assert config.__name__ == f"{optimizer.__name__}Config"
    assert config.model_json_schema()["description"] == optimizer.__doc__.strip().splitlines()[0]
    for f in fields:
        wire = config.model_fields[f.name]
        assert wire.description == f.metadata["description"]
        if f.metadata["required"]:
            assert wire.is_required()
        else:
            assert wire.default == f.default
    # The defaults build the engine's defaults; build() needs no isinstance chain.
    required = {f.name: 0.5 for f in fields if f.metadata["required"]}
    assert config.model_validate({"name": name, **required}).build() == optimizer(**required)


def test_the_wire_keeps_todays_optimizer_fields_defaults_and_constraints():
    sgd = SGDConfig.model_validate({"name": "sgd", "learning_rate": 0.5})
    assert sgd.model_dump() == {"name": "sgd", "learning_rate": 0.5, "momentum": 0.0, "nesterov": False, "weight_decay": 0.0}
    adam = AdamConfig.model_validate({"name": "adam", "learning_rate": 0.5})
    assert adam.model_dump() == {"name": "adam", "learning_rate": 0.5, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0}
    with pytest.raises(ValidationError) as e:
        AdamConfig.model_validate({"name": "adam"})  # the engine's Adam has torch's default; the wire asks for one
    assert [(x["loc"], x["type"]) for x in e.value.errors()] == [(("learning_rate",), "missing")]
    with pytest.raises(ValidationError) as e:
        AdamConfig.model_validate({"name": "adam", "learning_rate": 0.1, "betas": [0.9, 1.0]})
    assert [(x["loc"], x["type"]) for x in e.value.errors()] == [(("betas", 1), "less_than")]
    with pytest.raises(ValidationError) as e:
        SGDConfig.model_validate({"name": "sgd", "learning_rate": 0.1, "nesterov": 1})
    assert [(x["loc"], x["type"]) for x in e.value.errors()] == [(("nesterov",), "bool_type")]


def test_an_optimizers_own_check_is_an_error_at_its_field():
    with pytest.raises(ValidationError) as e:
        SGDConfig.model_validate({"name": "sgd", "learning_rate": 0.1, "nesterov": True})
    assert [(x["loc"], x["type"], x["msg"]) for x in e.value.errors()] == [
        (("nesterov",), "nesterov_momentum", "nesterov needs momentum > 0, but momentum is 0.0")
    ]


def test_last_layer_only_activations_come_from_the_table():
    assert LAST_LAYER_ONLY == {name for name, act in ACTIVATIONS.items() if not act.elementwise}
    description = LayerSpec.model_fields["activation"].description
    assert all(act.note in description for act in ACTIVATIONS.values())
    assert all(name in description for name in LAST_LAYER_ONLY)

"""Every 2xx is valid: a seeded fuzzer of every compute endpoint with valid-shaped bodies of extreme numbers.

Each body is well-formed (shapes fit, each loss has its last activation, targets in range) but its
numbers are drawn from float64's edges: the largest finite values, 1e300, 1e154 (whose square
overflows), subnormals, signed zeros, 2**53, mixed with ordinary values, as are the optimizer's and
the gradient check's options. Whatever the numbers, an answer must be

- a 200, 413 or 422 (never a 5xx), in strict JSON (no NaN or Infinity tokens);
- a 4xx: exactly ``{"detail": [{"loc": [...], "msg": str, "type": str}]}``;
- a 200 JSON: valid against its own response model, with no ``null`` anywhere but where it is
  documented (``final_loss``, an explain factor's ``value``) and ``diverged_at`` exactly when diverged;
- a 200 NDJSON: TraceEntry lines, then one TrainSummary line;
- a 200 SVG: well-formed XML with no attribute holding ``inf``/``nan`` or a non-finite number
  (nor one far outside the picture), and no label reading inf or nan.

and consistent with the other endpoints: a gradient check's analytical side and an explanation's
gradient are /v1/gradients's, a training's ``final_loss`` is /v1/loss's on its network (null exactly
when that is not finite), the NDJSON stream is the JSON answer split into lines.

Bodies are generated from ``np.random.default_rng((SEED, endpoint, case))``: a failure names its
case and prints its body, so it reproduces with ``body_for(endpoint, case)``.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import shutil
import types
import typing
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel

from app.config import Settings
from app.main import create_app
from app.schemas.responses import (
    CheckResponse,
    ElementOut,
    ErrorBody,
    ExplainResponse,
    ForwardResponse,
    GradcheckResponse,
    GradientsResponse,
    GraphEdge,
    GraphNode,
    GraphResponse,
    LossResponse,
    QuantityOut,
    SearchOut,
    TermOut,
    TraceEntry,
    TrainResponse,
    TrainSummary,
)

# Live servers, subprocesses or a browser: left out by `pytest -m "not slow"`.
pytestmark = pytest.mark.slow

# 400 bodies per endpoint keep the file near 20 s; FUZZ_CASES=4000 (and another FUZZ_SEED) explore further.
SEED = int(os.environ.get("FUZZ_SEED", "20240611"))
CASES = int(os.environ.get("FUZZ_CASES", "400"))

MAX = 1.7976931348623157e308
# The edges of float64, each with both signs: the largest finite values, values whose square (1e154)
# or sum (1e308) overflows, tiny normals, subnormals (5e-324 the smallest), signed zeros, 1, and 2**53
# (past which consecutive integers are no longer all representable).
EXTREME_MAGNITUDES = [MAX, 1e308, 1e300, 1e154, 1e-300, 5e-324, 1e-320, 1.0, 2.0**53]
EXTREMES = [s * m for m in EXTREME_MAGNITUDES for s in (1.0, -1.0)] + [0.0, -0.0]
# Where the arithmetic changes regime: sqrt of the largest float64 (squares just fit), exp's overflow
# (709.78) and its underflow to 0 (-745.13), softplus's threshold (20), sigmoid's saturation to 1 (37).
THRESHOLDS = [s * m for m in (math.sqrt(MAX), 709.782712893384, 710.0, 745.1332191019412, 20.0, 37.0) for s in (1.0, -1.0)]
# Values in [0, 1] (binary_cross_entropy targets), extremes first.
UNIT_EXTREMES = [0.0, -0.0, 1.0, 5e-324, 1e-320, 1e-300, 1.0 - 2.0**-53, 0.5]

HIDDEN_ACTIVATIONS = ["identity", "relu", "leaky_relu", "sigmoid", "tanh", "softplus", "elu"]
LAST_ACTIVATIONS = HIDDEN_ACTIVATIONS + ["softmax"]
LOSS_ACTIVATION = {"binary_cross_entropy": "sigmoid", "cross_entropy": "softmax", "mse": None}

# Optimizer and gradient-check options: ordinary values and their extremes (each within its range).
LEARNING_RATES = [0.1, 1.0, 1e-3, MAX, 1e308, 1e300, 1e154, 5e-324, 1e-320, 1e-300]
MOMENTA = [0.0, 0.9, 1.0, 0.5, MAX, 1e308, 1e154, 5e-324, 1e-320]
WEIGHT_DECAYS = [0.0, 0.0, 0.01, 1.0, MAX, 1e308, 1e154, 5e-324, 1e-320]
BETAS = [0.0, 0.5, 0.9, 0.999, 1.0 - 2.0**-53, 1.0 - 1e-15, 1.0 - 1e-10, 5e-324, 1e-320]
EPSES = [1e-8, 0.0, 5e-324, 1e-320, 1e-300, 1.0, 1e154, 1e308, MAX]
GRADCHECK_EPSILONS = [1e-6, 1e-3, 1.0, 8e307, 1e308, MAX, 1e154, 1e-300, 1e-320, 5e-324, 2.0**53]
TOLERANCES = [1e-5, 1e-3, 0.0, 5e-324, 1e-320, 1e-300, 1.0, 1e154, 1e308, MAX]
ITERATIONS = [1, 1, 2, 3, 5, 20, 257]  # 257: past one chunk of the training loop (256 iterations)
RECORD_EVERY = [1, 1, 2, 3, 1000, 2**31, 2**63, 10**30]
OVER_LIMIT_ITERATIONS = [100_001, 2**63, 10**30]  # a 413 naming BACKPROP_MAX_ITERATIONS


# -- body generation ---------------------------------------------------------------------------


def pick(rng: np.random.Generator, options: list[Any]) -> Any:
    return options[int(rng.integers(len(options)))]


class Numbers:
    """Numbers for one body: each is an extreme with probability ``p`` (per body), else ordinary."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.p = float(pick(rng, [0.0, 0.05, 0.15, 0.4, 1.0]))
        # Ordinary values are normal draws times a scale: near 1 most often, now and then near the
        # edges (1e150 squared and 1e-150 squared are still normal, their products not).
        self.scale = float(pick(rng, [0.1, 1.0, 1.0, 10.0, 1e3, 1e-150, 1e100, 1e150]))

    def any(self) -> float | int:
        rng = self.rng
        u = rng.random()
        if u < self.p:
            x = float(pick(rng, EXTREMES))
        elif u < self.p + 0.03:
            x = float(pick(rng, THRESHOLDS))
        else:
            x = float(rng.normal(0.0, self.scale))
        # Now and then an integral value goes as a JSON integer, as clients send them: 1, not 1.0, and
        # int(1e308) as its 309 digits (an integer literal that is still a finite float64).
        if rng.random() < 0.05 and x == int(x):
            return int(x)
        return x

    def unit(self) -> float:
        rng = self.rng
        return float(pick(rng, UNIT_EXTREMES)) if rng.random() < self.p else float(rng.uniform(0.0, 1.0))

    def matrix(self, rows: int, cols: int) -> list[list[float | int]]:
        return [[self.any() for _ in range(cols)] for _ in range(rows)]

    def probabilities(self, rows: int, cols: int) -> list[list[float]]:
        """Rows in [0, 1] summing to 1 within the contract's 1e-6, extremes included."""
        rng, out = self.rng, []
        for _ in range(rows):
            kind = pick(rng, ["dirichlet", "one_hot", "one_hot_tiny", "near"])
            if kind == "dirichlet" or cols == 1:
                row = [float(v) for v in rng.dirichlet(np.ones(cols))] if cols > 1 else [1.0]
            else:
                hot = int(rng.integers(cols))
                filler = {"one_hot": [0.0, -0.0], "one_hot_tiny": [5e-324, 1e-320, 1e-300, 0.0], "near": [1e-7 / cols]}[kind]
                row = [1.0 - (1e-7 if kind == "near" else 0.0) if j == hot else float(pick(rng, filler)) for j in range(cols)]
            out.append(row)
        return out


def network(rng: np.random.Generator, num: Numbers, last_activation: str | None) -> dict[str, Any]:
    depth = int(rng.integers(1, 4))
    sizes = [int(rng.integers(1, 5)) for _ in range(depth + 1)]
    if last_activation == "softmax" and rng.random() < 0.8:
        sizes[-1] = max(sizes[-1], 2)  # a 1-unit softmax is always 1: valid but dull
    layers = []
    for k, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        layer: dict[str, Any] = {"weights": num.matrix(n_out, n_in)}
        if rng.random() < 0.85:
            layer["biases"] = [num.any() for _ in range(n_out)]
        act = (last_activation or pick(rng, LAST_ACTIVATIONS)) if k == depth - 1 else pick(rng, HIDDEN_ACTIVATIONS)
        if act != "identity" or rng.random() < 0.5:
            layer["activation"] = act
        layers.append(layer)
    return {"layers": layers}


def shapes(net: dict[str, Any]) -> list[tuple[int, int]]:
    return [(len(layer["weights"]), len(layer["weights"][0])) for layer in net["layers"]]


def forward_body(rng: np.random.Generator, num: Numbers) -> dict[str, Any]:
    net = network(rng, num, None)
    batch = int(rng.integers(1, 4))
    return {"network": net, "inputs": num.matrix(batch, shapes(net)[0][1])}


def loss_body(rng: np.random.Generator, num: Numbers) -> dict[str, Any]:
    loss = pick(rng, list(LOSS_ACTIVATION))
    net = network(rng, num, LOSS_ACTIVATION[loss])
    batch, n_in, n_out = int(rng.integers(1, 4)), shapes(net)[0][1], shapes(net)[-1][0]
    if loss == "binary_cross_entropy":
        targets = [[num.unit() for _ in range(n_out)] for _ in range(batch)]
    elif loss == "cross_entropy":
        targets = num.probabilities(batch, n_out)
    else:
        targets = num.matrix(batch, n_out)
    body = {"network": net, "inputs": num.matrix(batch, n_in), "targets": targets, "loss": loss}
    if rng.random() < 0.7:
        body["reduction"] = pick(rng, ["mean", "sum"])
    return body


def optimizer(rng: np.random.Generator) -> dict[str, Any]:
    if rng.random() < 0.5:
        opt: dict[str, Any] = {"name": "sgd", "learning_rate": pick(rng, LEARNING_RATES)}
        if rng.random() < 0.6:
            opt["momentum"] = pick(rng, MOMENTA)
            if opt["momentum"] > 0 and rng.random() < 0.5:
                opt["nesterov"] = True
        if rng.random() < 0.5:
            opt["weight_decay"] = pick(rng, WEIGHT_DECAYS)
        return opt
    opt = {"name": "adam", "learning_rate": pick(rng, LEARNING_RATES)}
    if rng.random() < 0.7:
        opt["betas"] = [pick(rng, BETAS), pick(rng, BETAS)]
    if rng.random() < 0.7:
        opt["eps"] = pick(rng, EPSES)
    if rng.random() < 0.5:
        opt["weight_decay"] = pick(rng, WEIGHT_DECAYS)
    return opt


def train_body(rng: np.random.Generator, num: Numbers) -> dict[str, Any]:
    body = loss_body(rng, num)
    body["optimizer"] = optimizer(rng)
    body["iterations"] = pick(rng, ITERATIONS) if rng.random() > 0.02 else pick(rng, OVER_LIMIT_ITERATIONS)
    if rng.random() < 0.5:
        body["record_every"] = pick(rng, RECORD_EVERY)
    if rng.random() < 0.7:
        body["record"] = [r for r in ("output", "gradients", "network") if rng.random() < 0.5]
    if rng.random() < 0.25:
        mask = []
        for n_out, n_in in shapes(body["network"]):
            entry: dict[str, Any] = {}
            if rng.random() < 0.7:
                entry["weights"] = [[bool(rng.random() < 0.5) for _ in range(n_in)] for _ in range(n_out)]
            if rng.random() < 0.7:
                entry["biases"] = [bool(rng.random() < 0.5) for _ in range(n_out)]
            mask.append(entry)
        body["trainable"] = mask
    return body


def gradcheck_body(rng: np.random.Generator, num: Numbers) -> dict[str, Any]:
    body = loss_body(rng, num)
    for name, options in (("epsilon", GRADCHECK_EPSILONS), ("atol", TOLERANCES), ("rtol", TOLERANCES)):
        if rng.random() < 0.7:
            body[name] = pick(rng, options)
    return body


def explain_body(rng: np.random.Generator, num: Numbers) -> dict[str, Any]:
    body = loss_body(rng, num)
    layers = shapes(body["network"])
    k = int(rng.integers(len(layers)))
    n_out, n_in = layers[k]
    if rng.random() < 0.6:
        body["parameter"] = {"layer": k, "kind": "weights", "index": [int(rng.integers(n_out)), int(rng.integers(n_in))]}
    else:
        body["parameter"] = {"layer": k, "kind": "biases", "index": [int(rng.integers(n_out))]}
    return body


def claimed_array(rng: np.random.Generator, num: Numbers, shape: tuple[int, ...]) -> Any:
    """Numbers of ``shape`` as a learner might claim them: extreme or ordinary, some null."""
    if len(shape) == 1:
        return [num.any() if rng.random() < 0.7 else None for _ in range(shape[0])]
    return [claimed_array(rng, num, shape[1:]) for _ in range(shape[0])]


def claimed_step(rng: np.random.Generator, num: Numbers, body: dict[str, Any]) -> dict[str, Any]:
    layers, batch = shapes(body["network"]), len(body["inputs"])
    step: dict[str, Any] = {}
    if rng.random() < 0.5:
        step["layers"] = [
            {name: claimed_array(rng, num, (batch, n_out)) for name in ("pre_activation", "activation", "delta") if rng.random() < 0.5}
            for n_out, _ in layers
        ]
    if rng.random() < 0.5:
        step["output"] = claimed_array(rng, num, (batch, layers[-1][0]))
    if rng.random() < 0.5:
        step["loss"] = num.any()
    if rng.random() < 0.7:
        step["gradients"] = [
            {"weights": claimed_array(rng, num, (n_out, n_in)), "biases": claimed_array(rng, num, (n_out,))} for n_out, n_in in layers
        ]
    return step


def check_body(rng: np.random.Generator, num: Numbers) -> dict[str, Any]:
    """A loss body or a short training, and extreme claims about it (some of them its own true values)."""
    if rng.random() < 0.6:
        body = loss_body(rng, num)
        body["claimed"] = claimed_step(rng, num, body)
    else:
        body = {k: v for k, v in train_body(rng, num).items() if k not in ("record", "record_every")}
        body["iterations"] = min(body["iterations"], 4) if rng.random() > 0.05 else body["iterations"]
        last = min(body["iterations"], 4)
        claims = []
        for i in sorted({int(rng.integers(1, last + 1)) for _ in range(int(rng.integers(1, 3)))}):
            claim = {"iteration": i, **claimed_step(rng, num, body)}
            if rng.random() < 0.6:
                claim["network"] = {"layers": [{"weights": claimed_array(rng, num, (o, n))} for o, n in shapes(body["network"])]}
            claims.append(claim)
        body["claimed"] = {"iterations": claims}
    if rng.random() < 0.3:
        body["tolerance"] = {"rtol": pick(rng, TOLERANCES), "atol": pick(rng, TOLERANCES)}
    return body


# Labels as clients may write them: markup and quotes a picture must escape, other scripts, the longest allowed.
LABELS = ["x1", "<b>&amp;</b>", 'a"b\\c', "ẑ", "∂L/∂w", "x" * 40, "{}[]->;", "nan", "inf"]


def graph_body(rng: np.random.Generator, num: Numbers) -> dict[str, Any]:
    """A loss body, one sample or (null) all of them, now and then one past the batch; labels for some nodes."""
    body = loss_body(rng, num)
    batch = len(body["inputs"])
    u = rng.random()
    if u < 0.3:
        body["sample"] = None
    elif u < 0.95:
        body["sample"] = int(rng.integers(batch))
    else:
        body["sample"] = batch  # a 422
    first = body["sample"] if isinstance(body["sample"], int) and body["sample"] < batch else 0
    if rng.random() < 0.5:
        names = [f"inputs[{first}][0]", "layers[0].weights[0][0]", f"layers[0].products[{first}][0][0]", f"targets[{first}][0]", "loss"]
        body["labels"] = {name: pick(rng, LABELS) for name in names if rng.random() < 0.6}
    return body


def diagram_body(rng: np.random.Generator, num: Numbers) -> dict[str, Any]:
    kind = pick(rng, ["network", "inputs", "gradients", "gradients"])
    if kind == "network":
        return {"network": network(rng, num, None)}
    if kind == "inputs":
        return forward_body(rng, num)
    return loss_body(rng, num)


# -- checks ------------------------------------------------------------------------------------


def reject_constant(token: str) -> None:
    raise AssertionError(f"the JSON carries {token}, which strict JSON does not allow")


def strict_json(text: str) -> Any:
    return json.loads(text, parse_constant=reject_constant)


# Where the response models document a null: the loss of a training's network when it is not finite,
# and a textbook factor of /v1/explain that is not finite (the fused form is still exact).
# /v1/check's: no wrong number, a quantity without a layer or part, an expected value that is not finite,
# a search that was complete.
DOCUMENTED_NULLS = {
    (TrainResponse, "final_loss"),
    (TrainSummary, "final_loss"),
    (TermOut, "value"),
    (CheckResponse, "first_wrong"),
    (QuantityOut, "layer"),
    (QuantityOut, "part"),
    (QuantityOut, "wrong_at"),
    (ElementOut, "expected"),
    (ElementOut, "rel_error"),
    (SearchOut, "message"),
    (GraphNode, "value"),
    (GraphNode, "grad"),
    (GraphEdge, "local_derivative"),
}


def _allows_none(annotation: Any) -> bool:
    return (
        annotation is None
        or annotation is type(None)
        or (typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in typing.get_args(annotation))
    )


def null_paths(annotation: Any, value: Any, path: tuple = (), owner: tuple | None = None) -> Iterator[str]:
    """Every null in ``value`` (JSON) that ``annotation`` (a response model's type) does not document.

    A null is reported where the type has no ``None`` (pydantic would reject it too), and also where
    the type is optional but the field is not one of DOCUMENTED_NULLS (an optional field such as a
    trace entry's ``output`` is omitted when not recorded, never null).
    """
    where = "/".join(map(str, path)) or "(root)"
    if value is None:
        if not _allows_none(annotation):
            yield f"{where}: null where the model declares {annotation!r}"
        elif owner not in DOCUMENTED_NULLS:
            yield f"{where}: null in an optional field that is documented as omitted, not null"
        return
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        yield from null_paths(typing.get_args(annotation)[0], value, path, owner)
    elif origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if arg is not type(None):
                yield from null_paths(arg, value, path, owner)
                break
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel) and isinstance(value, dict):
        for key, item in value.items():
            field = annotation.model_fields.get(key)
            if field is not None:
                yield from null_paths(field.annotation, item, path + (key,), (annotation, key))
    elif origin in (list, tuple) and isinstance(value, list):
        (item_type, *_) = typing.get_args(annotation) or (Any,)
        for i, item in enumerate(value):
            yield from null_paths(item_type, item, path + (i,), owner)


def check_model(model: type[BaseModel], data: Any) -> BaseModel:
    bad = list(null_paths(model, data))
    assert not bad, f"nulls in a {model.__name__}: {bad[:5]}"
    return model.model_validate(data)


def check_error(r: Any) -> None:
    assert r.status_code in (413, 422), r.status_code
    assert r.headers["content-type"].startswith("application/json"), r.headers["content-type"]
    data = strict_json(r.text)
    assert isinstance(data, dict) and set(data) == {"detail"} and data["detail"], data
    ErrorBody.model_validate(data)
    for entry in data["detail"]:
        assert set(entry) == {"loc", "msg", "type"}, entry
        assert isinstance(entry["loc"], list) and isinstance(entry["msg"], str) and isinstance(entry["type"], str)
    assert all(e["type"] != "internal_error" for e in data["detail"])


JSON = {"content-type": "application/json"}
LOSS_FIELDS = ("network", "inputs", "targets", "loss", "reduction")


def gradients_of(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    """/v1/gradients's answer for the loss fields of ``body`` (a 200 is expected)."""
    sent = {k: body[k] for k in LOSS_FIELDS if k in body}
    r = client.post("/v1/gradients", content=json.dumps(sent, allow_nan=False), headers=JSON)
    assert r.status_code == 200, ("/v1/gradients does not compute what this endpoint did", r.text[:300])
    return strict_json(r.text)


def check_gradient_shapes(grads: list[dict[str, Any]], net: dict[str, Any], what: str) -> None:
    assert [(len(g["weights"]), len(g["weights"][0]), len(g["biases"])) for g in grads] == [(o, i, o) for o, i in shapes(net)], what


def check_network_shapes(out: dict[str, Any], net: dict[str, Any]) -> None:
    assert shapes(out) == shapes(net)
    for layer_out, layer_in in zip(out["layers"], net["layers"]):
        assert layer_out["activation"] == layer_in.get("activation", "identity")
        assert layer_out.get("biases") is not None and len(layer_out["biases"]) == len(layer_out["weights"])


def check_forward(client: TestClient, body: dict[str, Any], data: dict[str, Any]) -> None:
    check_model(ForwardResponse, data)
    batch, out = len(body["inputs"]), shapes(body["network"])
    assert len(data["layers"]) == len(out)
    for layer, (n_out, _) in zip(data["layers"], out):
        assert np.shape(layer["pre_activation"]) == np.shape(layer["activation"]) == (batch, n_out)
    assert data["output"] == data["layers"][-1]["activation"]


def check_loss(client: TestClient, body: dict[str, Any], data: dict[str, Any]) -> None:
    check_model(LossResponse, data)
    assert np.shape(data["output"]) == (len(body["inputs"]), shapes(body["network"])[-1][0])


def check_gradients(client: TestClient, body: dict[str, Any], data: dict[str, Any]) -> None:
    check_model(GradientsResponse, data)
    check_gradient_shapes(data["gradients"], body["network"], "gradients")


def check_gradcheck(client: TestClient, body: dict[str, Any], data: dict[str, Any]) -> None:
    check_model(GradcheckResponse, data)
    check_gradient_shapes(data["numerical"], body["network"], "numerical")
    check_gradient_shapes(data["analytical"], body["network"], "analytical")
    assert data["max_abs_error"] >= 0 and data["max_rel_error"] >= 0
    # The analytical side is /v1/gradients's answer, to the bit.
    assert data["analytical"] == gradients_of(client, body)["gradients"], "analytical differs from /v1/gradients"


def check_explain(client: TestClient, body: dict[str, Any], data: dict[str, Any]) -> None:
    check_model(ExplainResponse, data)
    assert data["parameter"] == body["parameter"]
    assert len(data["samples"]) == len(body["inputs"])
    # The text is for people: a factor that is not finite is written n/a, never inf or nan.
    texts = data["lines"] + [data["reduction"]["line"]] + [st["line"] for d in data["samples"] for st in d["steps"]]
    bad = [t for t in texts if NON_FINITE_WORD.search(t)]
    assert not bad, f"explain writes non-finite numbers: {bad[:3]}"
    # The gradient is /v1/gradients's own.
    p = body["parameter"]
    grads = gradients_of(client, body)["gradients"][p["layer"]][p["kind"]]
    expected = grads[p["index"][0]][p["index"][1]] if p["kind"] == "weights" else grads[p["index"][0]]
    assert data["gradient"] == expected, ("explain's gradient differs from /v1/gradients", data["gradient"], expected)


def _claimed_at(claimed: Any, path: list[Any]) -> Any:
    for part in path:
        claimed = claimed[part]
    return claimed


def check_check(client: TestClient, body: dict[str, Any], data: dict[str, Any]) -> None:
    check_model(CheckResponse, data)
    claimed, paths = body["claimed"], [q["path"] for q in data["quantities"]]
    assert len(set(map(tuple, paths))) == len(paths), "a quantity reported twice"
    for q in data["quantities"]:
        array = _claimed_at(claimed, q["path"])
        for element in (q["worst"], q["worst_given_claims"]):
            assert float(_claimed_at(array, element["index"])) == element["claimed"], ("worst element", q["path"], element)
        earned = q["correct"] or (body.get("carry_forward", True) and q["wrong_at"] is None)
        assert (q["points"] == q["max_points"]) == earned or q["max_points"] == 0
        assert (q["wrong_at"] is None) or not (q["correct"] or q["consistent"])
    if data["first_wrong"] is not None:
        assert any(data["first_wrong"][: len(p)] == p for p in paths), data["first_wrong"]
        assert _claimed_at(claimed, data["first_wrong"]) is not None
    assert 0 <= data["score"] <= data["max_score"]
    assert all(index < len(data["diagnoses"]) for q in data["quantities"] for index in q["mistakes"])
    assert data["search"]["complete"] == (data["search"]["variants_tried"] == data["search"]["variants_total"])
    # Without training, the true values are /v1/gradients's own, to the bit.
    if "optimizer" not in body:
        sent = {k: body[k] for k in LOSS_FIELDS if k in body}
        r = client.post("/v1/gradients", content=json.dumps(sent, allow_nan=False), headers=JSON)
        if r.status_code != 200:
            return
        truth = strict_json(r.text)
        for q in data["quantities"]:
            expected = q["worst"]["expected"]
            if q["kind"] == "gradients":
                assert expected == _claimed_at(truth["gradients"][q["layer"]][q["part"]], q["worst"]["index"]), q
            elif q["kind"] in ("loss", "output"):
                assert expected == _claimed_at(truth[q["kind"]], q["worst"]["index"]), q


def graph_json(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/v1/graph", content=json.dumps(body, allow_nan=False), headers=JSON)
    assert r.status_code == 200, ("another answer of /v1/graph computes, its JSON does not", r.text[:300])
    return strict_json(r.text)


def check_graph(client: TestClient, body: dict[str, Any], data: dict[str, Any]) -> None:
    """Valid against GraphResponse (nulls only where a value is not finite or a constant's grad); a DAG in
    topological order ending at the loss, /v1/loss's value; each parameter leaf's value is the body's."""
    check_model(GraphResponse, data)
    nodes, edges = data["nodes"], data["edges"]
    batch = len(body["inputs"])
    assert data["samples"] == (list(range(batch)) if body.get("sample", 0) is None else [body.get("sample", 0)])
    assert nodes[-1]["name"] == "loss" and nodes[-1]["grad"] == 1.0 and nodes[-1]["value"] == data["value"]
    assert len({n["name"] for n in nodes}) == len(nodes), "a node named twice"
    assert all(0 <= e["from"] < e["to"] < len(nodes) for e in edges)
    for node in nodes:
        if node["op"] in ("target", "const"):
            assert node["grad"] is None, node
    by_name = {n["name"]: n for n in nodes}
    for k, layer in enumerate(body["network"]["layers"]):
        for j, row in enumerate(layer["weights"]):
            for i, w in enumerate(row):
                assert by_name[f"layers[{k}].weights[{j}][{i}]"]["value"] == float(w)
    for name, label in body.get("labels", {}).items():
        assert by_name[name]["label"] == label
    sent = {k: body[k] for k in LOSS_FIELDS if k in body}
    r = client.post("/v1/loss", content=json.dumps(sent, allow_nan=False), headers=JSON)
    assert r.status_code == 200 and strict_json(r.text)["loss"] == data["value"], "the graph's loss is not /v1/loss's"


def check_graph_dot(client: TestClient, body: dict[str, Any], text: str) -> None:
    """The DOT text: one statement per node (named as in the JSON graph) and per edge."""
    assert text.startswith("digraph computation {\n") and text.endswith("}\n"), text[:80]
    graph = graph_json(client, body)
    lines = text.splitlines()
    for node in graph["nodes"]:
        assert any(line.startswith(f'  "{node["name"]}" [label=<') for line in lines), node["name"]
    assert sum(" -> " in line for line in lines) == len(graph["edges"])


def check_trace(body: dict[str, Any], trace: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    recorded = set(body.get("record", []))
    for entry in trace:
        assert set(entry) - {"iteration", "loss"} == recorded, (sorted(entry), sorted(recorded))
        if "network" in entry:
            check_network_shapes(entry["network"], body["network"])
        if "gradients" in entry:
            check_gradient_shapes(entry["gradients"], body["network"], "trace gradients")
    iterations = [e["iteration"] for e in trace]
    assert iterations == sorted(set(iterations)) and all(1 <= i <= body["iterations"] for i in iterations)
    check_network_shapes(summary["network"], body["network"])
    if summary["status"] == "diverged":
        assert isinstance(summary.get("diverged_at"), int) and 1 <= summary["diverged_at"] <= body["iterations"]
        assert all(i < summary["diverged_at"] for i in iterations)
        # The last completed iteration is always in the trace; none completed when iteration 1's
        # update already overflows (its forward pass overflowing is a 422).
        assert iterations[-1:] == ([summary["diverged_at"] - 1] if summary["diverged_at"] > 1 else [])
    else:
        assert "diverged_at" not in summary, "diverged_at is present only when diverged"
        assert iterations and iterations[-1] == body["iterations"], "a completed training records its last iteration"


def check_final_loss(client: TestClient, body: dict[str, Any], summary: dict[str, Any]) -> None:
    """``final_loss`` is the trained network's loss on the same data, null exactly when that is not finite."""
    sent = {k: body[k] for k in LOSS_FIELDS if k in body} | {"network": summary["network"]}
    r = client.post("/v1/loss", content=json.dumps(sent, allow_nan=False), headers=JSON)
    if summary["final_loss"] is None:
        assert r.status_code == 422, ("final_loss is null but /v1/loss computes the trained network's loss", r.text[:200])
    elif r.status_code == 200:
        # (A 422 is possible: a hidden unit may overflow and saturate, e.g. tanh(inf), leaving the loss finite.)
        assert summary["final_loss"] == pytest.approx(strict_json(r.text)["loss"], rel=1e-12, abs=0.0), "final_loss"


def check_train(client: TestClient, body: dict[str, Any], data: dict[str, Any]) -> None:
    check_model(TrainResponse, data)
    check_trace(body, data["trace"], data)
    check_final_loss(client, body, data)


def check_ndjson(client: TestClient, body: dict[str, Any], lines: list[Any]) -> None:
    assert lines, "an empty stream"
    *entries, summary = lines
    for entry in entries:
        check_model(TraceEntry, entry)
    check_model(TrainSummary, summary)
    check_trace(body, entries, summary)
    # The stream is the JSON answer, its trace line by line and the rest on the last line.
    r = client.post("/v1/train", content=json.dumps(body, allow_nan=False), headers=JSON)
    assert r.status_code == 200, ("the stream is a 200 but the JSON answer is not", r.status_code)
    whole = strict_json(r.text)
    assert entries == whole.pop("trace") and summary == whole, "the stream differs from the JSON answer"


SVG_NS = "{http://www.w3.org/2000/svg}"
NON_FINITE_WORD = re.compile(r"\b(inf|infinity|nan)\b", re.IGNORECASE)
NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
# Coordinates, widths and radii of a picture a few hundred pixels across; a number far outside this
# (finite but absurd, e.g. a point placed at y = 1e300) would not draw either.
SVG_COORDINATE_BOUND = 1e6
GEOMETRY = {
    "x",
    "y",
    "x1",
    "y1",
    "x2",
    "y2",
    "cx",
    "cy",
    "r",
    "width",
    "height",
    "viewBox",
    "points",
    "transform",
    "stroke-width",
    "stroke-opacity",
    "font-size",
}


def check_graph_svg(client: TestClient, body: dict[str, Any], text: str) -> None:
    """check_svg's rules, but for labels: a node's value or grad may be inf or nan (drawn as such, null in
    JSON); and every node of the JSON graph is in the picture, named in its title."""
    check_svg(client, body, text, labels_may_be_non_finite=True)
    root = ET.fromstring(text)
    titles = sorted(g.find(f"{SVG_NS}title").text for g in root.iter(f"{SVG_NS}g") if g.get("class") == "node")
    assert titles == sorted(n["name"] for n in graph_json(client, body)["nodes"])


def check_svg(client: TestClient, body: dict[str, Any], text: str, labels_may_be_non_finite: bool = False) -> None:
    root = ET.fromstring(text)
    assert root.tag == f"{SVG_NS}svg", root.tag
    for element in root.iter():
        for name, value in element.attrib.items():
            assert "inf" not in value.lower() and "nan" not in value.lower(), (element.tag, name, value)
            if name not in GEOMETRY:
                continue  # colours (#e5e7eb is no number), fonts, anchors
            for token in NUMBER.findall(value):
                number = float(token)
                assert math.isfinite(number) and abs(number) <= SVG_COORDINATE_BOUND, (element.tag, name, value)
        # Labels print numbers with Python's format, which writes inf and nan as such.
        label = element.text or ""
        assert labels_may_be_non_finite or not NON_FINITE_WORD.search(label), (element.tag, label)


# -- the endpoints ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    name: str
    path: str
    make: Callable[[np.random.Generator, Numbers], dict[str, Any]]
    kind: str  # json, ndjson, svg, dot
    check: Callable[[TestClient, dict[str, Any], Any], None]


ENDPOINTS = [
    Endpoint("forward", "/v1/forward", forward_body, "json", check_forward),
    Endpoint("loss", "/v1/loss", loss_body, "json", check_loss),
    Endpoint("gradients", "/v1/gradients", loss_body, "json", check_gradients),
    Endpoint("gradcheck", "/v1/gradcheck", gradcheck_body, "json", check_gradcheck),
    Endpoint("explain", "/v1/explain", explain_body, "json", check_explain),
    Endpoint("train", "/v1/train", train_body, "json", check_train),
    Endpoint("train-ndjson", "/v1/train", train_body, "ndjson", check_ndjson),
    Endpoint("train-plot", "/v1/train/plot", train_body, "svg", check_svg),
    Endpoint("diagram", "/v1/diagram", diagram_body, "svg", check_svg),
    Endpoint("check", "/v1/check", check_body, "json", check_check),
    Endpoint("graph", "/v1/graph", graph_body, "json", check_graph),
    Endpoint("graph-dot", "/v1/graph", graph_body, "dot", check_graph_dot),
    Endpoint("graph-svg", "/v1/graph", graph_body, "svg", check_graph_svg),
]
BY_NAME = {e.name: e for e in ENDPOINTS}


def body_for(endpoint: str, case: int) -> dict[str, Any]:
    """Case ``case`` of ``endpoint``'s fuzzing: the same body on every run."""
    index = [e.name for e in ENDPOINTS].index(endpoint)
    rng = np.random.default_rng((SEED, index, case))
    return BY_NAME[endpoint].make(rng, Numbers(rng))


@pytest.fixture(scope="module")
def app_client() -> Iterator[TestClient]:
    with TestClient(create_app(Settings()), raise_server_exceptions=False) as c:
        yield c


def post(client: TestClient, endpoint: Endpoint, body: dict[str, Any]) -> Any:
    # allow_nan=False: the request itself is strict JSON, every number in it finite.
    accept = {"ndjson": "application/x-ndjson", "dot": "text/vnd.graphviz", "svg": "image/svg+xml"}.get(endpoint.kind)
    headers = {**JSON, "accept": accept} if accept else JSON
    return client.post(endpoint.path, content=json.dumps(body, allow_nan=False), headers=headers)


# What a broken answer raises in the checks: a failed assertion, or JSON, XML or a model that does
# not parse (json.JSONDecodeError and pydantic's ValidationError are ValueErrors), or a missing key.
BROKEN = (AssertionError, ValueError, KeyError, IndexError, TypeError, ET.ParseError)


def check_answer(client: TestClient, endpoint: Endpoint, body: dict[str, Any], r: Any) -> None:
    """Every rule of the module docstring for one answer; raises AssertionError when one is broken."""
    assert r.status_code in (200, 413, 422), f"status {r.status_code}: {r.text[:500]}"
    if r.status_code != 200:
        check_error(r)
        return
    content_type = r.headers["content-type"]
    if endpoint.kind == "json":
        assert content_type.startswith("application/json"), content_type
        endpoint.check(client, body, strict_json(r.text))
    elif endpoint.kind == "ndjson":
        assert content_type.startswith("application/x-ndjson"), content_type
        assert r.text.endswith("\n"), "the stream ends mid-line"
        endpoint.check(client, body, [strict_json(line) for line in r.text.splitlines()])
    elif endpoint.kind == "dot":
        assert content_type.startswith("text/vnd.graphviz"), content_type
        endpoint.check(client, body, r.text)
    else:
        assert content_type.startswith("image/svg+xml"), content_type
        endpoint.check(client, body, r.text)


def describe_failure(endpoint: Endpoint, case: int | str, body: dict[str, Any], r: Any, error: BaseException) -> str:
    return (
        f"{endpoint.name} case {case} (body_for({endpoint.name!r}, {case})): {type(error).__name__}: {error}\n"
        f"  status {r.status_code}, answer {r.text[:300]!r}\n"
        f"  body {json.dumps(body, allow_nan=False)}"
    )


NEEDS_DOT = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed (apt-get install graphviz)")


@pytest.mark.parametrize(
    "endpoint", [pytest.param(e, id=e.name, marks=[NEEDS_DOT] if e.kind == "svg" and e.path == "/v1/graph" else []) for e in ENDPOINTS]
)
def test_every_answer_is_valid(app_client: TestClient, endpoint: Endpoint) -> None:
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    for case in range(CASES):
        body = body_for(endpoint.name, case)
        r = post(app_client, endpoint, body)
        statuses[r.status_code] += 1
        try:
            check_answer(app_client, endpoint, body, r)
        except BROKEN as error:
            failures.append(describe_failure(endpoint, case, body, r, error))
    print(f"{endpoint.name}: statuses {dict(sorted(statuses.items()))}, {len(failures)} failures")
    assert not failures, f"{len(failures)} of {CASES} answers broke the contract; the first ones:\n" + "\n".join(failures[:5])
    # The fuzzer is only as good as the answers it gets to check: most bodies must compute, not all
    # stop at an overflow.
    assert statuses[200] >= CASES // 4, statuses


# -- fixed regression cases: failures found once, kept fixed ---------------------------------

TANH_1_1 = {"network": {"layers": [{"weights": [[1.0]], "biases": [0.0], "activation": "tanh"}]}, "inputs": [[1.0]]}

# Weight and bias 2**256 and 0, learning rate 0.75: each step multiplies the output by -2.
DOUBLING = {
    "network": {"layers": [{"weights": [[2.0**256]], "biases": [0.0]}]},
    "inputs": [[1.0]],
    "targets": [[0.0]],
    "loss": "mse",
    "optimizer": {"name": "sgd", "learning_rate": 0.75},
}

# Failures whose fix belongs in a file being edited elsewhere: the case xfails (with this reason)
# while it fails, and fails once it passes, so that the entry is removed with the fix.
PENDING: dict[str, str] = {}

REGRESSIONS = [
    pytest.param(
        "train-plot",
        # Equal losses of 1e16 (>= 2**53): the axis's +-0.5 margin vanished in rounding (0/0 coordinates).
        {
            "network": {"layers": [{"weights": [[0.0]], "biases": [1e8]}]},
            "inputs": [[0.0]],
            "targets": [[0.0]],
            "loss": "mse",
            "optimizer": {"name": "sgd", "learning_rate": 0.1},
            "iterations": 1,
        },
        id="train-plot-equal-losses-past-2**53",
    ),
    pytest.param(
        "train-plot",
        # Iteration 1's loss is the largest float64 (logit 1.8e308, target 0), iteration 2's log(2):
        # a log scale whose top is log10 of the largest float64.
        {
            "network": {"layers": [{"weights": [[MAX]], "biases": [0.0], "activation": "sigmoid"}]},
            "inputs": [[1.0]],
            "targets": [[0.0]],
            "loss": "binary_cross_entropy",
            "optimizer": {"name": "sgd", "learning_rate": MAX},
            "iterations": 2,
            "trainable": [{"biases": [False]}],
        },
        id="train-plot-loss-of-max-float64",
    ),
    pytest.param(
        "train",
        # The output doubles in size every iteration (2**256, 2**257, ...): iteration 257, the first of
        # the training loop's second chunk, is the first whose loss overflows; iteration 256, not
        # scheduled by record_every, must still end the trace.
        {**DOUBLING, "iterations": 300, "record_every": 1000},
        id="train-diverges-at-the-first-iteration-of-a-chunk",
    ),
    pytest.param(
        "train-ndjson",
        {**DOUBLING, "iterations": 300, "record_every": 1000},
        id="train-ndjson-diverges-at-the-first-iteration-of-a-chunk",
    ),
    pytest.param(
        "train",
        # All 256 iterations complete, but the trained network's loss, (2**512)**2, overflows: a
        # completed training whose final_loss is null ("null when not finite", not only when diverged).
        {**DOUBLING, "iterations": 256},
        id="train-completed-with-final-loss-not-finite",
    ),
    pytest.param(
        "gradcheck",
        # A numerical gradient of a few 1e-318: the relative error overflowed to inf, sent as null.
        {**TANH_1_1, "targets": [[1e-10]], "loss": "mse", "epsilon": 8e307},
        id="gradcheck-epsilon-8e307",
    ),
    pytest.param(
        "gradcheck",
        {**TANH_1_1, "targets": [[1e-10]], "loss": "mse", "reduction": "sum", "epsilon": MAX, "atol": 0.0, "rtol": 0.0},
        id="gradcheck-epsilon-max",
    ),
    pytest.param(
        "diagram",
        # 5 * 1e308 overflowed before the division by the largest weight: stroke-width inf.
        {"network": {"layers": [{"weights": [[1e308, -1.0]], "biases": [0.0]}]}},
        id="diagram-weight-1e308",
    ),
    pytest.param(
        "diagram",
        {"network": {"layers": [{"weights": [[MAX], [-MAX]]}, {"weights": [[5e-324, 1.0]]}]}},
        id="diagram-weights-max-and-subnormal",
    ),
]


@pytest.mark.parametrize("endpoint_name, body", REGRESSIONS)
def test_regression(request: pytest.FixtureRequest, app_client: TestClient, endpoint_name: str, body: dict[str, Any]) -> None:
    endpoint = BY_NAME[endpoint_name]
    pending = PENDING.get(request.node.callspec.id)
    r = post(app_client, endpoint, body)
    try:
        assert r.status_code == 200, f"status {r.status_code}: {r.text[:500]}"
        check_answer(app_client, endpoint, body, r)
    except BROKEN as error:
        if pending:
            pytest.xfail(pending)
        pytest.fail(describe_failure(endpoint, "regression", body, r, error))
    assert not pending, f"fixed: remove {request.node.callspec.id!r} from PENDING"


# -- the checks themselves: each catches what it is there for --------------------------------


class FakeAnswer:
    def __init__(self, status: int, text: str, content_type: str) -> None:
        self.status_code, self.text, self.headers = status, text, {"content-type": content_type}


def test_the_checks_catch_what_they_should(app_client: TestClient) -> None:
    tanh = {**TANH_1_1, "targets": [[0.5]], "loss": "mse"}
    train = {**tanh, "optimizer": {"name": "sgd", "learning_rate": 0.1}, "iterations": 2}
    good = strict_json(post(app_client, BY_NAME["train"], train).text)

    def broken(endpoint: str, body: dict[str, Any], answer: Any, status: int = 200) -> bool:
        e = BY_NAME[endpoint]
        text = answer if isinstance(answer, str) else json.dumps(answer)
        ctype = {"json": "application/json", "ndjson": "application/x-ndjson", "svg": "image/svg+xml", "dot": "text/vnd.graphviz"}[e.kind]
        try:
            check_answer(app_client, e, body, FakeAnswer(status, text, ctype if status == 200 else "application/json"))
        except BROKEN:
            return True
        return False

    assert not broken("train", train, good)
    assert broken("train", train, good, status=500)
    assert broken("train", train, json.dumps(good).replace('"final_loss": ', '"final_loss": NaN, "x": '))
    assert broken("train", train, {**good, "final_loss": None})  # /v1/loss computes it: not null
    assert broken("train", train, {**good, "diverged_at": 2})  # only when diverged
    assert broken("train", train, {**good, "trace": [{**good["trace"][0], "output": None}, good["trace"][1]]})
    assert broken("loss", tanh, {"loss": None, "output": [[0.1]]})
    assert broken("loss", tanh, {"detail": [{"loc": [], "msg": "x"}]}, status=422)
    assert not broken("loss", tanh, {"detail": [{"loc": ["body"], "msg": "x", "type": "t"}]}, status=422)
    explain = {**tanh, "parameter": {"layer": 0, "kind": "biases", "index": [0]}}
    good_explain = strict_json(post(app_client, BY_NAME["explain"], explain).text)
    assert not broken("explain", explain, good_explain)
    step = good_explain["samples"][0]["steps"][0]
    factor_null = {**step, "factors": [{**step["factors"][0], "value": None}, *step["factors"][1:]]}
    step_null = {**step, "value": None}
    for new_step, bad in ((factor_null, False), (step_null, True)):
        sample = {**good_explain["samples"][0], "steps": [new_step, *good_explain["samples"][0]["steps"][1:]]}
        assert broken("explain", explain, {**good_explain, "samples": [sample]}) is bad
    assert broken("explain", explain, {**good_explain, "lines": ["x = inf * 2"]})
    svg = "<svg xmlns='http://www.w3.org/2000/svg'><line x1='0' y1='{}' stroke='#e5e7eb'/><text>{}</text></svg>"
    assert not broken("diagram", {}, svg.format("1.5", "1e+300"))
    assert broken("diagram", {}, svg.format("inf", "1"))
    assert broken("diagram", {}, svg.format("1e300", "1"))
    assert broken("diagram", {}, svg.format("1", "-nan"))
    assert broken("diagram", {}, "<svg xmlns='http://www.w3.org/2000/svg'><line></svg>")
    graph = {**tanh, "sample": 0}
    good_graph = strict_json(post(app_client, BY_NAME["graph"], graph).text)
    assert not broken("graph", graph, good_graph)
    assert broken("graph", graph, {**good_graph, "value": None})  # the loss is never null
    node = good_graph["nodes"][0]
    assert not broken("graph", graph, {**good_graph, "nodes": [{**node, "grad": None}, *good_graph["nodes"][1:]]})
    assert broken("graph", graph, {**good_graph, "nodes": [{**node, "label": None}, *good_graph["nodes"][1:]]})
    assert broken("graph", graph, {**good_graph, "edges": [{**good_graph["edges"][0], "from": 99}, *good_graph["edges"][1:]]})
    good_dot = post(app_client, BY_NAME["graph-dot"], graph).text
    assert not broken("graph-dot", graph, good_dot)
    assert broken("graph-dot", graph, good_dot.replace(" -> ", " ", 1))
    graph_svg = "<svg xmlns='http://www.w3.org/2000/svg'><g class='node'><title>x</title><text>grad nan</text></g></svg>"
    assert broken("graph-svg", graph, graph_svg)  # a picture without the graph's nodes

"""Random valid request bodies (JSON-ready dicts) of every kind, drawn from a seeded generator.

Ordinary numbers only: the response fuzzer (tests/api/test_response_fuzz.py) covers float64's edges.
Every activation and loss appears (from the engine's tables), with the loss's required last
activation, targets it samples itself, and class indices and options where it takes them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from app.nn.activations import ACTIVATIONS, LAST_LAYER_ONLY
from app.nn.losses import LOSSES

HIDDEN = sorted(set(ACTIVATIONS) - LAST_LAYER_ONLY)


def _pick(rng: np.random.Generator, options: list[Any]) -> Any:
    return options[int(rng.integers(len(options)))]


def network_body(rng: np.random.Generator, last_activation: str | None = None) -> dict[str, Any]:
    """``{"network", "inputs"}``: 1-3 layers of width 1-4, a batch of 1-4 rows."""
    depth = int(rng.integers(1, 4))
    sizes = [int(rng.integers(1, 5)) for _ in range(depth + 1)]
    if last_activation == "softmax" and sizes[-1] == 1:
        sizes[-1] = 2
    layers = []
    for k, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        last = k == depth - 1
        act = (last_activation or _pick(rng, sorted(ACTIVATIONS))) if last else _pick(rng, HIDDEN)
        layer: dict[str, Any] = {"weights": rng.normal(0, 1, (n_out, n_in)).tolist(), "activation": act}
        if rng.random() < 0.8:
            layer["biases"] = rng.normal(0, 0.5, n_out).tolist()
        layers.append(layer)
    batch = int(rng.integers(1, 5))
    return {"network": {"layers": layers}, "inputs": rng.normal(0, 1, (batch, sizes[0])).tolist()}


def loss_body(rng: np.random.Generator) -> dict[str, Any]:
    """A network, inputs, a loss with targets it accepts, a reduction and (cross_entropy) its options."""
    loss = _pick(rng, sorted(LOSSES))
    body = network_body(rng, LOSSES[loss].requires_activation)
    batch, n_out = len(body["inputs"]), len(body["network"]["layers"][-1]["weights"])
    targets: Any = LOSSES[loss].sample_targets(rng, (batch, n_out)).tolist()
    if LOSSES[loss].accepts_class_indices and rng.random() < 0.5:
        targets = rng.integers(0, n_out, batch).tolist()
    if LOSSES[loss].accepts_class_options:
        if rng.random() < 0.3:
            body["label_smoothing"] = float(rng.uniform(0, 0.5))
        if rng.random() < 0.3:
            body["class_weights"] = rng.uniform(0.1, 2, n_out).tolist()
    body.update(targets=targets, loss=loss, reduction=_pick(rng, ["mean", "sum"]))
    return body


def train_body(rng: np.random.Generator) -> dict[str, Any]:
    """A loss body plus an optimizer, 1-30 iterations and a random choice of what to record."""
    body = loss_body(rng)
    if rng.random() < 0.5:
        optimizer: dict[str, Any] = {"name": "sgd", "learning_rate": float(rng.uniform(0.01, 1)), "momentum": _pick(rng, [0.0, 0.9])}
    else:
        optimizer = {"name": "adam", "learning_rate": float(rng.uniform(0.001, 0.1))}
    record = [name for name in ("output", "gradients", "network") if rng.random() < 0.5]
    body.update(optimizer=optimizer, iterations=int(rng.integers(1, 31)), record=record, record_every=int(rng.integers(1, 4)))
    if rng.random() < 0.3:
        body["trainable"] = [{"weights": (rng.random(np.shape(layer["weights"])) < 0.5).tolist()} for layer in body["network"]["layers"]]
    return body


def gradcheck_body(rng: np.random.Generator) -> dict[str, Any]:
    return loss_body(rng)


def explain_body(rng: np.random.Generator) -> dict[str, Any]:
    """A loss body plus one of its parameters, drawn uniformly among layers and kinds."""
    body = loss_body(rng)
    layers = body["network"]["layers"]
    k = int(rng.integers(len(layers)))
    n_out, n_in = np.shape(layers[k]["weights"])
    if rng.random() < 0.5:
        parameter = {"layer": k, "kind": "weights", "index": [int(rng.integers(n_out)), int(rng.integers(n_in))]}
    else:
        parameter = {"layer": k, "kind": "biases", "index": [int(rng.integers(n_out))]}
    body["parameter"] = parameter
    return body


def graph_body(rng: np.random.Generator) -> dict[str, Any]:
    """A loss body plus a sample (or null: all of them) and labels for a few of its nodes."""
    body = loss_body(rng)
    batch = len(body["inputs"])
    sample = None if rng.random() < 0.3 else int(rng.integers(batch))
    body["sample"] = sample
    first = 0 if sample is None else sample
    if rng.random() < 0.5:
        body["labels"] = {f"inputs[{first}][0]": "x1", "layers[0].weights[0][0]": "w", "loss": "L"}
    return body


def _claimed_array(rng: np.random.Generator, shape: tuple[int, ...]) -> Any:
    """Random numbers of ``shape``, some (sometimes all) of them null: a learner's partial work."""
    values = rng.normal(0, 1, shape)
    kept = rng.random(shape) < _pick(rng, [0.0, 0.5, 1.0])
    return np.where(kept, values, None).tolist()


def _claimed_parameters(rng: np.random.Generator, layers: list[dict[str, Any]]) -> list[Any]:
    entries: list[Any] = []
    for layer in layers:
        n_out, n_in = np.shape(layer["weights"])
        entry: dict[str, Any] = {}
        if rng.random() < 0.6:
            entry["weights"] = _claimed_array(rng, (n_out, n_in))
        if rng.random() < 0.6:
            entry["biases"] = _claimed_array(rng, (n_out,))
        entries.append(entry if rng.random() < 0.8 else None)
    return entries


def _claimed_step(rng: np.random.Generator, body: dict[str, Any]) -> dict[str, Any]:
    """A claim about one pass: random keys of /v1/forward's layers (with delta), output, loss, gradients."""
    layers, batch = body["network"]["layers"], len(body["inputs"])
    step: dict[str, Any] = {}
    if rng.random() < 0.6:
        step["layers"] = [
            {
                name: _claimed_array(rng, (batch, len(layer["weights"])))
                for name in ("pre_activation", "activation", "delta")
                if rng.random() < 0.5
            }
            if rng.random() < 0.8
            else None
            for layer in layers
        ]
    if rng.random() < 0.5:
        step["output"] = _claimed_array(rng, (batch, len(layers[-1]["weights"])))
    if rng.random() < 0.5:
        step["loss"] = float(rng.normal(0, 1))
    if rng.random() < 0.6:
        step["gradients"] = _claimed_parameters(rng, layers)
    return step


def check_body(rng: np.random.Generator) -> dict[str, Any]:
    """A loss body (half the time a training of 1-4 iterations) and random claims about it: right-shaped
    random numbers, partly null, so nearly all wrong (the variant search runs); sometimes tolerance, points
    and carry_forward."""
    body = loss_body(rng)
    if rng.random() < 0.5:
        training = train_body(rng)
        body = {k: v for k, v in training.items() if k not in ("record", "record_every")}
        body["iterations"] = int(rng.integers(1, 5))
        iterations = sorted(rng.choice(np.arange(1, body["iterations"] + 1), int(rng.integers(1, body["iterations"] + 1)), replace=False))
        claims = []
        for i in iterations:
            claim = {"iteration": int(i), **_claimed_step(rng, body)}
            if rng.random() < 0.6:
                claim["network"] = {"layers": _claimed_parameters(rng, body["network"]["layers"])}
            claims.append(claim)
        rng.shuffle(claims)
        body["claimed"] = {"iterations": claims}
    else:
        body["claimed"] = _claimed_step(rng, body)
    if rng.random() < 0.3:
        body["tolerance"] = {"rtol": float(rng.uniform(0, 0.1)), "atol": float(rng.uniform(0, 1e-3))}
    if rng.random() < 0.3:
        body["points"] = {"loss": float(rng.uniform(0, 5)), "gradients": 2.0}
    if rng.random() < 0.3:
        body["carry_forward"] = bool(rng.random() < 0.5)
    return body

"""Extreme but well-typed numbers everywhere a number goes: never a 5xx, never NaN or Infinity in JSON."""

from __future__ import annotations

import copy
import json
import random

import pytest

EXTREMES = [0.0, -0.0, 1e308, -1e308, 1e-308, 5e-324, 1e154, -1e154, 709.0, 710.0, -745.0, 1e-8]
OPTIMIZERS = [
    {"name": "sgd", "learning_rate": 1e300, "momentum": 1e300, "nesterov": True, "weight_decay": 1e300},
    {"name": "adam", "learning_rate": 1e300, "betas": [0.0, 0.0], "eps": 0.0, "weight_decay": 1e300},
    {"name": "adam", "learning_rate": 1.0, "betas": [0.999999999, 0.999999999], "eps": 0.0},
    {"name": "sgd", "learning_rate": 5e-324},
]
ACTIVATIONS = ["identity", "relu", "leaky_relu", "sigmoid", "tanh", "softplus", "elu"]
LOSS_FIELDS = ("network", "inputs", "targets", "loss", "reduction")


def numeric_paths(obj, path=()):
    if isinstance(obj, float) or (isinstance(obj, int) and not isinstance(obj, bool)):
        yield path
    elif isinstance(obj, dict):
        for key, value in obj.items():
            if key not in ("iterations", "record_every"):
                yield from numeric_paths(value, path + (key,))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            yield from numeric_paths(value, path + (i,))


def reject_constant(token):
    raise AssertionError(f"JSON carries {token}")


def extreme_body(rnd: random.Random, examples: list[dict]) -> dict:
    body = copy.deepcopy(rnd.choice(examples))
    if rnd.random() < 0.5:
        body["optimizer"] = copy.deepcopy(rnd.choice(OPTIMIZERS))
    if rnd.random() < 0.3:
        body["network"]["layers"][0]["activation"] = rnd.choice(ACTIVATIONS)
    if rnd.random() < 0.3:
        body["loss"] = "mse"
        body["network"]["layers"][-1]["activation"] = rnd.choice(ACTIVATIONS)
    body["iterations"] = rnd.choice([1, 2, 30])
    body["record"] = rnd.sample(["output", "gradients", "network"], rnd.randint(0, 3))
    paths = [p for p in numeric_paths(body) if p[0] in ("network", "inputs", "optimizer") or (p[0] == "targets" and body["loss"] == "mse")]
    for _ in range(rnd.randint(1, 4)):
        path = rnd.choice(paths)
        target = body
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = rnd.choice(EXTREMES) * rnd.choice([1, -1])
    return body


@pytest.mark.parametrize("seed", range(8))
def test_extreme_numbers_never_break_the_contract(client, seed):
    rnd = random.Random(seed)
    examples = [client.get("/v1/examples/seed").json(), client.get("/v1/examples/xor").json()]
    for _ in range(50):
        body = extreme_body(rnd, examples)
        for path, fields, accept in [
            ("/v1/forward", ("network", "inputs"), None),
            ("/v1/gradients", LOSS_FIELDS, None),
            ("/v1/train", None, None),
            ("/v1/train", None, "application/x-ndjson"),
        ]:
            sent = {k: body[k] for k in fields} if fields else body
            headers = {"content-type": "application/json", **({"accept": accept} if accept else {})}
            r = client.post(path, content=json.dumps(sent), headers=headers)
            assert r.status_code in (200, 422), (path, r.status_code, r.text[:300])
            for line in r.text.splitlines():
                json.loads(line, parse_constant=reject_constant)

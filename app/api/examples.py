"""Named, ready-to-post ``/v1/train`` bodies, also used to prefill Swagger UI on every endpoint."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from fastapi.openapi.models import Example


@dataclass(frozen=True)
class NamedExample:
    name: str
    description: str
    body: Mapping[str, Any]


# The blog post's 2-2-1 network as its code actually runs (f2 reuses w2; the output is
# z1*w11 + z2 + w22), training only the output weight w11 with SGD at learning rate 0.5.
SEED = NamedExample(
    name="seed",
    description="The blog post's 2-2-1 relu/sigmoid network: 3 SGD steps on w11 alone, as printed in the post.",
    body={
        "network": {
            "layers": [
                {"weights": [[0.436, 0.420], [0.550, 0.420]], "biases": [0.0, 0.0], "activation": "relu"},
                {"weights": [[0.026, 1.0]], "biases": [0.330], "activation": "sigmoid"},
            ]
        },
        "inputs": [[0.7, 0.3]],
        "targets": [[1.0]],
        "loss": "binary_cross_entropy",
        "reduction": "mean",
        "optimizer": {"name": "sgd", "learning_rate": 0.5},
        "iterations": 3,
        "record": ["output", "gradients", "network"],
        "trainable": [
            {"weights": [[False, False], [False, False]], "biases": [False, False]},
            {"weights": [[True, False]], "biases": [False]},
        ],
    },
)

XOR = NamedExample(
    name="xor",
    description="A 2-4-1 tanh/sigmoid network learning XOR with Adam: the loss falls below 0.01 in 200 steps.",
    body={
        "network": {
            "layers": [
                {
                    "weights": [[0.27, -0.46], [-0.92, -0.97], [0.63, 0.83], [0.21, 0.46]],
                    "biases": [0.0, 0.0, 0.0, 0.0],
                    "activation": "tanh",
                },
                {"weights": [[0.09, 0.87, 0.63, -0.99]], "biases": [0.0], "activation": "sigmoid"},
            ]
        },
        "inputs": [[0, 0], [0, 1], [1, 0], [1, 1]],
        "targets": [[0], [1], [1], [0]],
        "loss": "binary_cross_entropy",
        "reduction": "mean",
        "optimizer": {"name": "adam", "learning_rate": 0.1},
        "iterations": 200,
        "record_every": 20,
        "record": [],
    },
)

EXAMPLES: Mapping[str, NamedExample] = MappingProxyType({e.name: e for e in (SEED, XOR)})

FORWARD_FIELDS = ("network", "inputs")
LOSS_FIELDS = FORWARD_FIELDS + ("targets", "loss", "reduction")
# The blog's w11: layer 1, weights[0][0].
SEED_PARAMETER = {"layer": 1, "kind": "weights", "index": [0, 0]}


def example_body(name: str) -> dict[str, Any]:
    """A fresh copy of the named example's ``/v1/train`` body; raises ``KeyError`` for an unknown name."""
    return copy.deepcopy(dict(EXAMPLES[name].body))


def openapi_examples(fields: tuple[str, ...] | None = None, extra: dict[str, Any] | None = None) -> dict[str, Example]:
    """Swagger UI examples (``seed`` first, so it prefills "Try it out"), cut down to ``fields``, plus ``extra``."""
    out: dict[str, Example] = {}
    for name, example in EXAMPLES.items():
        body = example_body(name)
        value = body if fields is None else {k: body[k] for k in fields if k in body}
        value.update(copy.deepcopy(extra or {}))
        out[name] = Example(summary=example.description, value=value)
    return out

"""Named examples, with a ready-to-post body for every endpoint each one fits.

``example_body(name, endpoint)`` is the one source of those bodies: ``GET /v1/examples/{name}?for=``
answers it, and Swagger UI's "Try it out" on each operation is prefilled with it
(app.api.openapi.request_body). A body is the endpoint's request model as the service reads it,
defaults written out, so what Swagger shows, what the GET answers and what the service computes
on are the same document.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel

from app.datasets import DATASETS, init_network
from app.schemas.requests import (
    CheckRequest,
    DiagramRequest,
    ExplainRequest,
    ForwardRequest,
    GradcheckRequest,
    GraphRequest,
    LossRequest,
    TrainRequest,
)

FORWARD_FIELDS = ("network", "inputs")
LOSS_FIELDS = FORWARD_FIELDS + ("targets", "loss", "reduction")
# What a /v1/check body takes: the problem and the claims; a claim about a training takes the training too.
CHECK_FIELDS = LOSS_FIELDS + ("claimed",)
CHECK_TRAINING_FIELDS = LOSS_FIELDS + ("optimizer", "iterations", "trainable", "claimed")
# The blog's w11: layer 1, weights[0][0].
SEED_PARAMETER = {"layer": 1, "kind": "weights", "index": [0, 0]}
# The post's data and training: the input (0.7, 0.3), the target 1, binary cross-entropy, 3 SGD steps at 0.5.
POST_TRAINING = {
    "inputs": [[0.7, 0.3]],
    "targets": [[1.0]],
    "loss": "binary_cross_entropy",
    "reduction": "mean",
    "optimizer": {"name": "sgd", "learning_rate": 0.5},
    "iterations": 3,
}
# The post trains its output weight w11 (layer 1, weights[0][0]) alone.
W11_ONLY = [
    {"weights": [[False, False], [False, False]], "biases": [False, False]},
    {"weights": [[True, False]], "biases": [False]},
]
# The blog post's names for the nodes of its network's computation graph (/v1/graph's labels), so that
# the picture reads like the post: inputs x1, x2; hidden pre-activations f1, f2 and activations z1, z2;
# the output's pre-activation f and activation z_hat; the target z; the loss CE.
BLOG_LABELS = {
    "inputs[0][0]": "x1",
    "inputs[0][1]": "x2",
    "layers[0].pre_activation[0][0]": "f1",
    "layers[0].pre_activation[0][1]": "f2",
    "layers[0].activation[0][0]": "z1",
    "layers[0].activation[0][1]": "z2",
    "layers[1].pre_activation[0][0]": "f",
    "layers[1].activation[0][0]": "z_hat",
    "targets[0][0]": "z",
    "loss": "CE",
}


@dataclass(frozen=True)
class Endpoint:
    """A POST endpoint an example can give a body for; ``name`` is its ``?for=`` value."""

    name: str
    path: str
    model: type[BaseModel]
    fields: tuple[str, ...] | None  # the train body's fields it takes; None: all of them
    svg: bool = False  # answers a picture, not JSON


ENDPOINTS: Mapping[str, Endpoint] = MappingProxyType(
    {
        e.name: e
        for e in (
            Endpoint("forward", "/v1/forward", ForwardRequest, FORWARD_FIELDS),
            Endpoint("loss", "/v1/loss", LossRequest, LOSS_FIELDS),
            Endpoint("gradients", "/v1/gradients", LossRequest, LOSS_FIELDS),
            Endpoint("gradcheck", "/v1/gradcheck", GradcheckRequest, LOSS_FIELDS),
            Endpoint("explain", "/v1/explain", ExplainRequest, LOSS_FIELDS + ("parameter",)),
            Endpoint("train", "/v1/train", TrainRequest, None),
            Endpoint("train_plot", "/v1/train/plot", TrainRequest, None, svg=True),
            Endpoint("diagram", "/v1/diagram", DiagramRequest, LOSS_FIELDS, svg=True),
            Endpoint("check", "/v1/check", CheckRequest, CHECK_FIELDS),
            Endpoint("graph", "/v1/graph", GraphRequest, LOSS_FIELDS + ("sample", "labels")),
        )
    }
)
DEFAULT_ENDPOINT = "train"


@dataclass(frozen=True)
class NamedExample:
    """``body`` is the /v1/train body; the other endpoints take a part of it (and ``parameter``, ``claimed``).

    ``titles`` names what the example shows on each endpoint it fits (Swagger's example title);
    an endpoint without a title is one the example does not fit. ``fields`` gives, for an endpoint,
    the fields its body takes when they are not the endpoint's own (a check of a training takes the
    training's fields too).
    """

    name: str
    description: str
    body: Mapping[str, Any]
    titles: Mapping[str, str]
    parameter: Mapping[str, Any] = field(default_factory=lambda: SEED_PARAMETER)  # explain's
    claimed: Mapping[str, Any] | None = None  # check's: the numbers a learner claims
    fields: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    graph: Mapping[str, Any] = field(default_factory=dict)  # graph's own fields: sample, labels
    # Whether Swagger UI offers it in the spec: a dataset's hundreds of numbers stay at /v1/examples.
    in_spec: bool = True

    @property
    def endpoints(self) -> tuple[str, ...]:
        """The endpoints this example has a body for, in ENDPOINTS order."""
        return tuple(e for e in ENDPOINTS if e in self.titles)


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
        **POST_TRAINING,
        "record": ["output", "gradients", "network"],
        "trainable": W11_ONLY,
    },
    titles={
        "forward": "The blog post's 2-2-1 network: its forward pass on the input (0.7, 0.3)",
        "loss": "The blog post's network: its binary cross-entropy against the target 1",
        "gradients": "The blog post's network: its gradients",
        "gradcheck": "The blog post's network: its gradients checked against central differences",
        "explain": "The blog post's network: the chain rule for w11 (layer 1, weights[0][0])",
        "train": "The blog post's 2-2-1 relu/sigmoid network: 3 SGD steps on w11 alone, as printed in the post.",
        "train_plot": "The blog post's network: the loss curve of its 3 SGD steps on w11",
        "diagram": "The blog post's network, labelled with its activations and gradients",
        "check": "The blog post's network: a learner's numbers, all correct (hidden activations, output, loss, w11's gradient)",
        "graph": "The blog post's network: its computation graph, named as the post names it (x1, f1, z1, z_hat, CE)",
    },
    # Worked out by hand: relu(0.7 * 0.436 + 0.3 * 0.420) = 0.4312 and relu(0.7 * 0.550 + 0.3 * 0.420) = 0.511;
    # the output layer's delta z_hat - z and w11's gradient (z_hat - z) * 0.4312 from /v1/gradients.
    claimed={
        "layers": [{"activation": [[0.4312, 0.511]]}, {"delta": [[-0.2989692136756442]]}],
        "output": [[0.7010307863243558]],
        "loss": 0.35520347518814194,
        "gradients": [None, {"weights": [[-0.12891552493693778, None]], "biases": [-0.2989692136756442]}],
    },
    # The weights the code names: w1, w12 and w2 (the code's f1 uses w2 too, where w21 belongs, so layer 0's
    # weights[0][1] keeps its own label), w11, and w22, which the code adds as the output's bias.
    graph={
        "sample": 0,
        "labels": BLOG_LABELS
        | {
            "layers[0].weights[0][0]": "w1",
            "layers[0].weights[1][0]": "w12",
            "layers[0].weights[1][1]": "w2",
            "layers[1].weights[0][0]": "w11",
            "layers[1].biases[0]": "w22",
        },
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
    titles={
        "forward": "XOR, untrained 2-4-1 tanh/sigmoid network: its outputs for the four inputs",
        "loss": "XOR, untrained: its binary cross-entropy over the four samples",
        "gradients": "XOR, untrained: its gradients",
        "gradcheck": "XOR, untrained: its gradients checked against central differences",
        "explain": "XOR, untrained: the chain rule for the output layer's first weight, over four samples",
        "train": "A 2-4-1 tanh/sigmoid network learning XOR with Adam: the loss falls below 0.01 in 200 steps.",
        "train_plot": "XOR: the loss curve of 200 Adam steps (every 20th recorded)",
        "diagram": "XOR, untrained: labelled with sample 0's activations and the gradients",
        "check": "XOR: Adam's first step worked out by hand (each output-layer parameter moves by the learning rate)",
        "graph": "XOR, untrained: the computation graph of all four samples (sample null), every scalar with its grad",
    },
    # Adam's first step is lr * g / (|g| + eps): every parameter moves by 0.1 against its gradient's sign
    # (/v1/gradients: positive for layer 1's first two weights, negative for the others and the bias).
    # Rounded, as a learner writes them.
    claimed={
        "iterations": [
            {
                "iteration": 1,
                "loss": 0.77255,
                "network": {"layers": [None, {"weights": [[-0.01, 0.77, 0.73, -0.89]], "biases": [0.1]}]},
            }
        ]
    },
    fields={"check": CHECK_TRAINING_FIELDS},
    graph={"sample": None},
)

# The same post's network as its text gives it: layer 0's weights[0][1] is 0.435 (its code uses layer 0's
# weights[1][1], 0.420, there), the output weighs z2 by 0.330 (its code adds z2 and 0.330 instead), and
# there are no biases. The numbers the post printed (its outputs, its CE losses and w11 after each update)
# come from its code, the seed's network: checked against this one, they are wrong from the first output,
# and a known mistake reproduces the updates (docs/contract.md, "The seed example").
BLOG = NamedExample(
    name="blog",
    description="The blog post's network as its text gives it (w21 0.435 where its code used w2, w22 0.330, no biases), and the numbers the post printed.",
    body={
        "network": {
            "layers": [
                {"weights": [[0.436, 0.435], [0.550, 0.420]], "activation": "relu"},
                {"weights": [[0.026, 0.330]], "activation": "sigmoid"},
            ]
        },
        **POST_TRAINING,
        "record": ["output", "network"],
        "trainable": W11_ONLY,
    },
    titles={
        "forward": "The blog post's network as its text gives it (w21 0.435, where its code used w2; w22 0.330; no biases): its forward pass",
        "loss": "The blog post's network as its text gives it: its binary cross-entropy against the target 1",
        "gradients": "The blog post's network as its text gives it: its gradients",
        "gradcheck": "The blog post's network as its text gives it: its gradients checked against central differences",
        "explain": "The blog post's network as its text gives it: the chain rule for w11",
        "train": "The blog post's network as its text gives it: 3 SGD steps on w11 (not what the post printed)",
        "train_plot": "The blog post's network as its text gives it: the loss curve of its 3 SGD steps on w11",
        "diagram": "The blog post's network as its text gives it, labelled with its activations and gradients",
        "check": "The numbers the blog post printed, checked against the network its text gives: wrong, and why",
        "graph": "The blog post's network as its text gives it: its computation graph, every weight named as in the text",
    },
    # As the post printed them: z_hat and CE before each update, w11 after it.
    claimed={
        "iterations": [
            {
                "iteration": i,
                "output": [[z_hat]],
                "loss": ce,
                "network": {"layers": [None, {"weights": [[w11, None]]}]},
            }
            for i, (z_hat, ce, w11) in enumerate(
                (
                    (0.7010307863243558, 0.35520347518814194, 0.09045776246846889),
                    (0.7068233374476314, 0.3469745206215468, 0.15366665091475956),
                    (0.7124393640689541, 0.3390604735219194, 0.21566472402149306),
                ),
                start=1,
            )
        ]
    },
    fields={"check": CHECK_TRAINING_FIELDS},
    graph={
        "sample": 0,
        "labels": BLOG_LABELS
        | {
            "layers[0].weights[0][0]": "w1",
            "layers[0].weights[0][1]": "w21",
            "layers[0].weights[1][0]": "w12",
            "layers[0].weights[1][1]": "w2",
            "layers[1].weights[0][0]": "w11",
            "layers[1].weights[0][1]": "w22",
        },
    },
)


def _dataset_example(name: str, hidden: list[int], seed: int, learning_rate: float, iterations: int) -> NamedExample:
    """One of app.datasets' seeded 2-D datasets with a tanh network (``init_network(hidden, seed)``)
    learning it with Adam: the playground draws its decision boundary as it trains."""
    what, generate = DATASETS[name]
    inputs, targets = generate()
    network = init_network(hidden, seed)
    shape = "-".join(str(n) for n in (2, *hidden, 1))
    label = f"{name} ({len(inputs)} points: {what})"
    last = len(hidden)
    return NamedExample(
        name=name,
        description=f"A {shape} tanh/sigmoid network learning {label} with Adam, from app/datasets.py's seeded generator.",
        body={
            "network": network,
            "inputs": inputs,
            "targets": targets,
            "loss": "binary_cross_entropy",
            "reduction": "mean",
            "optimizer": {"name": "adam", "learning_rate": learning_rate},
            "iterations": iterations,
            "record_every": iterations // 10,
            "record": [],
        },
        titles={
            **{e: f"{label.capitalize()}, untrained {shape} network: {ENDPOINTS[e].path}" for e in ENDPOINTS},
            "train": f"{label.capitalize()}: {iterations} Adam steps of a {shape} tanh/sigmoid network",
            "check": f"{label.capitalize()}: an untrained output layer of zeros predicts 1/2, so the loss is ln 2",
        },
        parameter={"layer": last, "kind": "weights", "index": [0, 0]},
        # The output layer starts at zero: every prediction is sigmoid(0) = 1/2, the loss ln 2 whatever the data,
        # and the output bias's gradient, the mean of 1/2 - y, is 0 for classes of equal size.
        claimed={"loss": 0.6931471805599453, "gradients": [*([None] * last), {"biases": [0.0]}]},
        in_spec=False,
    )


CIRCLE = _dataset_example("circle", [4], seed=2, learning_rate=0.1, iterations=300)
GAUSSIANS = _dataset_example("gaussians", [2], seed=1, learning_rate=0.05, iterations=100)
SPIRAL = _dataset_example("spiral", [8, 8], seed=2, learning_rate=0.05, iterations=1000)

EXAMPLES: Mapping[str, NamedExample] = MappingProxyType({e.name: e for e in (SEED, XOR, BLOG, CIRCLE, GAUSSIANS, SPIRAL)})


class ExampleNotFound(LookupError):
    """No example ``name``, or none for that endpoint: ``field`` (``"name"`` or ``"for"``) says which."""

    def __init__(self, field: str, message: str) -> None:
        self.field, self.message = field, message
        super().__init__(message)


def find_example(name: str, endpoint: str = DEFAULT_ENDPOINT) -> NamedExample:
    """The example ``name`` when it has a body for ``endpoint``; else ExampleNotFound saying what there is."""
    example = EXAMPLES.get(name)
    if example is None:
        raise ExampleNotFound("name", f"no example named {name[:40]!r}; expected one of: {', '.join(EXAMPLES)}")
    if endpoint not in example.endpoints:
        where = ENDPOINTS[endpoint].path if endpoint in ENDPOINTS else repr(endpoint)
        fits = ", ".join(example.endpoints)
        raise ExampleNotFound("for", f"example {name!r} has no body for {where}; it has bodies for: {fits}")
    return example


def _request(name: str, endpoint: str) -> BaseModel:
    example, target = EXAMPLES[name], ENDPOINTS[endpoint]
    if endpoint not in example.titles:
        raise KeyError(f"example {name!r} has no body for {target.path}")
    source = {**example.body, "parameter": example.parameter, "claimed": example.claimed, **example.graph}
    fields = example.fields.get(endpoint, tuple(example.body) if target.fields is None else target.fields)
    raw = {k: copy.deepcopy(source[k]) for k in fields if k in source}
    return target.model.model_validate(raw)


def example_body(name: str, endpoint: str = DEFAULT_ENDPOINT) -> dict[str, Any]:
    """A fresh copy of the named example's body for ``endpoint`` (an ENDPOINTS key; by default the
    ``/v1/train`` body), defaults written out. Raises ``KeyError`` for an unknown name or endpoint,
    or an endpoint the example does not fit."""
    return _request(name, endpoint).model_dump(mode="json")


def example_json(name: str, endpoint: str = DEFAULT_ENDPOINT) -> bytes:
    """``example_body`` encoded as ``GET /v1/examples/{name}`` answers it (pydantic's JSON)."""
    return _request(name, endpoint).model_dump_json().encode()


def openapi_examples(endpoint: str) -> dict[str, dict[str, Any]]:
    """Swagger UI's examples of ``endpoint``'s request body: each example that fits it (``seed`` first,
    so it prefills "Try it out"), titled with what it shows there."""
    return {
        name: {"summary": example.titles[endpoint], "value": example_body(name, endpoint)}
        for name, example in EXAMPLES.items()
        if endpoint in example.titles and example.in_spec
    }

"""Engine results as response payloads: dicts typed as the response models of app.schemas.responses.

Each ``TypedDict`` here mirrors one response model key for key (a test keeps them in step,
and another validates every endpoint's answer against its model). Matrices stay C-contiguous
float64 arrays (float32 ones for a request computed in float32) that the HTTP layer serialises
directly: building a pydantic model per number would cost more than the backprop itself on
large networks.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

import numpy as np
from numpy.typing import NDArray

from app.nn.check import Kind as QuantityKind
from app.nn.layout import Layout
from app.nn.network import Forward

Array = NDArray[np.float64]
Kind = Literal["weights", "biases"]


class LayerSpecPayload(TypedDict):
    weights: Array
    biases: Array
    activation: str


class NetworkPayload(TypedDict):
    # One form, as the request sent the network: layers, or state_dict (torch's keys) with activations.
    layers: NotRequired[list[LayerSpecPayload]]
    state_dict: NotRequired[dict[str, Array]]
    activations: NotRequired[list[str]]


class LayerGradientPayload(TypedDict):
    weights: Array
    biases: Array


class LayerValuesPayload(TypedDict):
    pre_activation: Array
    activation: Array


class ForwardPayload(TypedDict):
    output: Array
    layers: list[LayerValuesPayload]


class LossPayload(TypedDict):
    loss: float
    output: Array


class GradientsPayload(TypedDict):
    loss: float
    output: Array
    gradients: list[LayerGradientPayload]


class TraceEntryPayload(TypedDict):
    iteration: int
    loss: float
    output: NotRequired[Array]
    gradients: NotRequired[list[LayerGradientPayload]]
    network: NotRequired[NetworkPayload]


class TrainSummaryPayload(TypedDict):
    status: Literal["completed", "diverged"]
    diverged_at: NotRequired[int]
    network: NetworkPayload
    final_loss: float | None


class TrainPayload(TypedDict):
    status: Literal["completed", "diverged"]
    diverged_at: NotRequired[int]
    # The entries already encoded as one JSON array (an orjson.Fragment): see train.run_train.
    trace: object
    network: NetworkPayload
    final_loss: float | None


class ParameterRefPayload(TypedDict):
    layer: int
    kind: Kind
    index: list[int]


class WorstParameterPayload(ParameterRefPayload):
    analytical: float
    numerical: float


class GradcheckPayload(TypedDict):
    passed: bool
    max_abs_error: float
    max_rel_error: float
    worst: WorstParameterPayload
    numerical: list[LayerGradientPayload]
    analytical: list[LayerGradientPayload]


class TermPayload(TypedDict):
    symbol: str
    meaning: str
    value: float | None


class StepPayload(TypedDict):
    symbol: str
    meaning: str
    value: float
    factors: list[TermPayload]
    line: str
    latex: str


class SamplePayload(TypedDict):
    sample: int
    steps: list[StepPayload]
    contribution: float


class ReductionPayload(TypedDict):
    kind: Literal["mean", "sum"]
    divisor: float
    total: float
    line: str
    latex: str


class ExplainPayload(TypedDict):
    gradient: float
    parameter: ParameterRefPayload
    samples: list[SamplePayload]
    reduction: ReductionPayload
    lines: list[str]


class GraphNodePayload(TypedDict):
    name: str
    label: str
    op: str
    value: float | None
    grad: float | None


# "from" is a keyword: the functional form.
GraphEdgePayload = TypedDict("GraphEdgePayload", {"from": int, "to": int, "local_derivative": float | None})


class GraphPayload(TypedDict):
    loss: str
    reduction: Literal["mean", "sum"]
    samples: list[int]
    divisor: float
    value: float
    nodes: list[GraphNodePayload]
    edges: list[GraphEdgePayload]


class ElementPayload(TypedDict):
    index: list[int]
    claimed: float
    expected: float | None
    rel_error: float | None
    ok: bool


class QuantityPayload(TypedDict):
    path: list[str | int]
    kind: QuantityKind
    iteration: int
    layer: int | None
    part: Kind | None
    correct: bool
    consistent: bool
    points: float
    max_points: float
    worst: ElementPayload
    worst_given_claims: ElementPayload
    mistakes: list[int]
    wrong_at: list[int] | None


class DiagnosisPayload(TypedDict):
    name: str
    description: str
    detail: dict[str, Any]
    explains: list[list[str | int]]


class SearchPayload(TypedDict):
    complete: bool
    variants_tried: int
    variants_total: int
    message: str | None


class CheckPayload(TypedDict):
    first_wrong: list[str | int] | None
    score: float
    max_score: float
    diagnoses: list[DiagnosisPayload]
    search: SearchPayload
    quantities: list[QuantityPayload]


def contiguous(a: Array) -> Array:
    """``a`` C-contiguous (orjson serialises only such arrays); a copy only when it is a strided view."""
    return np.ascontiguousarray(a)


def network_payload(layout: Layout, params: Array, keys: list[tuple[str, str | None]] | None = None) -> NetworkPayload:
    """The network whose flat parameters in ``layout`` order are ``params``: as layers, or with ``keys`` (each
    layer's weight key and bias key, None for a bias not sent) as a torch state_dict with activations."""
    if keys is not None:
        state_dict: dict[str, Array] = {}
        for (w, b), (weight, bias) in zip(layout.views(params), keys):
            state_dict[weight] = contiguous(w)
            if bias is not None:
                state_dict[bias] = contiguous(b)
        return {"state_dict": state_dict, "activations": list(layout.activations)}
    return {
        "layers": [
            {"weights": contiguous(w), "biases": contiguous(b), "activation": act}
            for (w, b), act in zip(layout.views(params), layout.activations)
        ]
    }


def gradients_payload(layout: Layout, grad: Array) -> list[LayerGradientPayload]:
    """``grad`` (flat, ``layout`` order) as one ``{weights [out][in], biases [out]}`` per layer: copies, so
    that the flat gradient is freed as soon as the caller drops it (a bias view would hold all of it
    until the answer is sent: 80 MB for 10 million parameters)."""
    return [{"weights": contiguous(w), "biases": b.copy()} for w, b in layout.views(grad)]


def layers_payload(fwd: Forward) -> list[LayerValuesPayload]:
    """Each layer's pre-activation and activation ``[batch][out]``."""
    return [{"pre_activation": contiguous(z), "activation": contiguous(a)} for z, a in zip(fwd.pre, fwd.post)]

"""Response bodies of the v1 endpoints. Every float in them is finite."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import ConfigDict, Field

from app.nn.check import Kind
from app.schemas.base import StrictModel
from app.schemas.network import NetworkSpec

Rows = list[list[float]]


class LayerValues(StrictModel):
    """One layer's values for every sample, each ``[batch][out]``."""

    pre_activation: Rows
    activation: Rows

    @property
    def pre_activation_array(self) -> np.ndarray:
        return np.asarray(self.pre_activation, dtype=np.float64)

    @property
    def activation_array(self) -> np.ndarray:
        return np.asarray(self.activation, dtype=np.float64)


class ForwardResponse(StrictModel):
    output: Rows = Field(description="The last layer's activation, [batch][out_last].")
    layers: list[LayerValues]

    @property
    def output_array(self) -> np.ndarray:
        return np.asarray(self.output, dtype=np.float64)


class LossResponse(StrictModel):
    loss: float
    output: Rows

    @property
    def output_array(self) -> np.ndarray:
        return np.asarray(self.output, dtype=np.float64)


class LayerGradient(StrictModel):
    """dLoss/dParameter for one layer, in the shapes of its weights ``[out][in]`` and biases ``[out]``."""

    weights: Rows
    biases: list[float]

    @property
    def weights_array(self) -> np.ndarray:
        return np.asarray(self.weights, dtype=np.float64)

    @property
    def biases_array(self) -> np.ndarray:
        return np.asarray(self.biases, dtype=np.float64)


class GradientsResponse(LossResponse):
    gradients: list[LayerGradient]


class TraceEntry(StrictModel):
    """One recorded iteration: ``loss``, ``output`` and ``gradients`` before its update, ``network`` after it."""

    iteration: int
    loss: float
    output: Rows | None = None
    gradients: list[LayerGradient] | None = None
    network: NetworkSpec | None = None


class TrainResponse(StrictModel):
    status: Literal["completed", "diverged"]
    diverged_at: int | None = Field(default=None, description="Present when status is diverged: the first iteration that did not complete.")
    trace: list[TraceEntry]
    network: NetworkSpec = Field(description="The parameters after the last completed iteration.")
    final_loss: float | None = Field(description="The loss of network on the same data; null when not finite.")


class ExampleSummary(StrictModel):
    name: str
    description: str
    endpoints: list[str] = Field(
        description="The endpoints it has a body for: the values of GET /v1/examples/{name}?for= (train is the default)."
    )


class ExampleList(StrictModel):
    examples: list[ExampleSummary]


class ExampleLinks(StrictModel):
    """One named example on the front page: its description and the URL of its body for each endpoint it fits."""

    name: str
    description: str
    bodies: dict[str, str] = Field(description="Endpoint (the for= value) -> the URL of the example's body for it.")


class Root(StrictModel):
    """``GET /`` as JSON: what this service is, and where to go."""

    name: str
    version: str
    description: str
    links: dict[str, str] = Field(description="docs, redoc, playground, openapi, examples, health -> their URLs.")
    examples: list[ExampleLinks]


class Health(StrictModel):
    status: Literal["ok"] = "ok"


class ErrorEntry(StrictModel):
    """One problem: ``loc`` is the path to the offending field (``["body", "network", "layers", 1, "weights"]``)."""

    loc: list[str | int]
    msg: str = Field(description="What was expected and what was found, in plain words.")
    type: str = Field(description="A stable machine-readable kind, e.g. shape_mismatch, finite_number, limit_exceeded.")


class ErrorBody(StrictModel):
    detail: list[ErrorEntry]


class ParameterRef(StrictModel):
    """One parameter: ``weights[index[0]][index[1]]`` or ``biases[index[0]]`` of layer ``layer``."""

    layer: int
    kind: Literal["weights", "biases"]
    index: list[int]


class WorstParameter(ParameterRef):
    analytical: float
    numerical: float


class GradcheckResponse(StrictModel):
    passed: bool = Field(description="Every parameter within atol + rtol * |numerical|.")
    max_abs_error: float
    max_rel_error: float = Field(
        description="max |analytical - numerical| / |numerical| over parameters whose numerical gradient is not 0."
    )
    worst: WorstParameter = Field(description="The parameter furthest past (or least inside) its tolerance.")
    numerical: list[LayerGradient] = Field(description="Central differences, in the shape of gradients.")
    analytical: list[LayerGradient] = Field(description="Backprop's gradients (as /v1/gradients).")


class TermOut(StrictModel):
    symbol: str
    meaning: str
    value: float | None = Field(description="null where a textbook factor is not finite (the fused form is still exact).")


class StepOut(StrictModel):
    symbol: str
    meaning: str
    value: float
    factors: list[TermOut]
    line: str
    latex: str = Field(description="The same equation in LaTeX, numbers substituted (KaTeX renders it).")


class SampleOut(StrictModel):
    sample: int
    steps: list[StepOut] = Field(description="From the output back to the parameter.")
    contribution: float = Field(description="This sample's dl/dparameter before the reduction.")


class ReductionOut(StrictModel):
    kind: Literal["mean", "sum"]
    divisor: float = Field(
        description=(
            "What mean divides by: output elements, or samples for cross_entropy (for class-index targets with "
            "class_weights, the summed weights of the samples' classes); 1 for sum."
        )
    )
    total: float = Field(description="The sum of the samples' contributions.")
    line: str
    latex: str = Field(description="The same equation in LaTeX, numbers substituted (KaTeX renders it).")


class ExplainResponse(StrictModel):
    gradient: float = Field(description="dLoss/dparameter, the value /v1/gradients returns.")
    parameter: ParameterRef
    samples: list[SampleOut]
    reduction: ReductionOut
    lines: list[str] = Field(description="The whole derivation, one plain-text line per step.")


class GraphNode(StrictModel):
    """One scalar of the computation: a leaf (an input, weight, bias, target or constant) or what an op computed."""

    name: str = Field(
        description="Where it sits: inputs[s][i], layers[k].weights[j][i], layers[k].biases[j], layers[k].products[s][j][i] "
        "(w * a), layers[k].pre_activation[s][j], layers[k].activation[s][j], targets[s][j], loss.terms[s][j] (or "
        "loss.terms[s]), loss.other_samples, loss."
    )
    label: str = Field(description="Short, for pictures: the request's labels, else x[i], W0[j][i], b0[j], pre0[j], a0[j], y[j], l[j], L.")
    op: str = Field(
        description="input, weight, bias, target or const for a leaf; else what computed it: * (a product), + (a sum), "
        "the activation's name, the loss's name (a loss term), or mean or sum (the loss)."
    )
    value: float | None = Field(description="Its forward value (the engine's own); null only where not finite.")
    grad: float | None = Field(
        description="dLoss/d(this node); null for a constant (a target, the other samples' terms) or where not finite."
    )


class GraphEdge(StrictModel):
    """``from`` feeds ``to`` (indices into ``nodes``), with the local derivative d(to)/d(from)."""

    model_config = ConfigDict(extra="forbid", serialize_by_alias=True)

    from_: int = Field(alias="from", description="The index in nodes of the node that feeds.")
    to: int = Field(description="The index in nodes of the node fed.")
    local_derivative: float | None = Field(
        description="d(to)/d(from) at the forward values; null from a constant (not differentiated) or where not finite."
    )


class GraphResponse(StrictModel):
    loss: str = Field(description="The loss's name.")
    reduction: Literal["mean", "sum"]
    samples: list[int] = Field(description="The samples drawn: the one asked for, or every sample of the batch.")
    divisor: float = Field(description="What mean divides the summed terms by (as /v1/explain's reduction); 1 for sum.")
    value: float = Field(description="The loss, /v1/loss's value: the last node's.")
    nodes: list[GraphNode] = Field(description="In topological order: every node after the nodes that feed it; the loss last.")
    edges: list[GraphEdge] = Field(description="One per input of each node, grouped by the node fed, in the nodes' order.")


class TrainSummary(StrictModel):
    """The last line of a streamed training: the TrainResponse without ``trace``."""

    status: Literal["completed", "diverged"]
    diverged_at: int | None = None
    network: NetworkSpec
    final_loss: float | None


# -- /v1/check -----------------------------------------------------------------------------

ClaimPath = list[str | int]
CLAIM_PATH = "keys and indices into the request's claimed"


class ElementOut(StrictModel):
    """One element of a claimed array against the value it should have been."""

    index: list[int] = Field(description="Its index in the claimed array ([] for the loss).")
    claimed: float
    expected: float | None = Field(description="null when the expected value is not finite.")
    rel_error: float | None = Field(
        description="|claimed - expected| / max(|claimed|, |expected|, 1e-12); null when expected is not finite."
    )
    ok: bool = Field(description="Within the tolerance.")


class QuantityOut(StrictModel):
    """One claimed array (or the loss), checked element by element."""

    path: ClaimPath = Field(description=f"Where it is in claimed: {CLAIM_PATH}.")
    kind: Kind
    iteration: int = Field(description="The iteration it belongs to (1 without training).")
    layer: int | None = Field(description="Its layer; null for output and loss.")
    part: Literal["weights", "biases"] | None = Field(description="For gradients and network: which parameters.")
    correct: bool = Field(description="Every claimed element within the tolerance of the true value.")
    consistent: bool = Field(
        description="Every claimed element within the tolerance of what the correct step computes from the learner's "
        "own earlier claimed numbers (error carried forward)."
    )
    points: float = Field(description="What it earned: max_points when correct (or consistent, with carry_forward), else 0.")
    max_points: float = Field(description="Its kind's points.")
    worst: ElementOut = Field(description="The element furthest from the true value.")
    worst_given_claims: ElementOut = Field(description="The element furthest from what follows from the learner's own numbers.")
    mistakes: list[int] = Field(description="Indices into diagnoses: the known mistakes that reproduce this quantity.")
    wrong_at: list[int] | None = Field(
        description="The index of its first element (row-major) that is neither correct nor consistent: the learner's own "
        "mistake is there. null when every claimed element is one or the other."
    )


class DiagnosisOut(StrictModel):
    """A known mistake that reproduces claimed numbers that are wrong."""

    name: str = Field(description="Stable, for programs.")
    description: str = Field(description="For people.")
    detail: dict[str, Any] = Field(description="Its parameters, e.g. the layer or the parameters it mixed up.")
    explains: list[ClaimPath] = Field(description="The paths of the claimed quantities it reproduces.")


class SearchOut(StrictModel):
    """How much of the search for known mistakes ran: it is bounded by what BACKPROP_MAX_WORK leaves after the check."""

    complete: bool
    variants_tried: int
    variants_total: int
    message: str | None = Field(
        description="What the search left out and why (it stopped at the work limit, or the network has too many parameters "
        "for the search of one parameter used in place of another); null when nothing was left out."
    )


class CheckResponse(StrictModel):
    first_wrong: ClaimPath | None = Field(
        description=f"The earliest claimed element (in computation order) that is neither correct nor consistent, as "
        f"{CLAIM_PATH}; null when every claimed number is correct or follows from the learner's own."
    )
    score: float = Field(description="The points the claimed quantities earned.")
    max_score: float = Field(description="The points of every claimed quantity (a quantity of only nulls is not claimed).")
    diagnoses: list[DiagnosisOut]
    search: SearchOut
    quantities: list[QuantityOut] = Field(description="Every claimed quantity, in computation order.")

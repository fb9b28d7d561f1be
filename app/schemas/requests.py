"""Request bodies of the v1 endpoints, with every shape and range check located at its field."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Literal

from pydantic import Field, model_validator

from app.nn.losses import LOSSES, REDUCTIONS
from app.nn.training import RECORDABLE
from app.schemas.base import (
    FiniteFloat,
    Matrix,
    StrictBool,
    StrictInt,
    StrictModel,
    field_error,
    rectangular,
)
from app.schemas.network import NetworkSpec

LossName = Literal[tuple(LOSSES)]  # type: ignore[valid-type]
Reduction = Literal[REDUCTIONS]  # type: ignore[valid-type]
Recordable = Literal[RECORDABLE]  # type: ignore[valid-type]

# Rows of probability targets must sum to 1 within this tolerance (the contract's).
PROBABILITY_SUM_TOLERANCE = 1e-6


@dataclass(frozen=True)
class RequestSize:
    """The sizes limits and work estimates are taken from."""

    layers: int
    parameters: int
    batch: int
    activations: int  # batch x (inputs + every layer's outputs): the values one forward pass holds
    widths: int  # inputs + every layer's outputs


def request_size(network: NetworkSpec, batch: int) -> RequestSize:
    # One pass over the validated shapes (every request reads its size twice: where it runs, and its limits).
    widths, parameters = network.n_in, 0
    for layer in network.layers:
        widths += layer.n_out
        parameters += layer.n_out * (layer.n_in + 1)
    return RequestSize(len(network.layers), parameters, batch, batch * widths, widths)


class ForwardRequest(StrictModel):
    """A network and a batch of inputs ``[batch][in_0]``."""

    network: NetworkSpec
    inputs: Matrix = Field(description="Shape [batch][in_0], one row per sample.")

    @model_validator(mode="after")
    def _inputs_fit(self) -> ForwardRequest:
        _, width = rectangular(self.inputs, ("inputs",), "inputs")
        if width != self.network.n_in:
            field_error(
                ("inputs",),
                f"each input row must have {self.network.n_in} values (layer 0 has {self.network.n_in} "
                f"inputs), but the rows have {width}",
                "shape_mismatch",
            )
        return self

    @cached_property
    def size(self) -> RequestSize:
        return request_size(self.network, len(self.inputs))


class LossRequest(ForwardRequest):
    """A network, inputs, targets ``[batch][out_last]`` and the loss to compute."""

    targets: Matrix = Field(description="Shape [batch][out_last].")
    loss: LossName = Field(  # type: ignore[valid-type]
        description="binary_cross_entropy needs a sigmoid last layer, cross_entropy a softmax one; mse fits any."
    )
    reduction: Reduction = Field(  # type: ignore[valid-type]
        default="mean",
        description="mean averages over all elements (over samples for cross_entropy); sum adds them.",
    )

    @model_validator(mode="after")
    def _targets_fit(self) -> LossRequest:
        rows, width = rectangular(self.targets, ("targets",), "targets")
        batch, n_out = len(self.inputs), self.network.n_out
        if (rows, width) != (batch, n_out):
            field_error(
                ("targets",),
                f"targets must have shape [{batch}][{n_out}] (one row per input row, one value per output "
                f"unit), but have shape [{rows}][{width}]",
                "shape_mismatch",
            )
        required = LOSSES[self.loss].requires_activation
        last = self.network.layers[-1].activation
        if required is not None and last != required:
            field_error(
                ("loss",),
                f"{self.loss} needs the last layer's activation to be {required}, but it is {last}",
                "loss_activation_mismatch",
            )
        if self.loss == "binary_cross_entropy":
            self._check_range("binary_cross_entropy targets must be in [0, 1]")
        elif self.loss == "cross_entropy":
            self._check_range("cross_entropy targets are class probabilities in [0, 1]")
            self._check_rows_sum_to_one()
        return self

    def _check_range(self, expected: str) -> None:
        for i, row in enumerate(self.targets):
            for j, t in enumerate(row):
                if not 0.0 <= t <= 1.0:
                    field_error(("targets", i, j), f"{expected}, but found {t!r}", "target_range")

    def _check_rows_sum_to_one(self) -> None:
        for i, row in enumerate(self.targets):
            total = sum(row)
            if abs(total - 1.0) > PROBABILITY_SUM_TOLERANCE:
                field_error(
                    ("targets", i),
                    f"each cross_entropy target row must sum to 1 (within {PROBABILITY_SUM_TOLERANCE:g}), "
                    f"but row {i} sums to {total!r}",
                    "target_range",
                )


class SGDConfig(StrictModel):
    """torch.optim.SGD: coupled L2 weight decay, no dampening."""

    name: Literal["sgd"]
    learning_rate: FiniteFloat = Field(gt=0)
    momentum: FiniteFloat = Field(default=0.0, ge=0)
    nesterov: StrictBool = False
    weight_decay: FiniteFloat = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self) -> SGDConfig:
        if self.nesterov and self.momentum <= 0:
            field_error(
                ("nesterov",),
                f"nesterov needs momentum > 0, but momentum is {self.momentum!r}",
                "nesterov_momentum",
            )
        return self


Beta = Annotated[FiniteFloat, Field(ge=0, lt=1)]


class AdamConfig(StrictModel):
    """torch.optim.Adam (not AMSGrad): coupled L2 weight decay."""

    name: Literal["adam"]
    learning_rate: FiniteFloat = Field(gt=0)
    betas: tuple[Beta, Beta] = (0.9, 0.999)
    eps: FiniteFloat = Field(default=1e-8, ge=0)
    weight_decay: FiniteFloat = Field(default=0.0, ge=0)


OptimizerConfig = Annotated[SGDConfig | AdamConfig, Field(discriminator="name")]


class LayerMask(StrictModel):
    """Which parameters of one layer train; an omitted part trains entirely."""

    weights: Annotated[list[list[StrictBool]], Field(min_length=1)] | None = None
    biases: list[StrictBool] | None = None


class TrainRequest(LossRequest):
    """A loss request plus the optimizer, the number of full-batch steps and what to record."""

    optimizer: OptimizerConfig
    iterations: StrictInt = Field(ge=1, description="Full-batch steps: forward, loss, backward, update.")
    record_every: StrictInt = Field(
        default=1, ge=1, description="Iteration i (1-based) is recorded when (i - 1) % record_every == 0; the last always is."
    )
    record: list[Recordable] = Field(  # type: ignore[valid-type]
        default_factory=list,
        description="Extra per-iteration values: output and gradients (before the update), network (after it).",
    )
    trainable: list[LayerMask] | None = Field(
        default=None,
        description="Aligned with network.layers; a parameter marked false never changes. Default: all train.",
    )

    @model_validator(mode="after")
    def _mask_fits(self) -> TrainRequest:
        if self.trainable is None:
            return self
        layers = self.network.layers
        if len(self.trainable) != len(layers):
            field_error(
                ("trainable",),
                f"trainable must have one entry per layer ({len(layers)}), but has {len(self.trainable)}",
                "shape_mismatch",
            )
        for k, (mask, layer) in enumerate(zip(self.trainable, layers)):
            if mask.weights is not None:
                shape = rectangular(mask.weights, ("trainable", k, "weights"), f"trainable[{k}].weights")
                if shape != (layer.n_out, layer.n_in):
                    field_error(
                        ("trainable", k, "weights"),
                        f"trainable[{k}].weights must have the shape of layer {k}'s weights "
                        f"[{layer.n_out}][{layer.n_in}], but has shape [{shape[0]}][{shape[1]}]",
                        "shape_mismatch",
                    )
            if mask.biases is not None and len(mask.biases) != layer.n_out:
                field_error(
                    ("trainable", k, "biases"),
                    f"trainable[{k}].biases must have {layer.n_out} values (layer {k}'s outputs), "
                    f"but has {len(mask.biases)}",
                    "shape_mismatch",
                )
        return self


class GradcheckRequest(LossRequest):
    """A loss request plus the finite-difference step and torch.autograd.gradcheck's tolerances."""

    epsilon: FiniteFloat = Field(default=1e-6, gt=0, description="Central-difference step.")
    atol: FiniteFloat = Field(default=1e-5, ge=0, description="Absolute tolerance.")
    rtol: FiniteFloat = Field(default=1e-3, ge=0, description="Relative tolerance: pass when |a - n| <= atol + rtol * |n|.")


class ParameterSpec(StrictModel):
    """One parameter: ``weights[index[0]][index[1]]`` (``[j][i]``) or ``biases[index[0]]`` of layer ``layer``."""

    layer: StrictInt = Field(ge=0)
    kind: Literal["weights", "biases"]
    index: list[StrictInt] = Field(min_length=1, max_length=2)


class ExplainRequest(LossRequest):
    """A loss request plus the parameter whose gradient to derive."""

    parameter: ParameterSpec

    @model_validator(mode="after")
    def _parameter_exists(self) -> ExplainRequest:
        p, layers = self.parameter, self.network.layers
        if p.layer >= len(layers):
            field_error(
                ("parameter", "layer"), f"layer must be below {len(layers)} (the number of layers), but is {p.layer}", "shape_mismatch"
            )
        shape = (layers[p.layer].n_out, layers[p.layer].n_in) if p.kind == "weights" else (layers[p.layer].n_out,)
        if len(p.index) != len(shape):
            field_error(
                ("parameter", "index"),
                f"{p.kind} index must have {len(shape)} number(s) ({'[j, i]' if p.kind == 'weights' else '[j]'}), but has {len(p.index)}",
                "shape_mismatch",
            )
        for axis, (i, n) in enumerate(zip(p.index, shape)):
            if not 0 <= i < n:
                field_error(
                    ("parameter", "index", axis),
                    f"index {axis} of layer {p.layer}'s {p.kind} must be in [0, {n - 1}], but is {i}",
                    "shape_mismatch",
                )
        return self


class DiagramRequest(StrictModel):
    """A network to draw; with ``inputs`` each neuron is labelled with its activation (first sample),
    and with ``targets`` and ``loss`` too each weight with its gradient."""

    network: NetworkSpec
    inputs: Matrix | None = Field(default=None, description="Shape [batch][in_0]; the first row labels the neurons.")
    targets: Matrix | None = Field(default=None, description="Shape [batch][out_last]; needs inputs and loss.")
    loss: LossName | None = None  # type: ignore[valid-type]
    reduction: Reduction = "mean"  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _parts_fit(self) -> DiagramRequest:
        if self.targets is not None:
            if self.inputs is None:
                field_error(("inputs",), "gradients need inputs as well as targets, but inputs are missing", "missing_dependency")
            if self.loss is None:
                field_error(("loss",), "gradients need a loss as well as targets, but loss is missing", "missing_dependency")
            # The same checks, and the same error locations, as /v1/gradients.
            LossRequest.model_validate(self.model_dump(exclude={"network"}) | {"network": self.network})
        elif self.inputs is not None:
            ForwardRequest.model_validate({"network": self.network, "inputs": self.inputs})
        return self

    @cached_property
    def size(self) -> RequestSize:
        return request_size(self.network, len(self.inputs) if self.inputs is not None else 1)

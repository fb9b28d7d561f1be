"""Request bodies of the v1 endpoints, with every shape and range check located at its field."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any, Literal, NoReturn

from pydantic import Discriminator, Field, Tag, ValidationError, ValidatorFunctionWrapHandler, WrapValidator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from app.nn.losses import LOSSES, REDUCTIONS
from app.nn.training import RECORDABLE
from app.schemas.base import (
    FiniteFloat,
    Matrix,
    StrictBool,
    StrictInt,
    StrictModel,
    describe,
    field_error,
    rectangular,
)
from app.schemas.error_hints import counted
from app.schemas.network import NetworkSpec

LossName = Literal[tuple(LOSSES)]  # type: ignore[valid-type]
Reduction = Literal[REDUCTIONS]  # type: ignore[valid-type]
Recordable = Literal[RECORDABLE]  # type: ignore[valid-type]

# Rows of probability targets must sum to 1 within this tolerance (the contract's).
PROBABILITY_SUM_TOLERANCE = 1e-6

# -- targets: rows, or cross_entropy's class indices ------------------------------------------

ROWS_DESCRIPTION = (
    "[batch][out_last]: one row per sample. binary_cross_entropy: values in [0, 1]; cross_entropy: "
    "class probabilities, each row in [0, 1] and summing to 1; mse: any numbers."
)
CLASS_INDICES_DESCRIPTION = (
    "[batch], cross_entropy only: each sample's class, an integer in [0, out_last) (JSON integers only: "
    '1.0, true or "1" are not class indices), as torch.nn.functional.cross_entropy takes class indices.'
)


def _targets_form(value: Any) -> str:
    """Which form of targets ``value`` is meant to be: class indices when its first element is not a row."""
    return "class_indices" if isinstance(value, list) and value and not isinstance(value[0], list) else "rows"


_MIX = (
    "targets are either all rows of class probabilities ([batch][out_last]) or all class indices ([batch]), "
    "not a mix: element 0 is {first}, so element {i} must be one too"
)


def _error(loc: tuple[str | int, ...], kind: str, message: str, found: Any) -> InitErrorDetails:
    # Not one of base's located types: the contract's message then adds "; found <what was found>".
    return InitErrorDetails(type=PydanticCustomError(kind, message), loc=loc, input=found)


def _targets_errors(value: Any, exc: ValidationError) -> ValidationError:
    """The errors of the form the client meant, each at its element, without pydantic's union tag in
    ``loc``; a row among class indices (or a number among rows) is called a mix."""
    if _targets_form(value) == "rows":
        errors: list[InitErrorDetails] = []
        for e in exc.errors(include_url=False):
            loc = e["loc"][1:]  # (tag, ...) -> (...)
            if len(loc) == 1 and e["type"] == "list_type":  # element loc[0] of a list of rows is not a row
                errors.append(_error(loc, "mixed_targets", _MIX.format(first="a row of class probabilities", i=loc[0]), e["input"]))
            else:
                kept = InitErrorDetails(type=e["type"], loc=loc, input=e["input"])  # type: ignore[typeddict-item]
                if "ctx" in e:
                    kept["ctx"] = e["ctx"]
                errors.append(kept)
        return ValidationError.from_exception_data("targets", errors)
    errors = []
    for i, t in enumerate(value):
        if isinstance(t, list):
            errors.append(_error((i,), "mixed_targets", _MIX.format(first="a class index", i=i), t))
        elif type(t) is not int:
            errors.append(
                _error(
                    (i,),
                    "class_index_type",
                    "a class index must be a JSON integer (targets hold one class in [0, out_last) per sample)",
                    t,
                )
            )
    return ValidationError.from_exception_data("targets", errors)


def _option_error(name: str, kind: str, message: str, found: Any) -> NoReturn:
    raise ValidationError.from_exception_data("request", [_error((name,), kind, message, found)])


def _one_form_of_targets(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    try:
        return handler(value)
    except ValidationError as exc:
        raise _targets_errors(value, exc) from None


ClassIndices = Annotated[list[StrictInt], Field(min_length=1)]
Targets = Annotated[
    Annotated[Matrix, Tag("rows"), Field(title="Rows", description=ROWS_DESCRIPTION)]
    | Annotated[ClassIndices, Tag("class_indices"), Field(title="Class indices", description=CLASS_INDICES_DESCRIPTION)],
    Discriminator(_targets_form),
    WrapValidator(_one_form_of_targets),
]
TARGETS_DESCRIPTION = "Rows [batch][out_last] (every loss), or for cross_entropy class indices [batch] (one integer per sample)."
ClassWeight = Annotated[FiniteFloat, Field(ge=0)]
LABEL_SMOOTHING_DESCRIPTION = (
    "cross_entropy only: torch's label_smoothing, in [0, 1). Each target row y becomes "
    "(1 - label_smoothing) * y + label_smoothing / classes (a class index counts as a one-hot row). Default 0: none."
)
CLASS_WEIGHTS_DESCRIPTION = (
    "cross_entropy only: torch's weight, one finite non-negative number per class (out_last), multiplying "
    "that class's -log p in every sample. mean then divides by the summed weights of the samples' classes "
    "for class-index targets, by the batch size for probability rows (as torch does). Default: none (every weight 1)."
)


# Dumps leave the options out at their defaults, so a body without them dumps (GET /v1/examples) as it did.
def _no_smoothing(value: float) -> bool:
    return value == 0.0


def _no_weights(value: list[float] | None) -> bool:
    return value is None


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
                f"each input row must have {counted(self.network.n_in, 'value')} (layer 0 has "
                f"{counted(self.network.n_in, 'input')}), but the rows have {width}",
                "shape_mismatch",
            )
        return self

    @cached_property
    def size(self) -> RequestSize:
        return request_size(self.network, len(self.inputs))


class LossRequest(ForwardRequest):
    """A network, inputs, targets ``[batch][out_last]`` (or class indices ``[batch]``) and the loss to compute."""

    targets: Targets = Field(description=TARGETS_DESCRIPTION)
    loss: LossName = Field(  # type: ignore[valid-type]
        description="binary_cross_entropy needs a sigmoid last layer, cross_entropy a softmax one; mse fits any."
    )
    reduction: Reduction = Field(  # type: ignore[valid-type]
        default="mean",
        description=(
            "mean averages over all elements (over samples for cross_entropy, over the summed class_weights of "
            "the samples' classes for class indices with class_weights); sum adds them."
        ),
    )
    label_smoothing: FiniteFloat = Field(default=0.0, ge=0, lt=1, exclude_if=_no_smoothing, description=LABEL_SMOOTHING_DESCRIPTION)
    class_weights: Annotated[list[ClassWeight], Field(min_length=1)] | None = Field(
        default=None, exclude_if=_no_weights, description=CLASS_WEIGHTS_DESCRIPTION
    )

    @property
    def index_targets(self) -> bool:
        """Whether ``targets`` are class indices ``[batch]`` rather than rows ``[batch][out_last]``."""
        return _targets_form(self.targets) == "class_indices"

    @model_validator(mode="after")
    def _targets_fit(self) -> LossRequest:
        batch, n_out = len(self.inputs), self.network.n_out
        if self.index_targets:
            self._check_class_indices(batch, n_out)
        else:
            rows, width = rectangular(self.targets, ("targets",), "targets")
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
        elif self.loss == "cross_entropy" and not self.index_targets:
            self._check_range("cross_entropy targets are class probabilities in [0, 1]")
            self._check_rows_sum_to_one()
        self._check_cross_entropy_options(n_out)
        return self

    def _check_class_indices(self, batch: int, n_out: int) -> None:
        if self.loss != "cross_entropy":
            field_error(
                ("targets",),
                f"class indices (one integer per sample) are targets for cross_entropy only; {self.loss} needs "
                f"rows of shape [{batch}][{n_out}]",
                "shape_mismatch",
            )
        if len(self.targets) != batch:
            field_error(
                ("targets",),
                f"class-index targets must have one class index per input row ({batch}), but have {len(self.targets)}",
                "shape_mismatch",
            )
        for i, t in enumerate(self.targets):
            if not 0 <= t < n_out:  # type: ignore[operator]
                field_error(
                    ("targets", i),
                    f"a class index must be in [0, {n_out - 1}] (the last layer has {n_out} classes), but found {describe(t)}",
                    "target_range",
                )

    def _check_cross_entropy_options(self, n_out: int) -> None:
        """label_smoothing and class_weights: cross_entropy's only, one weight per class, and a mean over
        class indices needs target classes whose weights do not sum to 0 (torch would answer NaN)."""
        if self.loss != "cross_entropy":
            for name, value, default in (("label_smoothing", self.label_smoothing, 0.0), ("class_weights", self.class_weights, None)):
                if value != default:
                    _option_error(name, "loss_option", f"{name} applies to the cross_entropy loss only, but loss is {self.loss}", value)
            return
        w = self.class_weights
        if w is None:
            return
        if len(w) != n_out:
            field_error(
                ("class_weights",),
                f"class_weights must have one weight per class ({n_out}, the last layer's outputs), but has {counted(len(w), 'weight')}",
                "shape_mismatch",
            )
        if self.index_targets and self.reduction == "mean" and sum(w[t] for t in self.targets) == 0:  # type: ignore[index]
            _option_error(
                "class_weights",
                "zero_weight_sum",
                "with class-index targets, mean divides by the summed class_weights of the samples' classes, but they "
                "are all 0 (torch would answer NaN); give one of those classes a positive weight or use reduction sum",
                w,
            )

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
                    f"each cross_entropy target row must sum to 1 (within {PROBABILITY_SUM_TOLERANCE:g}), but row {i} sums to {total!r}",
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
                f"trainable must have one entry per layer ({len(layers)}), but has {counted(len(self.trainable), 'entry', 'entries')}",
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
                    f"trainable[{k}].biases must have {counted(layer.n_out, 'value')} (layer {k}'s outputs), but has {len(mask.biases)}",
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
                f"{p.kind} index must have {counted(len(shape), 'number')} ({'[j, i]' if p.kind == 'weights' else '[j]'}), but has {len(p.index)}",
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
    targets: Targets | None = Field(default=None, description=TARGETS_DESCRIPTION + " Needs inputs and loss.")
    loss: LossName | None = None  # type: ignore[valid-type]
    reduction: Reduction = "mean"  # type: ignore[valid-type]
    label_smoothing: FiniteFloat = Field(default=0.0, ge=0, lt=1, exclude_if=_no_smoothing, description=LABEL_SMOOTHING_DESCRIPTION)
    class_weights: Annotated[list[ClassWeight], Field(min_length=1)] | None = Field(
        default=None, exclude_if=_no_weights, description=CLASS_WEIGHTS_DESCRIPTION
    )

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

    @property
    def index_targets(self) -> bool:
        """Whether ``targets`` are class indices ``[batch]`` rather than rows ``[batch][out_last]``."""
        return _targets_form(self.targets) == "class_indices"

    @cached_property
    def size(self) -> RequestSize:
        return request_size(self.network, len(self.inputs) if self.inputs is not None else 1)

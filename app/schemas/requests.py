"""Request bodies of the v1 endpoints, with every shape and range check located at its field.

What the engine's tables say is not written again here: the loss names, what targets each loss
takes and the words that say so come from ``app.nn.losses.LOSSES``; the optimizer config models
(``SGDConfig``, ``AdamConfig``, ...) and their union are built from ``app.nn.optimizers.OPTIMIZERS``;
the activation names from ``app.nn.activations.ACTIVATIONS`` (in app.schemas.network).
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, NoReturn, Union

import numpy as np
from pydantic import (
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    create_model,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from app.nn.check import Tolerance
from app.nn.graph import has_node
from app.nn.losses import LOSSES, Loss
from app.nn.losses import PROBABILITY_SUM_TOLERANCE as PROBABILITY_SUM_TOLERANCE  # importable from here, as before
from app.nn.losses import Reduction as Reduction
from app.nn.optimizers import BOUNDS, OPTIMIZERS, HyperParameterError, Optimizer
from app.nn.training import RECORDABLE
from app.schemas.base import (
    FiniteFloat,
    Loc,
    Matrix,
    StrictBool,
    StrictInt,
    StrictModel,
    describe,
    dotted,
    field_error,
    joined,
    quoted,
    rectangular,
)
from app.schemas.error_hints import counted
from app.schemas.network import NetworkSpec

if TYPE_CHECKING:
    LossName = str
    Recordable = str
else:
    LossName = Literal[tuple(LOSSES)]
    Recordable = Literal[RECORDABLE]


def _losses(has: Callable[[Loss], bool], conjunction: str = "or") -> str:
    """The names of the losses that ``has`` a property, in table order, joined for a sentence."""
    return joined([name for name, loss in LOSSES.items() if has(loss)], conjunction)


def _loss_description() -> str:
    """``binary_cross_entropy needs a sigmoid last layer, cross_entropy a softmax one; mse fits any.``"""
    fused = [(name, loss.requires_activation) for name, loss in LOSSES.items() if loss.requires_activation is not None]
    free = [name for name, loss in LOSSES.items() if loss.requires_activation is None]
    needs = ", ".join(f"{name} needs a {act} last layer" if i == 0 else f"{name} a {act} one" for i, (name, act) in enumerate(fused))
    return f"{needs}; {joined(free)} {'fits' if len(free) == 1 else 'fit'} any."


# Which losses take class indices, torch's class options, and divide mean by the samples.
INDEX_LOSSES = _losses(lambda loss: loss.accepts_class_indices)
OPTION_LOSSES = _losses(lambda loss: loss.accepts_class_options)
PER_ROW_LOSSES = _losses(lambda loss: loss.per_row)

LOSS_DESCRIPTION = _loss_description()
REDUCTION_DESCRIPTION = (
    f"mean averages over all elements (over samples for {PER_ROW_LOSSES}, over the summed class_weights of "
    "the samples' classes for class indices with class_weights); sum adds them."
)

# -- targets: rows, or class indices (for the losses that take them) ---------------------------

ROWS_DESCRIPTION = (
    "[batch][out_last]: one row per sample. " + "; ".join(f"{name}: {loss.targets_text}" for name, loss in LOSSES.items()) + "."
)
CLASS_INDICES_DESCRIPTION = (
    f"[batch], {INDEX_LOSSES} only: each sample's class, an integer in [0, out_last) (JSON integers only: "
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
                kept = InitErrorDetails(type=e["type"], loc=loc, input=e["input"])
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
TARGETS_DESCRIPTION = f"Rows [batch][out_last] (every loss), or for {INDEX_LOSSES} class indices [batch] (one integer per sample)."
ClassWeight = Annotated[FiniteFloat, Field(ge=0)]
LABEL_SMOOTHING_DESCRIPTION = (
    f"{OPTION_LOSSES} only: torch's label_smoothing, in [0, 1). Each target row y becomes "
    "(1 - label_smoothing) * y + label_smoothing / classes (a class index counts as a one-hot row). Default 0: none."
)
CLASS_WEIGHTS_DESCRIPTION = (
    f"{OPTION_LOSSES} only: torch's weight, one finite non-negative number per class (out_last), multiplying "
    "that class's -log p in every sample. mean then divides by the summed weights of the samples' classes "
    "for class-index targets, by the batch size for probability rows (as torch does). Default: none (every weight 1)."
)


# Dumps leave the options out at their defaults, so a body without them dumps (GET /v1/examples) as it did.
def _no_smoothing(value: float) -> bool:
    return value == 0.0


def _no_weights(value: list[float] | None) -> bool:
    return value is None


# -- dtype: what the engine computes in ------------------------------------------------------

FLOAT32_MAX = float(np.finfo(np.float32).max)


def _fit_float32(req: ForwardRequest) -> None:
    """Every number of a float32 request fits float32 (1e39 would be infinite before any computation):
    else a 422 at the array that holds it."""
    network = req.network
    arrays: list[tuple[Loc, Any]] = [(("inputs",), req.inputs)]
    for k, layer in enumerate(network.layers):
        arrays.append((("network", *network.parameter_where(k, "weights")), layer.weights))
        if layer.biases is not None:
            arrays.append((("network", *network.parameter_where(k, "biases")), layer.biases))
    targets = getattr(req, "targets", None)
    if targets is not None and (isinstance(targets, np.ndarray) or (targets and isinstance(targets[0], list))):
        arrays.append((("targets",), targets))
    for loc, values in arrays:
        largest = float(np.abs(np.asarray(values, dtype=np.float64)).max(initial=0.0))
        if largest > FLOAT32_MAX:
            field_error(
                loc,
                f"{dotted(loc)} holds {largest:.3g}, beyond float32's range (about 3.4e38): dtype float32 cannot "
                "represent it; send dtype float64, or smaller numbers",
                "float32_range",
            )


Dtype = Literal["float64", "float32"]
DTYPE_DESCRIPTION = (
    "What the network computes in. float64 (default): PyTorch in double precision, answers exact to the last "
    "bits. float32: PyTorch's default dtype (torch.float32), every array, product and optimizer step in single "
    "precision, about 7 significant digits (faster on large networks). /v1/forward, /v1/loss, /v1/gradients, "
    "/v1/train and /v1/diagram take both; /v1/gradcheck, /v1/explain, /v1/graph and /v1/check compute in float64 only."
)


def _float64(value: str) -> bool:
    # Left out of dumps at its default, as the class options are.
    return value == "float64"


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


class ComputeRequest(StrictModel):
    """A body that asks for computation: its ``size`` is what the limits and admission control read;
    ``binary_body``: it came as safetensors (set by the HTTP layer), whose limits are its own
    (app.service.limits); ``binary_answer``: the answer goes so."""

    _binary_body: bool = PrivateAttr(default=False)
    _binary_answer: bool = PrivateAttr(default=False)

    @property
    def binary_body(self) -> bool:
        return self._binary_body

    @property
    def binary_answer(self) -> bool:
        """The answer goes as safetensors: arrays are kept as arrays, not encoded as JSON as they come."""
        return self._binary_answer

    def came_binary(self) -> None:
        """Record that the body came as safetensors (the HTTP layer's, before the limits are checked)."""
        self._binary_body = True

    def answer_binary(self) -> None:
        """Record that the answer goes as safetensors (the HTTP layer's, before the computation)."""
        self._binary_answer = True

    @property
    def size(self) -> RequestSize:
        raise NotImplementedError


class ForwardRequest(ComputeRequest):
    """A network and a batch of inputs ``[batch][in_0]``."""

    network: NetworkSpec
    inputs: Matrix = Field(description="Shape [batch][in_0], one row per sample.")
    dtype: Dtype = Field(default="float64", exclude_if=_float64, description=DTYPE_DESCRIPTION)

    # Why an endpoint computes in float64 only (None: it takes float32 too), said when dtype is float32.
    float64_only: ClassVar[str | None] = None

    @model_validator(mode="after")
    def _dtype_taken(self) -> ForwardRequest:
        if self.dtype != "float64" and self.float64_only is not None:
            _option_error("dtype", "dtype_unsupported", f"{self.float64_only}; send dtype float64 or leave it out", self.dtype)
        if self.dtype == "float32":
            _fit_float32(self)
        return self

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
    loss: LossName = Field(description=LOSS_DESCRIPTION)
    reduction: Reduction = Field(default="mean", description=REDUCTION_DESCRIPTION)
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
        loss = LOSSES[self.loss]
        if self.index_targets:
            self._check_class_indices(loss, batch, n_out)
        else:
            rows, width = rectangular(self._target_rows, ("targets",), "targets")
            if (rows, width) != (batch, n_out):
                field_error(
                    ("targets",),
                    f"targets must have shape [{batch}][{n_out}] (one row per input row, one value per output "
                    f"unit), but have shape [{rows}][{width}]",
                    "shape_mismatch",
                )
        required = loss.requires_activation
        last = self.network.layers[-1].activation
        if required is not None and last != required:
            field_error(
                ("loss",),
                f"{self.loss} needs the last layer's activation to be {required}, but it is {last}",
                "loss_activation_mismatch",
            )
        if not self.index_targets:
            problem = loss.target_problem(self._target_rows)
            if problem is not None:
                field_error(("targets", *problem.loc), problem.message, "target_range")
        self._check_class_options(loss, n_out)
        return self

    @property
    def _target_rows(self) -> list[list[float]]:
        return typing.cast(list[list[float]], self.targets)

    @property
    def _indices(self) -> list[int]:
        return typing.cast(list[int], self.targets)

    def _check_class_indices(self, loss: Loss, batch: int, n_out: int) -> None:
        if not loss.accepts_class_indices:
            field_error(
                ("targets",),
                f"class indices (one integer per sample) are targets for {INDEX_LOSSES} only; {self.loss} needs "
                f"rows of shape [{batch}][{n_out}]",
                "shape_mismatch",
            )
        if len(self.targets) != batch:
            field_error(
                ("targets",),
                f"class-index targets must have one class index per input row ({batch}), but have {len(self.targets)}",
                "shape_mismatch",
            )
        for i, t in enumerate(self._indices):
            if not 0 <= t < n_out:
                field_error(
                    ("targets", i),
                    f"a class index must be in [0, {n_out - 1}] (the last layer has {n_out} classes), but found {describe(t)}",
                    "target_range",
                )

    def _check_class_options(self, loss: Loss, n_out: int) -> None:
        """label_smoothing and class_weights: only for the losses that take them (cross_entropy), one weight
        per class, and a mean over class indices needs target classes whose weights do not sum to 0 (torch
        would answer NaN)."""
        if not loss.accepts_class_options:
            for name, value, default in (("label_smoothing", self.label_smoothing, 0.0), ("class_weights", self.class_weights, None)):
                if value != default:
                    _option_error(name, "loss_option", f"{name} applies to the {OPTION_LOSSES} loss only, but loss is {self.loss}", value)
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
        if self.index_targets and self.reduction == "mean" and sum(w[t] for t in self._indices) == 0:
            _option_error(
                "class_weights",
                "zero_weight_sum",
                "with class-index targets, mean divides by the summed class_weights of the samples' classes, but they "
                "are all 0 (torch would answer NaN); give one of those classes a positive weight or use reduction sum",
                w,
            )


# -- optimizers: one config model per entry of OPTIMIZERS, built from its hyper-parameter fields ----


class OptimizerConfigBase(StrictModel):
    """What every optimizer config model is: its ``name``, the hyper-parameters of that optimizer's
    dataclass, and ``build()``, the engine's optimizer. Validating one builds it once, so a
    combination the optimizer refuses (``HyperParameterError``) is an error at its field."""

    name: str

    def build(self) -> Optimizer[Any]:
        """The engine's optimizer with these hyper-parameters."""
        optimizer = OPTIMIZERS[self.name]
        return optimizer(**{f.name: getattr(self, f.name) for f in dataclasses.fields(optimizer)})

    @model_validator(mode="after")
    def _builds(self) -> OptimizerConfigBase:
        try:
            self.build()
        except HyperParameterError as e:
            field_error((e.field,), e.message, e.kind)
        return self


def _wire_type(annotation: Any, metadata: Mapping[str, Any]) -> Any:
    """The request type of a hyper-parameter: finite floats, strict bools and ints, tuples of them; its
    bounds apply to every number."""
    bounds = {key: metadata[key] for key in BOUNDS if key in metadata}
    if annotation is float or annotation is int:
        base = FiniteFloat if annotation is float else StrictInt
        return Annotated[base, Field(**bounds)] if bounds else base
    if annotation is bool and not bounds:
        return StrictBool
    if typing.get_origin(annotation) is tuple and ... not in typing.get_args(annotation):
        return tuple[tuple(_wire_type(arg, metadata) for arg in typing.get_args(annotation))]  # type: ignore[misc]
    raise TypeError(f"no request type for a hyper-parameter of type {annotation!r} (bounds {bounds})")


def optimizer_config(optimizer: type[Optimizer[Any]]) -> type[OptimizerConfigBase]:
    """The request model of ``optimizer``: ``name`` (its wire name), then each dataclass field with its
    type, default, bounds and description; described by the first line of the class's docstring."""
    hints = typing.get_type_hints(optimizer)
    fields: dict[str, Any] = {"name": (Literal[optimizer.name], ...)}
    for f in dataclasses.fields(optimizer):
        default = ... if f.metadata.get("required", f.default is dataclasses.MISSING) else f.default
        fields[f.name] = (_wire_type(hints[f.name], f.metadata), Field(default, description=f.metadata.get("description")))
    return create_model(
        f"{optimizer.__name__}Config",
        __base__=OptimizerConfigBase,
        __doc__=(inspect.getdoc(optimizer) or optimizer.__name__).splitlines()[0],
        __module__=__name__,
        **fields,
    )


OPTIMIZER_CONFIGS: Mapping[str, type[OptimizerConfigBase]] = MappingProxyType(
    {name: optimizer_config(optimizer) for name, optimizer in OPTIMIZERS.items()}
)
"""The config model of every optimizer, by wire name (the discriminator of ``OptimizerConfig``)."""

if TYPE_CHECKING:
    OptimizerConfig = OptimizerConfigBase
    SGDConfig: type[OptimizerConfigBase]
    AdamConfig: type[OptimizerConfigBase]
else:
    OptimizerConfig = Annotated[Union[tuple(OPTIMIZER_CONFIGS.values())], Field(discriminator="name")]  # noqa: UP007
    # Importable by name, as before; a new optimizer needs no such line.
    SGDConfig = OPTIMIZER_CONFIGS["sgd"]
    AdamConfig = OPTIMIZER_CONFIGS["adam"]


class LayerMask(StrictModel):
    """Which parameters of one layer train; an omitted part trains entirely."""

    weights: Annotated[list[list[StrictBool]], Field(min_length=1)] | None = None
    biases: list[StrictBool] | None = None


ITERATIONS_DESCRIPTION = "Full-batch steps: forward, loss, backward, update."
TRAINABLE_DESCRIPTION = "Aligned with network.layers; a parameter marked false never changes. Default: all train."
Iterations = Annotated[StrictInt, Field(ge=1)]
Trainable = list[LayerMask] | None


def _check_trainable(trainable: list[LayerMask] | None, network: NetworkSpec) -> None:
    """``trainable`` (when given) has one mask per layer, each part in its layer's shape."""
    if trainable is None:
        return
    layers = network.layers
    if len(trainable) != len(layers):
        field_error(
            ("trainable",),
            f"trainable must have one entry per layer ({len(layers)}), but has {counted(len(trainable), 'entry', 'entries')}",
            "shape_mismatch",
        )
    for k, (mask, layer) in enumerate(zip(trainable, layers)):
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
        keys = network.state_dict_keys
        if mask.biases is not None and any(mask.biases) and keys is not None and keys[k][1] is None:
            field_error(
                ("trainable", k, "biases"),
                f"layer {k} ({keys[k][0]}) has no bias (the state_dict has no {keys[k][0].split('.')[0]}.bias), so none of "
                f"trainable[{k}].biases can be true: leave it out",
                "missing_dependency",
            )


class TrainRequest(LossRequest):
    """A loss request plus the optimizer, the number of full-batch steps and what to record."""

    optimizer: OptimizerConfig
    iterations: Iterations = Field(description=ITERATIONS_DESCRIPTION)
    record_every: StrictInt = Field(
        default=1, ge=1, description="Iteration i (1-based) is recorded when (i - 1) % record_every == 0; the last always is."
    )
    record: list[Recordable] = Field(
        default_factory=list,
        description="Extra per-iteration values: output and gradients (before the update), network (after it).",
    )
    trainable: Trainable = Field(default=None, description=TRAINABLE_DESCRIPTION)

    @model_validator(mode="after")
    def _mask_fits(self) -> TrainRequest:
        _check_trainable(self.trainable, self.network)
        return self


class GradcheckRequest(LossRequest):
    """A loss request plus the finite-difference step and torch.autograd.gradcheck's tolerances."""

    float64_only: ClassVar[str | None] = (
        "/v1/gradcheck computes in float64 only: in float32 a central difference with a step of 1e-6 is mostly rounding error"
    )

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

    float64_only: ClassVar[str | None] = "/v1/explain derives a gradient in float64 only"

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


GRAPH_SAMPLE_DESCRIPTION = (
    "The sample (its row in inputs) whose graph to draw, 0 by default; null draws every sample of the batch "
    "(a small one: the nodes are limited by BACKPROP_MAX_GRAPH_NODES). With one sample of a larger batch, loss is "
    "still the batch's loss: the other samples' terms are one constant node, and each leaf's grad is this "
    "sample's share of its gradient."
)
GRAPH_LABELS_DESCRIPTION = (
    "Labels for nodes, by node name (inputs[0][0], layers[0].weights[1][0], layers[1].activation[0][0], "
    "targets[0][0], loss, ...): the short text drawn for the node (1-40 printable characters), e.g. the blog "
    "post's x1, f1, z_hat, CE. Other nodes get labels in the notation of /v1/explain (x[0], W0[1][0], a1[0], L)."
)
MAX_LABEL_CHARS = 40
NodeName = Annotated[str, Field(max_length=200)]
Label = Annotated[str, Field(min_length=1, max_length=MAX_LABEL_CHARS)]


class GraphRequest(LossRequest):
    """A loss request plus the sample whose computation graph to draw (or all) and labels for its nodes."""

    float64_only: ClassVar[str | None] = "/v1/graph builds the computation graph in float64 only"

    sample: Annotated[StrictInt, Field(ge=0)] | None = Field(default=0, description=GRAPH_SAMPLE_DESCRIPTION)
    labels: dict[NodeName, Label] = Field(default_factory=dict, description=GRAPH_LABELS_DESCRIPTION)

    @model_validator(mode="after")
    def _sample_and_labels_fit(self) -> GraphRequest:
        batch = len(self.inputs)
        if self.sample is not None and self.sample >= batch:
            field_error(
                ("sample",),
                f"sample must be a row of inputs, in [0, {batch - 1}] (the batch has {counted(batch, 'sample')}), but is {self.sample}",
                "shape_mismatch",
            )
        shapes = [(layer.n_out, layer.n_in) for layer in self.network.layers]
        for name, label in self.labels.items():
            if not has_node(name, shapes, batch, self.loss, self.sample):
                drawn = "every sample" if self.sample is None else f"sample {self.sample}"
                field_error(
                    ("labels", name),
                    f"labels names a node this graph (of {drawn}) does not have: {quoted(name, 60)!r}; nodes are named as in "
                    "inputs[s][i], layers[k].weights[j][i], layers[k].biases[j], layers[k].products[s][j][i], "
                    "layers[k].pre_activation[s][j], layers[k].activation[s][j], targets[s][j], loss.terms[s][j] "
                    "(loss.terms[s] for a loss per sample), loss.other_samples and loss (s the sample)",
                    "unknown_node",
                )
            if not label.isprintable():
                field_error(("labels", name), "a label must be printable text (no control characters or line breaks)", "label_text")
        return self


class DiagramRequest(ComputeRequest):
    """A network to draw; with ``inputs`` each neuron is labelled with its activation (first sample),
    and with ``targets`` and ``loss`` too each weight with its gradient."""

    network: NetworkSpec
    inputs: Matrix | None = Field(default=None, description="Shape [batch][in_0]; the first row labels the neurons.")
    targets: Targets | None = Field(default=None, description=TARGETS_DESCRIPTION + " Needs inputs and loss.")
    loss: LossName | None = None
    reduction: Reduction = "mean"
    label_smoothing: FiniteFloat = Field(default=0.0, ge=0, lt=1, exclude_if=_no_smoothing, description=LABEL_SMOOTHING_DESCRIPTION)
    class_weights: Annotated[list[ClassWeight], Field(min_length=1)] | None = Field(
        default=None, exclude_if=_no_weights, description=CLASS_WEIGHTS_DESCRIPTION
    )
    dtype: Dtype = Field(default="float64", exclude_if=_float64, description=DTYPE_DESCRIPTION)

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
            ForwardRequest.model_validate({"network": self.network, "inputs": self.inputs, "dtype": self.dtype})
        return self

    @property
    def index_targets(self) -> bool:
        """Whether ``targets`` are class indices ``[batch]`` rather than rows ``[batch][out_last]``."""
        return _targets_form(self.targets) == "class_indices"

    @cached_property
    def size(self) -> RequestSize:
        return request_size(self.network, len(self.inputs) if self.inputs is not None else 1)


# -- /v1/check: a learner's numbers, in the shapes the service itself answers ------------------

ClaimedNumber = FiniteFloat | None
ClaimedRow = list[ClaimedNumber]
ClaimedMatrix = list[ClaimedRow]
# A million points a quantity is more than any grading scheme needs, and keeps every score's sum finite.
MAX_POINTS = 1_000_000.0
PointValue = Annotated[FiniteFloat, Field(ge=0, le=MAX_POINTS)]

CLAIMED_DESCRIPTION = (
    "Any of the numbers a learner works out, in the shapes this service answers them in: null (or a key "
    "left out) for a number not worked out. Each array given must have exactly its quantity's shape."
)


def _none(value: object) -> bool:
    return value is None


class LayerClaim(StrictModel):
    """One layer's claimed values for every sample, each ``[batch][out]`` as /v1/forward answers them."""

    pre_activation: ClaimedMatrix | None = Field(default=None, exclude_if=_none, description="inputs @ weights.T + biases.")
    activation: ClaimedMatrix | None = Field(default=None, exclude_if=_none, description="The activation of pre_activation.")
    delta: ClaimedMatrix | None = Field(
        default=None, exclude_if=_none, description="dLoss/dpre_activation: what backprop sends back through this layer."
    )


class ParameterClaim(StrictModel):
    """Claimed numbers in the shape of one layer's parameters: ``weights`` ``[out][in]``, ``biases`` ``[out]``."""

    weights: ClaimedMatrix | None = Field(default=None, exclude_if=_none)
    biases: ClaimedRow | None = Field(default=None, exclude_if=_none)


class NetworkClaim(StrictModel):
    """The network's parameters after an iteration's update, one entry per layer (null: none claimed)."""

    layers: list[ParameterClaim | None] = Field(description="One entry per layer of the network, an object or null.")


class StepClaim(StrictModel):
    """What a learner claims about one forward and backward pass: /v1/forward's ``layers`` (with ``delta``),
    /v1/gradients' ``output``, ``loss`` and ``gradients``. Every key may be left out or null."""

    layers: list[LayerClaim | None] | None = Field(
        default=None, exclude_if=_none, description="One entry per layer of the network, an object or null."
    )
    output: ClaimedMatrix | None = Field(default=None, exclude_if=_none, description="[batch][out_last], the last activation.")
    loss: ClaimedNumber = Field(default=None, exclude_if=_none, description="The reduced loss.")
    gradients: list[ParameterClaim | None] | None = Field(
        default=None, exclude_if=_none, description="dLoss/dparameter, one entry per layer of the network, an object or null."
    )

    @property
    def step_keys(self) -> list[str]:
        """The keys of a pass that this claim gives."""
        return [name for name in StepClaim.model_fields if getattr(self, name) is not None]


class _IterationNumber(StrictModel):
    iteration: Iterations = Field(description="Which iteration (1-based, at most iterations).")


class IterationClaim(StepClaim, _IterationNumber):
    """One iteration of a training: its ``iteration``, its pass (before the update, as /v1/train's trace
    records it) and the ``network`` after its update."""

    network: NetworkClaim | None = Field(default=None, exclude_if=_none, description="The parameters after this iteration's update.")


class Claims(StepClaim):
    """Without ``optimizer``: the pass's keys (``layers``, ``output``, ``loss``, ``gradients``). With ``optimizer``
    and ``iterations``: ``iterations``, any of the training's iterations, each at most once."""

    iterations: list[IterationClaim] | None = Field(
        default=None, exclude_if=_none, description="A training's iterations, in any order, each at most once."
    )


class CheckTolerance(StrictModel):
    """A claimed number is right when ``|claimed - expected| <= atol + rtol * max(|claimed|, |expected|)``."""

    rtol: FiniteFloat = Field(
        default=Tolerance.rtol, ge=0, description="Relative: the default passes a value rounded to five significant figures."
    )
    atol: FiniteFloat = Field(default=Tolerance.atol, ge=0, description="Absolute: for values near 0.")


class Points(StrictModel):
    """What a claimed quantity (one array, or the loss) of each kind is worth; a quantity earns them when it is
    correct, or (with carry_forward) when none of its numbers is wrong: each correct or consistent with the
    learner's own earlier numbers."""

    pre_activation: PointValue = 1.0
    activation: PointValue = 1.0
    output: PointValue = 1.0
    loss: PointValue = 1.0
    delta: PointValue = 1.0
    gradients: PointValue = 1.0
    network: PointValue = 1.0


def _found(values: list[Any], depth: int) -> str:
    """The shape of a claimed row (``depth`` 1) or matrix (2), as ``[2][3]``; a ragged matrix said as such."""
    if depth == 1 or not values:
        return f"[{len(values)}]"
    widths = [len(row) for row in values]
    if len(set(widths)) == 1:
        return f"[{len(values)}][{widths[0]}]"
    i = next(i for i, w in enumerate(widths) if w != widths[0])
    return f"rows of different lengths (row 0 has {widths[0]}, row {i} has {widths[i]})"


class CheckRequest(LossRequest):
    """A loss request (or, with ``optimizer`` and ``iterations``, a training as /v1/train takes it) and the
    numbers a learner claims about it."""

    float64_only: ClassVar[str | None] = "/v1/check computes the true numbers in float64 only"

    optimizer: OptimizerConfig | None = Field(
        default=None, exclude_if=_none, description="With iterations: the claims are about a training, as /v1/train runs it."
    )
    iterations: Iterations | None = Field(
        default=None, exclude_if=_none, description=ITERATIONS_DESCRIPTION + " With optimizer: the training's length."
    )
    trainable: Trainable = Field(default=None, exclude_if=_none, description=TRAINABLE_DESCRIPTION + " With optimizer only.")
    claimed: Claims = Field(description=CLAIMED_DESCRIPTION)
    tolerance: CheckTolerance = Field(default_factory=CheckTolerance)
    points: Points = Field(default_factory=Points)
    carry_forward: StrictBool = Field(
        default=True,
        description="true: a claimed quantity earns its points when correct, or when each of its numbers is correct or "
        "consistent with the learner's own earlier numbers (error carried forward, as exam markers do); false: only when correct.",
    )

    @property
    def trains(self) -> bool:
        return self.optimizer is not None

    @property
    def last_iteration(self) -> int:
        """The last iteration the claims are about (1 without training): the check computes up to it."""
        return max((c.iteration for c in self.claimed.iterations or ()), default=1)

    @property
    def steps(self) -> list[tuple[tuple[str | int, ...], int, StepClaim]]:
        """Each claimed pass: its path in ``claimed``, its iteration and its claim."""
        if self.claimed.iterations is None:
            return [] if self.trains else [((), 1, self.claimed)]
        return [(("iterations", i), c.iteration, c) for i, c in enumerate(self.claimed.iterations)]

    @model_validator(mode="after")
    def _claims_fit(self) -> CheckRequest:
        self._check_training()
        self._check_iterations()
        for path, _, claim in self.steps:
            self._check_step(("claimed", *path), claim)
        return self

    def _check_training(self) -> None:
        if not self.trains:
            for name in ("iterations", "trainable"):
                if getattr(self, name) is not None:
                    field_error(
                        ("optimizer",),
                        f"{name} describes a training, which needs an optimizer, but optimizer is missing",
                        "missing_dependency",
                    )
            if self.claimed.iterations is not None:
                field_error(
                    ("claimed", "iterations"),
                    "claims per iteration are about a training, which needs optimizer and iterations, but optimizer is missing "
                    "(without training, claim layers, output, loss and gradients at the top of claimed)",
                    "missing_dependency",
                )
            return
        if self.iterations is None:
            field_error(
                ("iterations",), "a training needs iterations as well as an optimizer, but iterations is missing", "missing_dependency"
            )
        _check_trainable(self.trainable, self.network)
        for key in self.claimed.step_keys:
            field_error(
                ("claimed", key),
                f"with an optimizer the claims are per iteration: put {key} in claimed.iterations[i], beside that "
                "iteration's number (iteration), not at the top of claimed",
                "claim_form",
            )

    def _check_iterations(self) -> None:
        seen: dict[int, int] = {}
        for i, claim in enumerate(self.claimed.iterations or ()):
            loc = ("claimed", "iterations", i, "iteration")
            assert self.iterations is not None  # _check_training: claims of iterations come with them
            if claim.iteration > self.iterations:
                field_error(
                    loc,
                    f"iteration must be at most {self.iterations} (the training's iterations), but is {claim.iteration}",
                    "iteration_range",
                )
            if claim.iteration in seen:
                field_error(
                    loc,
                    f"each iteration may be claimed once, but iteration {claim.iteration} is claimed at "
                    f"claimed.iterations[{seen[claim.iteration]}] and here",
                    "repeated_iteration",
                )
            seen[claim.iteration] = i

    def _check_step(self, loc: tuple[str | int, ...], claim: StepClaim) -> None:
        layers, batch = self.network.layers, len(self.inputs)
        if claim.layers is not None:
            self._check_per_layer(loc + ("layers",), claim.layers)
            for k, values in enumerate(claim.layers):
                if values is not None:
                    for name in ("pre_activation", "activation", "delta"):
                        what = f"layer {k}'s {'delta, dLoss/dpre_activation' if name == 'delta' else name}, one row per sample"
                        _check_shape(loc + ("layers", k, name), getattr(values, name), (batch, layers[k].n_out), what)
        _check_shape(loc + ("output",), claim.output, (batch, self.network.n_out), "the last layer's activation, one row per sample")
        self._check_parameters(loc + ("gradients",), claim.gradients, "the gradient of ")
        if isinstance(claim, IterationClaim) and claim.network is not None:
            self._check_parameters(loc + ("network", "layers"), claim.network.layers, "")

    def _check_per_layer(self, loc: tuple[str | int, ...], entries: list[Any]) -> None:
        n = len(self.network.layers)
        if len(entries) != n:
            field_error(
                loc,
                f"{dotted(loc)} must have one entry per layer ({n}), an object or null each, but has {counted(len(entries), 'entry', 'entries')}",
                "shape_mismatch",
            )

    def _check_parameters(self, loc: tuple[str | int, ...], entries: list[ParameterClaim | None] | None, prefix: str) -> None:
        if entries is None:
            return
        self._check_per_layer(loc, entries)
        for k, (values, layer) in enumerate(zip(entries, self.network.layers)):
            if values is not None:
                _check_shape(loc + (k, "weights"), values.weights, (layer.n_out, layer.n_in), f"{prefix}layer {k}'s weights")
                _check_shape(loc + (k, "biases"), values.biases, (layer.n_out,), f"{prefix}layer {k}'s biases")


def _check_shape(loc: tuple[str | int, ...], values: list[Any] | None, shape: tuple[int, ...], what: str) -> None:
    """A claimed row or matrix (None: not claimed) has exactly ``shape``; the error names the path and both shapes."""
    if values is None:
        return
    found = _found(values, len(shape))
    expected = "".join(f"[{n}]" for n in shape)
    if found != expected:
        field_error(loc, f"{dotted(loc)} must be {expected} ({what}), found {found}", "shape_mismatch")

"""The mistakes people really make computing backprop by hand or in their own code, each a
variant of the correct computation (app.nn.steps.Steps) that changes one step.

``/v1/check`` runs every variant that applies to a problem from the learner's own claimed
numbers and reports each one that reproduces a number the learner got wrong. A variant class
has a stable ``name`` (what programs match on), a ``description`` (what a learner reads) and
``instances(problem)``: the concrete variants for that problem (one per layer, per pair of
parameters, ...), each with its ``detail``. ``CATALOGUE`` lists them in the order reported.

Adding a mistake: a class here and its entry in ``CATALOGUE``; tests/nn/test_mistakes.py then
checks that its own numbers are diagnosed as itself and that correct numbers never are.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np

from app.nn.activations import ACTIVATIONS
from app.nn.layout import Layout
from app.nn.losses import Loss
from app.nn.optimizers import SGD, Adam, Optimizer
from app.nn.steps import Array, Mask, OutputStep, Steps

# Every ordered pair of parameters is tried as "one used in place of the other" up to this many
# parameters (600 pairs at 25); a larger network skips that search (the answer says so).
MAX_SUBSTITUTION_PARAMETERS = 25


@dataclass(frozen=True)
class ProblemShape:
    """What decides which variants apply: the layers' shapes and activations, the batch, the loss,
    the reduction and the optimizer (None: nothing trains)."""

    layout: Layout
    batch: int
    outputs: int
    loss_name: str
    fused: bool
    per_row: bool
    reduction: str
    optimizer: Optimizer[Any] | None

    @classmethod
    def of(cls, layout: Layout, batch: int, loss: Loss, reduction: str, optimizer: Optimizer[Any] | None) -> ProblemShape:
        """The shape of a problem: its layout, ``batch`` samples, its bound ``loss`` and ``reduction`` and
        ``optimizer`` (no arrays: a request's sizes are enough)."""
        outputs = layout.shapes[-1][0]
        return cls(layout, batch, outputs, loss.name, loss.from_logits, loss.per_row, reduction, optimizer)


class Mistake(Steps):
    """A variant of the correct steps: ``name``, ``description`` and this instance's ``detail``."""

    description: ClassVar[str]

    def __init__(self, **detail: Any) -> None:
        self.detail: dict[str, Any] = detail

    @classmethod
    def instances(cls, shape: ProblemShape) -> Iterator[Mistake]:
        yield cls()


# -- signs ------------------------------------------------------------------------------------


class GradientSignFlipped(Mistake):
    name = "gradient_sign_flipped"
    description = "the loss's gradient with the wrong sign (y - output for output - y): every delta and gradient is negated, and the update climbs the loss"

    def output_delta(self, o: OutputStep) -> Array:
        return -super().output_delta(o)


class UpdateAscends(Mistake):
    name = "update_ascends"
    description = "the update adds the gradient (gradient ascent): w + lr * dL/dw instead of w - lr * dL/dw"

    @classmethod
    def instances(cls, shape: ProblemShape) -> Iterator[Mistake]:
        if shape.optimizer is not None:
            yield cls()

    def update(self, optimizer: Optimizer[Any], params: Array, grad: Array, state: Any, trainable: Mask | None) -> tuple[Array, Any]:
        return super().update(optimizer, params, -grad, state, trainable)


# -- reductions -------------------------------------------------------------------------------


class SumInsteadOfMean(Mistake):
    name = "sum_instead_of_mean"
    description = "the loss and its gradient summed where the mean belongs (larger by the batch size, or by batch x outputs)"

    @classmethod
    def instances(cls, shape: ProblemShape) -> Iterator[Mistake]:
        if shape.reduction == "mean" and shape.batch * (1 if shape.per_row else shape.outputs) > 1:
            yield cls()

    def loss(self, o: OutputStep) -> float:
        return super().loss(replace(o, reduction="sum"))

    def output_delta(self, o: OutputStep) -> Array:
        return super().output_delta(replace(o, reduction="sum"))


class MeanInsteadOfSum(Mistake):
    name = "mean_instead_of_sum"
    description = "the loss and its gradient divided by the batch size (or by batch x outputs) where the sum belongs"

    @classmethod
    def instances(cls, shape: ProblemShape) -> Iterator[Mistake]:
        if shape.reduction != "sum":
            return
        if shape.batch > 1:
            yield cls(divisor="batch", by=shape.batch)
        if shape.outputs > 1:
            yield cls(divisor="batch x outputs", by=shape.batch * shape.outputs)

    def loss(self, o: OutputStep) -> float:
        return super().loss(o) / float(self.detail["by"])

    def output_delta(self, o: OutputStep) -> Array:
        return super().output_delta(o) / float(self.detail["by"])


# -- activations' derivatives -------------------------------------------------------------------


def _layers(shape: ProblemShape, elementwise_only: bool) -> Iterator[int]:
    for k, name in enumerate(shape.layout.activations):
        if not elementwise_only or ACTIVATIONS[name].elementwise:
            yield k


class ActivationDerivativeOmitted(Mistake):
    name = "activation_derivative_omitted"
    description = "layer {layer}'s activation derivative f'(z) left out of its delta: delta = dL/da instead of dL/da * f'(z)"

    @classmethod
    def instances(cls, shape: ProblemShape) -> Iterator[Mistake]:
        for k in _layers(shape, elementwise_only=False):
            name = shape.layout.activations[k]
            last = k == len(shape.layout.activations) - 1
            # A loss fused with softmax has no separate dL/da a learner would write; identity has f' = 1.
            if name != "identity" and not (last and shape.fused and not ACTIVATIONS[name].elementwise):
                yield cls(layer=k)

    def backward(self, k: int, name: str, z: Array, a: Array, grad_a: Array) -> Array:
        return grad_a if k == self.detail["layer"] else super().backward(k, name, z, a, grad_a)

    def output_delta(self, o: OutputStep) -> Array:
        delta = super().output_delta(o)
        if o.layer != self.detail["layer"] or not o.loss.from_logits:
            return delta
        # Fused (sigmoid and binary cross-entropy): the delta is dL/da * f'(z); without f', dL/da.
        return delta / _slope(o.activation, o.z, o.out)


class ActivationDerivativeAtOutput(Mistake):
    name = "activation_derivative_at_output"
    description = "layer {layer}'s derivative evaluated at its output instead of its input: f'(a) for f'(z), e.g. sigmoid' as s(1 - s) of s = sigmoid(z)"

    @classmethod
    def instances(cls, shape: ProblemShape) -> Iterator[Mistake]:
        for k in _layers(shape, elementwise_only=True):
            if shape.layout.activations[k] not in ("identity", "relu"):  # f'(a) = f'(z) for these
                yield cls(layer=k)

    def backward(self, k: int, name: str, z: Array, a: Array, grad_a: Array) -> Array:
        if k != self.detail["layer"]:
            return super().backward(k, name, z, a, grad_a)
        return super().backward(k, name, a, ACTIVATIONS[name].forward(a), grad_a)

    def output_delta(self, o: OutputStep) -> Array:
        delta = super().output_delta(o)
        if o.layer != self.detail["layer"] or not o.loss.from_logits:
            return delta
        return delta / _slope(o.activation, o.z, o.out) * _slope(o.activation, o.out, ACTIVATIONS[o.activation].forward(o.out))


def _slope(name: str, z: Array, a: Array) -> Array:
    """An elementwise activation's derivative at ``z`` (with ``a = f(z)``)."""
    slope: Array = ACTIVATIONS[name].backward(z, a, np.ones_like(z))
    return slope


# -- the loss's derivative ----------------------------------------------------------------------


class BceLogTypo(Mistake):
    name = "bce_log_z_hat_typo"
    description = (
        "binary cross-entropy written -(z log(z_hat) + (1 - z) log(z_hat)): log(z_hat) where log(1 - z_hat) belongs "
        "in the second term, so the loss is -log(z_hat) and its delta z_hat - 1 whatever the target"
    )

    @classmethod
    def instances(cls, shape: ProblemShape) -> Iterator[Mistake]:
        if shape.loss_name == "binary_cross_entropy":
            yield cls()

    def loss(self, o: OutputStep) -> float:
        terms = -np.log(o.out)
        return float(terms.sum() / o.loss.count(o.y, o.reduction))

    def output_delta(self, o: OutputStep) -> Array:
        delta: Array = (o.out - 1.0) / o.loss.count(o.y, o.reduction)
        return delta


class OutputForError(Mistake):
    name = "output_used_for_error"
    description = "the output used where output - target belongs in the loss's gradient (the target left out of the delta)"

    def output_delta(self, o: OutputStep) -> Array:
        count = o.loss.count(o.y, o.reduction)
        if o.loss.from_logits:
            # Fused: output - target becomes output (each target row's total kept for softmax's).
            scale = o.y.sum(axis=1, keepdims=True) if o.loss.per_row else 1.0
            delta: Array = o.out * scale / count
            return delta
        return super().output_delta(replace(o, y=np.zeros_like(o.y)))


# -- gradients ------------------------------------------------------------------------------------


class WeightGradientTransposed(Mistake):
    name = "weight_gradient_transposed"
    description = "layer {layer}'s weight gradient transposed: a_prev^T delta ([in][out]) where delta^T a_prev ([out][in]) belongs"

    @classmethod
    def instances(cls, shape: ProblemShape) -> Iterator[Mistake]:
        for k, (n_out, n_in) in enumerate(shape.layout.shapes):
            if n_out == n_in > 1:
                yield cls(layer=k)

    def weight_gradient(self, k: int, delta: Array, a_prev: Array) -> Array:
        g = super().weight_gradient(k, delta, a_prev)
        return g.T.copy() if k == self.detail["layer"] else g


class BiasGradientOneSample(Mistake):
    name = "bias_gradient_one_sample"
    description = "the bias gradient from the first sample's delta alone where the sum over the batch belongs"

    @classmethod
    def instances(cls, shape: ProblemShape) -> Iterator[Mistake]:
        if shape.batch > 1:
            yield cls()

    def bias_gradient(self, k: int, delta: Array) -> Array:
        first: Array = delta[0].copy()
        return first


# -- updates ----------------------------------------------------------------------------------------


class LearningRateForgotten(Mistake):
    name = "learning_rate_forgotten"
    description = "the update without the learning rate: w - dL/dw"

    @classmethod
    def instances(cls, shape: ProblemShape) -> Iterator[Mistake]:
        lr = getattr(shape.optimizer, "learning_rate", None)
        if lr is not None and lr != 1.0:
            yield cls()

    def update(self, optimizer: Optimizer[Any], params: Array, grad: Array, state: Any, trainable: Mask | None) -> tuple[Array, Any]:
        return super().update(replace(optimizer, learning_rate=1.0), params, grad, state, trainable)


class WeightDecayDecoupled(Mistake):
    name = "weight_decay_decoupled"
    description = "decoupled weight decay (AdamW's w - lr * weight_decay * w, then the step) where torch's coupled L2 belongs (weight_decay * w added to the gradient)"

    @classmethod
    def instances(cls, shape: ProblemShape) -> Iterator[Mistake]:
        if getattr(shape.optimizer, "weight_decay", 0.0):
            yield cls()

    def update(self, optimizer: Optimizer[Any], params: Array, grad: Array, state: Any, trainable: Mask | None) -> tuple[Array, Any]:
        lr, wd = optimizer.learning_rate, optimizer.weight_decay  # type: ignore[attr-defined]
        decayed = params * (1.0 - lr * wd)
        new, new_state = super().update(replace(optimizer, weight_decay=0.0), decayed, grad, state, trainable)
        if trainable is not None:
            np.copyto(new, params, where=~trainable)
        return new, new_state


@dataclass
class _Moments:
    """A hand-written optimizer's state: the step count and its buffers."""

    step: int
    first: Array
    second: Array


class _HandWritten(Mistake):
    """A variant optimizer written out by hand, with torch's coupled L2 (``g = grad + weight_decay * w``)
    and frozen parameters kept: ``moved`` is its own rule for one step, from its ``_Moments``."""

    optimizer_type: ClassVar[type]

    @classmethod
    def instances(cls, shape: ProblemShape) -> Iterator[Mistake]:
        if isinstance(shape.optimizer, cls.optimizer_type) and cls.applies(shape.optimizer):
            yield cls()

    @classmethod
    def applies(cls, optimizer: Any) -> bool:
        return True

    def init_state(self, optimizer: Optimizer[Any], n: int) -> Any:
        return _Moments(0, np.zeros(n), np.zeros(n))

    def update(self, optimizer: Optimizer[Any], params: Array, grad: Array, state: Any, trainable: Mask | None) -> tuple[Array, Any]:
        g = grad + optimizer.weight_decay * params  # type: ignore[attr-defined]  # SGD and Adam both have it
        new, moments = self.moved(optimizer, params, g, state)
        return _kept(new, params, trainable), moments

    def moved(self, optimizer: Any, params: Array, g: Array, state: _Moments) -> tuple[Array, _Moments]:
        raise NotImplementedError


class MomentumDampened(_HandWritten):
    name = "sgd_momentum_dampened"
    description = (
        "SGD momentum as a moving average, b = mu * b + (1 - mu) * g from the first step on, where torch's b = mu * b + g starts from b = g"
    )
    optimizer_type = SGD

    @classmethod
    def applies(cls, optimizer: Any) -> bool:
        return bool(optimizer.momentum != 0.0)

    def moved(self, optimizer: Any, params: Array, g: Array, state: _Moments) -> tuple[Array, _Moments]:
        mu = optimizer.momentum
        buf = mu * state.first + (1.0 - mu) * g
        d = g + mu * buf if optimizer.nesterov else buf
        return params - optimizer.learning_rate * d, _Moments(state.step + 1, buf, state.second)


class _AdamVariant(_HandWritten):
    optimizer_type = Adam

    def moved(self, optimizer: Any, params: Array, g: Array, state: _Moments) -> tuple[Array, _Moments]:
        beta1, beta2 = optimizer.betas
        t = state.step + 1
        m = beta1 * state.first + (1.0 - beta1) * g
        v = beta2 * state.second + (1.0 - beta2) * g * g
        return params - optimizer.learning_rate * self.direction(m, v, t, beta1, beta2, optimizer.eps), _Moments(t, m, v)

    def direction(self, m: Array, v: Array, t: int, beta1: float, beta2: float, eps: float) -> Array:
        raise NotImplementedError


class AdamWithoutBiasCorrection(_AdamVariant):
    name = "adam_without_bias_correction"
    description = "Adam without bias correction: m / (sqrt(v) + eps) where m_hat / (sqrt(v_hat) + eps) belongs, m_hat = m / (1 - beta1^t)"

    def direction(self, m: Array, v: Array, t: int, beta1: float, beta2: float, eps: float) -> Array:
        d: Array = m / (np.sqrt(v) + eps)
        return d


class AdamEpsInsideSqrt(_AdamVariant):
    name = "adam_eps_inside_sqrt"
    description = "Adam's eps inside the square root: m_hat / sqrt(v_hat + eps) where m_hat / (sqrt(v_hat) + eps) belongs"

    def direction(self, m: Array, v: Array, t: int, beta1: float, beta2: float, eps: float) -> Array:
        d: Array = (m / (1.0 - beta1**t)) / np.sqrt(v / (1.0 - beta2**t) + eps)
        return d


def _kept(new: Array, old: Array, trainable: Mask | None) -> Array:
    if trainable is not None:
        np.copyto(new, old, where=~trainable)
    return new


# -- the network itself ------------------------------------------------------------------------------


class ParameterSubstituted(Mistake):
    name = "parameter_substituted"
    description = (
        "layer {layer}'s {kind}{index} computed with the value of layer {used_layer}'s {used_kind}{used_index} "
        "in its place (a typo such as w2 for w21)"
    )

    def __init__(self, **detail: Any) -> None:
        super().__init__(**{k: v for k, v in detail.items() if not k.startswith("_")})
        self.target: int = detail["_target"]
        self.source: int = detail["_source"]
        self.layout: Layout = detail["_layout"]

    @classmethod
    def instances(cls, shape: ProblemShape) -> Iterator[Mistake]:
        layout = shape.layout
        if layout.size > MAX_SUBSTITUTION_PARAMETERS:
            return
        for target in range(layout.size):
            for source in range(layout.size):
                if source != target:
                    k, kind, index = layout.locate(target)
                    k2, kind2, index2 = layout.locate(source)
                    yield cls(
                        layer=k,
                        kind=kind,
                        index=list(index),
                        used_layer=k2,
                        used_kind=kind2,
                        used_index=list(index2),
                        _target=target,
                        _source=source,
                        _layout=layout,
                    )

    def effective(self, layers: list[tuple[Array, Array]]) -> list[tuple[Array, Array]]:
        flat = np.empty(self.layout.size)
        for (w, b), (w_out, b_out) in zip(layers, self.layout.views(flat)):
            w_out[...] = w
            b_out[...] = b
        flat[self.target] = flat[self.source]
        return [(w.copy(), b.copy()) for w, b in self.layout.views(flat)]


CATALOGUE: tuple[type[Mistake], ...] = (
    GradientSignFlipped,
    UpdateAscends,
    SumInsteadOfMean,
    MeanInsteadOfSum,
    ActivationDerivativeOmitted,
    ActivationDerivativeAtOutput,
    BceLogTypo,
    OutputForError,
    WeightGradientTransposed,
    BiasGradientOneSample,
    LearningRateForgotten,
    WeightDecayDecoupled,
    MomentumDampened,
    AdamWithoutBiasCorrection,
    AdamEpsInsideSqrt,
    ParameterSubstituted,
)


def variants(shape: ProblemShape) -> list[Mistake]:
    """Every variant of the catalogue that applies to a problem of ``shape``, in report order."""
    return [variant for mistake in CATALOGUE for variant in mistake.instances(shape)]


def skipped(shape: ProblemShape) -> tuple[str, ...]:
    """What the catalogue does not search for a problem of ``shape``, in words."""
    if shape.layout.size > MAX_SUBSTITUTION_PARAMETERS:
        return (
            f"{ParameterSubstituted.name} was not searched: the network has {shape.layout.size} parameters, "
            f"more than the {MAX_SUBSTITUTION_PARAMETERS} whose every pair is tried",
        )
    return ()


def describe(variant: Mistake) -> str:
    """The variant's description with its detail filled in (``weights[0][1]`` for an index)."""
    detail = dict(variant.detail)
    for key in ("index", "used_index"):
        if key in detail:
            detail[key] = "".join(f"[{i}]" for i in detail[key])
    return variant.description.format(**detail) if detail else variant.description

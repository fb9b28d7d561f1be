"""Loss functions with PyTorch's float64 semantics (float32's too): one class per loss, each holding all it is.

A loss is one object (an instance of a :class:`Loss` subclass, registered in ``LOSSES``) that
carries, side by side:

* its value: ``terms(x, y)``, summed and divided by ``count`` into ``value`` / ``values``;
* its gradient: ``grad(x, y, reduction, out=None) = dL/dx``;
* what targets it takes: ``target_problem(rows)`` (the first target it refuses, in words),
  ``targets_text`` (the same in the request schema's description), ``accepts_class_indices``,
  and ``sample_targets(rng, shape)``, random targets it takes (what generic tests draw);
* what it needs of the network: ``requires_activation`` (the last activation it is fused with);
* its explanation: ``explain_output(unit)``, the output layer's step of the chain rule in words
  and in LaTeX (``app.nn.explain`` asks each loss for it and knows no loss by name);
* its piece of the scalar computation graph: ``graph_terms(x, out, y)``, one sample's terms as
  nodes with their local derivatives (``app.nn.graph`` asks each loss for them).

Shapes: ``x`` and ``y`` are ``[batch][units]``; ``values`` also takes a stack ``x``
``[k][batch][units]`` (one loss per stacked ``x``, as a training loop needs). For the fused
losses ``x`` is the last layer's pre-activation (the logits), as in
``binary_cross_entropy_with_logits`` and ``cross_entropy``; for ``mse`` it is the network's output.

``cross_entropy`` also takes torch's options (class weights, label smoothing, class-index
targets): ``LOSSES["cross_entropy"].bind(...)`` is the loss with them, the same interface
for the engine, which takes a loss name or such a bound :class:`Loss` wherever it takes a loss.
Class-index targets reach a loss as one-hot rows (``class_index_targets``); the bound loss
knows they stand for indices where torch treats the two differently (a weighted mean's divisor).

A loss computes in the dtype of its arrays: float32 ``x`` and ``y`` give float32 terms and
gradients, as torch's float32 losses (``astype`` casts a bound loss's own arrays to match).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, ClassVar, Literal, NamedTuple, Protocol, get_args

import numpy as np
from numpy.typing import ArrayLike, NDArray

from app.nn import latex as tex
from app.nn.activations import ACTIVATIONS
from app.nn.latex import fmt

Array = NDArray[np.float64]
Reduction = Literal["mean", "sum"]
REDUCTIONS: tuple[Reduction, ...] = get_args(Reduction)

# Rows of probability targets must sum to 1 within this tolerance (the contract's).
PROBABILITY_SUM_TOLERANCE = 1e-6

_sigmoid = ACTIVATIONS["sigmoid"].forward


class Grad(Protocol):
    """``dL/dx`` ``[batch][units]`` of the ``reduction`` of the loss of ``x`` against ``y``, into ``out`` when given."""

    def __call__(self, x: Array, y: Array, reduction: Reduction, out: Array | None = None) -> Array: ...


# -- what a loss explains: one named number, and the output unit it explains ------------------


@dataclass(frozen=True)
class Term:
    """One named number in a derivation: its ``symbol``, what it ``means`` and its ``value``."""

    symbol: str
    meaning: str
    value: float | None  # None where a textbook factor is not finite (e.g. 1/z_hat at z_hat = 0)


@dataclass(frozen=True)
class OutputUnit:
    """Output unit ``unit`` of sample ``sample``, as the output layer's step of a derivation sees it.

    ``pre_row``, ``output_row`` and ``target_row`` are that sample's ``[1][units]`` rows (the
    last layer's pre-activation, its activation and the targets as the loss takes them);
    ``delta`` is backprop's own ``dl/dpre[unit]`` (unreduced), the step's value.
    """

    sample: int
    unit: int
    layer: int
    activation: str
    pre_row: Array
    output_row: Array
    target_row: Array
    delta: float

    @property
    def symbol(self) -> str:
        return f"delta{self.layer}[{self.unit}]"

    @property
    def pre(self) -> float:
        return float(self.pre_row[0, self.unit])

    @property
    def out(self) -> float:
        return float(self.output_row[0, self.unit])

    @property
    def target(self) -> float:
        return float(self.target_row[0, self.unit])


class Explained(NamedTuple):
    """An output step: its ``factors``, its ``line`` of text and the same as ``latex`` (KaTeX's subset,
    in the notation of ``app.nn.latex``), both with the numbers substituted."""

    factors: tuple[Term, ...]
    line: str
    latex: str


@dataclass(frozen=True)
class GraphTerm:
    """One term of a sample's unreduced loss, as a node of the scalar computation graph (``app.nn.graph``).

    ``unit``: the output unit of a per-element term (``None`` for a per-row term, one per sample);
    ``value``: the term, as ``terms`` computes it; ``d_output``: for each output unit ``j`` the term
    depends on, ``(j, dl/da_j)``, the derivative of the term with respect to the network's output
    ``a_j`` (the last activation, also for a loss fused with it: the graph draws the textbook chain
    through ``a_j``), the local derivative on the edge from ``a_j``; ``targets``: the target units
    it reads (constants, as in torch: their edges carry no derivative). A derivative that has no
    finite value (``1 / (1 - a)`` at a saturated sigmoid) is ``inf`` or ``nan``.
    """

    unit: int | None
    value: float
    d_output: tuple[tuple[int, float], ...]
    targets: tuple[int, ...]


@dataclass(frozen=True)
class TargetProblem:
    """A target a loss refuses: ``loc`` inside the targets (``(i, j)`` an element, ``(i,)`` a row) and
    ``message``, what was expected and what was found."""

    loc: tuple[int, ...]
    message: str


# -- the base ------------------------------------------------------------------------------------


class Loss(ABC):
    """A named loss: per-sample (or per-element) ``terms(x, y)`` and ``grad(x, y, reduction) = dL/dx``.

    ``x``, ``y`` are ``[batch][units]``. A subclass sets the class variables below and writes
    ``terms``, ``grad`` and ``explain_output``; the rest (reductions, binding) is here.
    """

    name: ClassVar[str]
    # The last activation the loss is fused with (None: any). When it is set, ``x`` is that
    # layer's pre-activation, otherwise the network's output.
    requires_activation: ClassVar[str | None] = None
    # Terms are one number per sample (cross_entropy) rather than one per element.
    per_row: ClassVar[bool] = False
    # Target rows it takes, in words, for the request schema: "values in [0, 1]".
    targets_text: ClassVar[str]
    # Whether it also takes class indices ``[batch]`` (as one-hot rows, see ``bind``).
    accepts_class_indices: ClassVar[bool] = False
    # Whether ``bind`` takes torch's class weights and label smoothing.
    accepts_class_options: ClassVar[bool] = False
    # dL/dx from the fused activation's output (when a forward pass computed it), if cheaper.
    grad_from_output: Grad | None = None

    @abstractmethod
    def terms(self, x: Array, y: Array) -> Array:
        """The unreduced loss: ``[..., batch]`` for ``per_row`` losses, ``[..., batch, units]`` otherwise."""

    @abstractmethod
    def grad(self, x: Array, y: Array, reduction: Reduction, out: Array | None = None) -> Array:
        """``dL/dx`` ``[batch][units]``, into ``out`` when given (which must not alias ``x`` or ``y``)."""

    @abstractmethod
    def explain_output(self, unit: OutputUnit) -> Explained:
        """The output layer's step for ``unit``: the factors whose product (or stated combination)
        is ``unit.delta``, and the line that says so with their numbers, in words and in LaTeX."""

    def graph_terms(self, x: Array, out: Array, y: Array) -> tuple[GraphTerm, ...]:
        """One sample's terms as graph nodes, from the ``[1][units]`` rows ``x`` (what the loss takes:
        the logits for a fused loss, else the output), ``out`` (the network's output) and ``y``.

        This default fits a per-element loss of the network's output (``mse``, or any loss with
        neither ``per_row`` nor ``requires_activation``): term ``j`` is ``terms(x, y)[0, j]`` and its
        derivative in ``a_j`` is ``grad(x, y, "sum")[0, j]`` (term ``j`` reads ``x_j`` alone). A fused
        or per-row loss writes its own.
        """
        if self.per_row or self.from_logits:
            raise NotImplementedError(f"{self.name} is fused with its activation or has one term per sample: it writes graph_terms")
        t, g = self.terms(x, y)[0], self.grad(x, y, "sum")[0]
        return tuple(GraphTerm(j, float(t[j]), ((j, float(g[j])),), (j,)) for j in range(t.shape[0]))

    @abstractmethod
    def sample_targets(self, rng: np.random.Generator, shape: tuple[int, int]) -> Array:
        """Random target rows ``shape`` = ``[batch][units]`` that this loss takes (``target_problem`` finds none)."""

    def target_problem(self, rows: Sequence[Sequence[float]]) -> TargetProblem | None:
        """The first of the target ``rows`` ``[batch][units]`` (of the right shape) that this loss does
        not take, or None: any finite number, unless a subclass says otherwise."""
        return None

    @property
    def from_logits(self) -> bool:
        return self.requires_activation is not None

    def bind(self, *, class_weights: ArrayLike | None = None, label_smoothing: float = 0.0, index_targets: bool = False) -> Loss:
        """This loss with torch's options; with none of them, this very loss (and its fast paths).

        ``class_weights`` ``[C]`` and ``label_smoothing`` (in [0, 1)) are cross_entropy's ``weight``
        and ``label_smoothing``; ``index_targets`` says the targets are one-hot rows standing for
        class indices (``class_index_targets``). Other losses take none of them (ValueError).
        """
        if class_weights is None and not label_smoothing and not index_targets:
            return self
        raise ValueError(f"{self.name} takes no class weights, label smoothing or class-index targets")

    def astype(self, dtype: np.dtype[Any]) -> Loss:
        """This loss with its own arrays (none here; cross_entropy's class weights) in ``dtype``, the
        dtype of the ``x`` and ``y`` it will take: this very loss when nothing changes."""
        return self

    def count(self, y: Array, reduction: Reduction) -> int | float:
        """What ``mean`` divides by for targets ``y`` ``[batch][units]``: samples for per-row losses,
        elements otherwise (1 for ``sum``)."""
        if reduction == "sum":
            return 1
        samples, units = y.shape[-2:]
        return int(samples) if self.per_row else int(samples * units)

    def mean_over(self) -> str:
        """What ``count`` counts for ``mean``, in words."""
        return "samples" if self.per_row else "output elements"

    def values(self, x: Array, y: Array, reduction: Reduction) -> Array:
        """The reduced loss of every ``x`` in a stack ``[k][batch][units]``: shape ``[k]``."""
        t = self.terms(x, y)
        axes = (-1,) if self.per_row else (-2, -1)
        reduced: Array = t.sum(axis=axes) / self.count(y, reduction)
        return reduced

    def value(self, x: Array, y: Array, reduction: Reduction) -> float:
        """The reduced loss of one ``x`` ``[batch][units]``."""
        return float(self.terms(x, y).sum() / self.count(y, reduction))


def through_activation(unit: OutputUnit, d_out: Term) -> Explained:
    """The output step of a loss of the network's output (not fused with its activation):
    ``delta = dl/dout * f'(pre)`` for an elementwise ``f``, the Jacobian's sum for softmax."""
    act, s, m, k, sym = unit.activation, unit.sample, unit.unit, unit.layer, unit.symbol
    ell = tex.sample_loss(s)
    if ACTIVATIONS[act].elementwise:
        slope = float(ACTIVATIONS[act].backward(unit.pre_row, unit.output_row, np.ones_like(unit.output_row))[0, m])
        d_act = Term(f"{act}'(pre{k}[{m}])", f"the {act}'s slope at pre = {fmt(unit.pre)}", slope)
        line = f"sample {s}: {sym} = dl/dout * {act}'(pre) = {_text(d_out.value)} * {fmt(slope)} = {fmt(unit.delta)}"
        latex = (
            rf"{tex.delta(k, m)} = {tex.partial(ell, tex.activation(k, m))} \cdot {tex.derivative(act, k, m)} "
            rf"= {tex.number(d_out.value)} \cdot {tex.number(slope, paren=True)} = {tex.number(unit.delta)}"
        )
    else:
        d_act = Term("softmax Jacobian", "sum over outputs n of dl/dout[n] * p[n] * (1[n = m] - p[m])", unit.delta)
        line = f"sample {s}: {sym} = sum_n dl/dout[n] * dp[n]/dpre[{m}] = {fmt(unit.delta)}"
        latex = (
            rf"{tex.delta(k, m)} = \sum_{{n}} {tex.partial(ell, tex.activation(k, 'n'))} "
            rf"{tex.partial(tex.activation(k, 'n'), tex.pre(k, m))} = {tex.number(unit.delta)}"
        )
    return Explained((d_out, d_act), line, latex)


def _text(value: float | None) -> str:
    return "n/a" if value is None else fmt(value)


def _first_outside_unit_interval(rows: Sequence[Sequence[float]], expected: str) -> TargetProblem | None:
    for i, row in enumerate(rows):
        for j, t in enumerate(row):
            if not 0.0 <= t <= 1.0:
                return TargetProblem((i, j), f"{expected}, but found {t!r}")
    return None


# -- the losses ----------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class BinaryCrossEntropy(Loss):
    """``binary_cross_entropy_with_logits``: ``l = -(y log sigmoid(x) + (1 - y) log(1 - sigmoid(x)))``
    per element, ``dl/dx = sigmoid(x) - y``; ``x`` the sigmoid layer's logits ``[batch][units]``,
    ``y`` ``[batch][units]`` in [0, 1]."""

    name: ClassVar[str] = "binary_cross_entropy"
    requires_activation: ClassVar[str | None] = "sigmoid"
    targets_text: ClassVar[str] = "values in [0, 1]"

    def terms(self, x: Array, y: Array) -> Array:
        # PyTorch's (1 - y) * x - log_sigmoid(x), with -log_sigmoid(x) = log(1 + exp(-x)) taken by
        # logaddexp, which never overflows and never takes log(0).
        t: Array = (1.0 - y) * x + np.logaddexp(0.0, -x)
        return t

    def grad(self, x: Array, y: Array, reduction: Reduction, out: Array | None = None) -> Array:
        return self.grad_from_output(_sigmoid(x, out), y, reduction, out)

    def grad_from_output(self, a: Array, y: Array, reduction: Reduction, out: Array | None = None) -> Array:
        """``dL/dx`` from ``a = sigmoid(x)`` (a forward pass's own): bit for bit what ``grad`` computes."""
        out = np.subtract(a, y, out=out)
        if reduction == "mean" and a.size > 1:
            np.divide(out, a.size, out=out)
        return out

    def target_problem(self, rows: Sequence[Sequence[float]]) -> TargetProblem | None:
        return _first_outside_unit_interval(rows, f"{self.name} targets must be in [0, 1]")

    def sample_targets(self, rng: np.random.Generator, shape: tuple[int, int]) -> Array:
        return rng.uniform(0, 1, shape)

    def explain_output(self, unit: OutputUnit) -> Explained:
        m, out, y, delta = unit.unit, unit.out, unit.target, unit.delta
        slope = -y / out + (1.0 - y) / (1.0 - out) if 0.0 < out < 1.0 else None
        d_out = Term(
            f"dl/dz_hat[{m}]",
            f"the loss's slope in the output z_hat: -z/z_hat + (1 - z)/(1 - z_hat), with target z = {fmt(y)}",
            slope if slope is not None and np.isfinite(slope) else None,
        )
        d_act = Term(f"sigmoid'(pre{unit.layer}[{m}])", "the sigmoid's slope: z_hat * (1 - z_hat)", out * (1.0 - out))
        line = (
            f"sample {unit.sample}: {unit.symbol} = dl/dz_hat * sigmoid'(pre) = {_text(d_out.value)} * {_text(d_act.value)} "
            f"= z_hat - z = {fmt(out)} - {fmt(y)} = {fmt(delta)}"
        )
        k, a = unit.layer, tex.activation(unit.layer, m)
        latex = (
            rf"{tex.delta(k, m)} = {tex.partial(tex.sample_loss(unit.sample), a)} \cdot {tex.derivative('sigmoid', k, m)} "
            rf"= {tex.number(d_out.value)} \cdot {tex.number(d_act.value, paren=True)} "
            rf"= {a} - {tex.target(m)} = {tex.number(out)} - {tex.number(y, paren=True)} = {tex.number(delta)}"
        )
        collapsed = Term("z_hat - z", "the same product, simplified (computed this way, stably)", delta)
        return Explained((d_out, d_act, collapsed), line, latex)

    def graph_terms(self, x: Array, out: Array, y: Array) -> tuple[GraphTerm, ...]:
        """Term ``j`` from the logit (torch's stable value), drawn as the textbook ``-(y log a + (1 - y) log(1 - a))``
        of the output ``a = sigmoid(x)``: ``dl/da = -y / a + (1 - y) / (1 - a)`` (a part whose target weight
        ``y`` or ``1 - y`` is 0 is left out, so ``y = 1`` at ``a = 1`` gives ``-1``, not ``nan``)."""
        t, a, target = self.terms(x, y)[0], out[0], y[0]
        with np.errstate(all="ignore"):
            slopes = np.where(target != 0.0, -target / a, 0.0) + np.where(target != 1.0, (1.0 - target) / (1.0 - a), 0.0)
        return tuple(GraphTerm(j, float(t[j]), ((j, float(slopes[j])),), (j,)) for j in range(t.shape[0]))


@dataclass(frozen=True, eq=False)
class CrossEntropyOptions:
    """``torch.nn.functional.cross_entropy``'s ``weight`` (``class_weights``, one per class) and
    ``label_smoothing``, and whether the one-hot target rows stand for class indices.

    Both kinds of targets weigh each class's ``-log p_j`` by the *effective target*
    ``e_j = w_j * ((1 - eps) * y_j + eps / C)``, as torch does (for class indices torch adds
    ``(1 - eps)`` times the weighted nll and ``eps / C`` times the weighted sum of every ``-log p_j``:
    the same sum). They differ in what ``mean`` divides by: the samples for probability rows, the
    summed weights of the target classes for class indices (torch's ``nll_loss``).
    """

    class_weights: Array | None = None
    label_smoothing: float = 0.0
    index_targets: bool = False

    def effective_targets(self, y: Array) -> Array:
        """``e = w * ((1 - eps) * y + eps / C)`` for targets ``y`` ``[batch][C]`` (``y`` itself when neither is set)."""
        e = y
        if self.label_smoothing:
            e = e * (1.0 - self.label_smoothing) + self.label_smoothing / y.shape[-1]
        if self.class_weights is not None:
            e = e * self.class_weights
        return e

    @property
    def weighted_mean(self) -> bool:
        """Whether ``mean`` divides by the summed weights of the samples' classes rather than by the samples."""
        return self.index_targets and self.class_weights is not None

    def mean_divisor(self, y: Array) -> float | int:
        """What ``mean`` divides the summed per-sample terms by: the samples, or, for class indices
        with class weights, the sum over the samples of their target class's weight."""
        if self.class_weights is not None and self.index_targets:
            # One-hot rows: each row's dot with the weights is exactly its target class's weight.
            return float((y @ self.class_weights).sum())
        return int(y.shape[-2])


@dataclass(frozen=True, eq=False)
class CrossEntropy(Loss):
    """``cross_entropy`` with probability targets: ``l = -sum_j y_j log softmax(x)_j`` per sample,
    ``dl/dx = softmax(x) * sum_j y_j - y``; ``x`` the softmax layer's logits ``[batch][C]``, ``y``
    ``[batch][C]`` rows of class probabilities (or one-hot rows standing for class indices).

    ``options`` are the torch options ``bind`` gave it (``None``: torch's defaults); with them the
    targets ``y`` become the effective targets ``e`` of :class:`CrossEntropyOptions`.
    """

    name: ClassVar[str] = "cross_entropy"
    requires_activation: ClassVar[str | None] = "softmax"
    per_row: ClassVar[bool] = True
    targets_text: ClassVar[str] = "class probabilities, each row in [0, 1] and summing to 1"
    accepts_class_indices: ClassVar[bool] = True
    accepts_class_options: ClassVar[bool] = True

    options: CrossEntropyOptions | None = None

    def bind(self, *, class_weights: ArrayLike | None = None, label_smoothing: float = 0.0, index_targets: bool = False) -> Loss:
        if class_weights is None and not label_smoothing and not index_targets:
            return self
        weights = None if class_weights is None else np.asarray(class_weights, dtype=np.float64)
        options = CrossEntropyOptions(weights, float(label_smoothing), index_targets)
        if not 0.0 <= options.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), not {options.label_smoothing!r}")
        return replace(self, options=options)

    def astype(self, dtype: np.dtype[Any]) -> Loss:
        weights = None if self.options is None else self.options.class_weights
        if weights is None or weights.dtype == dtype:
            return self
        assert self.options is not None  # it holds the weights
        return replace(self, options=replace(self.options, class_weights=weights.astype(dtype)))

    def terms(self, x: Array, y: Array) -> Array:
        # -sum_j e_j log_softmax(x)_j, one term per sample.
        e = y if self.options is None else self.options.effective_targets(y)
        t: Array = -(e * _log_softmax(x)).sum(axis=-1)
        return t

    def grad(self, x: Array, y: Array, reduction: Reduction, out: Array | None = None) -> Array:
        if self.options is None:
            return _softmax_times_sum_minus(x, y, x.shape[0] if reduction == "mean" else 1, out)
        divisor = self.options.mean_divisor(y) if reduction == "mean" else 1
        return _softmax_times_sum_minus(x, self.options.effective_targets(y), divisor, out)

    def count(self, y: Array, reduction: Reduction) -> int | float:
        """Samples, or what ``options`` say (the summed weights of the samples' classes), for ``mean``."""
        if reduction == "sum":
            return 1
        return y.shape[-2] if self.options is None else self.options.mean_divisor(y)

    def mean_over(self) -> str:
        if self.options is not None and self.options.weighted_mean:
            return "the weights of the samples' target classes, summed"
        return super().mean_over()

    def target_problem(self, rows: Sequence[Sequence[float]]) -> TargetProblem | None:
        problem = _first_outside_unit_interval(rows, f"{self.name} targets are class probabilities in [0, 1]")
        if problem is not None:
            return problem
        for i, row in enumerate(rows):
            total = sum(row)
            if abs(total - 1.0) > PROBABILITY_SUM_TOLERANCE:
                return TargetProblem(
                    (i,),
                    f"each {self.name} target row must sum to 1 (within {PROBABILITY_SUM_TOLERANCE:g}), but row {i} sums to {total!r}",
                )
        return None

    def sample_targets(self, rng: np.random.Generator, shape: tuple[int, int]) -> Array:
        return rng.dirichlet(np.ones(shape[1]), size=shape[0])

    def explain_output(self, unit: OutputUnit) -> Explained:
        s, m, sym, p, delta = unit.sample, unit.unit, unit.symbol, unit.out, unit.delta
        o = self.options
        if o is None:
            plain = (
                Term(f"p[{m}]", "the softmax probability of this class", p),
                Term(f"y[{m}]", "the target probability", unit.target),
            )
            a, latex = tex.activation(unit.layer, m), tex.delta(unit.layer, m)
            latex += rf" = {a} - {tex.target(m)} = {tex.number(p)} - {tex.number(unit.target, paren=True)} = {tex.number(delta)}"
            line = f"sample {s}: {sym} = p - y (softmax and cross-entropy together) = {fmt(p)} - {fmt(unit.target)} = {fmt(delta)}"
            return Explained(plain, line, latex)
        # With torch's options: delta = p * sum_j e[j] - e[m], where the effective target
        # e[j] = w[j] * ((1 - eps) * y[j] + eps / C).
        y_row = unit.target_row[0]
        classes = y_row.shape[0]
        e_row = o.effective_targets(unit.target_row)[0]
        e, total, y = float(e_row[m]), float(e_row.sum()), float(y_row[m])
        formula = "y" if not o.label_smoothing else f"(1 - {o.label_smoothing:g}) * y + {o.label_smoothing:g} / {classes}"
        if o.class_weights is not None:
            formula = f"w * ({formula})"
        if o.index_targets:
            given = f"y[{m}] = {fmt(y)} (1 for this sample's class {int(np.argmax(y_row))}, 0 for the others)"
        else:
            given = f"the target probability y[{m}] = {fmt(y)}"
        if o.label_smoothing:
            given += f", label smoothing eps = {o.label_smoothing:g} over C = {classes} classes"
        if o.class_weights is not None:
            given += f", class weight w[{m}] = {fmt(float(o.class_weights[m]))}"
        factors = (
            Term(f"p[{m}]", "the softmax probability of this class", p),
            Term(f"e[{m}]", f"the effective target e = {formula}, from {given}", e),
            Term("sum_j e[j]", "this sample's effective targets, summed: how much this sample weighs in the loss", total),
        )
        line = (
            f"sample {s}: {sym} = p * sum_j e[j] - e (softmax and cross-entropy together, e = {formula}) "
            f"= {fmt(p)} * {fmt(total)} - {fmt(e)} = {fmt(delta)}"
        )
        e_latex = tex.target("j")
        if o.label_smoothing:
            eps = tex.number(o.label_smoothing)
            e_latex = rf"(1 - {eps})\, {e_latex} + \frac{{{eps}}}{{{classes}}}"
        if o.class_weights is not None:
            e_latex = rf"w_{{j}} \left({e_latex}\right)" if o.label_smoothing else rf"w_{{j}} {e_latex}"
        latex = (
            rf"{tex.delta(unit.layer, m)} = {tex.activation(unit.layer, m)} \sum_{{j}} e_{{j}} - e_{{{m}}} "
            rf"= {tex.number(p)} \cdot {tex.number(total, paren=True)} - {tex.number(e, paren=True)} = {tex.number(delta)}, "
            rf"\quad e_{{j}} = {e_latex}"
        )
        return Explained(factors, line, latex)

    def graph_terms(self, x: Array, out: Array, y: Array) -> tuple[GraphTerm, ...]:
        """One term per sample, ``-sum_j e_j log p_j`` (``e`` the effective targets, ``p = softmax(x)``
        the output), its value torch's (from the logits); ``dl/dp_j = -e_j / p_j`` (0 where ``e_j = 0``)."""
        e = (y if self.options is None else self.options.effective_targets(y))[0]
        p = out[0]
        with np.errstate(all="ignore"):
            slopes = [float(-e[j] / p[j]) if e[j] else 0.0 for j in range(p.shape[0])]
        units = tuple(range(p.shape[0]))
        return (GraphTerm(None, float(self.terms(x, y)[0]), tuple(zip(units, slopes)), units),)


@dataclass(frozen=True, eq=False)
class MSE(Loss):
    """``mse_loss``: ``l = (x - y)^2`` per element, ``dl/dx = 2 (x - y)``; ``x`` the network's
    output ``[batch][units]`` (any last activation), ``y`` ``[batch][units]`` any numbers."""

    name: ClassVar[str] = "mse"
    targets_text: ClassVar[str] = "any numbers"

    def terms(self, x: Array, y: Array) -> Array:
        d = x - y
        t: Array = d * d
        return t

    def grad(self, x: Array, y: Array, reduction: Reduction, out: Array | None = None) -> Array:
        out = np.subtract(x, y, out=out)
        np.multiply(out, 2.0, out=out)
        if reduction == "mean" and x.size > 1:
            np.divide(out, x.size, out=out)
        return out

    def sample_targets(self, rng: np.random.Generator, shape: tuple[int, int]) -> Array:
        return rng.normal(0, 1, shape)

    def explain_output(self, unit: OutputUnit) -> Explained:
        m, y = unit.unit, unit.target
        d_out = Term(f"dl/dout{unit.layer}[{m}]", f"the squared error's slope: 2 * (out - target), target {fmt(y)}", 2.0 * (unit.out - y))
        return through_activation(unit, d_out)


def _log_softmax(x: Array) -> Array:
    # Shift by the row maximum: exp stays in (0, 1] and the row sum is at least 1, so log is finite.
    shifted = x - x.max(axis=-1, keepdims=True)
    log_p: Array = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return log_p


def _softmax_times_sum_minus(x: Array, e: Array, divisor: float, out: Array | None = None) -> Array:
    # d/dx of -sum_j e_j (x_j - logsumexp(x)) is softmax(x) * sum_j e_j - e; exact even when a row
    # of targets sums to 1 only within the accepted tolerance (or, weighted, to anything else).
    out = np.exp(_log_softmax(x), out=out)
    np.multiply(out, e.sum(axis=-1, keepdims=True), out=out)
    np.subtract(out, e, out=out)
    if divisor != 1:
        np.divide(out, divisor, out=out)
    return out


# -- the table -----------------------------------------------------------------------------------

LOSSES: Mapping[str, Loss] = MappingProxyType({loss.name: loss for loss in (BinaryCrossEntropy(), CrossEntropy(), MSE())})
"""Every loss by its wire name, in the order the request schema lists them."""


def get_loss(loss: str | Loss) -> Loss:
    """``loss`` itself, or the loss of that name: what the engine's functions take as ``loss``."""
    return loss if isinstance(loss, Loss) else LOSSES[loss]


def class_index_targets(indices: ArrayLike, classes: int) -> Array:
    """Class indices ``[batch]`` as one-hot rows ``[batch][classes]`` (float64), the form losses take."""
    idx = np.asarray(indices, dtype=np.intp)
    y = np.zeros((idx.shape[0], classes))
    y[np.arange(idx.shape[0]), idx] = 1.0
    return y

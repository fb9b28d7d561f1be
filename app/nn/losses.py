"""Loss functions, each beside its gradient, with PyTorch's float64 semantics.

Every entry of ``LOSSES`` maps a name to a :class:`Loss` holding
``values(x, y, reduction)`` and ``grad(x, y, reduction, out=None) = dL/dx``. ``x`` and
``y`` are ``[batch][units]``; ``values`` also takes a stack ``x`` ``[k][batch][units]``
(one loss per stacked ``x``, as a training loop needs). For the fused losses ``x`` is
the last layer's pre-activation (the logits), as in ``binary_cross_entropy_with_logits``
and ``cross_entropy``; for ``mse`` it is the network's output.

``cross_entropy`` also takes torch's options (class weights, label smoothing, class-index
targets): ``LOSSES["cross_entropy"].bind(...)`` is the loss with them, the same interface
for the engine, which takes a loss name or such a bound :class:`Loss` wherever it takes a loss.
Class-index targets reach a loss as one-hot rows (``class_index_targets``); the bound loss
knows they stand for indices where torch treats the two differently (a weighted mean's divisor).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from types import MappingProxyType

import numpy as np

from app.nn.activations import ACTIVATIONS

Array = np.ndarray
REDUCTIONS = ("mean", "sum")
_sigmoid = ACTIVATIONS["sigmoid"].forward


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
        if self.weighted_mean:
            # One-hot rows: each row's dot with the weights is exactly its target class's weight.
            return float((y @ self.class_weights).sum())
        return y.shape[-2]


@dataclass(frozen=True)
class Loss:
    """A named loss: per-sample ``terms(x, y)``, and ``grad(x, y, reduction) = dL/dx``; ``x``, ``y`` ``[batch][units]``.

    ``requires_activation`` is the last activation the loss is fused with (``None``: any);
    when it is set, ``x`` is that layer's pre-activation, otherwise the network's output.
    ``per_row`` terms (cross_entropy) are one number per sample, others one per element.
    ``options`` are the torch options ``bind`` gave it (``None``: torch's defaults).
    """

    name: str
    terms: Callable[[Array, Array], Array]
    grad: Callable[..., Array]
    requires_activation: str | None = None
    per_row: bool = False
    # dL/dx from the fused activation's output (when a forward pass computed it), if cheaper.
    grad_from_output: Callable[..., Array] | None = None
    options: CrossEntropyOptions | None = None

    @property
    def from_logits(self) -> bool:
        return self.requires_activation is not None

    def bind(self, *, class_weights: Array | None = None, label_smoothing: float = 0.0, index_targets: bool = False) -> Loss:
        """This loss with torch's options; with none of them, this very loss (and its fast paths).

        ``class_weights`` ``[C]`` and ``label_smoothing`` (in [0, 1)) are cross_entropy's ``weight``
        and ``label_smoothing``; ``index_targets`` says the targets are one-hot rows standing for
        class indices (``class_index_targets``). Other losses take none of them (ValueError).
        """
        if class_weights is None and not label_smoothing and not index_targets:
            return self
        options = CrossEntropyOptions(
            None if class_weights is None else np.asarray(class_weights, dtype=np.float64), float(label_smoothing), index_targets
        )
        if self.name != "cross_entropy":
            raise ValueError(f"{self.name} takes no class weights, label smoothing or class-index targets")
        if not 0.0 <= options.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), not {options.label_smoothing!r}")
        return replace(self, terms=partial(_ce_terms_with, options), grad=partial(_ce_grad_with, options), options=options)

    def count(self, y: Array, reduction: str) -> int | float:
        """What ``mean`` divides by for targets ``y`` ``[batch][units]``: samples for per-row losses,
        elements otherwise, or what ``options`` say (1 for ``sum``)."""
        if reduction == "sum":
            return 1
        if self.options is not None:
            return self.options.mean_divisor(y)
        return y.shape[-2] if self.per_row else y.shape[-2] * y.shape[-1]

    def values(self, x: Array, y: Array, reduction: str) -> Array:
        """The reduced loss of every ``x`` in a stack ``[k][batch][units]``: shape ``[k]``."""
        t = self.terms(x, y)
        axes = (-1,) if self.per_row else (-2, -1)
        return t.sum(axis=axes) / self.count(y, reduction)

    def value(self, x: Array, y: Array, reduction: str) -> float:
        """The reduced loss of one ``x`` ``[batch][units]``."""
        return float(self.terms(x, y).sum() / self.count(y, reduction))


def get_loss(loss: str | Loss) -> Loss:
    """``loss`` itself, or the loss of that name: what the engine's functions take as ``loss``."""
    return loss if isinstance(loss, Loss) else LOSSES[loss]


def class_index_targets(indices: Array, classes: int) -> Array:
    """Class indices ``[batch]`` as one-hot rows ``[batch][classes]`` (float64), the form losses take."""
    indices = np.asarray(indices, dtype=np.intp)
    y = np.zeros((indices.shape[0], classes))
    y[np.arange(indices.shape[0]), indices] = 1.0
    return y


def _log_softmax(x: Array) -> Array:
    # Shift by the row maximum: exp stays in (0, 1] and the row sum is at least 1, so log is finite.
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _bce_terms(x: Array, y: Array) -> Array:
    # PyTorch's (1 - y) * x - log_sigmoid(x), with -log_sigmoid(x) = log(1 + exp(-x)) taken by
    # logaddexp, which never overflows and never takes log(0).
    return (1.0 - y) * x + np.logaddexp(0.0, -x)


def _bce_grad(x: Array, y: Array, reduction: str, out: Array | None = None) -> Array:
    return _bce_grad_from_output(_sigmoid(x, out), y, reduction, out)


def _bce_grad_from_output(a: Array, y: Array, reduction: str, out: Array | None = None) -> Array:
    # d/dx = sigmoid(x) - y: from a forward pass's own sigmoid, bit for bit what _bce_grad computes.
    out = np.subtract(a, y, out=out)
    if reduction == "mean" and a.size > 1:
        np.divide(out, a.size, out=out)
    return out


def _ce_terms(x: Array, y: Array) -> Array:
    # Probability targets: -sum_j y_j log_softmax(x)_j, one term per sample.
    return -(y * _log_softmax(x)).sum(axis=-1)


def _ce_grad(x: Array, y: Array, reduction: str, out: Array | None = None) -> Array:
    return _softmax_times_sum_minus(x, y, x.shape[0] if reduction == "mean" else 1, out)


def _softmax_times_sum_minus(x: Array, e: Array, divisor: float, out: Array | None = None) -> Array:
    # d/dx of -sum_j e_j (x_j - logsumexp(x)) is softmax(x) * sum_j e_j - e; exact even when a row
    # of targets sums to 1 only within the accepted tolerance (or, weighted, to anything else).
    out = np.exp(_log_softmax(x), out=out)
    np.multiply(out, e.sum(axis=-1, keepdims=True), out=out)
    np.subtract(out, e, out=out)
    if divisor != 1:
        np.divide(out, divisor, out=out)
    return out


def _ce_terms_with(options: CrossEntropyOptions, x: Array, y: Array) -> Array:
    return _ce_terms(x, options.effective_targets(y))


def _ce_grad_with(options: CrossEntropyOptions, x: Array, y: Array, reduction: str, out: Array | None = None) -> Array:
    divisor = options.mean_divisor(y) if reduction == "mean" else 1
    return _softmax_times_sum_minus(x, options.effective_targets(y), divisor, out)


def _mse_terms(x: Array, y: Array) -> Array:
    d = x - y
    return d * d


def _mse_grad(x: Array, y: Array, reduction: str, out: Array | None = None) -> Array:
    out = np.subtract(x, y, out=out)
    np.multiply(out, 2.0, out=out)
    if reduction == "mean" and x.size > 1:
        np.divide(out, x.size, out=out)
    return out


LOSSES: Mapping[str, Loss] = MappingProxyType(
    {
        loss.name: loss
        for loss in (
            Loss(
                "binary_cross_entropy",
                _bce_terms,
                _bce_grad,
                requires_activation="sigmoid",
                grad_from_output=_bce_grad_from_output,
            ),
            Loss("cross_entropy", _ce_terms, _ce_grad, requires_activation="softmax", per_row=True),
            Loss("mse", _mse_terms, _mse_grad),
        )
    }
)

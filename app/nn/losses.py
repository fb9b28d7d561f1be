"""Loss functions, each beside its gradient, with PyTorch's float64 semantics.

Every entry of ``LOSSES`` maps a name to a :class:`Loss` holding
``values(x, y, reduction)`` and ``grad(x, y, reduction, out=None) = dL/dx``. ``x`` and
``y`` are ``[batch][units]``; ``values`` also takes a stack ``x`` ``[k][batch][units]``
(one loss per stacked ``x``, as a training loop needs). For the fused losses ``x`` is
the last layer's pre-activation (the logits), as in ``binary_cross_entropy_with_logits``
and ``cross_entropy``; for ``mse`` it is the network's output.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from app.nn.activations import ACTIVATIONS

Array = np.ndarray
REDUCTIONS = ("mean", "sum")
_sigmoid = ACTIVATIONS["sigmoid"].forward


@dataclass(frozen=True)
class Loss:
    """A named loss: per-sample ``terms(x, y)``, and ``grad(x, y, reduction) = dL/dx``; ``x``, ``y`` ``[batch][units]``.

    ``requires_activation`` is the last activation the loss is fused with (``None``: any);
    when it is set, ``x`` is that layer's pre-activation, otherwise the network's output.
    ``per_row`` terms (cross_entropy) are one number per sample, others one per element.
    """

    name: str
    terms: Callable[[Array, Array], Array]
    grad: Callable[..., Array]
    requires_activation: str | None = None
    per_row: bool = False
    # dL/dx from the fused activation's output (when a forward pass computed it), if cheaper.
    grad_from_output: Callable[..., Array] | None = None

    @property
    def from_logits(self) -> bool:
        return self.requires_activation is not None

    def count(self, shape: tuple[int, ...], reduction: str) -> int:
        """What ``mean`` divides by: samples for per-row losses, elements otherwise (1 for ``sum``)."""
        if reduction == "sum":
            return 1
        return shape[-2] if self.per_row else shape[-2] * shape[-1]

    def values(self, x: Array, y: Array, reduction: str) -> Array:
        """The reduced loss of every ``x`` in a stack ``[k][batch][units]``: shape ``[k]``."""
        t = self.terms(x, y)
        axes = (-1,) if self.per_row else (-2, -1)
        return t.sum(axis=axes) / self.count(x.shape, reduction)

    def value(self, x: Array, y: Array, reduction: str) -> float:
        """The reduced loss of one ``x`` ``[batch][units]``."""
        return float(self.terms(x, y).sum() / self.count(x.shape, reduction))


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
    # d/dx of -sum_j y_j (x_j - logsumexp(x)) is softmax(x) * sum_j y_j - y; exact even when a row
    # of targets sums to 1 only within the accepted tolerance.
    out = np.exp(_log_softmax(x), out=out)
    np.multiply(out, y.sum(axis=-1, keepdims=True), out=out)
    np.subtract(out, y, out=out)
    if reduction == "mean" and x.shape[0] > 1:
        np.divide(out, x.shape[0], out=out)
    return out


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
                "binary_cross_entropy", _bce_terms, _bce_grad, requires_activation="sigmoid",
                grad_from_output=_bce_grad_from_output,
            ),
            Loss("cross_entropy", _ce_terms, _ce_grad, requires_activation="softmax", per_row=True),
            Loss("mse", _mse_terms, _mse_grad),
        )
    }
)


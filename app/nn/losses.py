"""Loss functions, each beside its gradient, with PyTorch's float64 semantics.

Every entry of ``LOSSES`` maps a name to a :class:`Loss` holding
``value(x, y, reduction) -> float`` and ``grad(x, y, reduction) -> dL/dx``, where
``x`` and ``y`` are ``[batch][units]``. For the fused losses ``x`` is the last
layer's pre-activation (the logits), as in ``binary_cross_entropy_with_logits``
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
    """A named loss: ``value(x, y, reduction)`` and ``grad(x, y, reduction) = dL/dx``, ``x`` and ``y`` ``[batch][units]``.

    ``requires_activation`` is the last activation the loss is fused with (``None``: any);
    when it is set, ``x`` is that layer's pre-activation, otherwise the network's output.
    """

    name: str
    value: Callable[[Array, Array, str], float]
    grad: Callable[[Array, Array, str], Array]
    requires_activation: str | None = None

    @property
    def from_logits(self) -> bool:
        return self.requires_activation is not None


def _log_sigmoid(x: Array) -> Array:
    # min(x, 0) - log1p(exp(-|x|)): exp never sees a positive argument, log never sees 0.
    return np.minimum(x, 0.0) - np.log1p(np.exp(-np.abs(x)))


def _log_softmax(x: Array) -> Array:
    # Shift by the row maximum: exp stays in (0, 1] and the row sum is at least 1, so log is finite.
    shifted = x - x.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _reduce(elements: Array, reduction: str, count: int) -> float:
    total = float(elements.sum())
    return total / count if reduction == "mean" else total


def _bce_value(x: Array, y: Array, reduction: str) -> float:
    # PyTorch's binary_cross_entropy_with_logits: (1 - y) * x - log_sigmoid(x); mean over all elements.
    return _reduce((1.0 - y) * x - _log_sigmoid(x), reduction, x.size)


def _bce_grad(x: Array, y: Array, reduction: str) -> Array:
    g = _sigmoid(x) - y
    return g / x.size if reduction == "mean" else g


def _ce_value(x: Array, y: Array, reduction: str) -> float:
    # Probability targets: -sum_j y_j log_softmax(x)_j per sample; mean over samples (rows).
    return _reduce(-(y * _log_softmax(x)), reduction, x.shape[0])


def _ce_grad(x: Array, y: Array, reduction: str) -> Array:
    # d/dx of -sum_j y_j (x_j - logsumexp(x)) is softmax(x) * sum_j y_j - y; exact even when a row
    # of targets sums to 1 only within the accepted tolerance.
    p = np.exp(_log_softmax(x))
    g = p * y.sum(axis=1, keepdims=True) - y
    return g / x.shape[0] if reduction == "mean" else g


def _mse_value(x: Array, y: Array, reduction: str) -> float:
    d = x - y
    return _reduce(d * d, reduction, x.size)


def _mse_grad(x: Array, y: Array, reduction: str) -> Array:
    g = 2.0 * (x - y)
    return g / x.size if reduction == "mean" else g


LOSSES: Mapping[str, Loss] = MappingProxyType(
    {
        loss.name: loss
        for loss in (
            Loss("binary_cross_entropy", _bce_value, _bce_grad, requires_activation="sigmoid"),
            Loss("cross_entropy", _ce_value, _ce_grad, requires_activation="softmax"),
            Loss("mse", _mse_value, _mse_grad),
        )
    }
)


def get_loss(name: str) -> Loss:
    """The loss called ``name``; raises ``KeyError`` for an unknown name."""
    return LOSSES[name]

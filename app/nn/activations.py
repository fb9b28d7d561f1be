"""Activation functions, each beside its derivative, with PyTorch's float64 conventions (float32's too:
each computes in its argument's dtype).

Every entry of ``ACTIVATIONS`` maps a name to an :class:`Activation` holding
``forward(z, out=None) -> a`` and ``backward(z, a, grad_a, out=None) -> grad_z``;
arrays are ``[..., units]`` (``[batch][units]``, or a stack of them). ``backward``
is a vector-Jacobian product so that softmax, whose Jacobian is not diagonal, fits
the same table as the elementwise ones. ``out``, when given, receives the result
(no allocation); it must not alias ``z``, ``a`` or ``grad_a``.

An activation is one entry of the table: the request schema takes its names (and which
are last-layer only, and each entry's ``note`` for its description) from ``ACTIVATIONS``,
and the engine, the explanations and the tests look every activation up there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]

LEAKY_RELU_SLOPE = 0.01
ELU_ALPHA = 1.0
# torch.nn.functional.softplus(beta=1, threshold=20) returns x itself above the threshold.
SOFTPLUS_THRESHOLD = 20.0


class Forward(Protocol):
    """``a = f(z)`` for ``z`` ``[..., units]``, into ``out`` (same shape) when given."""

    def __call__(self, z: Array, out: Array | None = None) -> Array: ...


class Backward(Protocol):
    """``dL/dz`` from ``z``, ``a = f(z)`` and ``grad = dL/da`` (all ``[..., units]``), into ``out`` when given."""

    def __call__(self, z: Array, a: Array, grad: Array, out: Array | None = None) -> Array: ...


@dataclass(frozen=True)
class Activation:
    """A named activation: ``forward(z) -> a`` and ``backward(z, a, dL/da) -> dL/dz``, all ``[..., units]``.

    ``elementwise``: each unit's output depends on that unit's input only; one that mixes the
    units of a row (softmax) is allowed on the last layer only. ``note``: what a client should
    know about it beyond its name (its constants), for the request schema's description.
    """

    name: str
    forward: Forward
    backward: Backward
    elementwise: bool = True
    note: str = ""


def _identity(z: Array, out: Array | None = None) -> Array:
    out = np.copy(z) if out is None else out
    np.copyto(out, z)
    return out


def _identity_backward(z: Array, a: Array, grad: Array, out: Array | None = None) -> Array:
    out = np.copy(grad) if out is None else out
    np.copyto(out, grad)
    return out


def _relu(z: Array, out: Array | None = None) -> Array:
    return np.maximum(z, 0.0, out=out)


def _relu_backward(z: Array, a: Array, grad: Array, out: Array | None = None) -> Array:
    # PyTorch: the derivative at exactly 0 is 0.
    return np.multiply(grad, z > 0.0, out=out)


def _leaky_slopes(z: Array) -> Array:
    # 1 or the negative slope per element, in z's dtype (torch casts the slope to float32 in float32).
    one, slope = np.ones((), z.dtype), np.asarray(LEAKY_RELU_SLOPE, z.dtype)
    slopes: Array = np.where(z > 0.0, one, slope)
    return slopes


def _leaky_relu(z: Array, out: Array | None = None) -> Array:
    return np.multiply(z, _leaky_slopes(z), out=out)


def _leaky_relu_backward(z: Array, a: Array, grad: Array, out: Array | None = None) -> Array:
    # PyTorch: the slope at exactly 0 is the negative slope.
    return np.multiply(grad, _leaky_slopes(z), out=out)


def _sigmoid(z: Array, out: Array | None = None) -> Array:
    # exp(-log(1 + exp(-z))), with logaddexp(0, -z) computing log(1 + exp(-z)) without ever
    # overflowing exp, at any magnitude of z; the result saturates to exactly 0 and 1.
    out = np.negative(z, out=out)
    np.logaddexp(0.0, out, out=out)
    np.negative(out, out=out)
    return np.exp(out, out=out)


def _sigmoid_backward(z: Array, a: Array, grad: Array, out: Array | None = None) -> Array:
    # torch: grad * (1 - a) * a, in that order.
    out = np.subtract(1.0, a, out=out)
    np.multiply(grad, out, out=out)
    return np.multiply(out, a, out=out)


def _tanh(z: Array, out: Array | None = None) -> Array:
    return np.tanh(z, out=out)


def _tanh_backward(z: Array, a: Array, grad: Array, out: Array | None = None) -> Array:
    out = np.multiply(a, a, out=out)
    np.subtract(1.0, out, out=out)
    return np.multiply(grad, out, out=out)


def _softplus(z: Array, out: Array | None = None) -> Array:
    # Below the threshold exp(z) <= exp(20) cannot overflow; above it PyTorch returns z.
    out = np.minimum(z, SOFTPLUS_THRESHOLD, out=out)
    np.exp(out, out=out)
    np.log1p(out, out=out)
    np.copyto(out, z, where=z > SOFTPLUS_THRESHOLD)
    return out


def _softplus_backward(z: Array, a: Array, grad: Array, out: Array | None = None) -> Array:
    # torch: grad * e / (e + 1) with e = exp(z), and grad itself above the threshold.
    e = np.exp(np.minimum(z, SOFTPLUS_THRESHOLD))
    out = np.multiply(grad, e, out=out)
    np.divide(out, e + 1.0, out=out)
    np.copyto(out, grad, where=z > SOFTPLUS_THRESHOLD)
    return out


def _elu(z: Array, out: Array | None = None) -> Array:
    # expm1 keeps full precision for small negative z; clamping keeps exp off the positive side.
    out = np.minimum(z, 0.0, out=out)
    np.expm1(out, out=out)
    if ELU_ALPHA != 1.0:
        np.multiply(out, ELU_ALPHA, out=out)
    np.copyto(out, z, where=z > 0.0)
    return out


def _elu_backward(z: Array, a: Array, grad: Array, out: Array | None = None) -> Array:
    out = np.minimum(z, 0.0, out=out)
    np.exp(out, out=out)
    if ELU_ALPHA != 1.0:
        np.multiply(out, ELU_ALPHA, out=out)
    np.multiply(grad, out, out=out)
    np.copyto(out, grad, where=z > 0.0)
    return out


def _softmax(z: Array, out: Array | None = None) -> Array:
    # Shifting by the row maximum keeps exp in (0, 1]; the result is unchanged.
    out = np.subtract(z, z.max(axis=-1, keepdims=True), out=out)
    np.exp(out, out=out)
    np.divide(out, out.sum(axis=-1, keepdims=True), out=out)
    return out


def _softmax_backward(z: Array, a: Array, grad: Array, out: Array | None = None) -> Array:
    out = np.subtract(grad, (grad * a).sum(axis=-1, keepdims=True), out=out)
    return np.multiply(a, out, out=out)


ACTIVATIONS: Mapping[str, Activation] = MappingProxyType(
    {
        act.name: act
        for act in (
            Activation("identity", _identity, _identity_backward),
            Activation("relu", _relu, _relu_backward),
            Activation("leaky_relu", _leaky_relu, _leaky_relu_backward, note=f"leaky_relu has slope {LEAKY_RELU_SLOPE:g}"),
            Activation("sigmoid", _sigmoid, _sigmoid_backward),
            Activation("tanh", _tanh, _tanh_backward),
            Activation("softplus", _softplus, _softplus_backward),
            Activation("elu", _elu, _elu_backward, note=f"elu alpha {ELU_ALPHA:g}"),
            Activation("softmax", _softmax, _softmax_backward, elementwise=False),
        )
    }
)

# Activations that mix units of a row; allowed on the last layer only.
LAST_LAYER_ONLY = frozenset(name for name, act in ACTIVATIONS.items() if not act.elementwise)

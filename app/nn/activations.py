"""Activation functions, each beside its derivative, with PyTorch's float64 conventions.

Every entry of ``ACTIVATIONS`` maps a name to an :class:`Activation` holding
``forward(z) -> a`` and ``backward(z, a, grad_a) -> grad_z``; all arrays are
``[batch][units]``. ``backward`` is a vector-Jacobian product so that softmax,
whose Jacobian is not diagonal, fits the same table as the elementwise ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

Array = np.ndarray

LEAKY_RELU_SLOPE = 0.01
ELU_ALPHA = 1.0
# torch.nn.functional.softplus(beta=1, threshold=20) returns x itself above the threshold.
SOFTPLUS_THRESHOLD = 20.0


@dataclass(frozen=True)
class Activation:
    """A named activation: ``forward(z) -> a`` and ``backward(z, a, dL/da) -> dL/dz``, all ``[batch][units]``."""

    name: str
    forward: Callable[[Array], Array]
    backward: Callable[[Array, Array, Array], Array]
    elementwise: bool = True


def _identity(z: Array) -> Array:
    return z.copy()


def _identity_backward(z: Array, a: Array, grad: Array) -> Array:
    return grad.copy()


def _relu(z: Array) -> Array:
    return np.maximum(z, 0.0)


def _relu_backward(z: Array, a: Array, grad: Array) -> Array:
    # PyTorch: the derivative at exactly 0 is 0.
    return np.where(z > 0.0, grad, 0.0)


def _leaky_relu(z: Array) -> Array:
    return np.where(z > 0.0, z, z * LEAKY_RELU_SLOPE)


def _leaky_relu_backward(z: Array, a: Array, grad: Array) -> Array:
    # PyTorch: the slope at exactly 0 is the negative slope.
    return np.where(z > 0.0, grad, grad * LEAKY_RELU_SLOPE)


def _sigmoid(z: Array) -> Array:
    # exp of a non-positive number never overflows: split on the sign of z.
    e = np.exp(-np.abs(z))
    return np.where(z >= 0.0, 1.0 / (1.0 + e), e / (1.0 + e))


def _sigmoid_backward(z: Array, a: Array, grad: Array) -> Array:
    return grad * a * (1.0 - a)


def _tanh(z: Array) -> Array:
    return np.tanh(z)


def _tanh_backward(z: Array, a: Array, grad: Array) -> Array:
    return grad * (1.0 - a * a)


def _softplus(z: Array) -> Array:
    # Below the threshold exp(z) <= exp(20) cannot overflow; above it PyTorch returns z.
    safe = np.minimum(z, SOFTPLUS_THRESHOLD)
    return np.where(z > SOFTPLUS_THRESHOLD, z, np.log1p(np.exp(safe)))


def _softplus_backward(z: Array, a: Array, grad: Array) -> Array:
    e = np.exp(np.minimum(z, SOFTPLUS_THRESHOLD))
    return np.where(z > SOFTPLUS_THRESHOLD, grad, grad * e / (e + 1.0))


def _elu(z: Array) -> Array:
    # expm1 keeps full precision for small negative z; clamping keeps exp off the positive side.
    return np.where(z > 0.0, z, ELU_ALPHA * np.expm1(np.minimum(z, 0.0)))


def _elu_backward(z: Array, a: Array, grad: Array) -> Array:
    return np.where(z > 0.0, grad, grad * ELU_ALPHA * np.exp(np.minimum(z, 0.0)))


def _softmax(z: Array) -> Array:
    # Shifting by the row maximum keeps exp in (0, 1]; the result is unchanged.
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _softmax_backward(z: Array, a: Array, grad: Array) -> Array:
    return a * (grad - (grad * a).sum(axis=1, keepdims=True))


ACTIVATIONS: Mapping[str, Activation] = MappingProxyType(
    {
        act.name: act
        for act in (
            Activation("identity", _identity, _identity_backward),
            Activation("relu", _relu, _relu_backward),
            Activation("leaky_relu", _leaky_relu, _leaky_relu_backward),
            Activation("sigmoid", _sigmoid, _sigmoid_backward),
            Activation("tanh", _tanh, _tanh_backward),
            Activation("softplus", _softplus, _softplus_backward),
            Activation("elu", _elu, _elu_backward),
            Activation("softmax", _softmax, _softmax_backward, elementwise=False),
        )
    }
)

# Activations that mix units of a row; allowed on the last layer only.
LAST_LAYER_ONLY = frozenset(name for name, act in ACTIVATIONS.items() if not act.elementwise)


def get_activation(name: str) -> Activation:
    """The activation called ``name``; raises ``KeyError`` for an unknown name."""
    return ACTIVATIONS[name]

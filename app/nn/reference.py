"""Backprop for a fully connected network, written plainly: read this first.

The fast engine (``network.py``, ``training.py``) computes exactly this, but keeps every
parameter in one flat buffer, reuses its arrays and fuses steps; this module does none of
that. It is also one more oracle the tests hold the engine to.

Shapes: ``x`` is ``[batch][in]``; layer ``k`` has ``W_k`` ``[out][in]`` and ``b_k`` ``[out]``.

    forward:   z_k = a_{k-1} @ W_k.T + b_k        (a_{-1} = x)
               a_k = f_k(z_k)
    backward:  delta_last = dL/dz_last            (from the loss, below)
               dL/dW_k   = delta_k.T @ a_{k-1}    [out][in]
               dL/db_k   = sum over samples of delta_k
               delta_{k-1} = (delta_k @ W_k) * f'_{k-1}(z_{k-1})

Losses, with ``n`` what ``mean`` divides by (elements; samples for cross_entropy):

    mse                   L = sum (a - y)^2 / n           dL/da = 2 (a - y) / n
    binary_cross_entropy  L = sum of BCE(sigmoid(z), y)/n dL/dz = (sigmoid(z) - y) / n
    cross_entropy         L = -sum y log softmax(z) / n   dL/dz = (softmax(z) - y) / n  (rows of y sum to 1)

Only the plain losses are here (no class weights, no label smoothing).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]  # as the engine's (app/nn/layout.py); this module stands on its own


def _sigmoid(z: Array) -> Array:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # never overflows, unlike 1 / (1 + exp(-z))


def _softmax(z: Array) -> Array:
    e: Array = np.exp(z - z.max(axis=1, keepdims=True))
    row_sums: Array = e.sum(axis=1, keepdims=True)
    return e / row_sums


# What this reference computes: the engine's tables may grow (CONTRIBUTING.md) without it.
ACTIVATIONS = ("identity", "relu", "leaky_relu", "sigmoid", "tanh", "softplus", "elu", "softmax")
LOSSES = ("mse", "binary_cross_entropy", "cross_entropy")


def activate(name: str, z: Array) -> Array:
    """``f(z)`` for the activation ``name``."""
    if name == "identity":
        return z
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "leaky_relu":
        return np.where(z > 0, z, 0.01 * z)
    if name == "sigmoid":
        return _sigmoid(z)
    if name == "tanh":
        return np.tanh(z)
    if name == "softplus":
        return np.logaddexp(0.0, z)
    if name == "elu":
        return np.where(z > 0, z, np.expm1(np.minimum(z, 0.0)))
    if name == "softmax":
        return _softmax(z)
    raise ValueError(name)


def backprop_through(name: str, z: Array, a: Array, grad_a: Array) -> Array:
    """dL/dz from dL/da through the activation ``name`` (PyTorch's derivatives: relu'(0) = 0)."""
    if name == "identity":
        return grad_a
    if name == "relu":
        return grad_a * (z > 0)
    if name == "leaky_relu":
        return grad_a * np.where(z > 0, 1.0, 0.01)
    if name == "sigmoid":
        return grad_a * a * (1.0 - a)
    if name == "tanh":
        return grad_a * (1.0 - a * a)
    if name == "softplus":
        return grad_a * _sigmoid(z)
    if name == "elu":
        return grad_a * np.where(z > 0, 1.0, a + 1.0)
    if name == "softmax":  # the Jacobian of each row: diag(a) - a a^T
        row_dots: Array = (grad_a * a).sum(axis=1, keepdims=True)
        return a * (grad_a - row_dots)
    raise ValueError(name)


def forward(weights: Sequence[Array], biases: Sequence[Array], activations: Sequence[str], x: Array) -> tuple[list[Array], list[Array]]:
    """Every layer's pre-activation ``z_k`` and activation ``a_k``, each ``[batch][out_k]``."""
    zs, activations_out, a = [], [], x
    for w, b, name in zip(weights, biases, activations, strict=True):
        z = a @ w.T + b
        a = activate(name, z)
        zs.append(z)
        activations_out.append(a)
    return zs, activations_out


def loss_and_gradients(
    weights: Sequence[Array], biases: Sequence[Array], activations: Sequence[str], x: Array, y: Array, loss: str, reduction: str
) -> tuple[float, list[tuple[Array, Array]]]:
    """The loss and ``(dL/dW_k, dL/db_k)`` for every layer."""
    zs, outs = forward(weights, biases, activations, x)
    z, a = zs[-1], outs[-1]
    n = 1 if reduction == "sum" else (len(y) if loss == "cross_entropy" else y.size)
    if loss == "mse":
        value = ((a - y) ** 2).sum() / n
        delta = backprop_through(activations[-1], z, a, 2.0 * (a - y) / n)
    elif loss == "binary_cross_entropy":  # from the logits z, stably: (1 - y) z + log(1 + e^-z)
        value = ((1.0 - y) * z + np.logaddexp(0.0, -z)).sum() / n
        delta = (_sigmoid(z) - y) / n
    elif loss == "cross_entropy":
        log_p = z - z.max(axis=1, keepdims=True)
        log_p = log_p - np.log(np.exp(log_p).sum(axis=1, keepdims=True))
        value = -(y * log_p).sum() / n
        delta = (np.exp(log_p) * y.sum(axis=1, keepdims=True) - y) / n
    else:
        raise ValueError(loss)
    grads: list[tuple[Array, Array]] = []
    for k in range(len(weights) - 1, -1, -1):
        a_prev = x if k == 0 else outs[k - 1]
        grads.append((delta.T @ a_prev, delta.sum(axis=0)))
        if k:
            delta = backprop_through(activations[k - 1], zs[k - 1], outs[k - 1], delta @ weights[k])
    return float(value), grads[::-1]

"""Dense layers: forward pass (keeping pre-activations) and backpropagation, in float64.

A layer ``k`` maps ``a_{k-1}`` (``[batch][in]``) to ``pre_k = a_{k-1} @ W_k.T + b_k`` and
``a_k = f_k(pre_k)`` (both ``[batch][out]``), with ``W_k`` ``[out][in]`` as in
``torch.nn.Linear``. Parameters can live in one flat vector (see :class:`Layout`)
so that optimizers and masks work on a single buffer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from app.nn.activations import ACTIVATIONS
from app.nn.errors import NonFiniteError
from app.nn.losses import LOSSES

Array = np.ndarray


@dataclass(frozen=True)
class Layer:
    """One dense layer: ``weights`` ``[out][in]``, ``biases`` ``[out]``, ``activation`` a name of ``ACTIVATIONS``."""

    weights: Array
    biases: Array
    activation: str = "identity"

    @property
    def shape(self) -> tuple[int, int]:
        return self.weights.shape  # type: ignore[return-value]


@dataclass(frozen=True)
class Forward:
    """Per-layer ``pre`` and ``post`` (activation) values, each ``[batch][out_k]``."""

    pre: tuple[Array, ...]
    post: tuple[Array, ...]

    @property
    def output(self) -> Array:
        return self.post[-1]


@dataclass(frozen=True)
class Evaluation:
    """The forward pass, the reduced loss, and dLoss/dtheta as a flat vector in ``layout`` order."""

    forward: Forward
    loss: float
    gradient: Array | None
    layout: Layout


@dataclass(frozen=True)
class Layout:
    """Where each layer's weights (row-major) and then biases sit in one flat float64 vector."""

    shapes: tuple[tuple[int, int], ...]
    activations: tuple[str, ...]

    @classmethod
    def of(cls, layers: Sequence[Layer]) -> Layout:
        return cls(tuple(l.shape for l in layers), tuple(l.activation for l in layers))

    @cached_property
    def offsets(self) -> tuple[int, ...]:
        """Start of layer ``k``'s weights, for every ``k``, then the total size."""
        out = [0]
        for o, i in self.shapes:
            out.append(out[-1] + o * i + o)
        return tuple(out)

    @property
    def size(self) -> int:
        return self.offsets[-1]

    def pack(self, layers: Sequence[Layer]) -> Array:
        """A new flat ``[size]`` vector holding every layer's weights then biases."""
        flat = np.empty(self.size)
        for (w, b), layer in zip(self.views(flat), layers, strict=True):
            w[...] = layer.weights
            b[...] = layer.biases
        return flat

    def views(self, flat: Array) -> tuple[tuple[Array, Array], ...]:
        """Per-layer ``(weights [out][in], biases [out])`` views into ``flat``; writing them writes ``flat``."""
        out = []
        for (o, i), start in zip(self.shapes, self.offsets):
            mid = start + o * i
            out.append((flat[start:mid].reshape(o, i), flat[mid : mid + o]))
        return tuple(out)

    def layers(self, flat: Array) -> tuple[Layer, ...]:
        """Layers whose parameters are views into ``flat`` (no copy)."""
        return tuple(Layer(w, b, act) for (w, b), act in zip(self.views(flat), self.activations))


def _check_finite(value: Array, layer: int, quantity: str) -> None:
    if not np.isfinite(value).all():
        raise NonFiniteError(layer, quantity)


def forward(layers: Sequence[Layer], inputs: Array, *, check: bool = True) -> Forward:
    """Run ``inputs`` ``[batch][in_0]`` through ``layers``; with ``check``, raise NonFiniteError at the first overflow."""
    pre, post = [], []
    a = inputs
    # Overflow is detected explicitly below (or by the caller), so numpy's warnings are noise.
    with np.errstate(all="ignore"):
        for k, layer in enumerate(layers):
            z = a @ layer.weights.T + layer.biases
            if check:
                _check_finite(z, k, "pre_activation")
            a = ACTIVATIONS[layer.activation].forward(z)
            if check:
                _check_finite(a, k, "activation")
            pre.append(z)
            post.append(a)
    return Forward(tuple(pre), tuple(post))


def loss_value(fwd: Forward, targets: Array, loss: str, reduction: str) -> float:
    """The reduced loss of ``fwd`` against ``targets`` ``[batch][out_last]``."""
    spec = LOSSES[loss]
    x = fwd.pre[-1] if spec.from_logits else fwd.output
    with np.errstate(all="ignore"):
        return spec.value(x, targets, reduction)


def backward(
    layers: Sequence[Layer], inputs: Array, fwd: Forward, targets: Array, loss: str, reduction: str
) -> Array:
    """dLoss/dtheta for every weight and bias, as a new flat vector in ``Layout.of(layers)`` order."""
    layout = Layout.of(layers)
    grad = np.empty(layout.size)
    views = layout.views(grad)
    spec = LOSSES[loss]
    last = len(layers) - 1
    with np.errstate(all="ignore"):
        if spec.from_logits:
            # The fused loss differentiates straight through to the logits (sigmoid/softmax folded in).
            delta = spec.grad(fwd.pre[last], targets, reduction)
        else:
            d_out = spec.grad(fwd.output, targets, reduction)
            delta = ACTIVATIONS[layers[last].activation].backward(fwd.pre[last], fwd.output, d_out)
        for k in range(last, -1, -1):
            g_w, g_b = views[k]
            a_prev = inputs if k == 0 else fwd.post[k - 1]
            np.matmul(delta.T, a_prev, out=g_w)
            np.sum(delta, axis=0, out=g_b)
            if k > 0:
                d_a = delta @ layers[k].weights
                delta = ACTIVATIONS[layers[k - 1].activation].backward(fwd.pre[k - 1], fwd.post[k - 1], d_a)
    return grad


def evaluate(
    layers: Sequence[Layer],
    inputs: Array,
    targets: Array,
    loss: str,
    reduction: str,
    *,
    gradients: bool = True,
) -> Evaluation:
    """Forward, loss and (optionally) every gradient; raises NonFiniteError naming where a value overflowed."""
    fwd = forward(layers, inputs)
    value = loss_value(fwd, targets, loss, reduction)
    last = len(layers) - 1
    if not np.isfinite(value):
        raise NonFiniteError(last, "loss")
    layout = Layout.of(layers)
    grad = None
    if gradients:
        grad = backward(layers, inputs, fwd, targets, loss, reduction)
        # Report the layer nearest the output whose gradient overflowed: that is where it arose.
        for k in range(last, -1, -1):
            start, end = layout.offsets[k], layout.offsets[k + 1]
            _check_finite(grad[start:end], k, "gradient")
    return Evaluation(fwd, value, grad, layout)

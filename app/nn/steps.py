"""Backprop and training written as steps a learner takes, one method each, so a variant of the
computation (app.nn.mistakes) can change exactly one of them; and :func:`run`, which runs the
steps while substituting the learner's own claimed numbers for the computed ones.

This is a plain program, like app.nn.reference, for the small networks learners check by hand:
it favours one obvious place per step over speed. Shapes: ``a_prev`` ``[batch][in]``, ``W``
``[out][in]``, ``b`` ``[out]``, ``z`` and ``a`` ``[batch][out]``, ``delta`` = dLoss/dz
``[batch][out]``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.nn.activations import ACTIVATIONS
from app.nn.layout import Layout
from app.nn.losses import Loss, Reduction
from app.nn.network import Layer
from app.nn.optimizers import Optimizer

Array = NDArray[np.float64]
Mask = NDArray[np.bool_]
Key = tuple[int, str, int | None, str | None]  # (iteration, kind, layer, "weights" | "biases" | None)


def logits_of(activation: str, out: Array) -> Array:
    """The pre-activation whose ``activation`` is ``out``, for the activations a loss is fused with
    (a claimed output's logits: the loss and its gradient are then the learner's own)."""
    with np.errstate(all="ignore"):
        if activation == "sigmoid":
            return np.log(out) - np.log1p(-out)
        if activation == "softmax":
            return np.log(out)
    raise ValueError(f"no inverse for {activation}")


@dataclass(frozen=True)
class OutputStep:
    """What the output layer's step sees: the ``loss`` and its ``reduction``, the last layer's index
    ``layer``, ``activation``, pre-activation ``z`` and output ``out`` ``[batch][units]``, the
    ``targets`` ``y``, and ``x``: what the loss is a function of (the logits for a loss fused
    with its activation, else ``out``)."""

    loss: Loss
    reduction: Reduction
    layer: int
    activation: str
    z: Array
    out: Array
    y: Array
    x: Array


class Steps:
    """The correct computation, with PyTorch's float64 semantics; a variant overrides one method."""

    name = "correct"

    def effective(self, layers: list[tuple[Array, Array]]) -> list[tuple[Array, Array]]:
        """The ``(W, b)`` each layer computes with: the network's own."""
        return layers

    def pre_activation(self, k: int, a_prev: Array, w: Array, b: Array) -> Array:
        """``z = a_prev W^T + b``."""
        z: Array = a_prev @ w.T + b
        return z

    def activation(self, k: int, name: str, z: Array) -> Array:
        """``a = f(z)``."""
        return ACTIVATIONS[name].forward(z)

    def loss(self, o: OutputStep) -> float:
        """The reduced loss of ``o.x`` against the targets."""
        return o.loss.value(o.x, o.y, o.reduction)

    def output_delta(self, o: OutputStep) -> Array:
        """dLoss/dz of the last layer: the loss's gradient (fused with the activation's, or through it)."""
        grad = o.loss.grad(o.x, o.y, o.reduction)
        if o.loss.from_logits:
            return grad
        return self.backward(o.layer, o.activation, o.z, o.out, grad)

    def backward(self, k: int, name: str, z: Array, a: Array, grad_a: Array) -> Array:
        """dLoss/dz of layer ``k`` from dLoss/da: ``f'(z) * grad_a`` (the Jacobian's product for softmax)."""
        return ACTIVATIONS[name].backward(z, a, grad_a)

    def weight_gradient(self, k: int, delta: Array, a_prev: Array) -> Array:
        """dLoss/dW = ``delta^T a_prev`` ``[out][in]``: summed over the batch."""
        g: Array = delta.T @ a_prev
        return g

    def bias_gradient(self, k: int, delta: Array) -> Array:
        """dLoss/db = ``delta`` summed over the batch ``[out]``."""
        g: Array = delta.sum(axis=0)
        return g

    def init_state(self, optimizer: Optimizer[Any], n: int) -> Any:
        return optimizer.init(n)

    def update(self, optimizer: Optimizer[Any], params: Array, grad: Array, state: Any, trainable: Mask | None) -> tuple[Array, Any]:
        """One step of ``optimizer`` on the flat ``params`` along the flat ``grad``; frozen ones kept."""
        new, new_state = optimizer.step(params, grad, state, trainable)
        return new, new_state


@dataclass(frozen=True)
class Claimed:
    """One claimed array: ``values`` (NaN where the learner claimed nothing) and ``mask`` (True
    where they did), both of the quantity's shape (``()`` for the loss)."""

    values: Array
    mask: Mask

    @staticmethod
    def of(values: Any) -> Claimed:
        """From nested lists with ``None`` for elements not claimed (or a bare number)."""
        raw = np.array(values, dtype=object)
        mask = np.vectorize(lambda v: v is not None, otypes=[bool])(raw) if raw.ndim else np.array(raw.item() is not None)
        filled = np.where(mask, raw, np.nan).astype(np.float64)
        return Claimed(filled, np.asarray(mask, dtype=bool))

    def merged(self, computed: Array) -> Array:
        """The learner's value: claimed where claimed, ``computed`` elsewhere."""
        if self.mask.all():
            return self.values
        return np.where(self.mask, self.values, computed)


def run(
    layers: tuple[Layer, ...],
    inputs: Array,
    targets: Array,
    loss: Loss,
    reduction: Reduction,
    steps: Steps,
    given: Mapping[Key, Claimed],
    iterations: int,
    optimizer: Optimizer[Any] | None = None,
    trainable: Mask | None = None,
    on_iteration: Callable[[], None] | None = None,
    keep: Collection[Key] | None = None,
) -> dict[Key, Array]:
    """Every quantity of ``iterations`` iterations as ``steps`` compute it, each from the values
    upstream of it, where a learner's ``given`` value replaces the computed one (elementwise).

    Keys are ``(iteration, kind, layer, part)``: kinds ``pre_activation``, ``activation``,
    ``output``, ``loss``, ``delta``, ``gradients`` (part weights/biases), ``network`` (the
    parameters after the iteration's update; part weights/biases). The dict is in computation order
    and holds every quantity, or only those in ``keep`` (a long training's other values are
    dropped as it goes: memory stays that of one iteration and the kept ones).
    """
    out: dict[Key, Array] = {}

    def take(key: Key, computed: Array) -> Array:
        if keep is None or key in keep:
            out[key] = computed
        claim = given.get(key)
        return computed if claim is None else claim.merged(computed)

    params = [(layer.weights, layer.biases) for layer in layers]
    names = [layer.activation for layer in layers]
    last = len(layers) - 1
    layout = Layout.of(layers)
    state = steps.init_state(optimizer, layout.size) if optimizer is not None else None
    with np.errstate(all="ignore"):
        for it in range(1, iterations + 1):
            if on_iteration is not None:
                on_iteration()
            used = steps.effective(params)
            zs: list[Array] = []
            acts: list[Array] = []
            a = inputs
            for k, (w, b) in enumerate(used):
                z = take((it, "pre_activation", k, None), steps.pre_activation(k, a, w, b))
                a = take((it, "activation", k, None), steps.activation(k, names[k], z))
                zs.append(z)
                acts.append(a)
            output = take((it, "output", None, None), acts[-1])
            acts[-1] = output
            if loss.from_logits:
                claimed_output = (it, "output", None, None) in given or (it, "activation", last, None) in given
                x = logits_of(names[last], output) if claimed_output else zs[-1]
            else:
                x = output
            o = OutputStep(loss, reduction, last, names[last], zs[-1], output, targets, x)
            take((it, "loss", None, None), np.asarray(steps.loss(o)))
            delta = take((it, "delta", last, None), steps.output_delta(o))
            grads: list[tuple[Array, Array]] = [(np.empty(0), np.empty(0))] * len(layers)
            for k in range(last, -1, -1):
                a_prev = inputs if k == 0 else acts[k - 1]
                gw = take((it, "gradients", k, "weights"), steps.weight_gradient(k, delta, a_prev))
                gb = take((it, "gradients", k, "biases"), steps.bias_gradient(k, delta))
                grads[k] = (gw, gb)
                if k > 0:
                    grad_a: Array = delta @ used[k][0]
                    delta = take((it, "delta", k - 1, None), steps.backward(k - 1, names[k - 1], zs[k - 1], acts[k - 1], grad_a))
            if optimizer is None:
                continue
            flat, flat_grad = _flat(layout, params), _flat(layout, grads)
            new, state = steps.update(optimizer, flat, flat_grad, state, trainable)
            params = [
                (take((it, "network", k, "weights"), w.copy()), take((it, "network", k, "biases"), b.copy()))
                for k, (w, b) in enumerate(layout.views(new))
            ]
    return out


def _flat(layout: Layout, pairs: list[tuple[Array, Array]]) -> Array:
    flat = np.empty(layout.size)
    for (w, b), (w_out, b_out) in zip(pairs, layout.views(flat)):
        w_out[...] = w
        b_out[...] = b
    return flat

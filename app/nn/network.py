"""Dense layers in float64 (or float32): the forward pass, the loss, and backpropagation.

``reference.py`` is the same maths written plainly; read it first. For ``n`` layers, inputs
``x`` ``[batch][in_0]`` and layer ``k`` with ``W_k`` ``[out_k][in_k]`` (as in ``torch.nn.Linear``),
``b_k`` ``[out_k]`` and activation ``f_k``:

    forward    z_k = a_{k-1} @ W_k.T + b_k             [batch][out_k]     (a_{-1} = x)
               a_k = f_k(z_k)                          [batch][out_k]
    loss       L = loss(a_{n-1}, y)                    (or of z_{n-1}, for losses fused with f_{n-1})
    backward   delta_k = dL/dz_k                       [batch][out_k]
               dL/dW_k = delta_k.T @ a_{k-1}           [out_k][in_k]
               dL/db_k = delta_k summed over the batch [out_k]
               delta_{k-1} = f'_{k-1}(z_{k-1}) applied to delta_k @ W_k

This module computes exactly that, in place: the parameters live in one flat vector
(``layout.py``: layer ``k`` as the block ``[W_k.T; b_k]``, so that with a column of ones on
``a_{k-1}`` one product gives ``z_k`` and one gives both gradients), every pass writes into
preallocated buffers (``workspace.py``), and each thread reuses the buffers of small shapes
(``buffer_cache.py``). ``forward`` and ``evaluate`` return new arrays and never write their inputs.

They compute in ``dtype``: float64 by default, as PyTorch in double precision; float32 as PyTorch's
default dtype, every buffer float32 (and BLAS's sgemm), the arrays returned float32.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import DTypeLike

from app.nn.buffer_cache import prepared
from app.nn.layout import Array, Layout, float_dtype, weight_views
from app.nn.losses import Loss, Reduction, get_loss
from app.nn.workspace import Workspace


@dataclass(frozen=True)
class Layer:
    """One dense layer: ``weights`` ``W`` ``[out][in]``, ``biases`` ``b`` ``[out]``, ``activation`` a name of ``ACTIVATIONS``."""

    weights: Array
    biases: Array
    activation: str = "identity"

    @property
    def shape(self) -> tuple[int, int]:
        """``(out, in)``."""
        n_out, n_in = self.weights.shape
        return n_out, n_in


@dataclass(frozen=True)
class Forward:
    """Per-layer pre-activations ``pre`` (``z_k``) and activations ``post`` (``a_k``), each ``[batch][out_k]``."""

    pre: tuple[Array, ...]
    post: tuple[Array, ...]

    @property
    def output(self) -> Array:
        """The network's output ``a_{n-1}``."""
        return self.post[-1]


@dataclass(frozen=True)
class Evaluation:
    """The forward pass, the reduced loss, and dLoss/dtheta as a flat ``[size]`` vector in ``layout`` order."""

    forward: Forward
    loss: float
    gradient: Array | None
    layout: Layout


def forward_pass(blocks: Sequence[Array], ws: Workspace, pre: Sequence[Array] | None = None, *, last_activation: bool = True) -> None:
    """The forward pass from ``ws.inputs[0]``, into ``ws``: for each layer ``k``,

        z_k = [a_{k-1}, 1] @ [W_k.T; b_k] = a_{k-1} @ W_k.T + b_k     ws.pre[k]     [batch][out_k]
        a_k = f_k(z_k)                                                ws.posts[k]   [batch][out_k]

    with ``[a_{k-1}, 1]`` ``ws.inputs[k]`` ``[batch][in_k + 1]`` and ``[W_k.T; b_k]`` ``blocks[k]``
    ``[in_k + 1][out_k]``. ``a_k`` is written straight into the next layer's input.

    ``pre`` are where the ``z_k`` go when not into ``ws.pre`` (a training loop passes ``ws.pre``
    with the last replaced by the row of its history that keeps this iteration's logits). Without
    ``last_activation`` the output is left unset (a loss fused with the last activation needs only
    the logits).
    """
    if pre is None:
        pre = ws.pre
    last = len(blocks) - 1
    for k, (a_in, block, z, f, a) in enumerate(zip(ws.inputs, blocks, pre, ws.acts, ws.posts)):
        a_in.dot(block, z)  # z_k = [a_{k-1}, 1] @ [W_k.T; b_k]
        if k < last or last_activation:
            f.forward(z, out=a)  # a_k = f_k(z_k)


def backward_pass(
    blocks: Sequence[Array],
    ws: Workspace,
    targets: Array,
    loss: str | Loss,
    reduction: Reduction,
    weights: Sequence[Array] | None = None,
    *,
    pre: Sequence[Array] | None = None,
    output_ready: bool = False,
) -> Array:
    """Backpropagation: dLoss/dtheta into ``ws.grad`` (returned), from what ``forward_pass`` left in ``ws``.

        delta_last = dL/dz_last                      ws.delta[-1]       from the loss, through f_last
                                                                        unless the loss is fused with it
        [dL/dW_k.T; dL/db_k] = [a_{k-1}, 1].T @ delta_k
                                                     ws.grad_blocks[k]  [in_k + 1][out_k]
        dL/da_{k-1} = delta_k @ W_k                  ws.d_post[k-1]     [batch][out_{k-1}]
        delta_{k-1} = dL/dz_{k-1}                    ws.delta[k-1]      f_{k-1}'s backward of dL/da_{k-1}

    The ones column of ``[a_{k-1}, 1]`` makes the last row of that product the sum of ``delta_k``
    over the batch: dL/db_k. ``targets`` are ``y`` ``[batch][out_last]``; ``loss`` a name of ``LOSSES``
    or a bound Loss; ``weights`` the ``W_k`` views ``weight_views(blocks)`` when the caller keeps them
    (a loop does); ``pre`` the ``z_k`` as for ``forward_pass``; ``output_ready`` says the forward pass
    computed the output ``a_last``.
    """
    if weights is None:
        weights = weight_views(blocks)
    spec = get_loss(loss)
    last = len(blocks) - 1
    if pre is None:
        pre = ws.pre
    acts, posts, delta, d_post = ws.acts, ws.posts, ws.delta, ws.d_post
    z_last = pre[last]
    if spec.from_logits and output_ready and spec.grad_from_output is not None:
        # The same dL/dz_last, cheaper from the output the forward pass computed.
        spec.grad_from_output(ws.output, targets, reduction, out=delta[last])
    elif spec.from_logits:
        # A fused loss differentiates straight through to the logits (its sigmoid or softmax folded in).
        spec.grad(z_last, targets, reduction, out=delta[last])
    else:
        spec.grad(ws.output, targets, reduction, out=d_post[last])
        acts[last].backward(z_last, ws.output, d_post[last], out=delta[last])
    for k in range(last, -1, -1):
        ws.inputs_t[k].dot(delta[k], ws.grad_blocks[k])  # [dL/dW_k.T; dL/db_k] = [a_{k-1}, 1].T @ delta_k
        if k > 0:
            delta[k].dot(weights[k], d_post[k - 1])  # dL/da_{k-1} = delta_k @ W_k
            acts[k - 1].backward(pre[k - 1], posts[k - 1], d_post[k - 1], out=delta[k - 1])  # delta_{k-1}
    return ws.grad


def pass_loss(blocks: Sequence[Array], ws: Workspace, targets: Array, loss: str | Loss, reduction: Reduction) -> float:
    """Forward into ``ws`` and the reduced loss, unchecked (non-finite values come out as they are)."""
    spec = get_loss(loss)
    forward_pass(blocks, ws, last_activation=not spec.from_logits)
    return spec.value(_loss_input(ws, spec), targets, reduction)


def checked_pass(
    blocks: Sequence[Array],
    ws: Workspace,
    targets: Array,
    loss: str | Loss,
    reduction: Reduction,
    *,
    gradients: bool = True,
    weights: Sequence[Array] | None = None,
) -> float:
    """Forward, the reduced loss (returned) and, with ``gradients``, backward into ``ws``; raises
    NonFiniteError naming where a value overflowed (``weights`` as for ``backward_pass``)."""
    forward_pass(blocks, ws)
    spec = get_loss(loss)
    value = spec.value(_loss_input(ws, spec), targets, reduction)
    if gradients:
        backward_pass(blocks, ws, targets, spec, reduction, weights, output_ready=True)
    ws.check_finite(value, gradients=gradients)
    return value


def forward(layers: Sequence[Layer], inputs: Array, *, dtype: DTypeLike = np.float64) -> Forward:
    """Run ``inputs`` ``[batch][in_0]`` through ``layers`` in ``dtype``; raises NonFiniteError at the first overflow."""
    p, shared = prepared(layers, inputs, dtype)
    # Overflow is detected explicitly, so numpy's warnings are noise.
    with np.errstate(all="ignore"):
        forward_pass(p.blocks, p.ws)
        p.ws.check_finite()
    return _forward(p.ws, copy=shared)


def loss_value(fwd: Forward, targets: Array, loss: str | Loss, reduction: Reduction) -> float:
    """The reduced loss of ``fwd`` against ``targets`` ``[batch][out_last]``."""
    spec = get_loss(loss)
    with np.errstate(all="ignore"):
        return spec.value(fwd.pre[-1] if spec.from_logits else fwd.output, targets, reduction)


def evaluate(
    layers: Sequence[Layer],
    inputs: Array,
    targets: Array,
    loss: str | Loss,
    reduction: Reduction,
    *,
    gradients: bool = True,
    dtype: DTypeLike = np.float64,
) -> Evaluation:
    """Forward, loss and (optionally) dLoss/dtheta for every parameter, in ``dtype``; raises NonFiniteError
    naming where a value overflowed."""
    p, shared = prepared(layers, inputs, dtype)
    ws = p.ws
    targets, loss = in_dtype(targets, loss, ws.dtype)
    with np.errstate(all="ignore"):
        value = checked_pass(p.blocks, ws, targets, loss, reduction, gradients=gradients, weights=p.weights)
    grad = (ws.grad.copy() if shared else ws.grad) if gradients else None
    return Evaluation(_forward(ws, copy=shared), value, grad, p.layout)


def in_dtype(targets: Array, loss: str | Loss, dtype: DTypeLike) -> tuple[Array, Loss]:
    """``targets`` and the loss's own arrays (cross_entropy's class weights) in ``dtype``, so that the loss
    computes in it too (the same objects when they already are)."""
    d = float_dtype(dtype)
    return np.asarray(targets, dtype=d), get_loss(loss).astype(d)


def unpack(layout: Layout, flat: Array) -> tuple[Layer, ...]:
    """Layers whose parameters are views into ``flat`` (no copy): the inverse of ``layout.pack``."""
    return tuple(Layer(w, b, act) for (w, b), act in zip(layout.views(flat), layout.activations))


def _loss_input(ws: Workspace, spec: Loss) -> Array:
    """What ``spec`` takes: the logits for a fused loss, else the output."""
    return ws.pre[-1] if spec.from_logits else ws.output


def _forward(ws: Workspace, copy: bool = False) -> Forward:
    if copy:
        return Forward(tuple(a.copy() for a in ws.pre), tuple(a.copy() for a in ws.posts))
    return Forward(tuple(ws.pre), tuple(ws.posts))

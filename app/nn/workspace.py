"""The buffers a forward and backward pass write, allocated once per layout and batch.

A pass (``network.forward_pass``, ``network.backward_pass``) computes into a
:class:`Workspace` and allocates nothing itself, so that a training loop allocates
nothing per iteration. :class:`Packed` is a workspace together with a network's
parameters packed in their flat layout: everything one computation needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import DTypeLike

from app.nn.activations import ACTIVATIONS, Activation
from app.nn.errors import NonFiniteError
from app.nn.layout import Array, Layout, float_dtype, weight_views

if TYPE_CHECKING:  # network.py imports this module; Layer is only read here
    from app.nn.network import Layer


class Workspace:
    """Every buffer one forward and backward pass needs, for a fixed layout and batch of inputs.

    Layer ``k`` of ``n`` has ``in_k`` inputs and ``out_k`` units; ``batch`` rows go through at once.

    ``inputs[k]``  ``[batch][in_k + 1]``  layer ``k``'s input with a column of ones appended:
                                          the caller's inputs for ``k = 0``, ``posts[k - 1]`` after that
    ``pre[k]``     ``[batch][out_k]``     ``z_k``, the pre-activation
    ``posts[k]``   ``[batch][out_k]``     ``a_k = f_k(z_k)``: a view into ``inputs[k + 1]``, or ``output``
    ``output``     ``[batch][out_last]``  the network's output, ``posts[-1]``
    ``delta[k]``   ``[batch][out_k]``     dLoss/dz_k
    ``d_post[k]``  ``[batch][out_k]``     dLoss/da_k
    ``grad``       ``[size]``             dLoss/dtheta in ``layout`` order; ``grad_blocks`` its per-layer blocks

    The buffers are fixed: a pass writes into them and never rebinds them (the per-layer ones
    are tuples); a caller wanting a result elsewhere says where (``forward_pass``'s ``pre``).
    Every value a forward pass computes (the inputs with their ones, ``pre``, the output) lives
    in one flat buffer, ``values``, so that ``check_finite`` covers them all with one sum.
    Scratch space owned by one computation; the arrays a pass leaves are views into it.
    Every buffer is of ``dtype`` (float64, or float32): the passes then compute in it.
    """

    def __init__(self, layout: Layout, inputs: Array, dtype: DTypeLike = np.float64) -> None:
        batch = inputs.shape[0]
        n = len(layout.shapes)
        outs = [n_out for n_out, _ in layout.shapes]
        self.layout = layout
        self.dtype = dtype = float_dtype(dtype)
        self.acts: tuple[Activation, ...] = tuple(ACTIVATIONS[name] for name in layout.activations)
        widths = [n_in + 1 for _, n_in in layout.shapes] + outs + outs[-1:]
        self.values = np.empty(batch * sum(widths), dtype=dtype)
        parts = _layer_blocks(self.values, batch, widths)
        self.inputs = parts[:n]
        for a in self.inputs:
            a[:, -1] = 1.0
        self.load(inputs)
        self.inputs_t = tuple(a.T for a in self.inputs)
        self.pre = parts[n : 2 * n]
        self.output = parts[-1]
        self.posts = tuple(a[:, :-1] for a in self.inputs[1:]) + (self.output,)
        # Backward scratch, one allocation: delta and d_post per layer.
        scratch = _layer_blocks(np.empty(2 * batch * sum(outs), dtype=dtype), batch, outs + outs)
        self.delta, self.d_post = scratch[:n], scratch[n:]
        self.grad = np.empty(layout.size, dtype=dtype)
        self.grad_blocks = layout.blocks(self.grad)

    @staticmethod
    def floats(layout: Layout, batch: int) -> int:
        """How many floats (of its dtype) a workspace for ``layout`` and ``batch`` rows holds."""
        per_sample = sum(n_in + 1 + 3 * n_out for n_out, n_in in layout.shapes) + layout.shapes[-1][0]
        return batch * per_sample + layout.size

    def load(self, inputs: Array) -> None:
        """Write ``inputs`` ``[batch][in_0]`` as layer 0's input (its ones column stays), in the workspace's dtype."""
        self.inputs[0][:, :-1] = inputs

    def check_finite(self, loss: float | None = None, *, gradients: bool = False) -> None:
        """Raise NonFiniteError naming the first non-finite value of a finished pass: in the order
        they were computed, the forward values, then the ``loss`` (if given), then ``grad`` (if
        ``gradients``), the layer nearest the output first, since that is where an overflow arose.
        Call it under ``np.errstate(all="ignore")``, as the passes run: a sum of non-finite values warns."""
        # One sum instead of one isfinite per array: a sum is finite when every term is, and on
        # small networks, where a pass is a few dozen numpy calls, a check per array would cost
        # as much again. The sum can also overflow on finite terms alone; the search then finds
        # nothing and returns. Only when the sum fails are the arrays searched for the culprit.
        total = self.values.sum() + (0.0 if loss is None else loss) + (self.grad.sum() if gradients else 0.0)
        if np.isfinite(total):
            return
        last = len(self.pre) - 1
        for k in range(last + 1):
            _check(self.pre[k], k, "pre_activation")
            _check(self.posts[k], k, "activation")
        if loss is not None and not np.isfinite(loss):
            raise NonFiniteError(last, "loss")
        if gradients:
            for k in range(last, -1, -1):
                _check(self.grad_blocks[k], k, "gradient")


def _check(value: Array, layer: int, quantity: str) -> None:
    if not np.isfinite(value).all():
        raise NonFiniteError(layer, quantity)


def _layer_blocks(flat: Array, batch: int, widths: Sequence[int]) -> tuple[Array, ...]:
    """Consecutive ``[batch][w]`` views into ``flat``, one per width."""
    parts, start = [], 0
    for w in widths:
        parts.append(flat[start : start + batch * w].reshape(batch, w))
        start += batch * w
    return tuple(parts)


@dataclass(frozen=True)
class Packed:
    """Layers ready to compute on a batch of inputs: their ``layout``, a new flat parameter vector
    ``params``, its per-layer ``blocks`` ``[W.T; b]`` and their ``weights`` ``W`` (views), and a workspace,
    all of one dtype."""

    layout: Layout
    params: Array
    blocks: tuple[Array, ...]
    weights: tuple[Array, ...]
    ws: Workspace

    @classmethod
    def of(cls, layers: Sequence[Layer], inputs: Array, dtype: DTypeLike = np.float64) -> Packed:
        """``layers`` packed and a workspace for ``inputs``, in ``dtype`` (the arrays are cast to it)."""
        layout = Layout.of(layers)
        params, blocks = layout.packed(layers, dtype)
        return cls(layout, params, blocks, weight_views(blocks), Workspace(layout, inputs, dtype))

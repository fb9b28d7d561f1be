"""Dense layers: forward pass (keeping pre-activations) and backpropagation, in float64.

A layer ``k`` maps ``a_{k-1}`` (``[batch][in]``) to ``pre_k = a_{k-1} @ W_k.T + b_k`` and
``a_k = f_k(pre_k)`` (both ``[batch][out]``), with ``W_k`` ``[out][in]`` as in
``torch.nn.Linear``.

All parameters live in one flat vector (:class:`Layout`), layer by layer, each layer
as a block ``[in + 1][out]`` = ``[W.T; b]``. With a column of ones appended to each
layer's input, one ``dot`` gives the pre-activation and one gives both dL/dW and dL/db;
optimizers and masks work on the whole vector at once. A :class:`Workspace` holds
every buffer a pass needs, so a training loop allocates nothing per iteration.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from app.nn.activations import ACTIVATIONS, Activation
from app.nn.errors import NonFiniteError
from app.nn.losses import Loss, get_loss

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
    """Where each layer's parameters sit in one flat float64 vector: a ``[in + 1][out]`` block ``[W.T; b]``."""

    shapes: tuple[tuple[int, int], ...]
    activations: tuple[str, ...]
    # Derived once per layout (a request's layout is looked up, not rebuilt: see ``of``).
    offsets: tuple[int, ...] = field(init=False, repr=False, compare=False)
    acts: tuple[Activation, ...] = field(init=False, repr=False, compare=False)
    per_sample: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        offsets = [0]
        for o, i in self.shapes:
            offsets.append(offsets[-1] + (i + 1) * o)
        # offsets: start of layer k's block, for every k, then the total size.
        object.__setattr__(self, "offsets", tuple(offsets))
        object.__setattr__(self, "acts", tuple(ACTIVATIONS[name] for name in self.activations))
        # Floats a workspace holds per sample: inputs with their ones, pre-activations, output, backward scratch.
        object.__setattr__(self, "per_sample", sum(i + 1 + 3 * o for o, i in self.shapes) + self.shapes[-1][0])

    @classmethod
    def of(cls, layers: Sequence[Layer]) -> Layout:
        return _layout(tuple(l.shape for l in layers), tuple(l.activation for l in layers))

    @property
    def size(self) -> int:
        return self.offsets[-1]

    def blocks(self, flat: Array) -> tuple[Array, ...]:
        """Per-layer ``[in + 1][out]`` views ``[W.T; b]`` into ``flat``."""
        return tuple(flat[start:end].reshape(i + 1, o) for (o, i), start, end in zip(self.shapes, self.offsets, self.offsets[1:]))

    def views(self, flat: Array) -> tuple[tuple[Array, Array], ...]:
        """Per-layer ``(weights [out][in], biases [out])`` views into ``flat``; writing them writes ``flat``."""
        return tuple((block[:-1].T, block[-1]) for block in self.blocks(flat))

    def pack(self, layers: Sequence[Layer]) -> Array:
        """A new flat ``[size]`` vector holding every layer's parameters."""
        return self._packed(layers)[0]

    def _packed(self, layers: Sequence[Layer]) -> tuple[Array, tuple[Array, ...]]:
        flat = np.empty(self.size)
        blocks = self.blocks(flat)
        _fill(blocks, layers)
        return flat, blocks

    def locate(self, index: int) -> tuple[int, str, tuple[int, ...]]:
        """Flat ``index`` as ``(layer, "weights", (j, i))`` (weights[j][i]) or ``(layer, "biases", (j,))``."""
        k = int(np.searchsorted(self.offsets, index, side="right") - 1)
        n_out, n_in = self.shapes[k]
        row, col = divmod(index - self.offsets[k], n_out)
        return (k, "biases", (col,)) if row == n_in else (k, "weights", (col, row))

    def flat_index(self, layer: int, kind: str, index: Sequence[int]) -> int:
        """The inverse of ``locate``."""
        n_out, n_in = self.shapes[layer]
        row, col = (n_in, index[0]) if kind == "biases" else (index[1], index[0])
        return self.offsets[layer] + row * n_out + col

    def layers(self, flat: Array) -> tuple[Layer, ...]:
        """Layers whose parameters are views into ``flat`` (no copy)."""
        return tuple(Layer(w, b, act) for (w, b), act in zip(self.views(flat), self.activations))


def _fill(blocks: Sequence[Array], layers: Sequence[Layer]) -> None:
    for block, layer in zip(blocks, layers, strict=True):
        block[:-1] = layer.weights.T
        block[-1] = layer.biases


@lru_cache(maxsize=256)
def _layout(shapes: tuple[tuple[int, int], ...], activations: tuple[str, ...]) -> Layout:
    # Layouts are immutable and few distinct ones recur (a client posts the same network
    # again and again), so one is shared rather than rebuilt per request.
    return Layout(shapes, activations)


class Workspace:
    """Every buffer one forward and backward pass needs, for a fixed layout and batch of inputs.

    ``inputs[k]`` is layer ``k``'s input with a column of ones appended (``[batch][in_k + 1]``):
    the caller's inputs for ``k = 0``, layer ``k-1``'s activation after that. Scratch space
    owned by one computation; the arrays it returns are views into it. Every value a forward
    pass computes (the inputs with their ones, ``pre``, the output) lives in one flat buffer,
    ``values``, so that one check covers them all.
    """

    def __init__(self, layout: Layout, inputs: Array) -> None:
        batch = inputs.shape[0]
        n = len(layout.shapes)
        outs = [o for o, _ in layout.shapes]
        self.layout = layout
        self.acts = layout.acts
        widths = [i + 1 for _, i in layout.shapes] + outs + outs[-1:]
        self.values = np.empty(batch * sum(widths))
        parts = _rows(self.values, batch, widths)
        self.inputs = parts[:n]
        for a in self.inputs:
            a[:, -1] = 1.0
        self.load(inputs)
        self.inputs_t = [a.T for a in self.inputs]
        self.pre = parts[n : 2 * n]
        self.output = parts[-1]
        # Backward scratch, one allocation: delta (dL/dpre) and d_post (dL/dactivation) per layer.
        scratch = _rows(np.empty(2 * batch * sum(outs)), batch, outs + outs)
        self.delta, self.d_post = scratch[:n], scratch[n:]
        self.grad = np.empty(layout.size)
        self.grad_blocks = layout.blocks(self.grad)
        # Layer k's activation [batch][out_k]: a view into layer k+1's input, or the output.
        self.posts = [a[:, :-1] for a in self.inputs[1:]] + [self.output]

    def load(self, inputs: Array) -> None:
        """Write ``inputs`` ``[batch][in_0]`` as layer 0's input (its ones column stays)."""
        self.inputs[0][:, :-1] = inputs


def _rows(flat: Array, batch: int, widths: Sequence[int]) -> list[Array]:
    """Consecutive ``[batch][w]`` views into ``flat``, one per width."""
    parts, start = [], 0
    for w in widths:
        parts.append(flat[start : start + batch * w].reshape(batch, w))
        start += batch * w
    return parts


@dataclass(frozen=True)
class Packed:
    """``layers`` ready to compute on ``inputs``: layout, a new flat parameter vector, its blocks
    and their weight views, a workspace."""

    layout: Layout
    params: Array
    blocks: tuple[Array, ...]
    weights: tuple[Array, ...]
    ws: Workspace

    @classmethod
    def of(cls, layers: Sequence[Layer], inputs: Array) -> Packed:
        layout = Layout.of(layers)
        params, blocks = layout._packed(layers)
        return cls(layout, params, blocks, weight_views(blocks), Workspace(layout, inputs))


# A single pass on a small network is mostly setting up its buffers (about 40 numpy calls
# for the seed network against about 30 for the pass itself), so each thread keeps the
# buffers of the last few small shapes it computed and refills them. Callers still get
# new arrays: what a pass returns from shared buffers is copied out.
SHARED_FLOATS = 4096
SHARED_SHAPES = 8


class _Shared(threading.local):
    def __init__(self) -> None:
        self.packed: OrderedDict[tuple[Layout, int], Packed] = OrderedDict()


_shared = _Shared()


def _prepared(layers: Sequence[Layer], inputs: Array) -> tuple[Packed, bool]:
    """``Packed.of(layers, inputs)``, or this thread's buffers for the same shapes refilled; and
    whether they are shared (so that results must be copied out of them)."""
    layout = Layout.of(layers)
    batch = inputs.shape[0]
    if 2 * layout.size + batch * layout.per_sample > SHARED_FLOATS:
        return Packed.of(layers, inputs), False
    key = (layout, batch)
    cache = _shared.packed
    p = cache.get(key)
    if p is None:
        p = cache[key] = Packed.of(layers, inputs)
        if len(cache) > SHARED_SHAPES:
            cache.popitem(last=False)
        return p, True
    cache.move_to_end(key)
    # Every value a pass reads is rewritten here or by the pass itself (the ones columns never change).
    _fill(p.blocks, layers)
    p.ws.load(inputs)
    return p, True


def weight_views(blocks: Sequence[Array]) -> tuple[Array, ...]:
    """The ``[out][in]`` weights ``block[:-1].T`` of each ``[in + 1][out]`` block (views, no copy)."""
    return tuple(block[:-1].T for block in blocks)


def _check_finite(value: Array, layer: int, quantity: str) -> None:
    if not np.isfinite(value).all():
        raise NonFiniteError(layer, quantity)


def forward_pass(blocks: Sequence[Array], ws: Workspace, *, last_activation: bool = True) -> None:
    """Fill ``ws.pre`` and the activations from ``ws.inputs[0]``.

    Without ``last_activation`` the output is left unset (a fused loss needs only the logits).
    """
    last = len(blocks) - 1
    for k, (x, block, pre, act, post) in enumerate(zip(ws.inputs, blocks, ws.pre, ws.acts, ws.posts)):
        x.dot(block, pre)
        if k < last or last_activation:
            act.forward(pre, out=post)


def backward_pass(
    blocks: Sequence[Array],
    ws: Workspace,
    targets: Array,
    loss: str | Loss,
    reduction: str,
    weights: Sequence[Array] | None = None,
    *,
    output_ready: bool = False,
) -> Array:
    """dLoss/dtheta into ``ws.grad`` (flat, layout order), from the values ``forward_pass`` left in ``ws``.

    ``loss`` is a name of ``LOSSES`` or a bound Loss (as everywhere in the engine);
    ``weights`` are ``weight_views(blocks)`` when the caller keeps them (a loop does);
    ``output_ready`` says the forward pass computed the last activation (``ws.output``).
    """
    if weights is None:
        weights = weight_views(blocks)
    spec = get_loss(loss)
    last = len(blocks) - 1
    acts, pre, posts, delta, d_post = ws.acts, ws.pre, ws.posts, ws.delta, ws.d_post
    if spec.from_logits and output_ready and spec.grad_from_output is not None:
        spec.grad_from_output(ws.output, targets, reduction, out=delta[last])
    elif spec.from_logits:
        # The fused loss differentiates straight through to the logits (sigmoid/softmax folded in).
        spec.grad(pre[last], targets, reduction, out=delta[last])
    else:
        spec.grad(ws.output, targets, reduction, out=d_post[last])
        acts[last].backward(pre[last], ws.output, d_post[last], out=delta[last])
    for k in range(last, -1, -1):
        # [in + 1][out] = inputs.T @ delta: dL/dW.T and, through the ones column, dL/db.
        ws.inputs_t[k].dot(delta[k], ws.grad_blocks[k])
        if k > 0:
            delta[k].dot(weights[k], d_post[k - 1])
            acts[k - 1].backward(pre[k - 1], posts[k - 1], d_post[k - 1], out=delta[k - 1])
    return ws.grad


def _loss_input(ws: Workspace, spec: Loss) -> Array:
    return ws.pre[-1] if spec.from_logits else ws.output


def pass_loss(blocks: Sequence[Array], ws: Workspace, targets: Array, loss: str | Loss, reduction: str) -> float:
    """Forward into ``ws`` and the reduced loss, unchecked (non-finite values come out as they are)."""
    spec = get_loss(loss)
    forward_pass(blocks, ws, last_activation=not spec.from_logits)
    return spec.value(_loss_input(ws, spec), targets, reduction)


def _forward(ws: Workspace, copy: bool = False) -> Forward:
    if copy:
        return Forward(tuple(a.copy() for a in ws.pre), tuple(a.copy() for a in ws.posts))
    return Forward(tuple(ws.pre), tuple(ws.posts))


def forward(layers: Sequence[Layer], inputs: Array) -> Forward:
    """Run ``inputs`` ``[batch][in_0]`` through ``layers``; raises NonFiniteError at the first overflow."""
    p, shared = _prepared(layers, inputs)
    ws = p.ws
    # Overflow is detected explicitly, so numpy's warnings are noise.
    with np.errstate(all="ignore"):
        forward_pass(p.blocks, ws)
        if not np.isfinite(ws.values.sum()):
            _locate_overflow(ws)
    return _forward(ws, copy=shared)


def loss_value(fwd: Forward, targets: Array, loss: str | Loss, reduction: str) -> float:
    """The reduced loss of ``fwd`` against ``targets`` ``[batch][out_last]``."""
    spec = get_loss(loss)
    with np.errstate(all="ignore"):
        return spec.value(fwd.pre[-1] if spec.from_logits else fwd.output, targets, reduction)


def evaluate(
    layers: Sequence[Layer],
    inputs: Array,
    targets: Array,
    loss: str | Loss,
    reduction: str,
    *,
    gradients: bool = True,
) -> Evaluation:
    """Forward, loss and (optionally) every gradient; raises NonFiniteError naming where a value overflowed."""
    p, shared = _prepared(layers, inputs)
    ws = p.ws
    with np.errstate(all="ignore"):
        value = checked_pass(p.blocks, ws, targets, loss, reduction, gradients=gradients, weights=p.weights)
    grad = (ws.grad.copy() if shared else ws.grad) if gradients else None
    return Evaluation(_forward(ws, copy=shared), value, grad, p.layout)


def checked_pass(
    blocks: Sequence[Array],
    ws: Workspace,
    targets: Array,
    loss: str | Loss,
    reduction: str,
    *,
    gradients: bool = True,
    weights: Sequence[Array] | None = None,
) -> float:
    """Forward, loss and (optionally) backward into ``ws``, raising NonFiniteError where a value overflowed
    (``weights`` as for ``backward_pass``)."""
    forward_pass(blocks, ws)
    spec = get_loss(loss)
    value = spec.value(_loss_input(ws, spec), targets, reduction)
    if gradients:
        backward_pass(blocks, ws, targets, spec, reduction, weights, output_ready=True)
    # One check of everything on the way (a sum is finite only if every term is); only
    # when it fails are the values searched, in the order they were computed, for the culprit.
    total = ws.values.sum() + value + (ws.grad.sum() if gradients else 0.0)
    if not np.isfinite(total):
        _locate_overflow(ws, value, gradients)
    return value


def _locate_overflow(ws: Workspace, value: float = 0.0, gradients: bool = False) -> None:
    """Raise NonFiniteError for the first non-finite value of a finished pass (forward, then the loss
    ``value``, then the gradients when computed); return if there is none."""
    last = len(ws.pre) - 1
    for k in range(last + 1):
        _check_finite(ws.pre[k], k, "pre_activation")
        _check_finite(ws.posts[k], k, "activation")
    if not np.isfinite(value):
        raise NonFiniteError(last, "loss")
    if gradients:
        # Report the layer nearest the output whose gradient overflowed: that is where it arose.
        for k in range(last, -1, -1):
            _check_finite(ws.grad_blocks[k], k, "gradient")

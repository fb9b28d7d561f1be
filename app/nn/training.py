"""Full-batch training: the loop, trace recording and divergence detection.

Each iteration runs forward on the current parameters, the loss, backward and one
optimizer step. Iteration ``i`` (1-based) *completes* when its loss and every
gradient are finite and its update leaves every parameter finite; training stops
at the first iteration that does not complete. The caller's arrays are never written.

The loop keeps every buffer it needs and allocates nothing per iteration. It runs in
chunks of up to ``MAX_CHUNK`` iterations, keeping each iteration's logits and
parameters; losses, finiteness and the recorded values are then computed for the
whole chunk at once, and a chunk that holds a failing iteration is cut back to the
last iteration that completed.

Training computes in ``dtype`` (float64 by default, or float32): every buffer, the optimizer's
state, the trace's arrays and the parameters returned are of it (``final_loss`` a Python float).

The pieces: ``_Trainer._steps`` runs a chunk's iterations, ``_Parameters`` keeps
each iteration's parameters (and those before the chunk, for a rollback),
``_completed`` finds the first failing iteration of a chunk, ``_trace_rows``
which of its iterations the trace records, and ``_Trainer.run`` strings chunks together.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Concatenate, Generic, ParamSpec

import numpy as np
from numpy.typing import DTypeLike, NDArray

from app.nn.activations import ACTIVATIONS
from app.nn.layout import Array, Layout, weight_views
from app.nn.losses import Loss, Reduction
from app.nn.network import Layer, backward_pass, checked_pass, forward_pass, in_dtype, pass_loss
from app.nn.optimizers import Optimizer, StateT
from app.nn.workspace import Packed

RECORDABLE = ("output", "gradients", "network")
MAX_CHUNK = 256
# A chunk's history buffers hold at most about this many floats each (512 KiB in float64).
CHUNK_VALUES = 1 << 16
P = ParamSpec("P")


@dataclass(frozen=True)
class TraceChunk:
    """Recorded iterations, column by column: ``iterations`` ``[r]``, ``losses`` ``[r]``, and when
    recorded ``outputs`` ``[r][batch][out]`` and flat ``gradients`` ``[r][n]`` (before each update)
    and ``params`` ``[r][n]`` (after it)."""

    iterations: NDArray[np.int64]
    losses: Array
    outputs: Array | None = None
    gradients: Array | None = None
    params: Array | None = None

    def __len__(self) -> int:
        return len(self.iterations)

    @staticmethod
    def concat(chunks: Sequence[TraceChunk]) -> TraceChunk:
        """One TraceChunk of ``chunks`` one after the other."""

        def cat(parts: list[Array | None]) -> Array | None:
            present = [part for part in parts if part is not None]
            return np.concatenate(present) if present else None

        if not chunks:
            return TraceChunk(np.empty(0, dtype=np.int64), np.empty(0))
        return TraceChunk(
            np.concatenate([c.iterations for c in chunks]),
            np.concatenate([c.losses for c in chunks]),
            cat([c.outputs for c in chunks]),
            cat([c.gradients for c in chunks]),
            cat([c.params for c in chunks]),
        )


@dataclass(frozen=True)
class Outcome:
    """How training ended: ``status`` ``completed`` or ``diverged`` (then ``diverged_at``), the flat
    ``params`` after the last completed iteration, and ``final_loss`` (``None`` when not finite)."""

    status: str
    params: Array
    final_loss: float | None
    diverged_at: int | None = None


@dataclass(frozen=True)
class TrainingResult:
    """The whole ``trace`` (one TraceChunk), the outcome's fields, and the parameter ``layout``."""

    status: str
    trace: TraceChunk
    params: Array
    layout: Layout
    final_loss: float | None
    diverged_at: int | None = None


def recorded_rows(first: int, n: int, iterations: int, record_every: int) -> list[int]:
    """The rows ``r`` of a chunk of ``n`` iterations starting at 1-based ``first`` whose iteration
    ``first + r`` belongs in the trace: every ``record_every``-th from iteration 1, and the last."""
    rows = list(range((1 - first) % record_every, n, record_every))
    last = iterations - first
    if last < n and (not rows or rows[-1] != last):
        rows.append(last)
    return rows


def recorded_count(iterations: int, record_every: int) -> int:
    """How many of ``iterations`` are recorded when every one completes."""
    scheduled = (iterations - 1) // record_every + 1
    return scheduled + (0 if (iterations - 1) % record_every == 0 else 1)


def start_training(
    layers: Sequence[Layer],
    inputs: Array,
    targets: Array,
    loss: str | Loss,
    reduction: Reduction,
    optimizer: Optimizer[StateT],
    iterations: int,
    *,
    record_every: int = 1,
    record: frozenset[str] = frozenset(),
    trainable: NDArray[np.bool_] | None = None,
    dtype: DTypeLike = np.float64,
) -> Iterator[TraceChunk | Outcome]:
    """Check iteration 1 now, then iterate over trace chunks as they are computed; the last item is the Outcome.

    ``inputs`` are ``[batch][in_0]``, ``targets`` ``[batch][out_last]``; ``loss`` is a name of
    ``LOSSES`` or a bound Loss; ``record`` names what the trace keeps besides the losses (of
    ``RECORDABLE``); ``trainable`` is a flat boolean ``[n]`` mask in ``Layout.of(layers)`` order
    (``None``: all); ``dtype`` what it computes in. Raises NonFiniteError at once when the *initial*
    network already overflows (a bad request); later overflow is divergence.
    """
    trainer = _Trainer(layers, inputs, targets, loss, reduction, optimizer, iterations, record_every, record, trainable, dtype)
    return trainer.run()


def _whole_run(
    start: Callable[Concatenate[Sequence[Layer], P], Iterator[TraceChunk | Outcome]],
) -> Callable[Concatenate[Sequence[Layer], P], TrainingResult]:
    """``start``'s run gathered at once: the same arguments, its trace as one TraceChunk."""

    def whole(layers: Sequence[Layer], /, *args: P.args, **kwargs: P.kwargs) -> TrainingResult:
        chunks: list[TraceChunk] = []
        outcome: Outcome | None = None
        for item in start(layers, *args, **kwargs):
            if isinstance(item, Outcome):
                outcome = item
            else:
                chunks.append(item)
        assert outcome is not None  # a run always ends with its Outcome
        return TrainingResult(
            outcome.status, TraceChunk.concat(chunks), outcome.params, Layout.of(layers), outcome.final_loss, outcome.diverged_at
        )

    return whole


# ``start_training``'s arguments, the whole run at once.
train = _whole_run(start_training)


def _chunk_length(params: int, batch: int, n_out: int, iterations: int) -> int:
    """Iterations per chunk: up to ``MAX_CHUNK``, and few enough that a chunk's history of the
    parameters (``[k][params]``) and of the logits (``[k][batch][n_out]``) each stay within ``CHUNK_VALUES``."""
    return max(1, min(MAX_CHUNK, iterations, CHUNK_VALUES // max(params, batch * n_out)))


def _trace_rows(first: int, n: int, completed: int, iterations: int, record_every: int) -> list[int]:
    """The rows of a chunk of ``n`` iterations from ``first`` that go in the trace, when only its
    first ``completed`` iterations completed: the scheduled ones among those, and the last of them."""
    rows = [r for r in recorded_rows(first, n, iterations, record_every) if r < completed]
    if 0 < completed < n and (not rows or rows[-1] != completed - 1):
        rows.append(completed - 1)  # the last completed iteration is always in the trace
    return rows


def _completed(losses: Array, grad_checks: Array, params: Array, zeros: Array) -> int:
    """How many of a chunk's ``n`` iterations completed, up to the first that did not, from their
    ``losses`` ``[n]``, ``grad_checks`` ``[n]`` (see ``_Trainer``) and the ``params`` ``[n][size]``
    after each update; ``zeros`` is ``[size]``."""
    # As for the gradients: a row's dot with zeros is NaN exactly when the row is not finite
    # (0 * inf is NaN; and BLAS's dot reads the row faster than numpy's own sum would). Both
    # checks are then 0 or NaN, so one sum with the losses is finite exactly when all three are.
    checks = losses + grad_checks + params.dot(zeros)
    finite = np.isfinite(checks)
    return len(finite) if finite.all() else int(np.argmin(finite))


class _Parameters:
    """The parameters a run computes on, and ``rows``: each iteration of a chunk's parameters after its update.

    Two ``[k][n]`` histories serve as ``rows`` in turn, so that the parameters before a chunk (the
    last row of the previous one) stay available for a rollback without copying them.
    ``initial`` holds the caller's parameters and is never written.

    ``current`` is what the passes compute on: the flat vector, its blocks ``[W.T; b]`` and weights
    ``W``. Chunks of several iterations (small networks) update it in place and copy it into each
    row, which for small vectors is cheaper than new views of every row. Chunks of one iteration
    (large networks, ``in_place`` false) write the update straight into the row and compute the next
    iteration on that row, so the parameters are never copied.
    """

    def __init__(self, packed: Packed, k: int) -> None:
        layout, dtype = packed.layout, packed.params.dtype
        self._histories = (np.empty((k, layout.size), dtype=dtype), np.empty((k, layout.size), dtype=dtype))
        self.rows = self._histories[0]
        self.in_place = k > 1
        self.initial = packed.params.copy() if self.in_place else packed.params
        self.current = (packed.params, packed.blocks, packed.weights)
        # Each history's only row, with its blocks and weights, for the chunks that compute on it.
        self._row_views = tuple(_with_views(layout, history[0]) for history in self._histories) if not self.in_place else ()

    def next_chunk(self) -> None:
        """Compute on what this chunk produced; write the other history."""
        if not self.in_place:
            self.current = self._row_views[self.rows is self._histories[1]]
        self.rows = self._histories[self.rows is self._histories[0]]


def _with_views(layout: Layout, params: Array) -> tuple[Array, tuple[Array, ...], tuple[Array, ...]]:
    """``params`` with its blocks and their weight views."""
    blocks = layout.blocks(params)
    return params, blocks, weight_views(blocks)


class _Trainer(Generic[StateT]):
    """One training run: its buffers, built eagerly so that iteration 1 is checked at once, and ``run``, its loop.

    Row ``r`` of a chunk holds its iteration ``first + r``: ``logits[r]`` that iteration's
    ``z_last`` (before its update), ``grads[r]`` its gradient (when recorded), ``grad_checks[r]``
    its frozen parameters' gradient check, ``params.rows[r]`` the parameters after its update.
    """

    def __init__(
        self,
        layers: Sequence[Layer],
        inputs: Array,
        targets: Array,
        loss: str | Loss,
        reduction: Reduction,
        optimizer: Optimizer[StateT],
        iterations: int,
        record_every: int,
        record: frozenset[str],
        trainable: NDArray[np.bool_] | None,
        dtype: DTypeLike = np.float64,
    ) -> None:
        packed = Packed.of(layers, inputs, dtype)
        self.layout, self.ws = packed.layout, packed.ws
        dtype = self.ws.dtype
        # The loss itself, not its name: the loop hands it to every backward pass (targets and loss in dtype).
        targets, self.loss = in_dtype(targets, loss, dtype)
        self.last_act = ACTIVATIONS[self.layout.activations[-1]]
        self.targets, self.reduction, self.iterations, self.record = targets, reduction, iterations, record
        # A period past the last iteration records the same iterations (the first and the last)
        # and keeps the arithmetic within numpy's integers.
        self.record_every = min(record_every, iterations)
        n = self.layout.size
        batch, n_out = targets.shape
        k = _chunk_length(n, batch, n_out, iterations)
        self.logits = np.empty((k, batch, n_out), dtype=dtype)  # each iteration's z_last, before its update
        # The z buffers of row r's pass: the workspace's, but the last is row r of the logits.
        self.pres = tuple((*self.ws.pre[:-1], row) for row in self.logits)
        self.grads = np.empty((k, n), dtype=dtype) if "gradients" in record else None
        self.params = _Parameters(packed, k)
        self.frozen = None if trainable is None or trainable.all() else ~trainable
        # A non-finite gradient of a trainable parameter makes that parameter non-finite, which the
        # parameter check sees; only frozen parameters' gradients need a check of their own:
        # grad_checks[r] is 0 when iteration r's gradient is finite, else NaN (always 0 unfrozen).
        self.grad_checks = np.zeros(k, dtype=dtype)
        self.zeros = np.zeros(n, dtype=dtype)
        self.optimizer, self.state = optimizer, optimizer.init(n).astype(dtype)
        with np.errstate(all="ignore"):
            # Iteration 1 runs on the caller's network: an overflow there is a bad request
            # (NonFiniteError, naming the layer), not divergence. Its pass is kept for the loop.
            checked_pass(packed.blocks, self.ws, targets, self.loss, reduction, weights=packed.weights)
        self.logits[0] = self.ws.pre[-1]

    def _steps(self, n: int, first_done: bool) -> None:
        """Iterations into rows ``0..n-1`` of the chunk, each: forward on the parameters theta (``z_last``
        into ``logits[r]``), backward (dLoss/dtheta into ``ws.grad``), then one optimizer step from
        theta (into ``params.rows[r]``), frozen parameters restored. Row 0's forward and backward are
        already in the workspace if ``first_done``."""
        # Everything the loop touches is bound once here: on tiny networks attribute lookups
        # are a measurable part of an iteration.
        ws, grad, pres, grads, zeros = self.ws, self.ws.grad, self.pres, self.grads, self.zeros
        grad_checks = None if self.frozen is None else self.grad_checks
        loss, targets, reduction, fused = self.loss, self.targets, self.reduction, self.loss.from_logits
        update, state, frozen = self.optimizer.update, self.state, self.frozen
        p = self.params
        (params, blocks, weights), rows, in_place, initial = p.current, p.rows, p.in_place, p.initial
        for r in range(n):
            if r or not first_done:
                pre = pres[r]
                forward_pass(blocks, ws, pre, last_activation=not fused)
                backward_pass(blocks, ws, targets, loss, reduction, weights, pre=pre)
            if grad_checks is not None:
                # 0 * g is NaN exactly when g is inf or NaN, and a dot with zeros cannot overflow.
                grad_checks[r] = zeros.dot(grad)
            if grads is not None:
                grads[r] = grad
            out = params if in_place else rows[r]
            update(params, grad, state, out)
            if frozen is not None:
                np.copyto(out, initial, where=frozen)
            if in_place:
                rows[r] = params

    def _losses(self, n: int) -> Array:
        """The loss of each of the chunk's first ``n`` iterations ``[n]``, from their logits."""
        x = self.logits[:n] if self.loss.from_logits else self.last_act.forward(self.logits[:n])
        return self.loss.values(x, self.targets, self.reduction)

    def _trace(self, rows: list[int], first: int, losses: Array) -> TraceChunk:
        """Copies of the given rows of the current chunk, whose first iteration is ``first``."""
        index = np.array(rows)
        return TraceChunk(
            iterations=first + index,
            losses=losses[index],
            outputs=self.last_act.forward(self.logits[index]) if "output" in self.record else None,
            gradients=self.grads[index] if self.grads is not None else None,
            params=self.params.rows[index] if "network" in self.record else None,
        )

    def run(self) -> Iterator[TraceChunk | Outcome]:
        k = len(self.logits)
        before = self.params.initial  # the parameters before the current chunk (never written)
        unrecorded: TraceChunk | None = None  # the previous chunk's last iteration, when not in the trace
        diverged_at = None
        first = 1
        while first <= self.iterations:
            n = min(k, self.iterations - first + 1)
            with np.errstate(all="ignore"):
                self._steps(n, first_done=first == 1)
                losses = self._losses(n)
                completed = _completed(losses, self.grad_checks[:n], self.params.rows[:n], self.zeros)
                rows = _trace_rows(first, n, completed, self.iterations, self.record_every)
                chunk = self._trace(rows, first, losses) if rows else None
            if completed == 0 and unrecorded is not None:
                yield unrecorded  # the last completed iteration is always in the trace
            if chunk is not None:
                yield chunk
            if completed < n:
                diverged_at = first + completed
                if completed:
                    before = self.params.rows[completed - 1]
                break
            before = self.params.rows[n - 1]
            unrecorded = None
            if not rows or rows[-1] != n - 1:
                with np.errstate(all="ignore"):
                    unrecorded = self._trace([n - 1], first, losses)
            self.params.next_chunk()
            first += n
        yield self._outcome(before.copy(), diverged_at)

    def _outcome(self, params: Array, diverged_at: int | None) -> Outcome:
        """The Outcome with ``params``, the parameters after the last completed iteration."""
        with np.errstate(all="ignore"):
            # Computed in the workspace: no new buffers.
            final_loss = pass_loss(self.layout.blocks(params), self.ws, self.targets, self.loss, self.reduction)
        return Outcome(
            status="completed" if diverged_at is None else "diverged",
            params=params,
            final_loss=final_loss if np.isfinite(final_loss) else None,
            diverged_at=diverged_at,
        )

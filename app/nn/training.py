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
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.nn.activations import ACTIVATIONS
from app.nn.losses import Loss, get_loss
from app.nn.network import Layer, Layout, Packed, backward_pass, checked_pass, forward_pass, pass_loss, weight_views
from app.nn.optimizers import Optimizer

Array = np.ndarray
RECORDABLE = ("output", "gradients", "network")
MAX_CHUNK = 256
# A chunk's history buffers hold at most about this many float64 each (512 KiB).
CHUNK_VALUES = 1 << 16


@dataclass(frozen=True)
class TraceChunk:
    """Recorded iterations, column by column: ``iterations`` ``[r]``, ``losses`` ``[r]``, and when
    recorded ``outputs`` ``[r][batch][out]`` and flat ``gradients`` ``[r][n]`` (before each update)
    and ``params`` ``[r][n]`` (after it)."""

    iterations: Array
    losses: Array
    outputs: Array | None = None
    gradients: Array | None = None
    params: Array | None = None

    def __len__(self) -> int:
        return len(self.iterations)

    @staticmethod
    def concat(chunks: Sequence[TraceChunk]) -> TraceChunk:
        def cat(name: str) -> Array | None:
            parts = [getattr(c, name) for c in chunks]
            return np.concatenate(parts) if parts and parts[0] is not None else None

        if not chunks:
            return TraceChunk(np.empty(0, dtype=np.int64), np.empty(0))
        return TraceChunk(cat("iterations"), cat("losses"), cat("outputs"), cat("gradients"), cat("params"))  # type: ignore[arg-type]


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
    reduction: str,
    optimizer: Optimizer,
    iterations: int,
    *,
    record_every: int = 1,
    record: frozenset[str] = frozenset(),
    trainable: Array | None = None,
) -> Iterator[TraceChunk | Outcome]:
    """Check iteration 1 now, then iterate over trace chunks as they are computed; the last item is the Outcome.

    ``loss`` is a name of ``LOSSES`` or a bound Loss; ``trainable`` is a flat boolean ``[n]`` mask
    in ``Layout.of(layers)`` order (``None``: all).
    Raises NonFiniteError at once when the *initial* network already overflows (a bad
    request); later overflow is divergence.
    """
    trainer = _Trainer(layers, inputs, targets, loss, reduction, optimizer, iterations, record_every, record, trainable)
    return trainer.run()


def train(*args: Any, **kwargs: Any) -> TrainingResult:
    """``start_training``'s arguments; the whole run at once, its trace as one TraceChunk."""
    items = list(start_training(*args, **kwargs))
    outcome = items.pop()
    assert isinstance(outcome, Outcome)
    trace = TraceChunk.concat(items)  # type: ignore[arg-type]
    layout = Layout.of(args[0] if args else kwargs["layers"])
    return TrainingResult(outcome.status, trace, outcome.params, layout, outcome.final_loss, outcome.diverged_at)


class _Trainer:
    """One training run's buffers; ``run`` is its loop. Built eagerly so iteration 1 is checked at once."""

    def __init__(
        self,
        layers: Sequence[Layer],
        inputs: Array,
        targets: Array,
        loss: str | Loss,
        reduction: str,
        optimizer: Optimizer,
        iterations: int,
        record_every: int,
        record: frozenset[str],
        trainable: Array | None,
    ) -> None:
        packed = Packed.of(layers, inputs)
        self.layout = layout = packed.layout
        n = layout.size
        # The loss itself, not its name: the loop hands it to every backward pass.
        self.spec = get_loss(loss)
        self.targets, self.reduction = targets, reduction
        # A period past the last iteration records the same iterations (the first and the last)
        # and keeps the arithmetic within numpy's integers.
        record_every = min(record_every, iterations)
        self.optimizer, self.iterations, self.record_every, self.record = optimizer, iterations, record_every, record
        self.frozen = None if trainable is None or trainable.all() else ~trainable
        self.ws = packed.ws
        self.last_act = ACTIVATIONS[layout.activations[-1]]
        batch, n_out = targets.shape
        k = max(1, min(MAX_CHUNK, iterations, CHUNK_VALUES // max(n, batch * n_out)))
        self.logits = np.empty((k, batch, n_out))
        # Two histories used in turn, so the parameters before a chunk (the last row of the
        # previous one) stay available for a rollback without copying them. The optimizer writes
        # each iteration's parameters into its history row.
        self.histories = (np.empty((k, n)), np.empty((k, n)))
        self.history = self.histories[0]
        # Chunks of one iteration (large networks) compute straight on the previous history row,
        # so the parameters are never copied; longer chunks update a working copy (``params``) in
        # place and copy it into each row, which is cheaper for small vectors than new views.
        self.swap = k == 1
        self.initial = packed.params if self.swap else packed.params.copy()  # never written
        self.params, self.blocks, self.weights = packed.params, packed.blocks, packed.weights
        if self.swap:
            # Each history's row, with its blocks and weights, for the chunks that compute on it.
            self.rows = tuple(_with_views(layout, history[0]) for history in self.histories)
        self.grads = np.empty((k, n)) if "gradients" in record else None
        # A non-finite gradient of a trainable parameter makes that parameter non-finite, which
        # the parameter check sees; only frozen parameters' gradients need a check of their own.
        self.check_grads = self.frozen is not None
        self.grad_checks = np.zeros(k)
        self.zeros = np.zeros(n)
        self.state = optimizer.init(n)
        with np.errstate(all="ignore"):
            # Iteration 1 runs on the caller's network: an overflow there is a bad request
            # (NonFiniteError, naming the layer), not divergence. Its pass is kept for the loop.
            checked_pass(self.blocks, self.ws, targets, self.spec, reduction, weights=self.weights)
        self.logits[0] = self.ws.pre[-1]

    def _steps(self, n: int, precomputed: bool) -> None:
        """Iterations into rows ``0..n-1`` of the chunk; row 0's pass is already in the workspace if ``precomputed``."""
        # Everything the loop touches is bound once here: on tiny networks attribute lookups
        # are a measurable part of an iteration.
        ws, blocks, weights, logits, history = self.ws, self.blocks, self.weights, self.logits, self.history
        params, grad, initial, frozen, grads = self.params, self.ws.grad, self.initial, self.frozen, self.grads
        targets, loss, reduction, state, update = self.targets, self.spec, self.reduction, self.state, self.optimizer.update
        fused, last, refresh = self.spec.from_logits, len(blocks) - 1, not self.swap
        grad_checks, zeros = (self.grad_checks, self.zeros) if self.check_grads else (None, None)
        for r in range(n):
            if r or not precomputed:
                ws.pre[last] = logits[r]
                forward_pass(blocks, ws, last_activation=not fused)
                backward_pass(blocks, ws, targets, loss, reduction, weights)
            if grad_checks is not None:
                # 0 * g is NaN exactly when g is inf or NaN, and a dot with zeros cannot overflow.
                grad_checks[r] = zeros.dot(grad)
            if grads is not None:
                grads[r] = grad
            out = params if refresh else history[r]
            update(params, grad, state, out)
            if frozen is not None:
                np.copyto(out, initial, where=frozen)
            if refresh:
                history[r] = params
        if not refresh:
            # The next chunk computes on the parameters this one produced.
            self.params, self.blocks, self.weights = self.rows[history is self.histories[1]]

    def _rows(self, rows: Array, first: int, losses: Array) -> TraceChunk:
        """Copies of the given rows of the current chunk, whose first iteration is ``first``."""
        outputs = None
        if "output" in self.record:
            outputs = self.last_act.forward(self.logits[rows])
        return TraceChunk(
            iterations=first + rows,
            losses=losses[rows],
            outputs=outputs,
            gradients=self.grads[rows] if self.grads is not None else None,
            params=self.history[rows] if "network" in self.record else None,
        )

    def run(self) -> Iterator[TraceChunk | Outcome]:
        k = len(self.history)
        before = self.initial  # the parameters before the current chunk (never written)
        pending: TraceChunk | None = None  # the previous chunk's last iteration, if not yet emitted
        first, precomputed = 1, True
        diverged_at = None
        while first <= self.iterations:
            n = min(k, self.iterations - first + 1)
            with np.errstate(all="ignore"):
                self._steps(n, precomputed)
                precomputed = False
                x = self.logits[:n] if self.spec.from_logits else self.last_act.forward(self.logits[:n])
                losses = self.spec.values(x, self.targets, self.reduction)
                # As for the gradients: a row's dot with zeros is NaN exactly when the row is not finite
                # (and BLAS's dot reads the row faster than numpy's own sum would). Both checks are
                # then 0 or NaN, so one sum with the losses is finite exactly when all three are.
                checks = losses + self.grad_checks[:n] + self.history[:n].dot(self.zeros)
                completed = np.isfinite(checks)
                good = n if completed.all() else int(np.argmin(completed))
                rows = recorded_rows(first, n, self.iterations, self.record_every)
                last_recorded = bool(rows) and rows[-1] == n - 1
                rows = [r for r in rows if r < good]
                if 0 < good < n and (not rows or rows[-1] != good - 1):
                    rows.append(good - 1)  # the last completed iteration is always in the trace
                chunk = self._rows(np.array(rows), first, losses) if rows else None
            if good < n and good == 0 and pending is not None:
                yield pending
            if chunk is not None:
                yield chunk
            if good < n:
                diverged_at = first + good
                if good > 0:
                    before = self.history[good - 1]
                break
            before = self.history[n - 1]
            pending = None
            if not last_recorded:
                with np.errstate(all="ignore"):
                    pending = self._rows(np.array([n - 1]), first, losses)
            self.history = self.histories[1] if self.history is self.histories[0] else self.histories[0]
            first += n
        before = before.copy()
        with np.errstate(all="ignore"):
            final_loss = self._loss_at(before)
        yield Outcome(
            status="completed" if diverged_at is None else "diverged",
            params=before,
            final_loss=final_loss if np.isfinite(final_loss) else None,
            diverged_at=diverged_at,
        )

    def _loss_at(self, params: Array) -> float:
        """The loss of the network with ``params``, computed in the workspace (no new buffers)."""
        return pass_loss(self.layout.blocks(params), self.ws, self.targets, self.spec, self.reduction)


def _with_views(layout: Layout, params: Array) -> tuple[Array, tuple[Array, ...], tuple[Array, ...]]:
    """``params`` with its blocks and their weight views."""
    blocks = layout.blocks(params)
    return params, blocks, weight_views(blocks)

"""Full-batch training: the loop, trace recording and divergence detection.

Each iteration runs forward on the current parameters, the loss, backward and one
optimizer step. Iteration ``i`` (1-based) *completes* when its loss and every
gradient are finite and its update leaves every parameter finite; training stops
at the first iteration that does not complete. The caller's arrays are never written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from app.nn.network import Layer, Layout, backward, evaluate, forward, loss_value
from app.nn.optimizers import Optimizer

Array = np.ndarray
RECORDABLE = ("output", "gradients", "network")


@dataclass(frozen=True)
class TraceEntry:
    """Iteration ``iteration``'s loss, and if recorded its ``output`` ``[batch][out]`` and flat
    ``gradient`` (both before the update) and flat ``params`` (after it)."""

    iteration: int
    loss: float
    output: Array | None = None
    gradient: Array | None = None
    params: Array | None = None


@dataclass(frozen=True)
class TrainingResult:
    """``status`` is ``completed`` or ``diverged`` (then ``diverged_at`` is the failing iteration);
    ``params`` (flat, ``layout`` order) hold the parameters after the last completed iteration,
    ``final_loss`` their loss, or ``None`` when it is not finite."""

    status: str
    trace: tuple[TraceEntry, ...]
    params: Array
    layout: Layout
    final_loss: float | None
    diverged_at: int | None = None


def is_recorded(iteration: int, iterations: int, record_every: int) -> bool:
    """Whether 1-based ``iteration`` belongs in the trace (the last one always does)."""
    return (iteration - 1) % record_every == 0 or iteration == iterations


def recorded_count(iterations: int, record_every: int) -> int:
    """How many of ``iterations`` are recorded when every one completes."""
    scheduled = (iterations - 1) // record_every + 1
    return scheduled + (0 if (iterations - 1) % record_every == 0 else 1)


def train(
    layers: Sequence[Layer],
    inputs: Array,
    targets: Array,
    loss: str,
    reduction: str,
    optimizer: Optimizer,
    iterations: int,
    *,
    record_every: int = 1,
    record: frozenset[str] = frozenset(),
    trainable: Array | None = None,
) -> TrainingResult:
    """Train ``layers`` for ``iterations`` full-batch steps on ``inputs`` ``[batch][in]`` and ``targets`` ``[batch][out]``.

    ``trainable`` is a flat boolean ``[n]`` mask in ``Layout.of(layers)`` order (``None``: all).
    Raises NonFiniteError when the *initial* network already overflows; later overflow is divergence.
    """
    layout = Layout.of(layers)
    params = layout.pack(layers)
    state = optimizer.init(params)
    trace: list[TraceEntry] = []
    last_completed: TraceEntry | None = None
    diverged_at = None
    with np.errstate(all="ignore"):
        for i in range(1, iterations + 1):
            current = layout.layers(params)
            if i == 1:
                # Iteration 1 runs on the caller's network: an overflow there is a bad request
                # (NonFiniteError, naming the layer), not divergence.
                ev = evaluate(current, inputs, targets, loss, reduction)
                fwd, value, grad = ev.forward, ev.loss, ev.gradient
            else:
                fwd = forward(current, inputs, check=False)
                value = loss_value(fwd, targets, loss, reduction)
                if not np.isfinite(value):
                    diverged_at = i
                    break
                grad = backward(current, inputs, fwd, targets, loss, reduction)
            new_params, state = optimizer.step(params, grad, state, trainable)
            if not (np.isfinite(grad).all() and np.isfinite(new_params).all()):
                diverged_at = i
                break
            params = new_params
            last_completed = TraceEntry(
                iteration=i,
                loss=value,
                output=fwd.output if "output" in record else None,
                gradient=grad if "gradients" in record else None,
                params=params if "network" in record else None,
            )
            if is_recorded(i, iterations, record_every):
                trace.append(last_completed)

    if diverged_at is not None and last_completed is not None and (not trace or trace[-1] is not last_completed):
        trace.append(last_completed)
    return TrainingResult(
        status="completed" if diverged_at is None else "diverged",
        trace=tuple(trace),
        params=params,
        layout=layout,
        final_loss=_final_loss(layout, params, inputs, targets, loss, reduction),
        diverged_at=diverged_at,
    )


def _final_loss(layout: Layout, params: Array, inputs: Array, targets: Array, loss: str, reduction: str) -> float | None:
    layers = layout.layers(params)
    with np.errstate(all="ignore"):
        value = loss_value(forward(layers, inputs, check=False), targets, loss, reduction)
    return value if np.isfinite(value) else None

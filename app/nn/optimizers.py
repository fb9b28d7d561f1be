"""SGD and Adam with exactly ``torch.optim``'s update rules, on flat float64 parameter vectors.

An optimizer is a frozen dataclass of hyper-parameters with ``init(params) -> state``
and ``step(params, grad, state, trainable) -> (new_params, new_state)``; ``params``,
``grad`` and ``trainable`` are flat ``[n]`` vectors. ``step`` never writes its
arguments. A parameter whose ``trainable`` entry is False keeps its value exactly
(weight decay included); the state of such an entry is never read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

Array = np.ndarray


def _apply_mask(new: Array, old: Array, trainable: Array | None) -> Array:
    return new if trainable is None else np.where(trainable, new, old)


@dataclass(frozen=True)
class SGDState:
    step: int
    momentum_buffer: Array | None


@dataclass(frozen=True)
class SGD:
    """``torch.optim.SGD`` with coupled L2 weight decay and no dampening."""

    learning_rate: float
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0

    def init(self, params: Array) -> SGDState:
        return SGDState(step=0, momentum_buffer=None)

    def step(self, params: Array, grad: Array, state: SGDState, trainable: Array | None = None) -> tuple[Array, SGDState]:
        """One update of ``params`` ``[n]`` along ``grad`` = dLoss/dparams ``[n]``."""
        g = grad + self.weight_decay * params if self.weight_decay != 0.0 else grad
        buf = state.momentum_buffer
        if self.momentum != 0.0:
            # torch: the first step seeds the buffer with the gradient itself (no dampening term).
            buf = g.copy() if buf is None else self.momentum * buf + g
            g = g + self.momentum * buf if self.nesterov else buf
        new = params - self.learning_rate * g
        return _apply_mask(new, params, trainable), SGDState(state.step + 1, buf)


@dataclass(frozen=True)
class AdamState:
    step: int
    exp_avg: Array
    exp_avg_sq: Array


@dataclass(frozen=True)
class Adam:
    """``torch.optim.Adam`` (not AMSGrad) with coupled L2 weight decay."""

    learning_rate: float = 0.001
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0

    def init(self, params: Array) -> AdamState:
        return AdamState(step=0, exp_avg=np.zeros_like(params), exp_avg_sq=np.zeros_like(params))

    def step(self, params: Array, grad: Array, state: AdamState, trainable: Array | None = None) -> tuple[Array, AdamState]:
        """One update of ``params`` ``[n]`` along ``grad`` = dLoss/dparams ``[n]``."""
        beta1, beta2 = self.betas
        t = state.step + 1
        g = grad + self.weight_decay * params if self.weight_decay != 0.0 else grad
        m = _lerp(state.exp_avg, g, 1.0 - beta1)
        v = state.exp_avg_sq * beta2 + (1.0 - beta2) * g * g
        # torch's order of operations: eps is added after the bias-corrected sqrt, outside it.
        step_size = self.learning_rate / (1.0 - beta1**t)
        denom = np.sqrt(v) / math.sqrt(1.0 - beta2**t) + self.eps
        new = params - (step_size * m) / denom
        return _apply_mask(new, params, trainable), AdamState(t, m, v)


def _lerp(start: Array, end: Array, weight: float) -> Array:
    # torch.lerp's two-sided formula (exact at weight 0 and 1); Adam's first moment uses it.
    if weight < 0.5:
        return start + weight * (end - start)
    return end - (end - start) * (1.0 - weight)


Optimizer = SGD | Adam

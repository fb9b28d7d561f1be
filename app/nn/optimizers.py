"""SGD and Adam with exactly ``torch.optim``'s update rules, on flat float64 parameter vectors.

An optimizer is a frozen dataclass of hyper-parameters. ``init(n)`` makes its state
(buffers for ``n`` parameters) and ``update(params, grad, state, out)`` writes one step from
``params`` ``[n]`` along ``grad`` = dLoss/dparams ``[n]`` into ``out`` (``params`` itself by
default): a training loop owns its parameter buffers and reuses every one. ``step`` is the pure form, returning new
arrays. Freezing is the caller's: a frozen parameter is restored after the update.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

Array = np.ndarray


@dataclass
class SGDState:
    """Mutable scratch of one SGD run: the step count, the momentum buffer and a temporary."""

    step: int
    momentum_buffer: Array
    scratch: Array
    nesterov_scratch: Array


@dataclass(frozen=True)
class SGD:
    """``torch.optim.SGD`` with coupled L2 weight decay and no dampening."""

    learning_rate: float
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0

    def init(self, n: int) -> SGDState:
        return SGDState(0, np.zeros(n), np.empty(n), np.empty(n))

    def update(self, params: Array, grad: Array, state: SGDState, out: Array | None = None) -> None:
        """One step of ``params`` ``[n]`` along ``grad`` ``[n]``, into ``out`` (default: in place)."""
        d_p = grad
        if self.weight_decay != 0.0:
            d_p = np.add(grad, np.multiply(params, self.weight_decay, out=state.scratch), out=state.scratch)
        if self.momentum != 0.0:
            buf = state.momentum_buffer
            if state.step == 0:
                # torch: the first step seeds the buffer with the gradient itself (no dampening term).
                np.copyto(buf, d_p)
            else:
                np.multiply(buf, self.momentum, out=buf)
                np.add(buf, d_p, out=buf)
            if self.nesterov:
                look_ahead = np.multiply(buf, self.momentum, out=state.nesterov_scratch)
                d_p = np.add(d_p, look_ahead, out=look_ahead)
            else:
                d_p = buf
        if out is None or out is params:
            out = params
            free = state.scratch if d_p is state.nesterov_scratch else state.nesterov_scratch
        else:
            # The step goes through ``out`` itself: one buffer less for the cache to hold.
            free = out
        np.subtract(params, np.multiply(d_p, self.learning_rate, out=free), out=out)
        state.step += 1

    def step(self, params: Array, grad: Array, state: SGDState, trainable: Array | None = None) -> tuple[Array, SGDState]:
        """The pure form of ``update``: new parameters and a new state; frozen entries keep their value."""
        return _pure_step(self, params, grad, state, trainable)


@dataclass
class AdamState:
    """Mutable scratch of one Adam run: the step count, both moments and two temporaries."""

    step: int
    exp_avg: Array
    exp_avg_sq: Array
    scratch: Array = field(repr=False)
    denom: Array = field(repr=False)


@dataclass(frozen=True)
class Adam:
    """``torch.optim.Adam`` (not AMSGrad) with coupled L2 weight decay."""

    learning_rate: float = 0.001
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0

    def init(self, n: int) -> AdamState:
        return AdamState(0, np.zeros(n), np.zeros(n), np.empty(n), np.empty(n))

    def update(self, params: Array, grad: Array, state: AdamState, out: Array | None = None) -> None:
        """One step of ``params`` ``[n]`` along ``grad`` ``[n]``, into ``out`` (default: in place)."""
        beta1, beta2 = self.betas
        t = state.step + 1
        m, v, tmp, denom = state.exp_avg, state.exp_avg_sq, state.scratch, state.denom
        g = grad
        if self.weight_decay != 0.0:
            g = np.multiply(params, self.weight_decay, out=denom)
            np.add(grad, g, out=g)
        # torch.lerp(m, g, 1 - beta1): start + w * (end - start) below w = 0.5, else the mirror form.
        w = 1.0 - beta1
        if w < 0.5:
            np.subtract(g, m, out=tmp)
            np.multiply(tmp, w, out=tmp)
            np.add(m, tmp, out=m)
        else:
            np.subtract(g, m, out=tmp)
            np.multiply(tmp, 1.0 - w, out=tmp)
            np.subtract(g, tmp, out=m)
        # v = beta2 * v + (1 - beta2) * g * g
        np.multiply(g, 1.0 - beta2, out=tmp)
        np.multiply(tmp, g, out=tmp)
        np.multiply(v, beta2, out=v)
        np.add(v, tmp, out=v)
        # torch's order of operations: eps is added after the bias-corrected sqrt, outside it.
        step_size = self.learning_rate / (1.0 - beta1**t)
        np.sqrt(v, out=denom)
        np.divide(denom, math.sqrt(1.0 - beta2**t), out=denom)
        np.add(denom, self.eps, out=denom)
        np.multiply(m, step_size, out=tmp)
        np.divide(tmp, denom, out=tmp)
        np.subtract(params, tmp, out=params if out is None else out)
        state.step = t

    def step(self, params: Array, grad: Array, state: AdamState, trainable: Array | None = None) -> tuple[Array, AdamState]:
        """The pure form of ``update``: new parameters and a new state; frozen entries keep their value."""
        return _pure_step(self, params, grad, state, trainable)


Optimizer = SGD | Adam


def _pure_step(opt: Optimizer, params: Array, grad: Array, state, trainable: Array | None):  # type: ignore[no-untyped-def]
    new_state = type(state)(**{k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in vars(state).items()})
    new = params.copy()
    with np.errstate(all="ignore"):
        opt.update(new, grad, new_state)
    if trainable is not None:
        np.copyto(new, params, where=~trainable)
    return new, new_state

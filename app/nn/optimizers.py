r"""SGD and Adam with exactly ``torch.optim``'s update rules, on flat float64 (or float32) parameter vectors.

An optimizer is one frozen dataclass behind the small :class:`Optimizer` protocol:

* its fields are its hyper-parameters, each declared with :func:`hyper` (a description and
  the bounds a client's value must keep): the request schema builds its config model
  (``SGDConfig``, ``AdamConfig``, ...) from them, so the wire's fields, defaults and
  constraints are written here once;
* ``name`` (a class variable) is its wire name, and :data:`OPTIMIZERS` maps it to the class;
* ``__post_init__`` raises :class:`HyperParameterError` for a combination the bounds cannot
  express (as torch's constructors raise ``ValueError``), naming the field and the error type;
* ``init(n)`` makes its state (buffers for ``n`` parameters) and ``update(params, grad, state,
  out)`` writes one step from ``params`` ``[n]`` along ``grad`` = dLoss/dparams ``[n]`` into
  ``out`` (``params`` itself by default): a training loop owns its parameter buffers and reuses
  every one. ``step`` is the pure form, returning new arrays.

Freezing is the caller's: a frozen parameter is restored after the update.

An update computes in the dtype of its arrays. For float32 parameters the caller casts the state
(``state.astype``); a hyper-parameter (a Python float) then enters each product as float32, as
in torch, where a float32 tensor times a Python number is float32.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any, ClassVar, Protocol, Self, TypeVar

import numpy as np
from numpy.typing import DTypeLike, NDArray

Array = NDArray[np.float64]
Mask = NDArray[np.bool_]

# The keys of a hyper-parameter's metadata that the request schema reads (see ``hyper``).
BOUNDS = ("gt", "ge", "lt", "le")


def hyper(
    default: Any = MISSING,
    *,
    description: str,
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
    required: bool = False,
) -> Any:
    """A hyper-parameter field: its ``default`` (none: the client must give it), a ``description``
    for the request schema, and bounds a client's value must keep (``gt`` >, ``ge`` >=, ``lt`` <,
    ``le`` <=; for a tuple, each of its numbers). ``required``: the client must give it although
    the engine has a default (torch's)."""
    bounds = {k: v for k, v in (("gt", gt), ("ge", ge), ("lt", lt), ("le", le)) if v is not None}
    metadata = {"description": description, "required": required or default is MISSING, **bounds}
    return field(metadata=metadata) if default is MISSING else field(default=default, metadata=metadata)


class HyperParameterError(ValueError):
    """A combination of hyper-parameters the optimizer does not take: ``field`` is the one to change,
    ``kind`` the error type clients see, ``message`` what was expected and what was found."""

    def __init__(self, field: str, kind: str, message: str) -> None:
        super().__init__(message)
        self.field, self.kind, self.message = field, kind, message


@dataclass
class OptimizerState:
    """Mutable scratch of one run: at least the number of steps taken; subclasses add their buffers."""

    step: int

    def copy(self) -> Self:
        """A copy whose arrays are copies too (the pure ``step`` never writes its argument)."""
        return replace(
            self, **{f.name: getattr(self, f.name).copy() for f in fields(self) if isinstance(getattr(self, f.name), np.ndarray)}
        )

    def astype(self, dtype: DTypeLike) -> Self:
        """This state with its arrays in ``dtype`` (the parameters' dtype): itself when they already are."""
        arrays = {f.name: getattr(self, f.name) for f in fields(self) if isinstance(getattr(self, f.name), np.ndarray)}
        # Scratch buffers (np.empty) may hold any bits, which cast to float32 may overflow: harmless.
        with np.errstate(all="ignore"):
            changed = {name: a.astype(dtype) for name, a in arrays.items() if a.dtype != dtype}
        return replace(self, **changed) if changed else self


StateT = TypeVar("StateT", bound=OptimizerState)


class Optimizer(Protocol[StateT]):
    """What the engine needs of an optimizer whose state is a ``StateT``: ``init`` and ``update``.

    Subclassing it (as SGD and Adam do) also gives the pure ``step``.
    """

    name: ClassVar[str]
    # An optimizer is a dataclass: its fields are its hyper-parameters (see ``hyper``).
    __dataclass_fields__: ClassVar[dict[str, Any]]
    # Error types ``__post_init__`` may raise (HyperParameterError.kind), so the request schema
    # can report them as errors located at their field.
    error_kinds: ClassVar[frozenset[str]] = frozenset()

    def init(self, n: int) -> StateT:
        """A fresh state for ``n`` parameters."""
        ...

    def update(self, params: Array, grad: Array, state: StateT, out: Array | None = None) -> None:
        """One step of ``params`` ``[n]`` along ``grad`` ``[n]``, into ``out`` (default: in place); advances ``state``."""
        ...

    def step(self, params: Array, grad: Array, state: StateT, trainable: Mask | None = None) -> tuple[Array, StateT]:
        """The pure form of ``update``: new parameters and a new state; frozen entries keep their value."""
        new_state = state.copy()
        new = params.copy()
        with np.errstate(all="ignore"):
            self.update(new, grad, new_state)
        if trainable is not None:
            np.copyto(new, params, where=~trainable)
        return new, new_state


@dataclass
class SGDState(OptimizerState):
    """Mutable scratch of one SGD run: the step count, the momentum buffer and two temporaries."""

    momentum_buffer: Array
    scratch: Array
    nesterov_scratch: Array


@dataclass(frozen=True)
class SGD(Optimizer[SGDState]):
    r"""torch.optim.SGD: coupled L2 weight decay, no dampening.

    With learning rate :math:`\gamma`, momentum :math:`\mu`, weight decay :math:`\lambda` and
    gradient :math:`g_t` at step :math:`t = 1, 2, \dots`:

    .. math::
        g_t &\leftarrow g_t + \lambda \theta_{t-1}                      && \text{if } \lambda \ne 0 \\
        b_t &= g_t \text{ if } t = 1 \text{ else } \mu b_{t-1} + g_t    && \text{if } \mu \ne 0 \\
        g_t &\leftarrow g_t + \mu b_t \text{ (nesterov) else } b_t      && \text{if } \mu \ne 0 \\
        \theta_t &= \theta_{t-1} - \gamma g_t
    """

    name: ClassVar[str] = "sgd"
    error_kinds: ClassVar[frozenset[str]] = frozenset({"nesterov_momentum"})

    learning_rate: float = hyper(gt=0, description="The step size (torch's lr).")
    momentum: float = hyper(0.0, ge=0, description="mu: the step follows the buffer b = mu * b + g; 0 is plain SGD.")
    nesterov: bool = hyper(False, description="Nesterov momentum: step along g + mu * b instead of b; needs momentum > 0.")
    weight_decay: float = hyper(0.0, ge=0, description="Coupled L2: weight_decay * parameter is added to the gradient.")

    def __post_init__(self) -> None:
        if self.nesterov and self.momentum <= 0:
            raise HyperParameterError("nesterov", "nesterov_momentum", f"nesterov needs momentum > 0, but momentum is {self.momentum!r}")

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


@dataclass
class AdamState(OptimizerState):
    """Mutable scratch of one Adam run: the step count, both moments and two temporaries."""

    exp_avg: Array
    exp_avg_sq: Array
    scratch: Array = field(repr=False)
    denom: Array = field(repr=False)


@dataclass(frozen=True)
class Adam(Optimizer[AdamState]):
    r"""torch.optim.Adam (not AMSGrad): coupled L2 weight decay.

    With learning rate :math:`\gamma`, betas :math:`\beta_1, \beta_2`, weight decay :math:`\lambda`
    and gradient :math:`g_t` at step :math:`t = 1, 2, \dots` (:math:`m_0 = v_0 = 0`):

    .. math::
        g_t &\leftarrow g_t + \lambda \theta_{t-1}                 && \text{if } \lambda \ne 0 \\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t                 && \text{(torch.lerp)} \\
        v_t &= \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
        \theta_t &= \theta_{t-1} - \frac{\gamma}{1 - \beta_1^t} \, \frac{m_t}{\sqrt{v_t} / \sqrt{1 - \beta_2^t} + \epsilon}

    ``eps`` is added after the bias-corrected square root, outside it, as torch does.
    """

    name: ClassVar[str] = "adam"

    # torch's default learning rate, for the engine; the wire asks for one.
    learning_rate: float = hyper(0.001, gt=0, required=True, description="The step size (torch's lr).")
    betas: tuple[float, float] = hyper(
        (0.9, 0.999), ge=0, lt=1, description="(beta1, beta2): the decay rates of the running averages of the gradient and of its square."
    )
    eps: float = hyper(1e-8, ge=0, description="Added to the denominator, after the bias-corrected square root of the second moment.")
    weight_decay: float = hyper(
        0.0, ge=0, description="Coupled L2 (not AdamW's decoupled decay): weight_decay * parameter is added to the gradient."
    )

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


OPTIMIZERS: Mapping[str, type[Optimizer[Any]]] = MappingProxyType({opt.name: opt for opt in (SGD, Adam)})
"""Every optimizer by its wire name, in the order the request schema lists them."""

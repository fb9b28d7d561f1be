"""Gradient check: backprop against central finite differences, judged as ``torch.autograd.gradcheck`` does.

A parameter passes when ``|analytical - numerical| <= atol + rtol * |numerical|``; the
numerical derivative of parameter ``i`` is ``(L(theta + eps e_i) - L(theta - eps e_i)) / (2 eps)``.
All vectors are flat, in ``Layout`` order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from app.nn.errors import NonFiniteError, Stopped
from app.nn.layout import Array, Layout
from app.nn.losses import Loss, Reduction, get_loss
from app.nn.network import Layer, evaluate, pass_loss
from app.nn.workspace import Packed

# Two forward passes per parameter: asking every 64 parameters costs nothing and answers within
# 128 passes, well under a second for any network within the work limit.
STOP_CHECK_EVERY = 64


@dataclass(frozen=True)
class GradCheck:
    """The verdict, the largest errors, the worst parameter (flat index) and both gradients ``[n]``.

    An error too large for float64 (it overflowed) is given as the largest float64, 1.797e308.
    """

    passed: bool
    max_abs_error: float
    max_rel_error: float
    worst: int
    analytical: Array
    numerical: Array
    layout: Layout


def numerical_gradient(
    layers: Sequence[Layer],
    inputs: Array,
    targets: Array,
    loss: str | Loss,
    reduction: Reduction,
    epsilon: float,
    should_stop: Callable[[], bool] = lambda: False,
) -> Array:
    """Central differences of the loss with respect to every parameter: ``[n]`` in layout order.

    ``should_stop`` is asked every ``STOP_CHECK_EVERY`` parameters; when it says so, Stopped is raised.
    """
    # Fresh buffers (not the thread's shared ones): the loop writes the parameters in place.
    p = Packed.of(layers, inputs)
    layout, params, blocks, ws = p.layout, p.params, p.blocks, p.ws
    spec = get_loss(loss)
    out = np.empty(layout.size)

    def loss_at() -> float:
        return pass_loss(blocks, ws, targets, spec, reduction)

    with np.errstate(all="ignore"):
        for i in range(layout.size):
            if i % STOP_CHECK_EVERY == 0 and should_stop():
                raise Stopped
            saved = params[i]
            params[i] = saved + epsilon
            plus = loss_at()
            params[i] = saved - epsilon
            minus = loss_at()
            params[i] = saved
            # Halved before subtracting and dividing: neither plus - minus nor 2 * epsilon can then
            # overflow (epsilon may be up to float64's largest), and halving is exact otherwise.
            out[i] = (0.5 * plus - 0.5 * minus) / epsilon
    if not np.isfinite(out).all():
        bad = int(np.flatnonzero(~np.isfinite(out))[0])
        raise NonFiniteError(layout.locate(bad)[0], "numerical gradient")
    return out


def _reportable(error: float) -> float:
    """``error``, or the largest float64 where it overflowed."""
    return float(min(error, np.finfo(np.float64).max))


def compare(analytical: Array, numerical: Array, atol: float, rtol: float, layout: Layout) -> GradCheck:
    """torch.autograd.gradcheck's criterion over every parameter."""
    # Finite gradients can still have a difference or a relative error beyond float64 (a gradient
    # of 1e308 against -1e308, or any difference over a numerical gradient of 1e-318): those
    # overflow to inf here and are reported as the largest float64, which JSON can carry.
    with np.errstate(all="ignore"):
        diff = np.abs(analytical - numerical)
        scale = np.abs(numerical)
        allowed = atol + rtol * scale
        # The worst parameter is the one furthest past (or least inside) its allowance.
        ratio = np.where(allowed > 0, diff / allowed, np.where(diff > 0, np.inf, 0.0))
        rel = np.where(scale > 0, diff / scale, 0.0)
    return GradCheck(
        passed=bool((diff <= allowed).all()),
        max_abs_error=_reportable(diff.max(initial=0.0)),
        max_rel_error=_reportable(rel.max(initial=0.0)),
        worst=int(np.argmax(ratio)) if ratio.size else 0,
        analytical=analytical,
        numerical=numerical,
        layout=layout,
    )


def gradcheck(
    layers: Sequence[Layer],
    inputs: Array,
    targets: Array,
    loss: str | Loss,
    reduction: Reduction,
    *,
    epsilon: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    should_stop: Callable[[], bool] = lambda: False,
) -> GradCheck:
    """Backprop's dLoss/dtheta against central differences; raises NonFiniteError where a value overflows."""
    ev = evaluate(layers, inputs, targets, loss, reduction)
    assert ev.gradient is not None
    numerical = numerical_gradient(layers, inputs, targets, loss, reduction, epsilon, should_stop)
    return compare(ev.gradient.copy(), numerical, atol, rtol, ev.layout)

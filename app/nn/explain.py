"""The chain rule for one parameter, sample by sample, as data and as text a student can follow.

For layer ``k``, ``dL/dW_k[j][i] = scale * sum_s delta_k[s][j] * a_{k-1}[s][i]`` (``a_{-1}`` is the
input, and ``a = 1`` for a bias), where ``delta_k = dl/dpre_k`` is the *unreduced* per-sample
derivative: at the output it comes from the loss, below it
``delta_k[j] = f_k'(pre_k[j]) * sum_m W_{k+1}[m][j] * delta_{k+1}[m]``; ``scale`` is
``1 / count`` for ``mean`` (elements, or samples for cross_entropy, or for cross_entropy with
class indices and class weights the summed weights of the samples' classes) and 1 for ``sum``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from app.nn.activations import ACTIVATIONS
from app.nn.losses import CrossEntropyOptions, Loss, get_loss
from app.nn.network import Layer, Packed, Workspace, checked_pass, evaluate

Array = np.ndarray


@dataclass(frozen=True)
class Term:
    """One named number in the derivation: its ``symbol``, what it ``means`` and its ``value``."""

    symbol: str
    meaning: str
    value: float | None  # None where a textbook factor is not finite (e.g. 1/z_hat at z_hat = 0)


@dataclass(frozen=True)
class Step:
    """``symbol = value``, obtained as the product (or stated combination) of ``factors``; ``line`` in words."""

    symbol: str
    meaning: str
    value: float
    factors: tuple[Term, ...]
    line: str


@dataclass(frozen=True)
class SampleDerivation:
    sample: int
    steps: tuple[Step, ...]
    contribution: float


@dataclass(frozen=True)
class Explanation:
    gradient: float
    parameter: tuple[int, str, tuple[int, ...]]
    samples: tuple[SampleDerivation, ...]
    reduction: str
    divisor: int | float
    total: float
    reduction_line: str
    lines: tuple[str, ...] = field(default=())


def _f(x: float) -> str:
    return f"{x:.6g}"


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def explanation_steps(shapes: Sequence[tuple[int, int]], batch: int, layer: int) -> int:
    """How many steps ``explain`` writes: per sample, every unit from the output down to ``layer``."""
    return batch * (sum(o for o, _ in shapes[layer + 1 :]) + 2)


def explanation_size(shapes: Sequence[tuple[int, int]], batch: int, layer: int) -> int:
    """About how many numbers ``explain`` writes: each step's value and factors, and the numbers in
    its line of text, which appears twice (in its step and in ``lines``). A hidden unit's line
    writes one product per unit of the layer above it, so this grows with width x width."""
    last = len(shapes) - 1
    per_sample = 12 * shapes[last][0] + 12  # the output steps and the contribution step
    for k in range(layer, last):
        units = 1 if k == layer else shapes[k][0]
        per_sample += units * (4 * shapes[k + 1][0] + 12)
    return batch * per_sample


def explain(
    layers: Sequence[Layer],
    inputs: Array,
    targets: Array,
    loss: str | Loss,
    reduction: str,
    layer: int,
    kind: str,
    index: Sequence[int],
) -> Explanation:
    """The derivation of dLoss/d(parameter) for weights[j][i] or biases[j] of ``layer``."""
    p = Packed.of(layers, inputs)
    layout, blocks, ws = p.layout, p.blocks, p.ws
    spec = get_loss(loss)
    with np.errstate(all="ignore"):
        # Unreduced (sum) deltas are each sample's own chain rule; the reduction is applied last.
        checked_pass(blocks, ws, targets, spec, "sum")
    last = len(layers) - 1
    j = index[0]
    divisor = spec.count(targets, reduction)
    samples = []
    for s in range(inputs.shape[0]):
        steps: list[Step] = []
        steps.extend(_output_steps(ws, layers, spec, targets, s, only=j if layer == last else None))
        for k in range(last - 1, layer - 1, -1):
            units = [j] if k == layer else range(layout.shapes[k][0])
            steps.extend(_hidden_step(ws, layers, k, u, s) for u in units)
        delta = float(ws.delta[layer][s, j])
        if kind == "biases":
            a_term = Term("1", "a bias adds 1 x itself to the pre-activation", 1.0)
            symbol = f"dl/db{layer}[{j}]"
        else:
            i = index[1]
            a = float(ws.inputs[layer][s, i])
            source = f"input x[{i}]" if layer == 0 else f"layer {layer - 1}'s activation a{layer - 1}[{i}]"
            a_term = Term(f"a{layer - 1}[{i}]" if layer else f"x[{i}]", f"what weight [{j}][{i}] multiplies: {source}", a)
            symbol = f"dl/dW{layer}[{j}][{i}]"
        contribution = delta * a_term.value  # type: ignore[operator]
        delta_term = Term(f"delta{layer}[{j}]", f"dl/dpre{layer}[{j}], from the steps above", delta)
        steps.append(
            Step(
                symbol,
                "this sample's contribution (before the reduction)",
                contribution,
                (delta_term, a_term),
                f"sample {s}: {symbol} = delta{layer}[{j}] * {a_term.symbol} = {_f(delta)} * {_f(a_term.value)} = {_f(contribution)}",  # type: ignore[arg-type]
            )
        )
        samples.append(SampleDerivation(s, tuple(steps), contribution))
    total = float(sum(d.contribution for d in samples))
    # The reported gradient is backprop's own (identical to /v1/gradients); total / divisor
    # shows how the reduction combines the samples and agrees with it to rounding.
    ev = evaluate(layers, inputs, targets, spec, reduction)
    assert ev.gradient is not None
    gradient = float(ev.gradient[layout.flat_index(layer, kind, index)])
    name = f"W{layer}[{j}][{index[1]}]" if kind == "weights" else f"b{layer}[{j}]"
    over = "samples" if spec.per_row else "output elements"
    divisor_text = str(divisor)
    if spec.options is not None and spec.options.weighted_mean:
        over, divisor_text = "the weights of the samples' target classes, summed", _f(divisor)
    reduction_line = (
        f"{reduction}: dL/d{name} = (sum of the {len(samples)} contributions) / {divisor_text} ({over}) = {_f(total)} / {divisor_text} = {_f(total / divisor)}"
        if reduction == "mean"
        else f"sum: dL/d{name} = sum of the {len(samples)} contributions = {_f(gradient)}"
    )
    lines = tuple(step.line for d in samples for step in d.steps) + (reduction_line,)
    return Explanation(gradient, (layer, kind, tuple(index)), tuple(samples), reduction, divisor, total, reduction_line, lines)


def _output_steps(ws: Workspace, layers: Sequence[Layer], spec, targets: Array, s: int, only: int | None) -> list[Step]:  # type: ignore[no-untyped-def]
    last = len(layers) - 1
    act = layers[last].activation
    units = [only] if only is not None else range(ws.pre[last].shape[1])
    steps = []
    for m in units:
        pre, out, y = float(ws.pre[last][s, m]), float(ws.output[s, m]), float(targets[s, m])
        delta = float(ws.delta[last][s, m])
        sym = f"delta{last}[{m}]"
        if spec.name == "binary_cross_entropy":
            d_out = Term(
                f"dl/dz_hat[{m}]",
                f"the loss's slope in the output z_hat: -z/z_hat + (1 - z)/(1 - z_hat), with target z = {_f(y)}",
                _finite(-y / out + (1.0 - y) / (1.0 - out)) if 0.0 < out < 1.0 else None,
            )
            d_act = Term(f"sigmoid'(pre{last}[{m}])", "the sigmoid's slope: z_hat * (1 - z_hat)", out * (1.0 - out))
            line = (
                f"sample {s}: {sym} = dl/dz_hat * sigmoid'(pre) = "
                f"{_f(d_out.value) if d_out.value is not None else 'n/a'} * {_f(d_act.value)} "  # type: ignore[arg-type]
                f"= z_hat - z = {_f(out)} - {_f(y)} = {_f(delta)}"
            )
            factors = (d_out, d_act, Term("z_hat - z", "the same product, simplified (computed this way, stably)", delta))
        elif spec.options is not None:
            factors, line = _cross_entropy_factors(spec.options, targets[s], s, m, sym, out, delta)
        elif spec.name == "cross_entropy":
            factors = (
                Term(f"p[{m}]", "the softmax probability of this class", out),
                Term(f"y[{m}]", "the target probability", y),
            )
            line = f"sample {s}: {sym} = p - y (softmax and cross-entropy together) = {_f(out)} - {_f(y)} = {_f(delta)}"
        else:
            d_out = Term(f"dl/dout{last}[{m}]", f"the squared error's slope: 2 * (out - target), target {_f(y)}", 2.0 * (out - y))
            if ACTIVATIONS[act].elementwise:
                slope = float(
                    ACTIVATIONS[act].backward(ws.pre[last][s : s + 1], ws.output[s : s + 1], np.ones_like(ws.output[s : s + 1]))[0, m]
                )
                d_act = Term(f"{act}'(pre{last}[{m}])", f"the {act}'s slope at pre = {_f(pre)}", slope)
                line = f"sample {s}: {sym} = dl/dout * {act}'(pre) = {_f(d_out.value)} * {_f(slope)} = {_f(delta)}"  # type: ignore[arg-type]
            else:
                d_act = Term("softmax Jacobian", "sum over outputs n of dl/dout[n] * p[n] * (1[n = m] - p[m])", delta)
                line = f"sample {s}: {sym} = sum_n dl/dout[n] * dp[n]/dpre[{m}] = {_f(delta)}"
            factors = (d_out, d_act)
        steps.append(Step(sym, f"dl/dpre{last}[{m}]: the loss's slope in the output layer's pre-activation", delta, factors, line))
    return steps


def _cross_entropy_factors(
    o: CrossEntropyOptions, y_row: Array, s: int, m: int, sym: str, p: float, delta: float
) -> tuple[tuple[Term, ...], str]:
    """cross_entropy's output factors with torch's options: ``delta = p * sum_j e[j] - e[m]``, where the
    effective target ``e[j] = w[j] * ((1 - eps) * y[j] + eps / C)`` (``e = y`` for neither option)."""
    classes = y_row.shape[0]
    e_row = o.effective_targets(y_row[None, :])[0]
    e, total, y = float(e_row[m]), float(e_row.sum()), float(y_row[m])
    formula = "y" if not o.label_smoothing else f"(1 - {o.label_smoothing:g}) * y + {o.label_smoothing:g} / {classes}"
    if o.class_weights is not None:
        formula = f"w * ({formula})"
    if o.index_targets:
        given = f"y[{m}] = {_f(y)} (1 for this sample's class {int(np.argmax(y_row))}, 0 for the others)"
    else:
        given = f"the target probability y[{m}] = {_f(y)}"
    if o.label_smoothing:
        given += f", label smoothing eps = {o.label_smoothing:g} over C = {classes} classes"
    if o.class_weights is not None:
        given += f", class weight w[{m}] = {_f(float(o.class_weights[m]))}"
    factors = (
        Term(f"p[{m}]", "the softmax probability of this class", p),
        Term(f"e[{m}]", f"the effective target e = {formula}, from {given}", e),
        Term("sum_j e[j]", "this sample's effective targets, summed: how much this sample weighs in the loss", total),
    )
    line = (
        f"sample {s}: {sym} = p * sum_j e[j] - e (softmax and cross-entropy together, e = {formula}) "
        f"= {_f(p)} * {_f(total)} - {_f(e)} = {_f(delta)}"
    )
    return factors, line


def _hidden_step(ws: Workspace, layers: Sequence[Layer], k: int, u: int, s: int) -> Step:
    act = layers[k].activation
    nxt = layers[k + 1]
    pre = ws.pre[k][s : s + 1]
    slope = float(ACTIVATIONS[act].backward(pre, ws.posts[k][s : s + 1], np.ones_like(pre))[0, u])
    products = [(float(nxt.weights[m, u]), float(ws.delta[k + 1][s, m])) for m in range(nxt.weights.shape[0])]
    back = sum(w * d for w, d in products)
    delta = float(ws.delta[k][s, u])
    sym = f"delta{k}[{u}]"
    factors = (
        Term(f"{act}'(pre{k}[{u}])", f"the {act}'s slope at pre = {_f(float(pre[0, u]))}", slope),
        Term(f"sum_m W{k + 1}[m][{u}] * delta{k + 1}[m]", f"what flows back from layer {k + 1}", back),
    )
    terms = " + ".join(f"{_f(w)} * {_f(d)}" for w, d in products)
    line = f"sample {s}: {sym} = {act}'(pre) * ({terms}) = {_f(slope)} * {_f(back)} = {_f(delta)}"
    return Step(sym, f"dl/dpre{k}[{u}]: the loss's slope in layer {k}'s pre-activation", delta, factors, line)

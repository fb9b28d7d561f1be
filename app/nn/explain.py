"""The chain rule for one parameter, sample by sample, as data and as text a student can follow.

For layer ``k``, ``dL/dW_k[j][i] = scale * sum_s delta_k[s][j] * a_{k-1}[s][i]`` (``a_{-1}`` is the
input, and ``a = 1`` for a bias), where ``delta_k = dl/dpre_k`` is the *unreduced* per-sample
derivative: at the output it comes from the loss, below it
``delta_k[j] = f_k'(pre_k[j]) * sum_m W_{k+1}[m][j] * delta_{k+1}[m]``; ``scale`` is
``1 / count`` for ``mean`` (elements, or samples for cross_entropy, or for cross_entropy with
class indices and class weights the summed weights of the samples' classes) and 1 for ``sum``.

Every step, and the reduction, is written twice with its numbers: as a ``line`` of plain text and
as ``latex`` (an equation KaTeX renders, in the notation of ``app.nn.latex``).

The output layer's step is the loss's to explain (``Loss.explain_output``, given an
``OutputUnit``), as is what ``mean`` divides by (``Loss.count``, ``Loss.mean_over``): this module
names no loss, so a new loss explains itself where it is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from app.nn import latex as tex
from app.nn.activations import ACTIVATIONS
from app.nn.latex import fmt
from app.nn.losses import Loss, OutputUnit, Reduction, Term, get_loss
from app.nn.network import Layer, checked_pass, evaluate
from app.nn.workspace import Packed, Workspace

Array = NDArray[np.float64]
ParameterKind = Literal["weights", "biases"]

__all__ = ["Explanation", "SampleDerivation", "Step", "Term", "explain", "explanation_size", "explanation_steps"]


@dataclass(frozen=True)
class Step:
    """``symbol = value``, obtained as the product (or stated combination) of ``factors``; ``line`` in words,
    ``latex`` the same equation in LaTeX with the numbers substituted (valid for KaTeX)."""

    symbol: str
    meaning: str
    value: float
    factors: tuple[Term, ...]
    line: str
    latex: str


@dataclass(frozen=True)
class SampleDerivation:
    sample: int
    steps: tuple[Step, ...]
    contribution: float


@dataclass(frozen=True)
class Explanation:
    """dL/d(parameter) (``gradient``, backprop's own), each sample's derivation, and the reduction:
    ``total`` (the contributions summed) over ``divisor``, said by ``reduction_line`` and, in LaTeX,
    ``reduction_latex``; ``lines`` every step's line and then the reduction's."""

    gradient: float
    parameter: tuple[int, str, tuple[int, ...]]
    samples: tuple[SampleDerivation, ...]
    reduction: Reduction
    divisor: int | float
    total: float
    reduction_line: str
    reduction_latex: str
    lines: tuple[str, ...] = field(default=())


def explanation_steps(shapes: Sequence[tuple[int, int]], batch: int, layer: int) -> int:
    """How many steps ``explain`` writes: per sample, every unit from the output down to ``layer``."""
    return batch * (sum(o for o, _ in shapes[layer + 1 :]) + 2)


def explanation_size(shapes: Sequence[tuple[int, int]], batch: int, layer: int) -> int:
    """About how many numbers ``explain`` writes: each step's value and factors, and the numbers in
    its line of text, which appears twice (in its step and in ``lines``), and once more in its
    LaTeX (with the indices of its symbols). A hidden unit's line writes one product per unit of the
    layer above it, so this grows with width x width."""
    last = len(shapes) - 1
    per_sample = 24 * shapes[last][0] + 24  # the output steps and the contribution step
    for k in range(layer, last):
        units = 1 if k == layer else shapes[k][0]
        per_sample += units * (6 * shapes[k + 1][0] + 30)
    return batch * per_sample


def explain(
    layers: Sequence[Layer],
    inputs: Array,
    targets: Array,
    loss: str | Loss,
    reduction: Reduction,
    layer: int,
    kind: ParameterKind,
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
    param_latex = tex.bias(layer, j) if kind == "biases" else tex.weight(layer, j, index[1])
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
            a = 1.0
            a_term = Term("1", "a bias adds 1 x itself to the pre-activation", a)
            symbol = f"dl/db{layer}[{j}]"
            a_latex = "1"
        else:
            i = index[1]
            a = float(ws.inputs[layer][s, i])
            source = f"input x[{i}]" if layer == 0 else f"layer {layer - 1}'s activation a{layer - 1}[{i}]"
            a_term = Term(f"a{layer - 1}[{i}]" if layer else f"x[{i}]", f"what weight [{j}][{i}] multiplies: {source}", a)
            symbol = f"dl/dW{layer}[{j}][{i}]"
            a_latex = tex.activation(layer - 1, i) if layer else tex.input_(i)
        contribution = delta * a
        delta_term = Term(f"delta{layer}[{j}]", f"dl/dpre{layer}[{j}], from the steps above", delta)
        steps.append(
            Step(
                symbol,
                "this sample's contribution (before the reduction)",
                contribution,
                (delta_term, a_term),
                f"sample {s}: {symbol} = delta{layer}[{j}] * {a_term.symbol} = {fmt(delta)} * {fmt(a)} = {fmt(contribution)}",
                rf"{tex.partial(tex.sample_loss(s), param_latex)} = {tex.delta(layer, j)} \cdot {a_latex} "
                rf"= {tex.number(delta)} \cdot {tex.number(a, paren=True)} = {tex.number(contribution)}",
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
    # A count of samples or elements is an int; a sum of class weights a float.
    divisor_text = fmt(divisor) if isinstance(divisor, float) else str(divisor)
    reduction_line = (
        f"{reduction}: dL/d{name} = (sum of the {len(samples)} contributions) / {divisor_text} ({spec.mean_over()}) = {fmt(total)} / {divisor_text} = {fmt(total / divisor)}"
        if reduction == "mean"
        else f"sum: dL/d{name} = sum of the {len(samples)} contributions = {fmt(gradient)}"
    )
    reduction_latex = _reduction_latex(param_latex, len(samples), reduction, divisor, spec.mean_over(), total, gradient)
    lines = tuple(step.line for d in samples for step in d.steps) + (reduction_line,)
    return Explanation(
        gradient, (layer, kind, tuple(index)), tuple(samples), reduction, divisor, total, reduction_line, reduction_latex, lines
    )


def _reduction_latex(param: str, samples: int, reduction: Reduction, divisor: int | float, over: str, total: float, gradient: float) -> str:
    """The reduction's line in LaTeX: the contributions summed, divided by ``divisor`` for ``mean``."""
    whole = tex.partial("L", param)
    each = tex.partial(r"\ell_{s}", param)
    sum_s = rf"\sum_{{s=0}}^{{{samples - 1}}} {each}"
    if reduction == "sum":
        return rf"{whole} = {sum_s} = {tex.number(gradient)}"
    n = str(divisor) if isinstance(divisor, int) else tex.number(divisor)
    return (
        rf"{whole} = \frac{{1}}{{n}} {sum_s} = \frac{{{tex.number(total)}}}{{{n}}} = {tex.number(total / divisor)}, "
        rf"\qquad n = {n}\ {tex.text(f'({over})')}"
    )


def _output_steps(ws: Workspace, layers: Sequence[Layer], spec: Loss, targets: Array, s: int, only: int | None) -> list[Step]:
    """The output layer's steps of sample ``s`` (every unit, or unit ``only``): each loss explains its own."""
    last = len(layers) - 1
    units = [only] if only is not None else range(ws.pre[last].shape[1])
    steps = []
    for m in units:
        unit = OutputUnit(
            s,
            m,
            last,
            layers[last].activation,
            ws.pre[last][s : s + 1],
            ws.output[s : s + 1],
            targets[s : s + 1],
            float(ws.delta[last][s, m]),
        )
        factors, line, latex = spec.explain_output(unit)
        steps.append(
            Step(
                unit.symbol, f"dl/dpre{last}[{m}]: the loss's slope in the output layer's pre-activation", unit.delta, factors, line, latex
            )
        )
    return steps


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
        Term(f"{act}'(pre{k}[{u}])", f"the {act}'s slope at pre = {fmt(float(pre[0, u]))}", slope),
        Term(f"sum_m W{k + 1}[m][{u}] * delta{k + 1}[m]", f"what flows back from layer {k + 1}", back),
    )
    terms = " + ".join(f"{fmt(w)} * {fmt(d)}" for w, d in products)
    line = f"sample {s}: {sym} = {act}'(pre) * ({terms}) = {fmt(slope)} * {fmt(back)} = {fmt(delta)}"
    terms_latex = " + ".join(rf"{tex.number(w, paren=i > 0)} \cdot {tex.number(d, paren=True)}" for i, (w, d) in enumerate(products))
    latex = (
        rf"{tex.delta(k, u)} = {tex.derivative(act, k, u)} \sum_{{m}} w^{{({k + 1})}}_{{m,{u}}} {tex.delta(k + 1, 'm')} "
        rf"= {tex.number(slope)} \cdot \left({terms_latex}\right) = {tex.number(slope)} \cdot {tex.number(back, paren=True)} = {tex.number(delta)}"
    )
    return Step(sym, f"dl/dpre{k}[{u}]: the loss's slope in layer {k}'s pre-activation", delta, factors, line, latex)

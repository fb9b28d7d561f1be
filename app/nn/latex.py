r"""The derivations' notation in LaTeX (the subset KaTeX renders), with the numbers substituted.

One symbol per quantity, the same in every step ``/v1/explain`` writes:

    x_{i}                 the network's input i (of the sample the step is about)
    w^{(k)}_{j,i}         layer k's weight from input i to unit j; b^{(k)}_{j} its bias
    z^{(k)}_{j}           layer k's pre-activation;  a^{(k)}_{j} = f(z^{(k)}_{j}) its activation
    y_{j}                 the target;  \ell_{s} sample s's loss (its terms summed, before the reduction)
    \delta^{(k)}_{j}      \partial \ell_{s} / \partial z^{(k)}_{j}
    L                     the reduced loss

Numbers are written as the plain lines write them (``fmt``: 6 significant figures), with
``1e-05`` as ``1 \times 10^{-5}``, ``inf`` as ``\infty`` and a factor that has no finite value
(``None``) as ``\text{n/a}``.
"""

from __future__ import annotations

import math

__all__ = [
    "activation",
    "bias",
    "delta",
    "derivative",
    "fmt",
    "input_",
    "number",
    "partial",
    "pre",
    "sample_loss",
    "target",
    "text",
    "weight",
]


def fmt(x: float) -> str:
    """A number as the derivations write it."""
    return f"{x:.6g}"


def number(x: float | None, *, paren: bool = False) -> str:
    r"""``x`` as ``fmt`` writes it, in LaTeX; ``paren``: a negative number in parentheses (a factor after ``\cdot``)."""
    if x is None:
        return r"\text{n/a}"
    if math.isnan(x):
        return r"\text{NaN}"
    if math.isinf(x):
        s = r"\infty" if x > 0 else r"-\infty"
    else:
        s = fmt(x)
        if "e" in s:
            mantissa, exponent = s.split("e")
            s = rf"{mantissa} \times 10^{{{int(exponent)}}}"
    return f"({s})" if paren and s.startswith("-") else s


_TEXT_ESCAPES = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "_": r"\_",
    "^": r"\textasciicircum{}",
    "#": r"\#",
    "$": r"\$",
    "%": r"\%",
    "&": r"\&",
    "~": r"\textasciitilde{}",
}


def text(s: str) -> str:
    r"""``s`` as upright text inside mathematics: ``\text{...}`` with LaTeX's special characters escaped."""
    return r"\text{" + "".join(_TEXT_ESCAPES.get(c, c) for c in s) + "}"


def _index(*i: int) -> str:
    return "_{" + ",".join(str(n) for n in i) + "}"


def input_(i: int) -> str:
    return "x" + _index(i)


def weight(layer: int, j: int, i: int) -> str:
    return f"w^{{({layer})}}" + _index(j, i)


def bias(layer: int, j: int) -> str:
    return f"b^{{({layer})}}" + _index(j)


def pre(layer: int, j: int | str) -> str:
    return f"z^{{({layer})}}_{{{j}}}"


def activation(layer: int, j: int | str) -> str:
    return f"a^{{({layer})}}_{{{j}}}"


def target(j: int | str) -> str:
    return f"y_{{{j}}}"


def delta(layer: int, j: int | str) -> str:
    return rf"\delta^{{({layer})}}_{{{j}}}"


def sample_loss(sample: int) -> str:
    return rf"\ell_{{{sample}}}"


def partial(top: str, bottom: str) -> str:
    r"""``\frac{\partial top}{\partial bottom}``."""
    return rf"\frac{{\partial {top}}}{{\partial {bottom}}}"


def derivative(name: str, layer: int, j: int) -> str:
    r"""The activation ``name``'s derivative at ``z^{(layer)}_{j}``: ``\sigma'`` for the sigmoid, else the name as an operator."""
    f = r"\sigma" if name == "sigmoid" else r"\operatorname{" + name.replace("_", r"\_") + "}"
    return f"{f}'({pre(layer, j)})"

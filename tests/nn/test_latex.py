"""The derivations' LaTeX notation (app/nn/latex.py): numbers as the plain lines write them."""

import pytest

from app.nn import latex as tex


@pytest.mark.parametrize(
    "x, paren, expected",
    [
        (0.4312, False, "0.4312"),
        (-0.298969213, False, "-0.298969"),
        (-0.298969213, True, "(-0.298969)"),
        (1.0, True, "1"),
        (1.5e-05, False, r"1.5 \times 10^{-5}"),
        (-2.5e20, True, r"(-2.5 \times 10^{20})"),
        (float("inf"), False, r"\infty"),
        (float("-inf"), True, r"(-\infty)"),
        (float("nan"), False, r"\text{NaN}"),
        (None, True, r"\text{n/a}"),
    ],
)
def test_numbers_are_the_plain_lines_numbers_in_latex(x, paren, expected):
    assert tex.number(x, paren=paren) == expected
    if x is not None and abs(x) < float("inf") and "times" not in expected:
        assert expected.strip("()") == tex.fmt(x)


def test_text_escapes_latexs_special_characters():
    assert tex.text("the weights of the samples' target classes, summed") == r"\text{the weights of the samples' target classes, summed}"
    assert (
        tex.text(r"a_b {c} 50% & $x^2 #1 ~ \ ")
        == r"\text{a\_b \{c\} 50\% \& \$x\textasciicircum{}2 \#1 \textasciitilde{} \textbackslash{} }"
    )


def test_symbols():
    assert tex.partial(tex.sample_loss(0), tex.weight(1, 0, 0)) == r"\frac{\partial \ell_{0}}{\partial w^{(1)}_{0,0}}"
    assert (tex.delta(1, 0), tex.activation(0, 1), tex.pre(2, "m"), tex.bias(0, 3), tex.input_(1), tex.target(0)) == (
        r"\delta^{(1)}_{0}",
        "a^{(0)}_{1}",
        "z^{(2)}_{m}",
        "b^{(0)}_{3}",
        "x_{1}",
        "y_{0}",
    )
    assert tex.derivative("sigmoid", 1, 0) == r"\sigma'(z^{(1)}_{0})"
    assert tex.derivative("leaky_relu", 0, 2) == r"\operatorname{leaky\_relu}'(z^{(0)}_{2})"

import pytest

from app.nn.explain import explain, explanation_steps
from app.nn.layout import Layout
from app.nn.losses import LOSSES
from app.nn.network import evaluate
from tests.support.random_networks import random_layers, random_targets
from tests.support.seed_network import seed_example


def test_seed_w11_shows_the_blogs_factors():
    layers, x, y = seed_example()
    e = explain(layers, x, y, "binary_cross_entropy", "mean", 1, "weights", (0, 0))
    z_hat = 0.7010307863243558
    z1 = 0.7 * 0.436 + 0.3 * 0.420
    (sample,) = e.samples
    delta, contribution = sample.steps
    d_out, d_sigmoid, collapsed = delta.factors
    assert d_out.value == pytest.approx(-1 / z_hat, rel=1e-12)  # the blog's (1/z_hat), as a derivative of the loss
    assert d_sigmoid.value == pytest.approx(z_hat * (1 - z_hat), rel=1e-12)
    assert collapsed.value == pytest.approx(z_hat - 1.0, rel=1e-12) == delta.value
    assert d_out.value * d_sigmoid.value == pytest.approx(delta.value, rel=1e-12)
    assert contribution.factors[1].value == pytest.approx(z1, rel=1e-15)
    assert contribution.value == pytest.approx((z_hat - 1.0) * z1, rel=1e-12)
    assert e.gradient == pytest.approx((z_hat - 1.0) * z1, rel=1e-12)
    assert "z_hat - z" in delta.line and "0.4312" in contribution.line


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_every_parameter_matches_backprop(loss, reduction, rng):
    last = LOSSES[loss].requires_activation or "softmax"
    layers = random_layers(rng, [3, 4, 3, 2], ["tanh", "elu", last])
    x = rng.normal(size=(4, 3))
    y = random_targets(rng, loss, 4, 2)
    ev = evaluate(layers, x, y, loss, reduction)
    layout = Layout.of(layers)
    for flat in range(layout.size):
        layer, kind, index = layout.locate(flat)
        e = explain(layers, x, y, loss, reduction, layer, kind, index)
        assert e.gradient == ev.gradient[flat]
        assert e.total / e.divisor == pytest.approx(e.gradient, rel=1e-12, abs=1e-15)
        assert sum(s.contribution for s in e.samples) == pytest.approx(e.total, rel=1e-12, abs=1e-15)
        # Each hidden step's value is the product of its two factors: slope * what flows back.
        hidden = [st for s in e.samples for st in s.steps if st.factors[-1].symbol.startswith("sum_m")]
        last = len(layers) - 1
        per_sample = (layer < last) + sum(layout.shapes[k][0] for k in range(layer + 1, last))  # only unit j at `layer`
        assert len(hidden) == len(e.samples) * per_sample
        for step in hidden:
            product = step.factors[0].value * step.factors[1].value
            assert product == pytest.approx(step.value, rel=1e-12, abs=1e-15), step.line


def test_step_count_matches_the_estimate(rng):
    layers = random_layers(rng, [2, 3, 4, 1], ["relu", "tanh", "sigmoid"])
    x, y = rng.normal(size=(3, 2)), rng.uniform(size=(3, 1))
    e = explain(layers, x, y, "binary_cross_entropy", "mean", 0, "weights", (1, 0))
    steps = sum(len(s.steps) for s in e.samples)
    assert steps <= explanation_steps([(3, 2), (4, 3), (1, 4)], 3, 0)

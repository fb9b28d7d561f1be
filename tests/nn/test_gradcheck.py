import numpy as np
import pytest

from app.nn.errors import NonFiniteError
from app.nn.gradcheck import compare, gradcheck, numerical_gradient
from app.nn.layout import Layout
from app.nn.losses import LOSSES
from app.nn.network import Layer
from tests.support.random_networks import random_layers, random_targets

SMOOTH = ["identity", "sigmoid", "tanh", "softplus", "elu", "leaky_relu", "relu"]


@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.parametrize("hidden", SMOOTH)
def test_backprop_passes_on_random_networks(hidden, loss, rng):
    last = LOSSES[loss].requires_activation or "tanh"
    layers = random_layers(rng, [3, 4, 2], [hidden, last])
    x = rng.normal(size=(5, 3))
    y = random_targets(rng, loss, 5, 2)
    result = gradcheck(layers, x, y, loss, "mean")
    assert result.passed, (result.max_abs_error, result.max_rel_error)
    assert result.max_abs_error < 1e-8


@pytest.mark.parametrize("index", [0, 3, 8])
def test_a_wrong_analytical_gradient_fails(index):
    layers = [
        Layer(np.array([[0.436, 0.420], [0.550, 0.420]]), np.zeros(2), "relu"),
        Layer(np.array([[0.026, 1.0]]), np.array([0.33]), "sigmoid"),
    ]
    good = gradcheck(layers, np.array([[0.7, 0.3]]), np.array([[1.0]]), "binary_cross_entropy", "mean")
    assert good.passed
    wrong = good.analytical.copy()
    wrong[index] += 1e-3
    bad = compare(wrong, good.numerical, 1e-5, 1e-3, good.layout)
    assert not bad.passed and bad.worst == index
    assert bad.max_abs_error == pytest.approx(1e-3, rel=1e-3)


def test_the_criterion_is_torchs():
    layout = Layout(((1, 1),), ("identity",))
    numerical = np.array([1.0, 2.0])
    # allowed = atol + rtol * |n| = 0.1 + 0.1 * |n|: 0.2 and 0.3.
    assert compare(numerical + [0.2, 0.3], numerical, 0.1, 0.1, layout).passed
    assert not compare(numerical + [0.2, 0.31], numerical, 0.1, 0.1, layout).passed


def test_overflowing_numerical_gradient_is_reported():
    # At w = 1e154 the loss is finite (output 1e154, squared 1e308) but w + eps is not representable apart
    # and (w * 1.0000001)^2 overflows: a step of 1e147 makes the loss at w + eps infinite.
    layers = [Layer(np.array([[1.3e154]]), np.zeros(1), "identity")]
    with pytest.raises(NonFiniteError) as err:
        gradcheck(layers, np.array([[1.0]]), np.array([[0.0]]), "mse", "sum", epsilon=1e153)
    assert err.value.layer == 0


def test_an_epsilon_past_half_of_float64s_range_still_divides_right():
    # 2 * epsilon overflows: the difference quotient used to become -0.0.
    layers = [Layer(np.array([[0.5]]), np.array([0.1]), "tanh")]
    out = numerical_gradient(layers, np.array([[1.0]]), np.array([[1e-10]]), "mse", "mean", epsilon=9e307)
    # tanh saturates at +-1: ((1 - 1e-10)**2 - (1 + 1e-10)**2) / (2 * 9e307), a subnormal.
    assert out[0] < 0 and out[0] == pytest.approx(-4e-10 / 1.8e308, rel=1e-3)

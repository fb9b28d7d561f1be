import numpy as np
import pytest

from app.nn.activations import ACTIVATIONS, LAST_LAYER_ONLY

ELEMENTWISE = sorted(name for name, a in ACTIVATIONS.items() if a.elementwise)
H = 1e-6


def numerical_vjp(f, z: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Central differences of sum(g * f(z)) with respect to each entry of z."""
    out = np.empty_like(z)
    for idx in np.ndindex(z.shape):
        zp, zm = z.copy(), z.copy()
        zp[idx] += H
        zm[idx] -= H
        out[idx] = (np.sum(g * f(zp)) - np.sum(g * f(zm))) / (2 * H)
    return out


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_backward_matches_central_differences(name, rng):
    act = ACTIVATIONS[name]
    z = rng.normal(0, 2, (4, 5))
    z[np.abs(z) < 1e-3] = 0.5  # keep away from the kinks of relu, leaky_relu and elu
    g = rng.normal(size=z.shape)
    analytic = act.backward(z, act.forward(z), g)
    np.testing.assert_allclose(analytic, numerical_vjp(act.forward, z, g), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize(
    "name, expected",
    [("relu", 0.0), ("leaky_relu", 0.01), ("elu", 1.0), ("sigmoid", 0.25), ("tanh", 1.0), ("softplus", 0.5), ("identity", 1.0)],
)
def test_derivative_at_zero_follows_pytorch(name, expected):
    act = ACTIVATIONS[name]
    z = np.zeros((1, 1))
    assert act.backward(z, act.forward(z), np.ones((1, 1)))[0, 0] == expected


@pytest.mark.parametrize(
    "name, z, expected",
    [
        ("relu", [-2.0, 3.0], [0.0, 3.0]),
        ("leaky_relu", [-2.0, 3.0], [-0.02, 3.0]),
        ("elu", [-1.0, 2.0], [np.expm1(-1.0), 2.0]),
        ("sigmoid", [0.0, np.log(3.0)], [0.5, 0.75]),
        ("tanh", [0.0, np.log(2.0)], [0.0, 0.6]),
        ("softplus", [0.0, 25.0], [np.log(2.0), 25.0]),
    ],
)
def test_forward_values(name, z, expected):
    np.testing.assert_allclose(ACTIVATIONS[name].forward(np.array([z])), [expected], rtol=1e-15, atol=1e-17)


def test_softmax_rows_sum_to_one_and_are_shift_invariant(rng):
    z = rng.normal(size=(3, 4))
    a = ACTIVATIONS["softmax"].forward(z)
    np.testing.assert_allclose(a.sum(axis=1), 1.0, rtol=1e-15)
    np.testing.assert_allclose(ACTIVATIONS["softmax"].forward(z + 1000.0), a, rtol=1e-13)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@pytest.mark.parametrize("scale", [1e3, 1e100, 1e300])
def test_extreme_inputs_stay_finite_without_warnings(name, scale):
    act = ACTIVATIONS[name]
    z = np.array([[-scale, -1.0, 0.0, 1.0, scale]])
    with np.errstate(over="raise", divide="raise", invalid="raise", under="ignore"):
        a = act.forward(z)
        if name in ("identity", "relu", "leaky_relu", "softplus", "elu"):
            assert np.isfinite(a[:, 1:4]).all()
        else:
            assert np.isfinite(a).all()
        grad = act.backward(z, a, np.ones_like(z))
    assert np.isfinite(grad).all()


def test_sigmoid_saturates_exactly():
    a = ACTIVATIONS["sigmoid"].forward(np.array([[-800.0, 800.0]]))
    assert a[0, 0] >= 0.0 and a[0, 0] < 1e-300
    assert a[0, 1] == 1.0


def test_softmax_is_the_only_last_layer_activation():
    assert LAST_LAYER_ONLY == {"softmax"}

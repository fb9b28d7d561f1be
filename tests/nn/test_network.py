from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from app.nn.activations import ACTIVATIONS
from app.nn.errors import NonFiniteError
from app.nn.layout import Layout
from app.nn.losses import LOSSES
from app.nn.network import Layer, evaluate, forward, loss_value, unpack
from tests.support.random_networks import random_layers, random_targets

HIDDEN = sorted(name for name, a in ACTIVATIONS.items() if a.elementwise)
H = 1e-6


def last_activation_for(loss: str, rng) -> str:
    required = LOSSES[loss].requires_activation
    return required or str(rng.choice(sorted(ACTIVATIONS)))


def numerical_gradient(layers, x, y, loss, reduction) -> np.ndarray:
    layout = Layout.of(layers)
    theta = layout.pack(layers)
    out = np.empty_like(theta)
    for i in range(theta.size):
        values = []
        for step in (H, -H):
            t = theta.copy()
            t[i] += step
            values.append(loss_value(forward(unpack(layout, t), x), y, loss, reduction))
        out[i] = (values[0] - values[1]) / (2 * H)
    return out


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.parametrize("hidden", HIDDEN)
def test_network_gradient_matches_central_differences(hidden, loss, reduction, rng):
    sizes = [3, 4, 5, 3]
    acts = [hidden, str(rng.choice(HIDDEN)), last_activation_for(loss, rng)]
    layers = random_layers(rng, sizes, acts)
    x = rng.normal(size=(6, sizes[0]))
    y = random_targets(rng, loss, 6, sizes[-1])
    ev = evaluate(layers, x, y, loss, reduction)
    numeric = numerical_gradient(layers, x, y, loss, reduction)
    # Kinked activations (relu, leaky_relu) can sit within H of a kink; relu's pre-activations
    # are continuous in theta, so this is rare at these sizes and seeds.
    np.testing.assert_allclose(ev.gradient, numeric, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("depth", [1, 2, 5])
def test_gradient_of_deeper_networks(depth, rng):
    sizes = [2] + [3] * depth
    layers = random_layers(rng, sizes, ["tanh"] * (depth - 1) + ["softmax"])
    x = rng.normal(size=(4, 2))
    y = random_targets(rng, "cross_entropy", 4, 3)
    ev = evaluate(layers, x, y, "cross_entropy", "mean")
    np.testing.assert_allclose(ev.gradient, numerical_gradient(layers, x, y, "cross_entropy", "mean"), rtol=1e-6, atol=1e-9)


def test_forward_shapes_and_values(rng):
    layers = random_layers(rng, [2, 3, 1], ["relu", "identity"])
    x = rng.normal(size=(5, 2))
    fwd = forward(layers, x)
    assert [p.shape for p in fwd.pre] == [(5, 3), (5, 1)]
    np.testing.assert_allclose(fwd.pre[0], x @ layers[0].weights.T + layers[0].biases)
    np.testing.assert_allclose(fwd.post[0], np.maximum(fwd.pre[0], 0))
    assert fwd.output is fwd.post[-1]


def test_unpack_gives_layers_viewing_the_flat_vector(rng):
    layers = random_layers(rng, [3, 2, 4], ["tanh", "sigmoid"])
    layout = Layout.of(layers)
    flat = layout.pack(layers)
    unpacked = unpack(layout, flat)
    for got, layer in zip(unpacked, layers, strict=True):
        np.testing.assert_array_equal(got.weights, layer.weights)
        np.testing.assert_array_equal(got.biases, layer.biases)
        assert got.activation == layer.activation
    unpacked[1].biases[2] = 42.0
    assert flat[layout.flat_index(1, "biases", (2,))] == 42.0
    assert Layout.of(unpacked) is layout


def test_evaluate_does_not_write_its_inputs(rng):
    layers = random_layers(rng, [2, 3, 1], ["elu", "sigmoid"])
    before = [(l.weights.copy(), l.biases.copy()) for l in layers]
    x = rng.normal(size=(3, 2))
    x0 = x.copy()
    y = rng.uniform(size=(3, 1))
    evaluate(layers, x, y, "binary_cross_entropy", "mean")
    np.testing.assert_array_equal(x, x0)
    for (w, b), layer in zip(before, layers):
        np.testing.assert_array_equal(w, layer.weights)
        np.testing.assert_array_equal(b, layer.biases)


def test_overflow_names_the_layer():
    layers = [
        Layer(np.array([[1e200, 1e200]]), np.zeros(1), "identity"),
        Layer(np.array([[1e200]]), np.zeros(1), "identity"),
    ]
    x = np.array([[1.0, 1.0]])
    with pytest.raises(NonFiniteError) as err:
        forward(layers, x)
    assert (err.value.layer, err.value.quantity) == (1, "pre_activation")


def test_loss_overflow_is_reported():
    layers = [Layer(np.array([[1e200]]), np.zeros(1), "identity")]
    with pytest.raises(NonFiniteError) as err:
        evaluate(layers, np.array([[1e100]]), np.array([[0.0]]), "mse", "mean")
    assert (err.value.layer, err.value.quantity) == (0, "loss")


def test_gradient_overflow_is_reported():
    # Forward and loss are finite (the sigmoid saturates), but dL/dW = (p - y) * x overflows in sum.
    layers = [Layer(np.array([[1e-300, 1e-300]]), np.zeros(1), "sigmoid")]
    x = np.array([[1e308, 1e308], [1e308, 1e308]])
    y = np.array([[0.0], [0.0]])
    with pytest.raises(NonFiniteError) as err:
        evaluate(layers, x, y, "binary_cross_entropy", "sum")
    assert (err.value.layer, err.value.quantity) == (0, "gradient")


def test_finite_values_whose_sum_overflows_are_not_an_overflow():
    # Every value is finite, but their sum (the one check of a pass) is not: the per-value
    # search then finds nothing to report.
    layers = [Layer(np.array([[1.0], [1.0]]), np.zeros(2), "identity"), Layer(np.array([[1e-10, 1e-10]]), np.zeros(1), "sigmoid")]
    x = np.array([[1.5e308], [1.5e308]])
    fwd = forward(layers, x)
    np.testing.assert_array_equal(fwd.pre[0], [[1.5e308, 1.5e308], [1.5e308, 1.5e308]])
    ev = evaluate(layers, x, np.array([[1.0], [0.0]]), "binary_cross_entropy", "mean")
    assert np.isfinite(ev.loss) and np.isfinite(ev.gradient).all()


def test_the_first_overflow_in_computing_order_is_reported():
    # Layer 0's pre-activation overflows, and so does everything computed from it (layer 1's
    # pre-activation, the loss, the gradients): the first in computing order is named.
    layers = [Layer(np.array([[1e300]]), np.zeros(1), "identity"), Layer(np.array([[1e300]]), np.zeros(1), "identity")]
    with pytest.raises(NonFiniteError) as err:
        evaluate(layers, np.array([[1e10]]), np.array([[0.0]]), "mse", "mean")
    assert (err.value.layer, err.value.quantity) == (0, "pre_activation")


def _evaluation_arrays(ev) -> list[np.ndarray]:
    return [*ev.forward.pre, *ev.forward.post, ev.gradient]


@pytest.mark.parametrize("sizes", [[2, 2, 1], [3, 5, 4, 2], [30, 40, 10]])
def test_results_are_new_arrays_whichever_buffers_computed_them(sizes, rng):
    """Small shapes reuse this thread's buffers: a later pass must not change an earlier result."""
    acts = ["tanh"] * (len(sizes) - 2) + ["sigmoid"]
    runs = []
    for _ in range(3):
        layers = random_layers(rng, sizes, acts)
        x, y = rng.normal(size=(4, sizes[0])), rng.random((4, sizes[-1]))
        ev, fwd = evaluate(layers, x, y, "mse", "mean"), forward(layers, x)
        runs.append((layers, x, y, [a.copy() for a in _evaluation_arrays(ev)], ev, fwd))
    for layers, x, y, first, ev, fwd in runs:
        for kept, now in zip(first, _evaluation_arrays(ev)):
            np.testing.assert_array_equal(kept, now)
        np.testing.assert_array_equal(fwd.output, ev.forward.output)
        # ... and equal to a pass on buffers of its own (a batch of another size).
        alone = evaluate(layers, np.vstack([x, x]), np.vstack([y, y]), "mse", "sum")
        np.testing.assert_allclose(alone.gradient, 2 * y.size * ev.gradient, rtol=1e-12, atol=1e-15)


def test_a_pass_after_an_overflow_is_unaffected(rng):
    layers = random_layers(rng, [2, 3, 1], ["relu", "sigmoid"])
    x, y = rng.normal(size=(2, 2)), rng.random((2, 1))
    before = evaluate(layers, x, y, "binary_cross_entropy", "mean")
    with pytest.raises(NonFiniteError):
        big = [Layer(np.full_like(l.weights, 1e10), l.biases, l.activation) for l in layers]
        evaluate(big, np.full((2, 2), 1e300), y, "binary_cross_entropy", "mean")
    after = evaluate(layers, x, y, "binary_cross_entropy", "mean")
    for a, b in zip(_evaluation_arrays(before), _evaluation_arrays(after)):
        np.testing.assert_array_equal(a, b)
    assert before.loss == after.loss


def test_threads_computing_the_same_shapes_do_not_mix(rng):
    cases = []
    for _ in range(8):
        layers = random_layers(rng, [4, 6, 3], ["tanh", "softmax"])
        x, y = rng.normal(size=(5, 4)), rng.dirichlet(np.ones(3), size=5)
        ev = evaluate(layers, x, y, "cross_entropy", "mean")
        cases.append((layers, x, y, [a.copy() for a in _evaluation_arrays(ev)], ev.loss))

    def check(case) -> bool:
        layers, x, y, expected, loss = case
        for _ in range(200):
            ev = evaluate(layers, x, y, "cross_entropy", "mean")
            if ev.loss != loss or not all(np.array_equal(a, b) for a, b in zip(expected, _evaluation_arrays(ev))):
                return False
        return True

    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(check, cases * 2))

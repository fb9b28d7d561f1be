"""The plain reference (app/nn/reference.py) and the fast engine compute the same numbers."""

from __future__ import annotations

import numpy as np
import pytest

from app.nn import reference
from app.nn.losses import LOSSES
from app.nn.network import evaluate
from app.nn.optimizers import SGD
from app.nn.training import train
from tests.support.random_networks import random_layers, random_targets

# The reference is written by hand for these; a loss or activation added to the engine is checked
# by finite differences and PyTorch instead.
HIDDEN = [name for name in reference.ACTIVATIONS if name != "softmax"]


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("loss", reference.LOSSES)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_reference_equals_the_engine(hidden, loss, reduction, rng):
    last = LOSSES[loss].requires_activation or rng.choice(HIDDEN + ["softmax"])
    layers = random_layers(rng, [3, 5, 4, 2], [hidden, hidden, str(last)])
    x = rng.normal(size=(6, 3))
    y = random_targets(rng, loss, 6, 2)
    ev = evaluate(layers, x, y, loss, reduction)
    value, grads = reference.loss_and_gradients(
        [l.weights for l in layers], [l.biases for l in layers], [l.activation for l in layers], x, y, loss, reduction
    )
    assert value == pytest.approx(ev.loss, rel=1e-13, abs=1e-15)
    for (w, b), (gw, gb) in zip(ev.layout.views(ev.gradient), grads, strict=True):
        np.testing.assert_allclose(gw, w, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(gb, b, rtol=1e-12, atol=1e-14)
    zs, outs = reference.forward([l.weights for l in layers], [l.biases for l in layers], [l.activation for l in layers], x)
    for z, a, ez, ea in zip(zs, outs, ev.forward.pre, ev.forward.post, strict=True):
        np.testing.assert_allclose(z, ez, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(a, ea, rtol=1e-13, atol=1e-15)


def test_the_seed_by_hand():
    # The blog post's network: the loss and the gradient of w11, worked out in its post.
    w = [np.array([[0.436, 0.420], [0.550, 0.420]]), np.array([[0.026, 1.0]])]
    b = [np.zeros(2), np.array([0.330])]
    value, grads = reference.loss_and_gradients(
        w, b, ["relu", "sigmoid"], np.array([[0.7, 0.3]]), np.array([[1.0]]), "binary_cross_entropy", "mean"
    )
    assert value == pytest.approx(0.35520347518814194, abs=1e-15)
    # dL/dw11 = (z_hat - 1) * z1 with z1 = 0.7 * 0.436 + 0.3 * 0.420 = 0.4312
    assert grads[1][0][0, 0] == pytest.approx((0.7010307863243558 - 1.0) * 0.4312, rel=1e-12)


@pytest.mark.parametrize("loss", reference.LOSSES)
def test_training_steps_along_the_reference_gradients(loss, rng):
    """Plain SGD from the reference's gradients, iteration by iteration, is what training records."""
    last = LOSSES[loss].requires_activation or "tanh"
    layers = random_layers(rng, [3, 4, 2], ["elu", last])
    x, y = rng.normal(size=(5, 3)), random_targets(rng, loss, 5, 2)
    result = train(layers, x, y, loss, "mean", SGD(0.1), 4, record=frozenset({"gradients", "network"}))
    assert result.status == "completed"
    weights, biases, acts = [l.weights for l in layers], [l.biases for l in layers], [l.activation for l in layers]
    for i in range(4):
        value, grads = reference.loss_and_gradients(weights, biases, acts, x, y, loss, "mean")
        assert result.trace.losses[i] == pytest.approx(value, rel=1e-12, abs=1e-15)
        for (gw, gb), (w, b) in zip(grads, result.layout.views(result.trace.gradients[i]), strict=True):
            np.testing.assert_allclose(w, gw, rtol=1e-10, atol=1e-13)
            np.testing.assert_allclose(b, gb, rtol=1e-10, atol=1e-13)
        weights = [w - 0.1 * gw for w, (gw, _) in zip(weights, grads)]
        biases = [b - 0.1 * gb for b, (_, gb) in zip(biases, grads)]
        for (w, b), ew, eb in zip(result.layout.views(result.trace.params[i]), weights, biases, strict=True):
            np.testing.assert_allclose(w, ew, rtol=1e-10, atol=1e-13)
            np.testing.assert_allclose(b, eb, rtol=1e-10, atol=1e-13)
    np.testing.assert_array_equal(result.params, result.trace.params[-1])


def test_the_reference_covers_names_the_engine_has():
    from app.nn.activations import ACTIVATIONS

    assert set(reference.LOSSES) <= set(LOSSES) and set(reference.ACTIVATIONS) <= set(ACTIVATIONS)

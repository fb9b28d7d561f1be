"""The plain reference (app/nn/reference.py) and the fast engine compute the same numbers."""

from __future__ import annotations

import numpy as np
import pytest

from app.nn import reference
from app.nn.losses import LOSSES
from app.nn.network import evaluate
from tests.conftest import random_layers, random_targets

HIDDEN = ["identity", "relu", "leaky_relu", "sigmoid", "tanh", "softplus", "elu"]


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("loss", sorted(LOSSES))
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

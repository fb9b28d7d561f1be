import numpy as np
import pytest

from app.nn.activations import ACTIVATIONS
from app.nn.losses import LOSSES

H = 1e-6


def targets_for(name, rng, shape):
    if name == "binary_cross_entropy":
        return rng.uniform(0, 1, shape)
    if name == "cross_entropy":
        return rng.dirichlet(np.ones(shape[1]), size=shape[0])
    return rng.normal(size=shape)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_grad_matches_central_differences(name, reduction, rng):
    loss = LOSSES[name]
    x = rng.normal(0, 2, (5, 3))
    y = targets_for(name, rng, x.shape)
    numeric = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += H
        xm[idx] -= H
        numeric[idx] = (loss.value(xp, y, reduction) - loss.value(xm, y, reduction)) / (2 * H)
    np.testing.assert_allclose(loss.grad(x, y, reduction), numeric, rtol=1e-6, atol=1e-9)


def naive_bce(x, y):
    p = 1 / (1 + np.exp(-x))
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def naive_ce(x, y):
    p = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    return -(y * np.log(p)).sum(axis=1)


def test_hand_values(rng):
    x = rng.normal(size=(4, 3))
    y = rng.uniform(0, 1, (4, 3))
    assert LOSSES["binary_cross_entropy"].value(x, y, "sum") == pytest.approx(naive_bce(x, y).sum(), rel=1e-13)
    p = rng.dirichlet(np.ones(3), size=4)
    assert LOSSES["cross_entropy"].value(x, p, "sum") == pytest.approx(naive_ce(x, p).sum(), rel=1e-13)
    assert LOSSES["mse"].value(x, y, "sum") == pytest.approx(((x - y) ** 2).sum(), rel=1e-14)


@pytest.mark.parametrize("name, divisor", [("binary_cross_entropy", 12), ("mse", 12), ("cross_entropy", 4)])
def test_mean_divides_by_elements_or_samples(name, divisor, rng):
    # mean is over all elements for bce and mse, over samples (rows) for cross_entropy: a
    # batch of 4 rows and 3 columns tells the two apart.
    loss = LOSSES[name]
    x = rng.normal(size=(4, 3))
    y = targets_for(name, rng, x.shape)
    assert loss.value(x, y, "mean") == pytest.approx(loss.value(x, y, "sum") / divisor, rel=1e-14)
    np.testing.assert_allclose(loss.grad(x, y, "mean"), loss.grad(x, y, "sum") / divisor, rtol=1e-14)


@pytest.mark.parametrize("magnitude", [50.0, 1e4, 1e150, 1e300])
def test_fused_losses_are_stable_at_any_logit_magnitude(magnitude):
    x = np.array([[magnitude, -magnitude]])
    with np.errstate(over="raise", divide="raise", invalid="raise", under="ignore"):
        bce = LOSSES["binary_cross_entropy"]
        # Correct predictions cost ~0; wrong ones cost ~|x| (log(1 + e^|x|) ~ |x|).
        assert bce.value(x, np.array([[1.0, 0.0]]), "sum") == pytest.approx(0.0, abs=1e-20)
        assert bce.value(x, np.array([[0.0, 1.0]]), "sum") == pytest.approx(2 * magnitude, rel=1e-12)
        np.testing.assert_allclose(bce.grad(x, np.array([[0.0, 1.0]]), "sum"), [[1.0, -1.0]])
        ce = LOSSES["cross_entropy"]
        assert ce.value(x, np.array([[1.0, 0.0]]), "sum") == pytest.approx(0.0, abs=1e-20)
        assert ce.value(x, np.array([[0.0, 1.0]]), "sum") == pytest.approx(2 * magnitude, rel=1e-12)
        np.testing.assert_allclose(ce.grad(x, np.array([[0.0, 1.0]]), "sum"), [[1.0, -1.0]])


def test_fused_losses_require_their_activation():
    assert LOSSES["binary_cross_entropy"].requires_activation == "sigmoid"
    assert LOSSES["cross_entropy"].requires_activation == "softmax"
    assert LOSSES["mse"].requires_activation is None and not LOSSES["mse"].from_logits


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("name", [name for name, spec in sorted(LOSSES.items()) if spec.grad_from_output is not None])
@pytest.mark.parametrize("scale", [1.0, 30.0, 1e200])
def test_grad_from_the_activation_output_is_the_grad_bit_for_bit(name, reduction, scale, rng):
    """A single pass reuses its forward's activation; training does not: both must give the same bits."""
    spec = LOSSES[name]
    x = rng.normal(size=(5, 3)) * scale
    y = rng.random((5, 3))
    a = ACTIVATIONS[spec.requires_activation].forward(x)
    np.testing.assert_array_equal(spec.grad_from_output(a, y, reduction), spec.grad(x, y, reduction))

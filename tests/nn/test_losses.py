import numpy as np
import pytest

from app.nn.activations import ACTIVATIONS
from app.nn.losses import LOSSES, class_index_targets

H = 1e-6


def targets_for(name, rng, shape):
    return LOSSES[name].sample_targets(rng, shape)


def central_differences(loss, x: np.ndarray, y: np.ndarray, reduction: str) -> np.ndarray:
    """dL/dx of ``loss``'s value by central differences, element by element."""
    numeric = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += H
        xm[idx] -= H
        numeric[idx] = (loss.value(xp, y, reduction) - loss.value(xm, y, reduction)) / (2 * H)
    return numeric


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_grad_matches_central_differences(name, reduction, rng):
    loss = LOSSES[name]
    x = rng.normal(0, 2, (5, 3))
    y = targets_for(name, rng, x.shape)
    numeric = central_differences(loss, x, y, reduction)
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


# -- cross_entropy with torch's options: class-index targets, class weights, label smoothing ---------

SMOOTHING = [0.0, 0.1, 0.9]
C = 4


def ce_case(rng, index_targets, weighted, batch=6):
    """Logits, targets as the loss takes them (one-hot rows for class indices), the indices, weights."""
    x = rng.normal(0, 2, (batch, C))
    indices = rng.integers(0, C, batch)
    y = class_index_targets(indices, C) if index_targets else rng.dirichlet(np.ones(C), size=batch)
    w = rng.uniform(0.2, 3.0, C) if weighted else None
    return x, y, indices, w


def naive_ce_with_options(x, y, indices, w, eps, reduction, index_targets):
    """torch's definition written out term by term, for class indices as torch's nll_loss plus its
    smoothing term, for rows as a weighted sum over the smoothed rows."""
    n, classes = x.shape
    w = np.ones(classes) if w is None else w
    logp = np.log(np.exp(x) / np.exp(x).sum(axis=1, keepdims=True))
    if index_targets:
        nll = sum(-w[t] * logp[i, t] for i, t in enumerate(indices))
        smooth = sum(-w[j] * logp[i, j] for i in range(n) for j in range(classes))
        divisor = sum(w[t] for t in indices) if reduction == "mean" else 1.0
        return ((1 - eps) * nll + eps / classes * smooth) / divisor
    q = y * (1 - eps) + eps / classes
    total = sum(-w[j] * q[i, j] * logp[i, j] for i in range(n) for j in range(classes))
    return total / (n if reduction == "mean" else 1.0)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("eps", SMOOTHING)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("index_targets", [True, False], ids=["indices", "rows"])
def test_cross_entropy_options_value_and_grad(index_targets, weighted, eps, reduction, rng):
    x, y, indices, w = ce_case(rng, index_targets, weighted)
    loss = LOSSES["cross_entropy"].bind(class_weights=w, label_smoothing=eps, index_targets=index_targets)
    expected = naive_ce_with_options(x, y, indices, w, eps, reduction, index_targets)
    assert loss.value(x, y, reduction) == pytest.approx(expected, rel=1e-13)
    # values() on a stack agrees with value() on each member
    stack = np.stack([x, 0.5 * x, -x])
    np.testing.assert_allclose(loss.values(stack, y, reduction), [loss.value(s, y, reduction) for s in stack], rtol=1e-15)
    numeric = central_differences(loss, x, y, reduction)
    grad = loss.grad(x, y, reduction)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)
    # the analytic form: softmax * sum(e) - e over the divisor, e = w * ((1 - eps) y + eps / C)
    e = (y * (1 - eps) + eps / C) * (np.ones(C) if w is None else w)
    p = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    divisor = 1.0 if reduction == "sum" else (w[indices].sum() if index_targets and weighted else len(x))
    np.testing.assert_allclose(grad, (p * e.sum(axis=1, keepdims=True) - e) / divisor, rtol=1e-12, atol=1e-15)
    # the out= buffer the engine passes is written and returned
    out = np.empty_like(x)
    assert loss.grad(x, y, reduction, out=out) is out
    np.testing.assert_array_equal(out, grad)


def test_cross_entropy_options_hand_values():
    # Logits [0, 0]: p = [1/2, 1/2]. Class weights [2, 1], smoothing 0.2 over 2 classes, class 0:
    # e = w * (0.8 * [1, 0] + 0.1) = [1.8, 0.1]; the sample's term is 1.9 log 2.
    x, y, w = np.zeros((1, 2)), np.array([[1.0, 0.0]]), np.array([2.0, 1.0])
    indices = LOSSES["cross_entropy"].bind(class_weights=w, label_smoothing=0.2, index_targets=True)
    rows = LOSSES["cross_entropy"].bind(class_weights=w, label_smoothing=0.2)
    assert indices.value(x, y, "sum") == rows.value(x, y, "sum") == pytest.approx(1.9 * np.log(2), rel=1e-15)
    # mean: class indices divide by the target class's weight (2), rows by the batch size (1)
    assert indices.value(x, y, "mean") == pytest.approx(0.95 * np.log(2), rel=1e-15)
    assert rows.value(x, y, "mean") == pytest.approx(1.9 * np.log(2), rel=1e-15)
    # d/dx = p * sum(e) - e = [0.95 - 1.8, 0.95 - 0.1], over the divisor
    np.testing.assert_allclose(indices.grad(x, y, "mean"), [[-0.425, 0.425]], rtol=1e-15)
    np.testing.assert_allclose(rows.grad(x, y, "mean"), [[-0.85, 0.85]], rtol=1e-15)
    np.testing.assert_allclose(indices.grad(x, y, "sum"), [[-0.85, 0.85]], rtol=1e-15)
    assert indices.count(y, "mean") == 2.0 and rows.count(y, "mean") == 1 and indices.count(y, "sum") == 1


def test_weighted_class_indices_mean_divides_by_the_target_weights(rng):
    x, y, indices, w = ce_case(rng, True, True, batch=8)
    for eps in SMOOTHING:
        by_index = LOSSES["cross_entropy"].bind(class_weights=w, label_smoothing=eps, index_targets=True)
        by_rows = LOSSES["cross_entropy"].bind(class_weights=w, label_smoothing=eps)
        total = w[indices].sum()
        assert by_index.value(x, y, "sum") == pytest.approx(by_rows.value(x, y, "sum"), rel=1e-15)
        assert by_index.value(x, y, "mean") == pytest.approx(by_index.value(x, y, "sum") / total, rel=1e-14)
        assert by_rows.value(x, y, "mean") == pytest.approx(by_rows.value(x, y, "sum") / len(x), rel=1e-14)
        np.testing.assert_allclose(by_index.grad(x, y, "mean"), by_index.grad(x, y, "sum") / total, rtol=1e-14)
        assert total != pytest.approx(len(x))  # the two divisors differ, so the test tells them apart


def test_binding_no_option_is_the_plain_loss_and_class_indices_alone_change_no_bit(rng):
    ce = LOSSES["cross_entropy"]
    assert ce.bind() is ce and ce.bind(class_weights=None, label_smoothing=0.0, index_targets=False) is ce
    for name in ("mse", "binary_cross_entropy"):
        assert LOSSES[name].bind() is LOSSES[name]
        with pytest.raises(ValueError, match="takes no"):
            LOSSES[name].bind(label_smoothing=0.1)
    with pytest.raises(ValueError, match="label_smoothing"):
        ce.bind(label_smoothing=1.0)
    x, y, _, _ = ce_case(rng, True, False, batch=9)
    indices = ce.bind(index_targets=True)
    assert indices is not ce and indices.options.index_targets
    assert indices.value(x, y, "mean") == ce.value(x, y, "mean")
    np.testing.assert_array_equal(indices.grad(x, y, "mean"), ce.grad(x, y, "mean"))
    # unit weights: the same numbers as no weights (to rounding), for both kinds of targets
    ones = ce.bind(class_weights=np.ones(C), index_targets=True)
    assert ones.value(x, y, "mean") == pytest.approx(ce.value(x, y, "mean"), rel=1e-15)


def test_class_index_targets_are_one_hot_rows():
    y = class_index_targets([2, 0, 2], 3)
    np.testing.assert_array_equal(y, [[0, 0, 1], [1, 0, 0], [0, 0, 1]])
    assert y.dtype == np.float64


@pytest.mark.parametrize("index_targets", [True, False], ids=["indices", "rows"])
@pytest.mark.parametrize("magnitude", [50.0, 1e4, 1e150, 1e300])
def test_cross_entropy_options_are_stable_at_any_logit_magnitude(magnitude, index_targets):
    x = np.array([[magnitude, -magnitude]])
    w = np.array([2.0, 0.5])
    loss = LOSSES["cross_entropy"].bind(class_weights=w, label_smoothing=0.1, index_targets=index_targets)
    with np.errstate(over="raise", divide="raise", invalid="raise", under="ignore"):
        # Class 0 is predicted: only the smoothing's share of class 1 costs, eps / C * w[1] * 2 |x|.
        right = loss.value(x, np.array([[1.0, 0.0]]), "sum")
        assert right == pytest.approx(0.05 * 0.5 * 2 * magnitude, rel=1e-12)
        # Class 1 is the target: (1 - eps + eps / C) * w[1] * 2 |x|.
        wrong = loss.value(x, np.array([[0.0, 1.0]]), "sum")
        assert wrong == pytest.approx(0.95 * 0.5 * 2 * magnitude, rel=1e-12)
        # p = [1, 0]: d/dx = p * sum(e) - e = [sum(e) - e0, -e1], e = w * (0.9 y + 0.05)
        np.testing.assert_allclose(loss.grad(x, np.array([[0.0, 1.0]]), "sum"), [[0.475, -0.475]], rtol=1e-15)


# -- what each loss carries besides its value and gradient: its targets, its words -------------------


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_each_entry_is_filed_under_its_own_name_and_says_what_it_takes(name):
    loss = LOSSES[name]
    assert loss.name == name and loss.targets_text
    assert loss.requires_activation is None or loss.requires_activation in ACTIVATIONS
    assert loss.from_logits == (loss.requires_activation is not None)
    if not loss.accepts_class_options:
        with pytest.raises(ValueError, match="takes no"):
            loss.bind(class_weights=[1.0, 2.0])
    if not loss.accepts_class_indices:
        with pytest.raises(ValueError, match="takes no"):
            loss.bind(index_targets=True)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_the_targets_a_loss_draws_are_targets_it_takes(name, rng):
    y = LOSSES[name].sample_targets(rng, (6, 3))
    assert y.shape == (6, 3) and y.dtype == np.float64
    assert LOSSES[name].target_problem(y.tolist()) is None


@pytest.mark.parametrize(
    "name, rows, problem",
    [
        ("binary_cross_entropy", [[0.0, 1.0], [0.5, 1.5]], ((1, 1), "binary_cross_entropy targets must be in [0, 1], but found 1.5")),
        ("binary_cross_entropy", [[-0.0, 1.0]], None),
        ("cross_entropy", [[0.5, 0.5], [-0.1, 1.1]], ((1, 0), "cross_entropy targets are class probabilities in [0, 1], but found -0.1")),
        (
            "cross_entropy",
            [[0.5, 0.5], [0.3, 0.6]],
            ((1,), "each cross_entropy target row must sum to 1 (within 1e-06), but row 1 sums to 0.8999999999999999"),
        ),
        ("cross_entropy", [[0.5, 0.5000005]], None),  # within the tolerance
        ("mse", [[-1e300, 7.0]], None),
    ],
)
def test_each_loss_says_which_targets_it_refuses(name, rows, problem):
    found = LOSSES[name].target_problem(rows)
    assert (found if found is None else (found.loc, found.message)) == problem
    # A large body's targets arrive as a float64 array: the same check, the same place.
    found = LOSSES[name].target_problem(np.array(rows))
    assert (found if found is None else found.loc) == (problem if problem is None else problem[0])


def test_what_mean_divides_by_is_the_losses_to_say(rng):
    x, y, indices, w = ce_case(rng, True, True)
    weighted = LOSSES["cross_entropy"].bind(class_weights=w, index_targets=True)
    assert LOSSES["mse"].mean_over() == LOSSES["binary_cross_entropy"].mean_over() == "output elements"
    assert LOSSES["cross_entropy"].mean_over() == LOSSES["cross_entropy"].bind(class_weights=w).mean_over() == "samples"
    assert weighted.mean_over() == "the weights of the samples' target classes, summed"
    assert isinstance(weighted.count(y, "mean"), float) and isinstance(LOSSES["cross_entropy"].count(y, "mean"), int)

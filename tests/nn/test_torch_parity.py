"""Parity with PyTorch float64: forward, loss, gradients and training traces.

Skips where torch is absent; CI installs it (``pip install torch==2.13.0``).
"""

from __future__ import annotations

import numpy as np
import pytest

from app.nn.activations import ACTIVATIONS
from app.nn.layout import Layout
from app.nn.losses import LOSSES, class_index_targets
from app.nn.network import evaluate
from app.nn.optimizers import SGD, Adam
from app.nn.training import train
from tests.support.random_networks import random_layers, random_targets
from tests.support.torch_reference import HIDDEN, flat_mask, torch, torch_forward, torch_loss, torch_params, torch_train, trainable_masks

F64 = torch.float64
RTOL, ATOL = 1e-13, 1e-15


def assert_close(ours, theirs):
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=RTOL, atol=ATOL)


def case(rng, loss, hidden, sizes=(3, 5, 4, 3), batch=7):
    last = LOSSES[loss].requires_activation or str(rng.choice(sorted(ACTIVATIONS)))
    acts = [hidden, str(rng.choice(HIDDEN)), last]
    layers = random_layers(rng, list(sizes), acts)
    x = rng.normal(size=(batch, sizes[0]))
    y = random_targets(rng, loss, batch, sizes[-1])
    return layers, acts, x, y


def assert_pass_matches_torch(ev, layers, params, pres, posts, value) -> None:
    """Our forward values, loss and gradients against torch's, after ``value.backward()``."""
    value.backward()
    for ours_pre, ours_post, pre, post in zip(ev.forward.pre, ev.forward.post, pres, posts):
        assert_close(ours_pre, pre)
        assert_close(ours_post, post)
    assert ev.loss == pytest.approx(value.item(), rel=RTOL, abs=ATOL)
    for (gw, gb), (w, b) in zip(Layout.of(layers).views(ev.gradient), params):
        assert_close(gw, w.grad)
        assert_close(gb, b.grad)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.parametrize("hidden", HIDDEN)
def test_forward_loss_and_gradients_match_torch(hidden, loss, reduction, rng):
    layers, acts, x, y = case(rng, loss, hidden)
    ev = evaluate(layers, x, y, loss, reduction)
    params = torch_params(layers, F64)
    pres, posts = torch_forward(params, acts, x, F64)
    value = torch_loss(loss, pres[-1], posts[-1], torch.tensor(y), reduction)
    assert_pass_matches_torch(ev, layers, params, pres, posts, value)


@pytest.mark.parametrize("magnitude", [30.0, 1e3, 1e8])
@pytest.mark.parametrize("loss", ["binary_cross_entropy", "cross_entropy"])
def test_fused_losses_match_torch_at_large_logits(loss, magnitude, rng):
    x = rng.normal(size=(4, 3)) * magnitude
    y = random_targets(rng, loss, 4, 3)
    xt = torch.tensor(x, requires_grad=True)
    value = torch_loss(loss, xt, None, torch.tensor(y), "mean")
    value.backward()
    assert LOSSES[loss].value(x, y, "mean") == pytest.approx(value.item(), rel=RTOL)
    assert_close(LOSSES[loss].grad(x, y, "mean"), xt.grad)


OPTIMIZERS = {
    "sgd": (SGD(0.1), lambda p: torch.optim.SGD(p, lr=0.1)),
    "sgd-momentum": (SGD(0.05, momentum=0.9), lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9)),
    "sgd-nesterov": (SGD(0.05, momentum=0.8, nesterov=True), lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.8, nesterov=True)),
    "sgd-decay": (SGD(0.1, weight_decay=0.05), lambda p: torch.optim.SGD(p, lr=0.1, weight_decay=0.05)),
    "sgd-all": (
        SGD(0.05, momentum=0.7, nesterov=True, weight_decay=0.01),
        lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.7, nesterov=True, weight_decay=0.01),
    ),
    "adam": (Adam(0.01), lambda p: torch.optim.Adam(p, lr=0.01)),
    "adam-betas-eps": (Adam(0.02, (0.8, 0.99), 1e-6), lambda p: torch.optim.Adam(p, lr=0.02, betas=(0.8, 0.99), eps=1e-6)),
    "adam-decay": (Adam(0.01, weight_decay=0.1), lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.1)),
}


@pytest.mark.parametrize("frozen", [False, True], ids=["all-trainable", "frozen-mask"])
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_training_trace_matches_torch(name, frozen, rng):
    ours, make_theirs = OPTIMIZERS[name]
    loss = "cross_entropy" if "adam" in name else "mse"
    layers = random_layers(rng, [3, 4, 3], ["tanh", "softmax" if loss == "cross_entropy" else "elu"])
    acts = [l.activation for l in layers]
    x = rng.normal(size=(5, 3))
    y = random_targets(rng, loss, 5, 3)
    layout = Layout.of(layers)
    masks = trainable_masks(rng, layers, frozen)
    iterations = 12
    result = train(
        layers, x, y, loss, "mean", ours, iterations, record=frozenset({"network"}), trainable=flat_mask(layout, masks) if frozen else None
    )
    losses, _, snapshots = torch_train(layers, acts, x, y, loss, "mean", make_theirs, iterations, masks, F64)
    assert result.status == "completed"
    np.testing.assert_allclose(result.trace.losses, losses, rtol=RTOL, atol=ATOL)
    assert len(result.trace) == len(snapshots)
    for params, snapshot in zip(result.trace.params, snapshots):
        ours = np.concatenate([np.concatenate([w.ravel(), b]) for w, b in layout.views(params)])
        np.testing.assert_allclose(ours, np.concatenate([t.numpy().ravel() for t in snapshot]), rtol=RTOL, atol=ATOL)


# -- cross_entropy with class-index targets, class weights and label smoothing --------------------

# Every figure a parity test compares, kept so that a run can print the largest differences seen.
CE_OPTION_CASES = [
    pytest.param(
        index,
        weighted,
        eps,
        reduction,
        id=f"{'indices' if index else 'rows'}-{'weighted' if weighted else 'unweighted'}-eps{eps}-{reduction}",
    )
    for index in (True, False)
    for weighted in (False, True)
    for eps in (0.0, 0.1, 0.9)
    for reduction in ("mean", "sum")
]


def ce_options_case(rng, index_targets, weighted, sizes=(3, 5, 4, 6), batch=9):
    acts = [str(rng.choice(HIDDEN)) for _ in sizes[2:]] + ["softmax"]
    layers = random_layers(rng, list(sizes), acts)
    x = rng.normal(size=(batch, sizes[0]))
    classes = sizes[-1]
    indices = rng.integers(0, classes, batch)
    y = class_index_targets(indices, classes) if index_targets else rng.dirichlet(np.ones(classes), size=batch)
    w = rng.uniform(0.1, 3.0, classes) if weighted else None
    torch_targets = torch.tensor(indices) if index_targets else torch.tensor(y)
    return layers, acts, x, y, w, torch_targets


def torch_ce(pre, torch_targets, w, eps, reduction):
    weight = None if w is None else torch.tensor(w)
    return torch_loss("cross_entropy", pre, None, torch_targets, reduction, weight, eps)


@pytest.mark.parametrize("index_targets, weighted, eps, reduction", CE_OPTION_CASES)
def test_cross_entropy_options_match_torch(index_targets, weighted, eps, reduction, rng):
    layers, acts, x, y, w, yt = ce_options_case(rng, index_targets, weighted)
    loss = LOSSES["cross_entropy"].bind(class_weights=w, label_smoothing=eps, index_targets=index_targets)
    ev = evaluate(layers, x, y, loss, reduction)
    params = torch_params(layers, F64)
    pres, posts = torch_forward(params, acts, x, F64)
    value = torch_ce(pres[-1], yt, w, eps, reduction)
    assert_pass_matches_torch(ev, layers, params, pres, posts, value)
    # The loss's own gradient in the logits, against torch's, at large logits as well.
    for scale in (1.0, 1e3):
        z = rng.normal(size=y.shape) * scale
        zt = torch.tensor(z, requires_grad=True)
        v = torch_ce(zt, yt, w, eps, reduction)
        v.backward()
        assert loss.value(z, y, reduction) == pytest.approx(v.item(), rel=RTOL, abs=ATOL)
        assert_close(loss.grad(z, y, reduction), zt.grad)


@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_weighted_class_indices_differ_from_weighted_rows_as_in_torch(eps, rng):
    """The same one-hot targets as indices or as probability rows: torch divides a weighted mean by the
    target classes' weights for the first and by the batch for the second; so must we."""
    layers, acts, x, y, w, yt = ce_options_case(rng, True, True)
    as_indices = evaluate(layers, x, y, LOSSES["cross_entropy"].bind(class_weights=w, label_smoothing=eps, index_targets=True), "mean")
    as_rows = evaluate(layers, x, y, LOSSES["cross_entropy"].bind(class_weights=w, label_smoothing=eps), "mean")
    pre = torch_forward(torch_params(layers, F64), acts, x, F64)[0][-1]
    assert as_indices.loss == pytest.approx(torch_ce(pre, yt, w, eps, "mean").item(), rel=RTOL)
    assert as_rows.loss == pytest.approx(torch_ce(pre, torch.tensor(y), w, eps, "mean").item(), rel=RTOL)
    assert as_indices.loss != pytest.approx(as_rows.loss, rel=1e-6)


# Steps small enough for a sum over weighted samples too: a chaotic training (a loss jumping from 70
# to 10 and back) would amplify the last bit of any difference in summation order past the tolerance.
GENTLE_OPTIMIZERS = {
    "sgd": (SGD(0.02), lambda p: torch.optim.SGD(p, lr=0.02)),
    "sgd-momentum": (SGD(0.01, momentum=0.5), lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.5)),
    "adam": (Adam(0.01), lambda p: torch.optim.Adam(p, lr=0.01)),
}


@pytest.mark.parametrize("index_targets, weighted, eps, reduction", CE_OPTION_CASES)
@pytest.mark.parametrize("name", sorted(GENTLE_OPTIMIZERS))
def test_cross_entropy_options_training_trace_matches_torch(name, index_targets, weighted, eps, reduction, rng):
    ours, make_theirs = GENTLE_OPTIMIZERS[name]
    layers, acts, x, y, w, yt = ce_options_case(rng, index_targets, weighted, sizes=(3, 4, 5), batch=6)
    loss = LOSSES["cross_entropy"].bind(class_weights=w, label_smoothing=eps, index_targets=index_targets)
    layout = Layout.of(layers)
    iterations = 10
    result = train(layers, x, y, loss, reduction, ours, iterations, record=frozenset({"network", "gradients"}))
    params = torch_params(layers, F64)
    flat = [t for pair in params for t in pair]
    opt = make_theirs(flat)
    losses, snapshots, grads = [], [], []
    for _ in range(iterations):
        opt.zero_grad()
        pres, _ = torch_forward(params, acts, x, F64)
        value = torch_ce(pres[-1], yt, w, eps, reduction)
        value.backward()
        grads.append(np.concatenate([t.grad.numpy().ravel() for t in flat]))
        opt.step()
        losses.append(value.item())
        snapshots.append(np.concatenate([t.detach().numpy().ravel() for t in flat]))
    assert result.status == "completed" and len(result.trace) == iterations
    np.testing.assert_allclose(result.trace.losses, losses, rtol=RTOL, atol=ATOL)

    def torch_order(vector):
        return np.concatenate([np.concatenate([a.ravel(), b]) for a, b in layout.views(vector)])

    for ours_grad, ours_params, their_grad, their_params in zip(result.trace.gradients, result.trace.params, grads, snapshots):
        np.testing.assert_allclose(torch_order(ours_params), their_params, rtol=RTOL, atol=ATOL)
        # A gradient entry that sums samples of both signs to near 0 carries the rounding of its terms
        # (1e-15 of a gradient of 5 after a few steps), so entries are held to RTOL of the largest one.
        np.testing.assert_allclose(torch_order(ours_grad), their_grad, rtol=RTOL, atol=RTOL * np.abs(their_grad).max())

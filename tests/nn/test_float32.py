"""The engine in float32 (``dtype=np.float32``) against PyTorch's float32: forward, losses, gradients, training.

float32 answers are compared with torch's to float32's precision (``assert_close32``), and they
must really be float32: every array the engine returns is float32, and its numbers differ from
the float64 computation's. float64 stays the default (the float64 parity tests are
``test_torch_parity``); the last tests check that naming it changes nothing.

Skips where torch is absent (``tests.support.torch_reference``); CI installs it (``pip install torch==2.13.0``).
"""

from __future__ import annotations

import numpy as np
import pytest

from app.nn.activations import ACTIVATIONS
from app.nn.buffer_cache import prepared
from app.nn.layout import Layout
from app.nn.losses import LOSSES, class_index_targets
from app.nn.network import Layer, evaluate, forward
from app.nn.optimizers import SGD, Adam
from app.nn.training import train
from app.nn.workspace import Packed
from tests.support.random_networks import random_layers, random_targets
from tests.support.torch_float32 import F32, RTOL, assert_close32, f32, numpy
from tests.support.torch_reference import HIDDEN, flat_mask, torch, torch_forward, torch_loss, torch_params, torch_train, trainable_masks

SIZES = [(3, 5, 4, 3), (8, 16, 2), (20, 32, 32, 10), (1, 1)]


def case(rng, loss, hidden, sizes, batch=7):
    last = LOSSES[loss].requires_activation or str(rng.choice(sorted(ACTIVATIONS)))
    acts = [hidden if k == 0 else str(rng.choice(HIDDEN)) for k in range(len(sizes) - 2)] + [last]
    layers = random_layers(rng, list(sizes), acts)
    x = rng.normal(size=(batch, sizes[0]))
    y = random_targets(rng, loss, batch, sizes[-1])
    return layers, acts, x, y


def assert_forward_close32(fwd, pres, posts):
    for k, (ours_pre, ours_post, pre, post) in enumerate(zip(fwd.pre, fwd.post, pres, posts)):
        assert_close32(ours_pre, pre, f"pre_activation {k}")
        # An activation's error is its pre-activation's, at most (every slope is at most 1).
        assert_close32(ours_post, post, f"activation {k}", scale=float(np.abs(numpy(pre)).max()))


def assert_pass_matches_torch(ev, layers, params, pres, posts, value):
    value.backward()
    assert_forward_close32(ev.forward, pres, posts)
    assert isinstance(ev.loss, float)
    assert ev.loss == pytest.approx(value.item(), rel=RTOL, abs=1e-7)
    assert ev.gradient is not None
    for k, ((gw, gb), (w, b)) in enumerate(zip(Layout.of(layers).views(ev.gradient), params)):
        assert_close32(gw, w.grad, f"weights gradient {k}")
        assert_close32(gb, b.grad, f"biases gradient {k}")


# -- one pass ------------------------------------------------------------------------------------


@pytest.mark.parametrize("sizes", SIZES, ids=["-".join(map(str, s)) for s in SIZES])
@pytest.mark.parametrize("last", sorted(ACTIVATIONS))
@pytest.mark.parametrize("hidden", HIDDEN)
def test_forward_matches_torch_float32(hidden, last, sizes, rng):
    acts = [hidden] * (len(sizes) - 2) + [last]
    layers = random_layers(rng, list(sizes), acts)
    x = rng.normal(size=(6, sizes[0]))
    fwd = forward(layers, x, dtype=np.float32)
    with torch.no_grad():
        pres, posts = torch_forward(torch_params(layers, F32), acts, x, F32)
    assert_forward_close32(fwd, pres, posts)


@pytest.mark.parametrize("sizes", SIZES, ids=["-".join(map(str, s)) for s in SIZES])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.parametrize("hidden", HIDDEN)
def test_loss_and_gradients_match_torch_float32(hidden, loss, reduction, sizes, rng):
    layers, acts, x, y = case(rng, loss, hidden, sizes)
    ev = evaluate(layers, x, y, loss, reduction, dtype=np.float32)
    params = torch_params(layers, F32)
    pres, posts = torch_forward(params, acts, x, F32)
    value = torch_loss(loss, pres[-1], posts[-1], f32(y), reduction)
    assert_pass_matches_torch(ev, layers, params, pres, posts, value)
    without = evaluate(layers, x, y, loss, reduction, gradients=False, dtype=np.float32)
    assert without.loss == ev.loss


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("eps", [0.0, 0.1])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("index_targets", [False, True], ids=["rows", "indices"])
def test_cross_entropy_options_match_torch_float32(index_targets, weighted, eps, reduction, rng):
    sizes, batch = (4, 6, 5), 9
    layers = random_layers(rng, list(sizes), ["tanh", "softmax"])
    x = rng.normal(size=(batch, sizes[0]))
    classes = sizes[-1]
    indices = rng.integers(0, classes, batch)
    y = class_index_targets(indices, classes) if index_targets else rng.dirichlet(np.ones(classes), size=batch)
    w = rng.uniform(0.1, 3.0, classes) if weighted else None
    loss = LOSSES["cross_entropy"].bind(class_weights=w, label_smoothing=eps, index_targets=index_targets)
    ev = evaluate(layers, x, y, loss, reduction, dtype=np.float32)
    params = torch_params(layers, F32)
    pres, posts = torch_forward(params, ["tanh", "softmax"], x, F32)
    yt = torch.tensor(indices) if index_targets else f32(y)
    value = torch_loss("cross_entropy", pres[-1], posts[-1], yt, reduction, None if w is None else f32(w), eps)
    assert_pass_matches_torch(ev, layers, params, pres, posts, value)


# -- training --------------------------------------------------------------------------------------

OPTIMIZERS = {
    "sgd": (SGD(0.1), lambda p: torch.optim.SGD(p, lr=0.1)),
    "sgd-momentum-nesterov-decay": (
        SGD(0.05, momentum=0.7, nesterov=True, weight_decay=0.01),
        lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.7, nesterov=True, weight_decay=0.01),
    ),
    "adam": (Adam(0.01), lambda p: torch.optim.Adam(p, lr=0.01)),
    "adam-betas-eps-decay": (
        Adam(0.02, (0.8, 0.99), 1e-6, weight_decay=0.1),
        lambda p: torch.optim.Adam(p, lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
    ),
}


def assert_flat_close32(layout, ours, theirs, what):
    for k, ((w, b), (tw, tb)) in enumerate(zip(layout.views(ours), zip(theirs[::2], theirs[1::2]))):
        assert_close32(w, tw, f"{what}: layer {k} weights")
        assert_close32(b, tb, f"{what}: layer {k} biases")


@pytest.mark.parametrize("frozen", [False, True], ids=["all-trainable", "frozen-mask"])
@pytest.mark.parametrize("sizes", [(3, 4, 3), (10, 24, 16, 4)], ids=["3-4-3", "10-24-16-4"])
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_training_matches_torch_float32(name, sizes, frozen, rng):
    ours, make_theirs = OPTIMIZERS[name]
    loss = "cross_entropy" if "adam" in name else str(rng.choice(["mse", "binary_cross_entropy"]))
    last = LOSSES[loss].requires_activation or "elu"
    acts = ["tanh"] * (len(sizes) - 2) + [last]
    layers = random_layers(rng, list(sizes), acts)
    batch = 6
    x = rng.normal(size=(batch, sizes[0]))
    y = random_targets(rng, loss, batch, sizes[-1])
    layout = Layout.of(layers)
    masks = trainable_masks(rng, layers, frozen)
    iterations = 5
    result = train(
        layers,
        x,
        y,
        loss,
        "mean",
        ours,
        iterations,
        record=frozenset({"output", "gradients", "network"}),
        trainable=flat_mask(layout, masks) if frozen else None,
        dtype=np.float32,
    )
    losses, grads, snapshots = torch_train(layers, acts, x, y, loss, "mean", make_theirs, iterations, masks, F32)
    assert result.status == "completed"
    trace = result.trace
    assert len(trace) == iterations
    assert trace.gradients is not None and trace.params is not None and trace.outputs is not None
    for array in (trace.losses, trace.gradients, trace.params, trace.outputs, result.params):
        assert array.dtype == np.float32
    np.testing.assert_allclose(trace.losses, losses, rtol=RTOL, atol=1e-7)
    for i in range(iterations):
        assert_flat_close32(layout, trace.gradients[i], grads[i], f"iteration {i + 1}'s gradient")
        assert_flat_close32(layout, trace.params[i], snapshots[i], f"iteration {i + 1}'s parameters")
    assert_flat_close32(layout, result.params, snapshots[-1], "the trained parameters")
    assert result.final_loss is not None
    if frozen:
        initial = layout.pack(layers, np.float32)
        mask = flat_mask(layout, masks)
        np.testing.assert_array_equal(result.params[~mask], initial[~mask])


def test_training_chunks_of_one_iteration_in_float32(rng):
    """A network large enough for chunks of one iteration (the parameters updated in the history's rows)."""
    sizes = (64, 300, 10)
    layers = random_layers(rng, list(sizes), ["relu", "softmax"])
    for layer in layers:
        layer.weights[...] /= np.sqrt(layer.weights.shape[1])
    x = rng.normal(size=(8, sizes[0]))
    y = random_targets(rng, "cross_entropy", 8, sizes[-1])
    result = train(layers, x, y, "cross_entropy", "mean", Adam(0.01), 3, record=frozenset({"network"}), dtype=np.float32)
    losses, _, snapshots = torch_train(
        layers, ["relu", "softmax"], x, y, "cross_entropy", "mean", lambda p: torch.optim.Adam(p, lr=0.01), 3, [torch.tensor(True)] * 4, F32
    )
    np.testing.assert_allclose(result.trace.losses, losses, rtol=RTOL)
    assert_flat_close32(Layout.of(layers), result.params, snapshots[-1], "the trained parameters")


def test_divergence_in_float32_comes_sooner():
    """float32 overflows at 3.4e38 where float64 reaches 1.8e308: the same training diverges earlier."""
    layers = [random_layers(np.random.default_rng(0), [1, 1], ["identity"])[0]]
    layers[0].weights[...] = 1.0
    layers[0].biases[...] = 0.0
    x, y = np.ones((1, 1)), np.zeros((1, 1))
    run32 = train(layers, x, y, "mse", "mean", SGD(1e10), 50, dtype=np.float32)
    run64 = train(layers, x, y, "mse", "mean", SGD(1e10), 50)
    assert run32.status == run64.status == "diverged"
    assert run32.diverged_at is not None and run64.diverged_at is not None
    assert run32.diverged_at < run64.diverged_at
    assert run32.params.dtype == np.float32 and np.isfinite(run32.params).all()


# -- float32 really happened, and float64 is unchanged ---------------------------------------------


def test_float32_arrays_and_buffers_are_float32_and_differ_from_float64(rng):
    layers, acts, x, y = case(rng, "cross_entropy", "tanh", (20, 32, 32, 10))
    ev32 = evaluate(layers, x, y, "cross_entropy", "mean", dtype=np.float32)
    ev64 = evaluate(layers, x, y, "cross_entropy", "mean")
    assert ev32.gradient is not None and ev64.gradient is not None
    assert ev32.gradient.dtype == np.float32 and ev64.gradient.dtype == np.float64
    assert all(a.dtype == np.float32 for a in ev32.forward.pre + ev32.forward.post)
    # Close (float32's precision) but not the float64 numbers: float32 really was computed.
    np.testing.assert_allclose(ev32.gradient, ev64.gradient, rtol=1e-4, atol=1e-6)
    assert not np.array_equal(ev32.gradient.astype(np.float64), ev64.gradient)
    assert ev32.loss != ev64.loss
    assert ev32.loss == pytest.approx(ev64.loss, rel=1e-5)
    # The float32 loss is a float32 number, reported as a Python float.
    assert ev32.loss == float(np.float32(ev32.loss))
    p = Packed.of(layers, x, np.float32)
    ws = p.ws
    for buffer in (p.params, ws.values, ws.grad, *ws.delta, *ws.d_post):
        assert buffer.dtype == np.float32


def test_buffer_cache_keeps_each_dtype_apart(rng):
    layers = random_layers(rng, [2, 3, 1], ["tanh", "sigmoid"])
    x = rng.normal(size=(4, 2))
    p64, _ = prepared(layers, x)
    p32, _ = prepared(layers, x, np.float32)
    assert p64.params.dtype == np.float64 and p32.params.dtype == np.float32
    assert prepared(layers, x)[0] is p64 and prepared(layers, x, np.float32)[0] is p32
    # Alternating dtypes on the same shapes: each answer in its own dtype, each equal to a fresh one.
    y = rng.uniform(size=(4, 1))
    for _ in range(2):
        for dtype in (np.float64, np.float32, np.float64):
            ev = evaluate(layers, x, y, "binary_cross_entropy", "mean", dtype=dtype)
            fresh = evaluate(layers, x, y, "binary_cross_entropy", "mean", dtype=dtype)
            assert ev.gradient is not None and ev.gradient.dtype == dtype
            np.testing.assert_array_equal(ev.gradient, fresh.gradient)


def test_float64_named_is_the_default_bit_for_bit(rng):
    layers, acts, x, y = case(rng, "mse", "softplus", (5, 7, 3))
    default = evaluate(layers, x, y, "mse", "sum")
    named = evaluate(layers, x, y, "mse", "sum", dtype=np.float64)
    assert default.loss == named.loss
    np.testing.assert_array_equal(default.gradient, named.gradient)
    a = train(layers, x, y, "mse", "mean", Adam(0.01), 4, record=frozenset({"network"}))
    b = train(layers, x, y, "mse", "mean", Adam(0.01), 4, record=frozenset({"network"}), dtype="float64")
    np.testing.assert_array_equal(a.trace.params, b.trace.params)
    np.testing.assert_array_equal(a.trace.losses, b.trace.losses)


def test_only_float64_and_float32(rng):
    layers = random_layers(rng, [2, 1], ["identity"])
    with pytest.raises(ValueError, match="float64 or float32"):
        forward(layers, np.ones((1, 2)), dtype=np.float16)


def test_optimizer_state_astype():
    state = Adam(0.01).init(3)
    cast = state.astype(np.float32)
    assert cast.exp_avg.dtype == cast.exp_avg_sq.dtype == cast.scratch.dtype == np.float32
    assert state.exp_avg.dtype == np.float64
    assert cast.astype(np.float32) is cast


def rounded(layers):
    """The layers with their numbers rounded to float32 (and held in float64): what a float32 run starts from."""
    return [
        Layer(l.weights.astype(np.float32).astype(np.float64), l.biases.astype(np.float32).astype(np.float64), l.activation) for l in layers
    ]


@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_float32_rounding_error_is_torchs(loss, rng):
    """Against the exact answer (float64 from the same float32 numbers), our float32 gradients are off by
    about what torch's float32 gradients are off by: the same arithmetic, not merely a close answer (float64
    arithmetic rounded to float32 at the end would be off by far less)."""
    ours_sq = torch_sq = 0.0
    for _ in range(8):
        layers, acts, x, y = case(rng, loss, str(rng.choice(HIDDEN)), (20, 32, 32, 10), batch=16)
        x32, y32 = x.astype(np.float32), y.astype(np.float32)
        exact = evaluate(rounded(layers), x32.astype(np.float64), y32.astype(np.float64), loss, "mean").gradient
        ev = evaluate(layers, x, y, loss, "mean", dtype=np.float32)
        params = torch_params(layers, F32)
        pres, posts = torch_forward(params, acts, x, F32)
        torch_loss(loss, pres[-1], posts[-1], f32(y), "mean").backward()
        theirs = np.concatenate([np.concatenate([w.grad.numpy().T, b.grad.numpy()[None]]).ravel() for w, b in params])
        assert exact is not None and ev.gradient is not None
        ours_sq += float(np.sum((ev.gradient - exact) ** 2))
        torch_sq += float(np.sum((theirs - exact) ** 2))
    assert torch_sq > 0.0  # float32 loses digits; the comparison is about how many
    assert 0.3 < np.sqrt(ours_sq / torch_sq) < 2.0

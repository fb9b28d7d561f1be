import numpy as np
import pytest

from app.nn.errors import NonFiniteError
from app.nn.layout import Layout
from app.nn.network import Layer
from app.nn.optimizers import SGD, Adam
from app.nn.training import recorded_count, recorded_rows, train
from tests.support.random_networks import random_layers
from tests.support.seed_trace import SEED_LOSSES, SEED_OUTPUTS, SEED_W11


@pytest.fixture
def seed():
    layers = [
        Layer(np.array([[0.436, 0.420], [0.550, 0.420]]), np.zeros(2), "relu"),
        Layer(np.array([[0.026, 1.0]]), np.array([0.330]), "sigmoid"),
    ]
    mask = np.zeros(Layout.of(layers).size, dtype=bool)
    mask[Layout.of(layers).offsets[1]] = True  # layer 1, weights[0][0]: the blog's w11
    return layers, np.array([[0.7, 0.3]]), np.array([[1.0]]), mask


def test_seed_trace_matches_the_blog(seed):
    layers, x, y, mask = seed
    result = train(layers, x, y, "binary_cross_entropy", "mean", SGD(0.5), 3, record=frozenset({"output", "network"}), trainable=mask)
    assert result.status == "completed"
    w11 = Layout.of(layers).offsets[1]
    t = result.trace
    assert list(t.iterations) == [1, 2, 3]
    for i, (loss, out, w) in enumerate(zip(SEED_LOSSES, SEED_OUTPUTS, SEED_W11, strict=True)):
        assert t.losses[i] == pytest.approx(loss, abs=1e-12)
        assert t.outputs[i][0, 0] == pytest.approx(out, abs=1e-12)
        assert t.params[i][w11] == pytest.approx(w, abs=1e-12)
        np.testing.assert_array_equal(np.delete(t.params[i], w11), np.delete(Layout.of(layers).pack(layers), w11))


def test_training_never_writes_its_inputs(seed):
    layers, x, y, mask = seed
    copies = [(l.weights.copy(), l.biases.copy()) for l in layers]
    x0, y0, mask0 = x.copy(), y.copy(), mask.copy()
    train(layers, x, y, "binary_cross_entropy", "mean", Adam(0.1), 5, record=frozenset({"network"}))
    for (w, b), layer in zip(copies, layers):
        np.testing.assert_array_equal(w, layer.weights)
        np.testing.assert_array_equal(b, layer.biases)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(y, y0)
    np.testing.assert_array_equal(mask, mask0)


@pytest.mark.parametrize("iterations, every", [(1, 1), (10, 1), (10, 3), (10, 5), (7, 10), (100, 7), (5, 10**30)])
def test_recording_schedule(iterations, every, seed):
    layers, x, y, _ = seed
    result = train(layers, x, y, "binary_cross_entropy", "mean", SGD(0.1), iterations, record_every=every)
    expected = [i for i in range(1, iterations + 1) if (i - 1) % every == 0 or i == iterations]
    assert list(result.trace.iterations) == expected
    assert recorded_count(iterations, every) == len(expected)


@pytest.mark.parametrize("iterations", [1, 2, 7, 10, 64, 65])
@pytest.mark.parametrize("every", [1, 2, 3, 7, 64, 100])
@pytest.mark.parametrize("chunk", [1, 3, 8, 64])
def test_recorded_rows_of_every_chunking_make_up_the_schedule(iterations, every, chunk):
    every = min(every, iterations)  # as the trainer clamps it
    expected = [i for i in range(1, iterations + 1) if (i - 1) % every == 0 or i == iterations]
    found = []
    for first in range(1, iterations + 1, chunk):
        n = min(chunk, iterations - first + 1)
        rows = recorded_rows(first, n, iterations, every)
        assert rows == sorted(set(rows)) and all(0 <= r < n for r in rows)
        found += [first + r for r in rows]
    assert found == expected


def test_trace_values_are_before_the_update_and_network_after(rng):
    layers = random_layers(rng, [2, 3, 1], ["tanh", "identity"])
    x, y = rng.normal(size=(4, 2)), rng.normal(size=(4, 1))
    result = train(layers, x, y, "mse", "mean", SGD(0.1), 3, record=frozenset({"output", "gradients", "network"}))

    def output(params):
        (w0, b0), (w1, b1) = Layout.of(layers).views(params)
        return np.tanh(x @ w0.T + b0) @ w1.T + b1

    params = Layout.of(layers).pack(layers)
    t = result.trace
    for i in range(len(t)):
        np.testing.assert_allclose(t.outputs[i], output(params), rtol=1e-14)
        assert t.losses[i] == pytest.approx(np.mean((output(params) - y) ** 2), rel=1e-14)
        np.testing.assert_allclose(t.params[i], params - 0.1 * t.gradients[i], rtol=1e-15)
        params = t.params[i]
    np.testing.assert_array_equal(result.params, params)
    assert result.final_loss == pytest.approx(np.mean((output(params) - y) ** 2), rel=1e-14)


def test_divergence_stops_at_the_first_incomplete_iteration(rng):
    layers = [Layer(np.array([[1.0]]), np.zeros(1), "identity")]
    x, y = np.array([[1.0]]), np.array([[0.0]])
    # mse, lr 1e153: w grows by ~1e153 per step, squared loss overflows after a few steps.
    result = train(layers, x, y, "mse", "mean", SGD(1e153), 50, record_every=100)
    assert result.status == "diverged"
    k = result.diverged_at
    assert 1 < k < 50
    assert list(result.trace.iterations) == [1, k - 1]
    assert np.isfinite(result.params).all()
    assert result.final_loss is None or np.isfinite(result.final_loss)


def test_divergence_at_the_first_update_keeps_the_initial_network():
    layers = [Layer(np.array([[1.0]]), np.zeros(1), "identity")]
    result = train(layers, np.array([[1.0]]), np.array([[0.0]]), "mse", "sum", SGD(1e308), 3)
    assert (result.status, result.diverged_at, len(result.trace)) == ("diverged", 1, 0)
    np.testing.assert_array_equal(result.params, [1.0, 0.0])
    assert result.final_loss == 1.0


def test_an_overflowing_initial_network_is_an_error_not_divergence():
    layers = [Layer(np.array([[1e300]]), np.zeros(1), "identity")]
    with pytest.raises(NonFiniteError):
        train(layers, np.array([[1e10]]), np.array([[0.0]]), "mse", "mean", SGD(0.1), 3)


def _fields(result):
    t = result.trace
    return (result.status, result.diverged_at, result.final_loss, result.params, t.iterations, t.losses, t.outputs, t.gradients, t.params)


@pytest.mark.parametrize(
    "chunk_values, max_chunk",
    [(1, 256), (1 << 16, 3), (1 << 16, 1)],
    ids=["one-iteration chunks computing on the history rows", "chunks of 3", "chunks of 1 with a working copy"],
)
@pytest.mark.parametrize(
    "case",
    ["sgd momentum, frozen, all recorded", "adam, every 4th", "diverging"],
)
def test_every_chunk_layout_trains_identically(case, chunk_values, max_chunk, rng, monkeypatch):
    from app.nn import training

    layers = random_layers(rng, [3, 5, 2], ["tanh", "sigmoid"])
    x, y = rng.normal(size=(4, 3)), rng.integers(0, 2, (4, 2)).astype(float)
    kwargs = {
        "sgd momentum, frozen, all recorded": dict(
            optimizer=SGD(0.3, momentum=0.9, nesterov=True, weight_decay=0.01),
            record=frozenset({"output", "gradients", "network"}),
            trainable=rng.random(Layout.of(layers).size) < 0.7,
        ),
        "adam, every 4th": dict(optimizer=Adam(0.05), record_every=4),
        "diverging": dict(optimizer=SGD(1e306), record=frozenset({"network"})),
    }[case]
    optimizer = kwargs.pop("optimizer")
    default = train(layers, x, y, "binary_cross_entropy", "mean", optimizer, 11, **kwargs)
    monkeypatch.setattr(training, "CHUNK_VALUES", chunk_values)
    monkeypatch.setattr(training, "MAX_CHUNK", max_chunk)
    other = train(layers, x, y, "binary_cross_entropy", "mean", optimizer, 11, **kwargs)
    for a, b in zip(_fields(default), _fields(other), strict=True):
        np.testing.assert_array_equal(a, b)
    assert (default.status == "diverged") == (case == "diverged")


@pytest.mark.parametrize("max_chunk", [256, 1], ids=["chunks updating a working copy", "one-iteration chunks on the history rows"])
def test_training_writes_its_workspace_in_place_and_never_rebinds_a_buffer(max_chunk, rng, monkeypatch):
    from app.nn import training

    monkeypatch.setattr(training, "MAX_CHUNK", max_chunk)
    layers = random_layers(rng, [2, 3, 2], ["tanh", "softmax"])
    x, y = rng.normal(size=(4, 2)), rng.dirichlet(np.ones(2), size=4)
    trainer = training._Trainer(layers, x, y, "cross_entropy", "mean", SGD(0.1), 7, 1, frozenset(), None)
    ws = trainer.ws
    buffers = [*ws.inputs, *ws.pre, *ws.posts, ws.output, *ws.delta, *ws.d_post, ws.grad]
    chunks = [item for item in trainer.run() if isinstance(item, training.TraceChunk)]
    assert all(a is b for a, b in zip(buffers, [*ws.inputs, *ws.pre, *ws.posts, ws.output, *ws.delta, *ws.d_post, ws.grad], strict=True))
    # ... so ``values`` still holds every forward value, as Workspace says.
    assert all(np.shares_memory(a, ws.values) for a in (*ws.inputs, *ws.pre, ws.output))
    assert sum(len(chunk) for chunk in chunks) == 7

import threading

import numpy as np
import pytest

from app.nn import buffer_cache
from app.nn.buffer_cache import prepared
from app.nn.layout import Layout
from tests.support.random_networks import random_layers


@pytest.fixture(autouse=True)
def empty_cache(monkeypatch):
    """Each test starts from an empty cache (earlier tests leave this thread's filled)."""
    monkeypatch.setattr(buffer_cache, "_cache", buffer_cache._PerThread())


def test_small_shapes_reuse_this_threads_buffers_refilled(rng):
    layers = random_layers(rng, [2, 3, 1], ["tanh", "sigmoid"])
    first, shared = prepared(layers, rng.normal(size=(4, 2)))
    assert shared
    other = random_layers(rng, [2, 3, 1], ["tanh", "sigmoid"])
    x = rng.normal(size=(4, 2))
    again, shared = prepared(other, x)
    assert shared and again is first
    np.testing.assert_array_equal(again.params, Layout.of(other).pack(other))
    np.testing.assert_array_equal(again.ws.inputs[0][:, :-1], x)
    # Another batch size is another shape.
    assert prepared(other, rng.normal(size=(5, 2)))[0] is not first


def test_large_shapes_get_buffers_of_their_own(rng):
    layers = random_layers(rng, [60, 60, 10], ["tanh", "identity"])
    x = rng.normal(size=(8, 60))
    a, shared_a = prepared(layers, x)
    b, shared_b = prepared(layers, x)
    assert not shared_a and not shared_b and a is not b


def test_only_the_most_recent_shapes_are_kept(rng, monkeypatch):
    monkeypatch.setattr(buffer_cache, "SHARED_SHAPES", 2)
    nets = [random_layers(rng, [2, n, 1], ["tanh", "identity"]) for n in (1, 2, 3)]
    x = rng.normal(size=(1, 2))
    kept = [prepared(layers, x)[0] for layers in nets]
    assert prepared(nets[2], x)[0] is kept[2]
    assert prepared(nets[1], x)[0] is kept[1]
    assert prepared(nets[0], x)[0] is not kept[0]  # evicted, the least recently used


def test_each_thread_has_buffers_of_its_own(rng):
    layers = random_layers(rng, [2, 3, 1], ["tanh", "sigmoid"])
    x = rng.normal(size=(4, 2))
    mine = prepared(layers, x)[0]
    theirs = []
    thread = threading.Thread(target=lambda: theirs.append(prepared(layers, x)[0]))
    thread.start()
    thread.join()
    assert theirs[0] is not mine
    assert prepared(layers, x)[0] is mine

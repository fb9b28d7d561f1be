import numpy as np

from app.nn.layout import Layout, fill, weight_views
from tests.support.random_networks import random_layers


def test_layout_round_trip(rng):
    layers = random_layers(rng, [3, 2, 4], ["tanh", "sigmoid"])
    layout = Layout.of(layers)
    flat = layout.pack(layers)
    assert layout.size == flat.size == 3 * 2 + 2 + 2 * 4 + 4
    for (w, b), layer in zip(layout.views(flat), layers):
        np.testing.assert_array_equal(w, layer.weights)
        np.testing.assert_array_equal(b, layer.biases)
    # Each layer is a [in + 1][out] block: W.T with the biases as its last row.
    block = layout.blocks(flat)[1]
    np.testing.assert_array_equal(block, np.vstack([layers[1].weights.T, layers[1].biases]))
    layout.views(flat)[1][0][0, 0] = 42.0
    assert flat[layout.offsets[1]] == 42.0


def test_locate_round_trips(rng):
    layout = Layout.of(random_layers(rng, [3, 2, 4], ["tanh", "identity"]))
    for i in range(layout.size):
        layer, kind, index = layout.locate(i)
        assert layout.flat_index(layer, kind, index) == i
    assert layout.locate(layout.offsets[1]) == (1, "weights", (0, 0))
    assert layout.locate(layout.offsets[2] - 1) == (1, "biases", (3,))


def test_offsets_start_each_block_and_end_with_the_size():
    layout = Layout(((4, 3), (2, 4)), ("relu", "identity"))
    assert layout.offsets == (0, 4 * (3 + 1), 4 * (3 + 1) + 2 * (4 + 1))
    assert layout.size == layout.offsets[-1]


def test_a_layout_is_shared_by_networks_of_the_same_shapes(rng):
    a = Layout.of(random_layers(rng, [3, 2, 4], ["tanh", "sigmoid"]))
    b = Layout.of(random_layers(rng, [3, 2, 4], ["tanh", "sigmoid"]))
    c = Layout.of(random_layers(rng, [3, 2, 4], ["tanh", "identity"]))
    assert a is b
    assert c != a


def test_one_product_with_a_ones_column_gives_the_pre_activation(rng):
    """Why the blocks are [W.T; b]: [a, 1] @ [W.T; b] = a @ W.T + b."""
    layers = random_layers(rng, [3, 2], ["identity"])
    layout = Layout.of(layers)
    block = layout.blocks(layout.pack(layers))[0]
    a = rng.normal(size=(5, 3))
    np.testing.assert_allclose(np.hstack([a, np.ones((5, 1))]) @ block, a @ layers[0].weights.T + layers[0].biases, rtol=1e-14)


def test_fill_and_weight_views_write_and_read_the_blocks_in_place(rng):
    layers = random_layers(rng, [3, 2, 4], ["tanh", "sigmoid"])
    layout = Layout.of(layers)
    flat = np.zeros(layout.size)
    blocks = layout.blocks(flat)
    fill(blocks, layers)
    np.testing.assert_array_equal(flat, layout.pack(layers))
    weights = weight_views(blocks)
    for w, layer in zip(weights, layers, strict=True):
        np.testing.assert_array_equal(w, layer.weights)
    weights[0][1, 2] = 7.0
    assert flat[layout.flat_index(0, "weights", (1, 2))] == 7.0

import numpy as np
import pytest

from app.nn.errors import NonFiniteError
from app.nn.layout import Layout
from app.nn.network import Layer, checked_pass, forward_pass
from app.nn.workspace import Packed, Workspace
from tests.support.random_networks import random_layers


def test_buffers_have_their_documented_shapes_and_share_the_values_buffer(rng):
    layers = random_layers(rng, [3, 5, 2], ["tanh", "sigmoid"])
    x = rng.normal(size=(4, 3))
    ws = Workspace(Layout.of(layers), x)
    assert [a.shape for a in ws.inputs] == [(4, 4), (4, 6)]
    assert [a.shape for a in ws.pre] == [a.shape for a in ws.posts] == [(4, 5), (4, 2)]
    assert [a.shape for a in ws.delta] == [a.shape for a in ws.d_post] == [(4, 5), (4, 2)]
    assert ws.output.shape == (4, 2) and ws.grad.shape == (Layout.of(layers).size,)
    np.testing.assert_array_equal(ws.inputs[0], np.hstack([x, np.ones((4, 1))]))
    np.testing.assert_array_equal(ws.inputs[1][:, -1], 1.0)
    # Every forward value is a view into ``values`` (one check covers them all) ...
    for a in (*ws.inputs, *ws.pre, ws.output):
        assert np.shares_memory(a, ws.values)
    # ... and each activation is the next layer's input, or the output.
    assert np.shares_memory(ws.posts[0], ws.inputs[1]) and ws.posts[-1] is ws.output
    backward_scratch = 2 * 4 * (5 + 2)  # delta and d_post
    assert ws.values.size + backward_scratch + ws.grad.size == Workspace.floats(Layout.of(layers), 4)


def test_load_writes_new_inputs_and_keeps_the_ones(rng):
    layers = random_layers(rng, [2, 1], ["identity"])
    ws = Workspace(Layout.of(layers), np.zeros((3, 2)))
    x = rng.normal(size=(3, 2))
    ws.load(x)
    np.testing.assert_array_equal(ws.inputs[0], np.hstack([x, np.ones((3, 1))]))


def test_a_pass_told_where_the_logits_go_writes_them_there_and_leaves_the_workspace_buffer(rng):
    layers = random_layers(rng, [3, 4, 2], ["tanh", "identity"])
    x = rng.normal(size=(5, 3))
    p = Packed.of(layers, x)
    forward_pass(p.blocks, p.ws)
    expected = p.ws.pre[-1].copy()
    p.ws.pre[-1][:] = -1.0
    logits = np.empty((5, 2))
    forward_pass(p.blocks, p.ws, (*p.ws.pre[:-1], logits))
    np.testing.assert_array_equal(logits, expected)
    np.testing.assert_array_equal(p.ws.pre[-1], -1.0)


def test_check_finite_names_the_first_non_finite_value_in_computing_order(rng):
    layers = [Layer(np.array([[1.0]]), np.zeros(1), "identity"), Layer(np.array([[1.0]]), np.zeros(1), "identity")]
    p = Packed.of(layers, np.array([[1.0]]))
    checked_pass(p.blocks, p.ws, np.array([[0.0]]), "mse", "sum")
    ws = p.ws
    with np.errstate(all="ignore"):  # as every pass runs: summing non-finite values warns
        ws.check_finite(1.0, gradients=True)  # all finite: nothing raised
        ws.grad_blocks[0][0, 0] = np.nan
        ws.grad_blocks[1][0, 0] = np.inf
        with pytest.raises(NonFiniteError) as err:
            ws.check_finite(1.0, gradients=True)
        assert (err.value.layer, err.value.quantity) == (1, "gradient")  # nearest the output first
        ws.check_finite(1.0)  # gradients not asked for
        with pytest.raises(NonFiniteError) as err:
            ws.check_finite(np.inf, gradients=True)
        assert (err.value.layer, err.value.quantity) == (1, "loss")
        ws.posts[0][0, 0] = np.inf
        with pytest.raises(NonFiniteError) as err:
            ws.check_finite()
        assert (err.value.layer, err.value.quantity) == (0, "activation")
        ws.pre[1][0, 0] = np.nan
        ws.pre[0][0, 0] = -np.inf
        with pytest.raises(NonFiniteError) as err:
            ws.check_finite()
        assert (err.value.layer, err.value.quantity) == (0, "pre_activation")


def test_check_finite_passes_finite_values_whose_sum_overflows():
    layers = [Layer(np.array([[1.0]]), np.zeros(1), "identity")]
    ws = Workspace(Layout.of(layers), np.array([[1.5e308], [1.5e308]]))
    ws.pre[0][:] = ws.output[:] = 1.5e308
    with np.errstate(all="ignore"):
        assert not np.isfinite(ws.values.sum())
        ws.check_finite()


def test_packed_holds_a_new_parameter_vector_and_its_views(rng):
    layers = random_layers(rng, [3, 2], ["relu"])
    p = Packed.of(layers, rng.normal(size=(2, 3)))
    np.testing.assert_array_equal(p.params, p.layout.pack(layers))
    assert not np.shares_memory(p.params, layers[0].weights)
    assert np.shares_memory(p.blocks[0], p.params) and np.shares_memory(p.weights[0], p.params)
    np.testing.assert_array_equal(p.weights[0], layers[0].weights)

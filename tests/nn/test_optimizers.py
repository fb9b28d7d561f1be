"""Hand-worked torch.optim rules, chosen so that each classic mistake changes the numbers."""

import dataclasses

import numpy as np
import pytest

from app.nn.optimizers import BOUNDS, OPTIMIZERS, SGD, Adam, HyperParameterError


def run(opt, params, grads, trainable=None):
    p = np.asarray(params, dtype=float)
    state = opt.init(p.size)
    out = []
    for g in grads:
        p, state = opt.step(p, np.asarray(g, dtype=float), state, trainable)
        out.append(p.copy())
    return out


def test_plain_sgd():
    assert run(SGD(0.5), [1.0], [[2.0], [-1.0]])[-1][0] == pytest.approx(1.0 - 1.0 + 0.5)


def test_momentum_first_step_is_the_gradient_without_dampening():
    # buf_1 = g (a dampened first step would give 0.1 * g); buf_2 = 0.9 * buf_1 + g; ...
    ps = run(SGD(1.0, momentum=0.9), [0.0], [[1.0]] * 3)
    np.testing.assert_allclose([p[0] for p in ps], [-1.0, -2.9, -5.61], rtol=1e-15)


def test_nesterov_looks_ahead():
    # g' = g + momentum * buf: 1.9 then 2.71.
    ps = run(SGD(1.0, momentum=0.9, nesterov=True), [0.0], [[1.0]] * 2)
    np.testing.assert_allclose([p[0] for p in ps], [-1.9, -4.61], rtol=1e-15)


def test_sgd_weight_decay_is_coupled_l2():
    ps = run(SGD(1.0, weight_decay=0.1), [1.0], [[0.0]] * 2)
    np.testing.assert_allclose([p[0] for p in ps], [0.9, 0.81], rtol=1e-15)


def test_sgd_weight_decay_enters_the_momentum_buffer():
    # g'_1 = 0 + 0.1 * 1 = 0.1 -> p = 0.9; g'_2 = 0.09, buf = 0.5 * 0.1 + 0.09 = 0.14 -> p = 0.76.
    ps = run(SGD(1.0, momentum=0.5, weight_decay=0.1), [1.0], [[0.0]] * 2)
    np.testing.assert_allclose([p[0] for p in ps], [0.9, 0.76], rtol=1e-14)


def test_adam_bias_correction_makes_constant_gradients_move_by_the_learning_rate():
    # With a constant gradient, bias-corrected m_hat = g and v_hat = g^2 at every step t, so each
    # step moves by lr exactly (eps = 0). Missing or off-by-one correction breaks this at t = 1, 2, 3.
    ps = run(Adam(0.1, eps=0.0), [0.0], [[2.0]] * 3)
    np.testing.assert_allclose([p[0] for p in ps], [-0.1, -0.2, -0.3], rtol=1e-13)


def test_adam_eps_is_added_outside_the_square_root():
    # g = 1e-8: sqrt(v_hat) = 1e-8, so the step is lr * 1e-8 / (1e-8 + 1e-8) = lr / 2.
    # eps inside the square root would give lr * 1e-8 / sqrt(1e-16 + 1e-8) ~ 1e-4 * lr.
    ps = run(Adam(1.0, eps=1e-8), [0.0], [[1e-8]])
    assert ps[0][0] == pytest.approx(-0.5, rel=1e-12)


def test_adam_second_step_against_a_hand_computation():
    b1, b2, lr, eps = 0.9, 0.999, 0.01, 1e-8
    g1, g2 = 0.5, -1.5
    m1, v1 = (1 - b1) * g1, (1 - b2) * g1**2
    p1 = 1.0 - lr * (m1 / (1 - b1)) / (np.sqrt(v1 / (1 - b2)) + eps)
    m2, v2 = b1 * m1 + (1 - b1) * g2, b2 * v1 + (1 - b2) * g2**2
    p2 = p1 - lr * (m2 / (1 - b1**2)) / (np.sqrt(v2 / (1 - b2**2)) + eps)
    ps = run(Adam(lr, (b1, b2), eps), [1.0], [[g1], [g2]])
    np.testing.assert_allclose([ps[0][0], ps[1][0]], [p1, p2], rtol=1e-14)


def test_adam_weight_decay_is_coupled_not_decoupled():
    # Coupled: g' = 0.1 * p, a constant-sign gradient, so the step is lr (= 0.1): p -> 0.9.
    # AdamW's decoupled decay would give p * (1 - lr * wd) = 0.99.
    ps = run(Adam(0.1, eps=0.0, weight_decay=0.1), [1.0], [[0.0]])
    assert ps[0][0] == pytest.approx(0.9, rel=1e-14)


@pytest.mark.parametrize(
    "opt",
    [SGD(0.5, momentum=0.9, weight_decay=0.3), SGD(0.5, momentum=0.9, nesterov=True, weight_decay=0.3), Adam(0.5, weight_decay=0.3)],
)
def test_frozen_parameters_never_change_weight_decay_included(opt):
    trainable = np.array([True, False, True, False])
    start = np.array([1.0, -2.0, 3.0, 4.0])
    ps = run(opt, start, [[0.1, 0.2, -0.3, 0.0]] * 4, trainable)
    for p in ps:
        np.testing.assert_array_equal(p[~trainable], start[~trainable])
        assert (p[trainable] != start[trainable]).all()


@pytest.mark.parametrize("opt", [SGD(0.5, momentum=0.9, weight_decay=0.1), Adam(0.5, weight_decay=0.1)])
def test_step_never_writes_its_arguments(opt):
    p, g = np.array([1.0, 2.0]), np.array([0.5, -0.5])
    p0, g0 = p.copy(), g.copy()
    state = opt.init(p.size)
    new, state = opt.step(p, g, state)
    new, state = opt.step(new, g, state)
    np.testing.assert_array_equal(p, p0)
    np.testing.assert_array_equal(g, g0)
    assert state.step == 2


@pytest.mark.parametrize(
    "opt",
    [
        SGD(0.3),
        SGD(0.3, weight_decay=0.1),
        SGD(0.3, momentum=0.9),
        SGD(0.3, momentum=0.9, nesterov=True, weight_decay=0.2),
        Adam(0.1),
        Adam(0.1, (0.3, 0.9), 1e-3, 0.05),
    ],
)
def test_in_place_update_matches_the_pure_step(opt, rng):
    params = rng.normal(size=6)
    grads = rng.normal(size=(5, 6))
    pure = run(opt, params, grads)
    p = params.copy()
    state = opt.init(p.size)
    for g, expected in zip(grads, pure):
        opt.update(p, g, state)
        np.testing.assert_array_equal(p, expected)


@pytest.mark.parametrize("opt", [SGD(0.3, momentum=0.9, weight_decay=0.1), Adam(0.1, weight_decay=0.05)], ids=["sgd", "adam"])
def test_update_into_another_buffer_leaves_the_parameters_alone(opt, rng):
    params, grad = rng.normal(size=6), rng.normal(size=6)
    in_place, out = params.copy(), np.empty(6)
    before = params.copy()
    opt.update(in_place, grad, opt.init(6))
    opt.update(params, grad, opt.init(6), out)
    np.testing.assert_array_equal(out, in_place)
    np.testing.assert_array_equal(params, before)


# -- each optimizer is one class: its hyper-parameters, its checks, its wire name -----------------


def test_the_table_files_each_optimizer_under_its_wire_name():
    assert dict(OPTIMIZERS) == {"sgd": SGD, "adam": Adam}
    for name, optimizer in OPTIMIZERS.items():
        assert optimizer.name == name
        for f in dataclasses.fields(optimizer):
            assert f.metadata["description"], f"{name}.{f.name} has no description"
            assert set(f.metadata) <= {"description", "required", *BOUNDS}


def test_nesterov_without_momentum_is_refused_as_torch_does():
    with pytest.raises(HyperParameterError) as e:
        SGD(0.1, nesterov=True)
    assert (e.value.field, e.value.kind, e.value.message) == (
        "nesterov",
        "nesterov_momentum",
        "nesterov needs momentum > 0, but momentum is 0.0",
    )
    assert e.value.kind in SGD.error_kinds
    assert SGD(0.1, momentum=0.5, nesterov=True).nesterov


@pytest.mark.parametrize("opt", [SGD(0.3, momentum=0.9), Adam(0.1)], ids=["sgd", "adam"])
def test_a_state_copy_shares_no_buffer(opt):
    state = opt.init(3)
    copy = state.copy()
    assert type(copy) is type(state) and copy.step == state.step
    for f in dataclasses.fields(state):
        value = getattr(state, f.name)
        if isinstance(value, np.ndarray):
            assert getattr(copy, f.name) is not value and not np.shares_memory(getattr(copy, f.name), value)

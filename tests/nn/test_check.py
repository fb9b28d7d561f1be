"""Checking a learner's numbers (app/nn/check.py): the program against the engine, what is
correct, what is consistent (error carried forward), the first wrong element, the blog post."""

from __future__ import annotations

import numpy as np
import pytest

from app.nn.activations import ACTIVATIONS
from app.nn.check import Claimed, Problem, StepClaims, Tolerance, check, check_work, run_problem
from app.nn.errors import Stopped
from app.nn.layout import Layout
from app.nn.losses import LOSSES
from app.nn.network import Layer, evaluate
from app.nn.optimizers import SGD, Adam
from app.nn.steps import Steps
from app.nn.training import train
from tests.support.random_networks import random_layers, random_targets
from tests.support.seed_network import seed_example
from tests.support.seed_trace import SEED_LOSSES, SEED_OUTPUTS, SEED_W11

HIDDEN = [name for name, act in ACTIVATIONS.items() if act.elementwise]


def random_problem(rng: np.random.Generator, loss: str, hidden: str, optimizer=None, iterations: int = 1) -> Problem:
    last = LOSSES[loss].requires_activation or hidden
    layers = tuple(random_layers(rng, [3, 4, 2], [hidden, last]))
    x = rng.normal(size=(5, 3))
    y = random_targets(rng, loss, 5, 2)
    return Problem(layers, x, y, LOSSES[loss], "mean", optimizer, iterations)


@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.parametrize("hidden", HIDDEN)
def test_the_program_computes_what_the_engine_computes(loss, hidden, rng):
    problem = random_problem(rng, loss, hidden)
    values = run_problem(problem, Steps())
    ev = evaluate(problem.layers, problem.inputs, problem.targets, problem.loss, problem.reduction)
    assert values[(1, "loss", None, None)] == pytest.approx(ev.loss, rel=1e-12)
    np.testing.assert_allclose(values[(1, "output", None, None)], ev.forward.output, rtol=1e-12)
    for k, (w, b) in enumerate(ev.layout.views(ev.gradient)):
        np.testing.assert_allclose(values[(1, "gradients", k, "weights")], w, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(values[(1, "gradients", k, "biases")], b, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("optimizer", [SGD(0.3, momentum=0.9, weight_decay=0.1), Adam(0.05, weight_decay=0.01)], ids=["sgd", "adam"])
def test_the_programs_training_is_the_engines(optimizer, rng):
    problem = random_problem(rng, "cross_entropy", "tanh", optimizer, iterations=4)
    mask = rng.random(Layout.of(problem.layers).size) < 0.7
    problem = Problem(problem.layers, problem.inputs, problem.targets, problem.loss, "mean", optimizer, 4, mask)
    values = run_problem(problem, Steps())
    result = train(
        problem.layers, problem.inputs, problem.targets, problem.loss, "mean", optimizer, 4, record=frozenset({"network"}), trainable=mask
    )
    for i in range(4):
        assert values[(i + 1, "loss", None, None)] == pytest.approx(result.trace.losses[i], rel=1e-12)
        for k, (w, b) in enumerate(result.layout.views(result.trace.params[i])):
            np.testing.assert_allclose(values[(i + 1, "network", k, "weights")], w, rtol=1e-12)
            np.testing.assert_allclose(values[(i + 1, "network", k, "biases")], b, rtol=1e-12)


def seed_problem(**changes) -> Problem:
    layers, x, y = seed_example()
    base = dict(layers=layers, inputs=x, targets=y, loss=LOSSES["binary_cross_entropy"], reduction="mean")
    return Problem(**{**base, **changes})


def test_true_numbers_are_correct_and_the_first_wrong_is_null():
    problem = seed_problem()
    truth = run_problem(problem, Steps())
    claims = [
        StepClaims(output=Claimed.of(truth[(1, "output", None, None)].tolist()), loss=Claimed.of(float(truth[(1, "loss", None, None)])))
    ]
    result = check(problem, claims)
    assert result.first_wrong is None and all(q.correct and q.consistent for q in result.quantities)
    assert [q.path for q in result.quantities] == [("output",), ("loss",)]


def test_a_wrong_activation_is_first_wrong_and_what_follows_from_it_is_consistent():
    problem = seed_problem()
    truth = run_problem(problem, Steps())
    wrong_activation = truth[(1, "activation", 0, None)].copy()
    wrong_activation[0, 1] += 0.1  # z2 off
    # The learner's own downstream numbers, computed correctly from their wrong activation.
    learner = run_problem(problem, Steps(), {(1, "activation", 0, None): Claimed(wrong_activation, np.ones((1, 2), bool))})
    claims = [
        StepClaims(
            activation={0: Claimed.of(wrong_activation.tolist())},
            output=Claimed.of(learner[(1, "output", None, None)].tolist()),
            weight_gradients={1: Claimed.of(learner[(1, "gradients", 1, "weights")].tolist())},
        )
    ]
    result = check(problem, claims)
    by_path = {q.path: q for q in result.quantities}
    assert result.first_wrong == ("layers", 0, "activation", 0, 1)
    assert not by_path[("layers", 0, "activation")].correct and not by_path[("layers", 0, "activation")].consistent
    for path in [("output",), ("gradients", 1, "weights")]:
        assert not by_path[path].correct and by_path[path].consistent
    worst = by_path[("layers", 0, "activation")].worst
    assert (
        worst.index == (0, 1)
        and worst.claimed == pytest.approx(wrong_activation[0, 1])
        and worst.expected == pytest.approx(truth[(1, "activation", 0, None)][0, 1])
    )


def test_a_single_claimed_element_is_checked_alone():
    problem = seed_problem()
    truth = run_problem(problem, Steps())
    w = truth[(1, "gradients", 1, "weights")]
    right = Claimed.of([[float(w[0, 0]), None]])
    wrong = Claimed.of([[None, float(w[0, 1]) * 2]])
    assert check(problem, [StepClaims(weight_gradients={1: right})]).first_wrong is None
    result = check(problem, [StepClaims(weight_gradients={1: wrong})])
    assert result.first_wrong == ("gradients", 1, "weights", 0, 1)
    assert result.quantities[0].worst.index == (0, 1)


def test_tolerance_decides():
    problem = seed_problem()
    loss = float(run_problem(problem, Steps())[(1, "loss", None, None)])
    claims = [StepClaims(loss=Claimed.of(round(loss, 3)))]
    assert check(problem, claims).first_wrong == ("loss",)
    assert check(problem, claims, Tolerance(rtol=1e-2)).first_wrong is None


def blog_problem() -> tuple[Problem, list[StepClaims]]:
    """The post as its text names the network (w21 = 0.435), its printed z_hat, CE and w11."""
    layers = (
        Layer(np.array([[0.436, 0.435], [0.550, 0.420]]), np.zeros(2), "relu"),
        Layer(np.array([[0.026, 0.330]]), np.zeros(1), "sigmoid"),
    )
    layout = Layout.of(layers)
    mask = np.zeros(layout.size, dtype=bool)
    mask[layout.flat_index(1, "weights", (0, 0))] = True
    problem = Problem(layers, np.array([[0.7, 0.3]]), np.array([[1.0]]), LOSSES["binary_cross_entropy"], "mean", SGD(0.5), 3, mask)
    printed = zip(SEED_OUTPUTS, SEED_LOSSES, SEED_W11, strict=True)
    claims = [
        StepClaims(
            i + 1, ("iterations", i), output=Claimed.of([[z_hat]]), loss=Claimed.of(ce), weights_after={1: Claimed.of([[w11, None]])}
        )
        for i, (z_hat, ce, w11) in enumerate(printed)
    ]
    return problem, claims


def test_the_blog_post_its_first_wrong_number_and_its_typo():
    problem, claims = blog_problem()
    result = check(problem, claims)
    assert result.first_wrong == ("iterations", 0, "output", 0, 0)
    assert result.complete
    by_path = {q.path: q for q in result.quantities}
    # Its CE follows from its own z_hat (the (1 - z) log z_hat typo does not matter with z = 1).
    assert all(by_path[("iterations", i, "loss")].consistent for i in range(3))
    # Its w11 updates follow from its own z_hat when layer 0 uses w2 where w21 belongs (the f1 typo).
    substituted = [d for d in result.diagnoses if d.name == "parameter_substituted"]
    assert [d.detail for d in substituted] == [
        {"layer": 0, "kind": "weights", "index": [0, 1], "used_layer": 0, "used_kind": "weights", "used_index": [1, 1]}
    ]
    assert substituted[0].explains == tuple(("iterations", i, "network", "layers", 1, "weights") for i in range(3))
    for i in range(3):
        assert not by_path[("iterations", i, "network", "layers", 1, "weights")].consistent


def test_the_search_stops_at_its_work_bound_and_says_so():
    problem, claims = blog_problem()
    one_run, total = check_work(problem, claims)
    result = check(problem, claims, max_variant_work=10 * one_run)
    assert result.variants_tried == 10 < total == result.variants_total and not result.complete


def test_a_stop_request_stops_the_search():
    problem, claims = blog_problem()
    calls = iter(range(1000))
    with pytest.raises(Stopped):
        check(problem, claims, should_stop=lambda: next(calls) > 5)


@pytest.mark.parametrize("extreme", [1.7976931348623157e308, -1.7976931348623157e308, 5e-324, 0.0])
def test_extreme_claims_give_finite_answers(extreme):
    problem, _ = blog_problem()
    claims = [
        StepClaims(
            1,
            ("iterations", 0),
            pre_activation={0: Claimed.of([[extreme, -extreme]])},
            output=Claimed.of([[extreme]]),
            loss=Claimed.of(extreme),
            delta={1: Claimed.of([[extreme]])},
            weights_after={1: Claimed.of([[extreme, -extreme]])},
        )
    ]
    result = check(problem, claims)
    for q in result.quantities:
        for e in (q.worst, q.worst_given_claims):
            assert all(v is None or np.isfinite(v) for v in (e.claimed, e.expected, e.rel_error))
    assert result.first_wrong is not None


def test_a_run_keeps_only_what_it_is_asked_to_keep():
    # A check keeps the claimed quantities only: a long training's other values (every iteration's
    # network, gradients, activations) are dropped as it goes instead of held to the end.
    problem, claims = blog_problem()
    kept = {(3, "network", 1, "weights"), (2, "loss", None, None)}
    values = run_problem(problem, Steps(), keep=kept)
    assert set(values) == kept
    everything = run_problem(problem, Steps())
    assert len(everything) > 40 and all(np.array_equal(values[k], everything[k]) for k in kept)

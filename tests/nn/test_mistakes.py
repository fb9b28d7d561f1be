"""The catalogue of mistakes: each variant's own numbers are diagnosed as itself, and correct
numbers (even rounded) are never diagnosed as anything."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from app.nn import mistakes
from app.nn.check import Problem, StepClaims, check, run_problem
from app.nn.layout import Layout
from app.nn.losses import LOSSES
from app.nn.mistakes import CATALOGUE, MAX_SUBSTITUTION_PARAMETERS, Mistake, describe, variants
from app.nn.network import Layer
from app.nn.optimizers import SGD, Adam, Optimizer
from app.nn.steps import Claimed, Key, Steps
from tests.support.random_networks import random_layers, random_targets

HIDDEN = ["relu", "leaky_relu", "sigmoid", "tanh", "softplus", "elu"]
OPTIMIZERS: list[Optimizer[Any] | None] = [
    None,
    SGD(0.3),
    SGD(0.2, momentum=0.9, weight_decay=0.01),
    SGD(0.1, momentum=0.5, nesterov=True),
    Adam(0.05),
    Adam(0.1, weight_decay=0.05),
]


def problems(seed: int, count: int) -> Iterator[Problem]:
    """Small random problems over every loss, reduction and optimizer, with square layers and batches > 1."""
    rng = np.random.default_rng(seed)
    for case in range(count):
        loss = sorted(LOSSES)[case % len(LOSSES)]
        n_out = 2 if loss == "cross_entropy" else int(rng.integers(1, 3))
        # Width 2 keeps a layer square (a transposed gradient has the right shape) and the
        # substitution search small (every check of a wrong claim runs the whole catalogue).
        sizes = [2, 2, n_out] if rng.random() < 0.85 else [2, 2, 2, n_out]
        hidden = [str(rng.choice(HIDDEN)) for _ in sizes[1:-1]]
        last = LOSSES[loss].requires_activation or str(rng.choice(HIDDEN + ["identity"]))
        layers = tuple(random_layers(rng, sizes, [*hidden, last]))
        batch = int(rng.integers(1, 4))
        x = rng.normal(size=(batch, sizes[0]))
        y = random_targets(rng, loss, batch, n_out)
        optimizer = OPTIMIZERS[case % len(OPTIMIZERS)]
        yield Problem(layers, x, y, LOSSES[loss], "mean" if case % 3 else "sum", optimizer, 2 if optimizer else 1)


def claims_of(values: dict[Key, np.ndarray], iterations: int) -> list[StepClaims]:
    """Every quantity of ``values`` claimed in full, as a learner's numbers."""
    steps = []
    for it in range(1, iterations + 1):
        parts: dict[str, Any] = {
            "pre_activation": {},
            "activation": {},
            "delta": {},
            "weight_gradients": {},
            "bias_gradients": {},
            "weights_after": {},
            "biases_after": {},
        }
        output = loss = None
        for (i, kind, layer, part), v in values.items():
            if i != it:
                continue
            claim = Claimed(np.asarray(v, dtype=float), np.ones(np.shape(v), dtype=bool))
            if kind == "output":
                output = claim
            elif kind == "loss":
                loss = claim
            elif kind == "gradients":
                parts["weight_gradients" if part == "weights" else "bias_gradients"][layer] = claim
            elif kind == "network":
                parts["weights_after" if part == "weights" else "biases_after"][layer] = claim
            else:
                parts[kind][layer] = claim
        steps.append(StepClaims(it, ("iterations", it - 1), output=output, loss=loss, **parts))
    return steps


def test_every_mistake_is_diagnosed_as_itself_from_its_own_numbers(monkeypatch):
    exercised: Counter[str] = Counter()
    for problem in problems(20261130, 36):
        truth = run_problem(problem, Steps())
        from app.nn.check import _shape  # the shape check() itself derives

        for variant in variants(_shape(problem)):
            if variant.name == "parameter_substituted" and exercised[variant.name] >= 6:
                continue  # thousands of pairs: a sample of them is enough here
            own = run_problem(problem, variant)
            differs = any(not np.allclose(own[k], truth[k], rtol=1e-3, atol=1e-6, equal_nan=True) for k in truth)
            finite = all(np.all(np.isfinite(v)) for v in own.values())
            if not differs or not finite:
                continue
            with monkeypatch.context() as m:
                if variant.name != "parameter_substituted":
                    # The hundreds of substitutions would only add time to a check of another mistake.
                    m.setattr(mistakes, "MAX_SUBSTITUTION_PARAMETERS", 0)
                result = check(problem, claims_of(own, problem.iterations))
            names = {(d.name, describe_key(d.detail)) for d in result.diagnoses}
            assert (variant.name, describe_key(variant.detail)) in names, (variant.name, variant.detail, problem)
            for q in result.quantities:
                if q.wrong:
                    assert any(result.diagnoses[i].name == variant.name for i in q.mistakes), (variant.name, q.path)
            exercised[variant.name] += 1
    assert set(exercised) == {m.name for m in CATALOGUE}, f"never exercised: {set(m.name for m in CATALOGUE) - set(exercised)}"


def describe_key(detail: dict[str, Any]) -> str:
    return repr(sorted(detail.items()))


@pytest.mark.parametrize("rounding", [None, 6])
def test_correct_numbers_are_never_diagnosed(rounding):
    for problem in problems(7, 30):
        truth = run_problem(problem, Steps())
        claimed = {
            k: (v if rounding is None else np.array([float(f"{x:.{rounding}g}") for x in np.ravel(v)]).reshape(np.shape(v)))
            for k, v in truth.items()
        }
        result = check(problem, claims_of(claimed, problem.iterations))
        assert result.first_wrong is None and result.diagnoses == ()
        # Correct is what counts: a value rounded near a steep spot (an output near 1 under log(1 - p))
        # may not be "consistent" with the rounded values upstream of it, but it is still right.
        assert all(q.correct for q in result.quantities)
        assert result.variants_tried == 0  # nothing to explain: no search


def test_every_mistake_has_a_name_and_a_description_that_renders():
    shapes_seen = set()
    for problem in problems(3, 30):
        from app.nn.check import _shape

        for variant in variants(_shape(problem)):
            assert isinstance(variant, Mistake) and variant.name and variant.name != "correct"
            text = describe(variant)
            assert "{" not in text and len(text) > 20
            shapes_seen.add(variant.name)
    assert len({m.name for m in CATALOGUE}) == len(CATALOGUE)


def test_substitutions_are_searched_up_to_the_documented_size():
    from app.nn.check import _shape

    def count(sizes: list[int]) -> int:
        layers = tuple(Layer(np.ones((o, i)), np.zeros(o), "tanh") for i, o in zip(sizes, sizes[1:]))
        problem = Problem(layers, np.ones((1, sizes[0])), np.ones((1, sizes[-1])), LOSSES["mse"], "mean")
        return sum(v.name == "parameter_substituted" for v in variants(_shape(problem)))

    small = [2, 3, 1]  # 13 parameters
    n = Layout.of(tuple(Layer(np.ones((o, i)), np.zeros(o)) for i, o in zip(small, small[1:]))).size
    assert count(small) == n * (n - 1)
    assert count([4, 5, 1]) == 0  # 31 parameters > MAX_SUBSTITUTION_PARAMETERS
    assert 13 <= MAX_SUBSTITUTION_PARAMETERS < 31

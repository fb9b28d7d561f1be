"""The playground's 2-D datasets (app/datasets.py) and the named examples made of them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.datasets import DATASETS, circle, gaussians, init_network, spiral
from app.examples import EXAMPLES

GENERATORS = {"circle": circle, "gaussians": gaussians, "spiral": spiral}


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_a_seed_gives_the_same_points_and_another_seed_others(name):
    generate = GENERATORS[name]
    assert generate() == generate() == generate(seed=generate.__defaults__[1])
    inputs, _ = generate(seed=123)
    assert inputs != generate()[0]


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_the_classes_alternate_in_equal_halves_within_the_square(name):
    inputs, targets = GENERATORS[name](n=40, seed=7)
    assert len(inputs) == len(targets) == 40
    assert [t for (t,) in targets] == [1.0, 0.0] * 20
    points = np.array(inputs)
    assert points.shape == (40, 2) and np.all(np.abs(points) <= 1.0)
    assert np.array_equal(points, np.round(points, 2))  # two decimals: short in a URL, exact as written


def test_each_dataset_is_what_its_name_says():
    inside, ring = (np.array(circle()[0])[k::2] for k in (0, 1))
    assert np.all(np.hypot(*inside.T) <= 0.5 + 0.01) and np.all(np.hypot(*ring.T) >= 0.7 - 0.01)
    positive, negative = (np.array(gaussians()[0])[k::2] for k in (0, 1))
    assert np.all(positive.mean(axis=0) > 0.3) and np.all(negative.mean(axis=0) < -0.3)
    arm, other = (np.array(spiral()[0])[k::2] for k in (0, 1))
    # The two arms are each other turned half a turn (less the noise).
    assert np.abs(arm + other).max() < 0.1


def test_an_odd_number_of_points_is_refused():
    with pytest.raises(ValueError, match="even"):
        circle(n=5)


def test_the_network_starts_at_one_half_everywhere():
    network = init_network([3, 2], seed=4)
    shapes = [(len(layer["weights"]), len(layer["weights"][0])) for layer in network["layers"]]
    assert shapes == [(3, 2), (2, 3), (1, 2)]
    assert network["layers"][-1] == {"weights": [[0.0, 0.0]], "biases": [0.0], "activation": "sigmoid"}
    assert all(abs(w) <= 1 for row in network["layers"][0]["weights"] for w in row)
    assert init_network([3, 2], seed=4) == network != init_network([3, 2], seed=5)


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_each_dataset_is_a_named_example_that_learns(client, name):
    example = EXAMPLES[name]
    inputs, targets = GENERATORS[name]()
    assert example.body["inputs"] == inputs and example.body["targets"] == targets
    body = client.get(f"/v1/examples/{name}").json()
    assert body["inputs"] == inputs
    trained = client.post("/v1/train", json=body).json()
    assert trained["status"] == "completed"
    assert trained["trace"][0]["loss"] == pytest.approx(math.log(2), abs=1e-15)  # 1/2 everywhere
    assert trained["final_loss"] < 0.1 * math.log(2), trained["final_loss"]


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_the_check_body_claims_the_untrained_loss_and_bias_gradient(client, name):
    answer = client.post("/v1/check", json=client.get(f"/v1/examples/{name}", params={"for": "check"}).json()).json()
    assert answer["first_wrong"] is None and answer["score"] == answer["max_score"] == 2

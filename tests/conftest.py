"""Shared fixtures: the app under test, the seed example, seeded random generators."""

from __future__ import annotations

import copy
import zlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.api.examples import example_body
from app.config import Settings
from app.main import create_app
from app.nn.network import Layer

# The contract's seed trace (blog post), to 1e-12.
SEED_LOSSES = (0.35520347518814194, 0.3469745206215468, 0.3390604735219194)
SEED_W11 = (0.09045776246846889, 0.15366665091475956, 0.21566472402149306)
SEED_OUTPUTS = (0.7010307863243558, 0.7068233374476314, 0.7124393640689541)


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(create_app(Settings())) as c:
        yield c


@pytest.fixture
def make_client():
    """A factory of clients whose app runs with the given settings overrides."""
    clients: list[TestClient] = []

    def make(**overrides: Any) -> TestClient:
        c = TestClient(create_app(Settings(**overrides)))
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()


@pytest.fixture
def seed_body() -> dict[str, Any]:
    return example_body("seed")


@pytest.fixture
def seed_loss_body(seed_body: dict[str, Any]) -> dict[str, Any]:
    return {k: copy.deepcopy(seed_body[k]) for k in ("network", "inputs", "targets", "loss", "reduction")}


@pytest.fixture
def diverging_body() -> dict[str, Any]:
    """A /v1/train body whose weight grows by ~1e153 a step until the squared error overflows."""
    return {
        "network": {"layers": [{"weights": [[1.0]], "biases": [0.0]}]},
        "inputs": [[1.0]],
        "targets": [[0.0]],
        "loss": "mse",
        "optimizer": {"name": "sgd", "learning_rate": 1e153},
        "iterations": 50,
    }


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> np.random.Generator:
    """A generator seeded from the test's id, so every parametrized case is reproducible."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


def random_layers(rng: np.random.Generator, sizes: list[int], activations: list[str]) -> list[Layer]:
    return [
        Layer(rng.normal(0, 0.8, (n_out, n_in)), rng.normal(0, 0.3, n_out), act) for n_in, n_out, act in zip(sizes, sizes[1:], activations)
    ]


def random_targets(rng: np.random.Generator, loss: str, batch: int, n_out: int) -> np.ndarray:
    if loss == "binary_cross_entropy":
        return rng.uniform(0, 1, (batch, n_out))
    if loss == "cross_entropy":
        return rng.dirichlet(np.ones(n_out), size=batch)
    return rng.normal(0, 1, (batch, n_out))

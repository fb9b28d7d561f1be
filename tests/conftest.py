"""Shared fixtures: the app under test, the seed example, seeded random generators."""

from __future__ import annotations

import copy
import zlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.examples import example_body
from app.main import create_app


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

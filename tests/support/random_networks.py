"""Random networks and targets drawn from a seeded generator (conftest's ``rng`` fixture)."""

from __future__ import annotations

import numpy as np

from app.nn.network import Layer


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

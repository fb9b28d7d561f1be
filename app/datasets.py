"""Seeded 2-D datasets a learner knows from TensorFlow Playground: a circle, two gaussians, a spiral.

Each generator takes the number of points and a seed for ``np.random.default_rng`` and returns
``(inputs, targets)`` as JSON-ready lists: ``inputs[s] = [x0, x1]`` in the square [-1, 1]^2,
rounded to two decimals (short enough to share in a URL, exact as written), and
``targets[s] = [y]`` with ``y`` 1.0 or 0.0 (binary cross-entropy's targets). Half the points are
of each class, and the classes alternate (sample 0 is class 1, sample 1 class 0, ...), so the
first rows of any table show both. The same seed always gives the same points.

``init_network`` draws a network for them the same way: hidden weights uniform in [-1, 1]
(two decimals), zero biases, and an output layer of zeros, so that before training every
prediction is sigmoid(0) = 1/2 and the loss is ln 2 whatever the data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["DATASETS", "Dataset", "circle", "gaussians", "init_network", "spiral"]

Points = NDArray[np.float64]
Dataset = tuple[list[list[float]], list[list[float]]]


def _dataset(positive: Points, negative: Points) -> Dataset:
    """The two classes' points interleaved (class 1 first), clipped to [-1, 1] and rounded."""
    points = np.empty((len(positive) + len(negative), 2))
    points[0::2], points[1::2] = positive, negative
    labels = np.tile([1.0, 0.0], len(positive))
    inputs = np.round(np.clip(points, -1.0, 1.0), 2) + 0.0  # + 0.0: no -0.0 in the JSON
    return inputs.tolist(), labels.reshape(-1, 1).tolist()


def _half(n: int) -> int:
    if n < 2 or n % 2:
        raise ValueError(f"n must be an even number of points, at least 2; got {n}")
    return n // 2


def circle(n: int = 60, seed: int = 1) -> Dataset:
    """Class 1 inside radius 0.5, class 0 on the ring between radii 0.7 and 1."""
    rng, half = np.random.default_rng(seed), _half(n)

    def ring(low: float, high: float) -> Points:
        radius = rng.uniform(low, high, half)
        angle = rng.uniform(0.0, 2 * np.pi, half)
        return np.column_stack((radius * np.sin(angle), radius * np.cos(angle)))

    return _dataset(ring(0.0, 0.5), ring(0.7, 1.0))


def gaussians(n: int = 40, seed: int = 2) -> Dataset:
    """Class 1 around (0.45, 0.45), class 0 around (-0.45, -0.45), each with standard deviation 0.2."""
    rng, half = np.random.default_rng(seed), _half(n)
    return _dataset(rng.normal(0.45, 0.2, (half, 2)), rng.normal(-0.45, 0.2, (half, 2)))


def spiral(n: int = 80, seed: int = 3) -> Dataset:
    """Two interleaved arms, each turning 1.75 times around the origin, with a little noise."""
    rng, half = np.random.default_rng(seed), _half(n)
    t = np.arange(half) / half

    def arm(phase: float) -> Points:
        radius = 0.95 * t
        angle = 1.75 * 2 * np.pi * t + phase
        noise = rng.uniform(-0.04, 0.04, (half, 2))
        return np.column_stack((radius * np.sin(angle), radius * np.cos(angle))) + noise

    return _dataset(arm(0.0), arm(np.pi))


def init_network(hidden: list[int], seed: int, activation: str = "tanh") -> dict[str, Any]:
    """A network from 2 inputs through the ``hidden`` widths (``activation``) to one sigmoid output:
    hidden weights uniform in [-1, 1] rounded to two decimals, zero biases, a zero output layer."""
    rng = np.random.default_rng(seed)
    layers: list[dict[str, Any]] = []
    width = 2
    for units in hidden:
        weights = np.round(rng.uniform(-1.0, 1.0, (units, width)), 2) + 0.0
        layers.append({"weights": weights.tolist(), "biases": [0.0] * units, "activation": activation})
        width = units
    layers.append({"weights": [[0.0] * width], "biases": [0.0], "activation": "sigmoid"})
    return {"layers": layers}


#: name -> (what it is, its generator with the default size and seed)
DATASETS: dict[str, tuple[str, Callable[[], Dataset]]] = {
    "circle": ("a disc of class 1 inside a ring of class 0", circle),
    "gaussians": ("two gaussian clusters, one per class", gaussians),
    "spiral": ("two interleaved spiral arms", spiral),
}

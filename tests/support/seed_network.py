"""The seed example as the engine takes it: the blog post's network (relu 2-2, sigmoid 2-1), its one
sample and target, and its computation graph labelled as the post writes it (app.examples.BLOG_LABELS)."""

from __future__ import annotations

import numpy as np

from app.examples import BLOG_LABELS
from app.nn.graph import Graph, build_graph
from app.nn.network import Layer


def seed_layers() -> tuple[Layer, ...]:
    return (
        Layer(np.array([[0.436, 0.420], [0.550, 0.420]]), np.zeros(2), "relu"),
        Layer(np.array([[0.026, 1.0]]), np.array([0.330]), "sigmoid"),
    )


def seed_example() -> tuple[tuple[Layer, ...], np.ndarray, np.ndarray]:
    """(layers, inputs, targets), fresh arrays each call."""
    return seed_layers(), np.array([[0.7, 0.3]]), np.array([[1.0]])


def seed_graph() -> Graph:
    """The seed's graph under binary cross-entropy, mean-reduced, with the post's labels."""
    return build_graph(*seed_example(), "binary_cross_entropy", "mean", naming=BLOG_LABELS)

"""The engine's own exceptions; the HTTP layer maps them to 422 responses."""

from __future__ import annotations


class NonFiniteError(ArithmeticError):
    """A finite input produced a non-finite value (overflow, inf - inf, ...) in ``layer``.

    ``quantity`` names what overflowed: ``pre_activation``, ``activation``,
    ``loss`` or ``gradient``; ``layer`` is the 0-based layer index (the last
    layer for ``loss``).
    """

    def __init__(self, layer: int, quantity: str) -> None:
        self.layer = layer
        self.quantity = quantity
        super().__init__(f"layer {layer}: {quantity} is not finite")


class Stopped(Exception):
    """The caller asked a long computation to stop (its client went away); raised between chunks of work."""


class GraphTooLarge(ValueError):
    """A computation graph (``app.nn.graph``) would have ``count`` nodes, more than the caller's ``limit``
    (the HTTP layer answers 413, naming the setting that raises the limit)."""

    def __init__(self, count: int, limit: int) -> None:
        self.count = count
        self.limit = limit
        super().__init__(f"the computation graph would have {count} nodes, more than the limit of {limit}")

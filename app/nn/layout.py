"""Where a network's parameters sit in one flat vector (float64, or float32 when a computation asks for it).

Layer ``k`` (``W_k`` ``[out][in]``, ``b_k`` ``[out]``) is one block of ``(in + 1) * out``
consecutive floats, read as the ``[in + 1][out]`` matrix ``[W_k.T; b_k]``: the transposed
weights with the biases as their last row. The blocks follow each other, layer by layer.

Why this shape: with a column of ones appended to the layer's input ``a`` (``[batch][in]``),

    [a, 1] @ [W.T; b] = a @ W.T + b                    the pre-activation, one product
    [a, 1].T @ delta  = [dL/dW.T; dL/db]               both gradients, one product

and an optimizer or a trainable mask works on the whole vector at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import DTypeLike, NDArray

if TYPE_CHECKING:  # network.py imports this module; Layer is only read here, never built
    from app.nn.network import Layer

#: Every array of the engine: float64, as PyTorch computes in double precision; a computation asked
#: for in float32 (``dtype``, as PyTorch's default dtype) holds float32 arrays under the same name.
Array = NDArray[np.float64]
#: The dtypes the engine computes in; float64 is every function's default.
FLOAT_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))
#: Which of a layer's parameters a flat index points at.
Kind = Literal["weights", "biases"]


@dataclass(frozen=True)
class Layout:
    """The flat layout of layers with these ``shapes`` (``(out, in)`` each) and ``activations`` (names)."""

    shapes: tuple[tuple[int, int], ...]
    activations: tuple[str, ...]
    # offsets[k]: where layer k's block starts, for every k, then the total size.
    offsets: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        offsets = [0]
        for n_out, n_in in self.shapes:
            offsets.append(offsets[-1] + (n_in + 1) * n_out)
        object.__setattr__(self, "offsets", tuple(offsets))

    @classmethod
    def of(cls, layers: Sequence[Layer]) -> Layout:
        """The layout of ``layers`` (shared: layouts are immutable, see ``_layout``)."""
        return cls.of_shapes([layer.shape for layer in layers], [layer.activation for layer in layers])

    @classmethod
    def of_shapes(cls, shapes: Sequence[tuple[int, int]], activations: Sequence[str]) -> Layout:
        """The layout of layers of ``shapes`` (``(out, in)`` each) and ``activations``, without their arrays."""
        return _layout(tuple(shapes), tuple(activations))

    @property
    def size(self) -> int:
        """How many parameters: the length of the flat vector."""
        return self.offsets[-1]

    def blocks(self, flat: Array) -> tuple[Array, ...]:
        """Per-layer ``[in + 1][out]`` views ``[W.T; b]`` into ``flat``."""
        return tuple(
            flat[start:end].reshape(n_in + 1, n_out) for (n_out, n_in), start, end in zip(self.shapes, self.offsets, self.offsets[1:])
        )

    def views(self, flat: Array) -> tuple[tuple[Array, Array], ...]:
        """Per-layer ``(weights [out][in], biases [out])`` views into ``flat``; writing them writes ``flat``."""
        return tuple((block[:-1].T, block[-1]) for block in self.blocks(flat))

    def pack(self, layers: Sequence[Layer], dtype: DTypeLike = np.float64) -> Array:
        """A new flat ``[size]`` vector of ``dtype`` holding every layer's parameters."""
        return self.packed(layers, dtype)[0]

    def packed(self, layers: Sequence[Layer], dtype: DTypeLike = np.float64) -> tuple[Array, tuple[Array, ...]]:
        """``pack(layers, dtype)`` and its ``blocks``."""
        flat = np.empty(self.size, dtype=float_dtype(dtype))
        blocks = self.blocks(flat)
        fill(blocks, layers)
        return flat, blocks

    def locate(self, index: int) -> tuple[int, Kind, tuple[int, ...]]:
        """Flat ``index`` as ``(layer, "weights", (j, i))`` (weights[j][i]) or ``(layer, "biases", (j,))``."""
        k = int(np.searchsorted(self.offsets, index, side="right") - 1)
        n_out, n_in = self.shapes[k]
        row, col = divmod(index - self.offsets[k], n_out)
        return (k, "biases", (col,)) if row == n_in else (k, "weights", (col, row))

    def flat_index(self, layer: int, kind: Kind, index: Sequence[int]) -> int:
        """The inverse of ``locate``."""
        n_out, n_in = self.shapes[layer]
        row, col = (n_in, index[0]) if kind == "biases" else (index[1], index[0])
        return self.offsets[layer] + row * n_out + col


@lru_cache(maxsize=256)
def _layout(shapes: tuple[tuple[int, int], ...], activations: tuple[str, ...]) -> Layout:
    # Few distinct layouts recur (a client posts the same network again and again), so one
    # is shared rather than rebuilt per request; buffer caches key on it.
    return Layout(shapes, activations)


def float_dtype(dtype: DTypeLike) -> np.dtype[Any]:
    """``dtype`` as a numpy dtype, one of ``FLOAT_DTYPES`` (ValueError otherwise)."""
    d = np.dtype(dtype)
    if d not in FLOAT_DTYPES:
        raise ValueError(f"the engine computes in float64 or float32, not {d}")
    return d


def fill(blocks: Sequence[Array], layers: Sequence[Layer]) -> None:
    """Write each layer's weights and biases into its ``[in + 1][out]`` block."""
    for block, layer in zip(blocks, layers, strict=True):
        block[:-1] = layer.weights.T
        block[-1] = layer.biases


def weight_views(blocks: Sequence[Array]) -> tuple[Array, ...]:
    """The ``[out][in]`` weights ``block[:-1].T`` of each ``[in + 1][out]`` block (views, no copy)."""
    return tuple(block[:-1].T for block in blocks)

"""Per-thread reuse of the buffers of small passes.

A single pass on a small network is mostly setting up its buffers (about 40 numpy calls
for the seed network against about 30 for the pass itself), so each thread keeps the
:class:`Packed` buffers of the last few small shapes it computed and refills them.
Callers still get new arrays: whoever computes in shared buffers copies its results out.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import DTypeLike

from app.nn.layout import Array, Layout, fill, float_dtype
from app.nn.workspace import Packed, Workspace

if TYPE_CHECKING:  # network.py imports this module; Layer is only read here
    from app.nn.network import Layer

# Shapes whose parameters and workspace together hold at most this many floats are kept...
SHARED_FLOATS = 4096
# ... the most recently used this many per thread.
SHARED_SHAPES = 8


class _PerThread(threading.local):
    def __init__(self) -> None:
        self.packed: OrderedDict[tuple[Layout, int, np.dtype[Any]], Packed] = OrderedDict()


_cache = _PerThread()


def prepared(layers: Sequence[Layer], inputs: Array, dtype: DTypeLike = np.float64) -> tuple[Packed, bool]:
    """``Packed.of(layers, inputs, dtype)``, or this thread's buffers for the same shapes and dtype refilled;
    and whether they are shared (so that results must be copied out of them before the next pass)."""
    layout = Layout.of(layers)
    dtype = float_dtype(dtype)
    key = (layout, inputs.shape[0], dtype)
    cache = _cache.packed
    p = cache.get(key)
    if p is not None:
        cache.move_to_end(key)
        # Every value a pass reads is rewritten here or by the pass itself (the ones columns never change).
        fill(p.blocks, layers)
        p.ws.load(inputs)
        return p, True
    p = Packed.of(layers, inputs, dtype)
    if layout.size + Workspace.floats(layout, inputs.shape[0]) > SHARED_FLOATS:
        return p, False
    cache[key] = p
    if len(cache) > SHARED_SHAPES:
        cache.popitem(last=False)
    return p, True

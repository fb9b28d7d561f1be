"""Freed memory handed back to the operating system after large requests.

CPython and numpy free what a request used, but glibc's allocator keeps freed heap memory
for reuse: after one large body (millions of Python floats) an idle worker measured 663 MiB
resident with nothing in use, 104 MiB after ``malloc_trim(0)`` (bench/README.md). A worker
that keeps a gigabyte it does not use is a worker the deployment's memory limit kills
later, so after any request large enough to matter the trim runs, in a worker thread
(ctypes releases the interpreter during the call; it takes a few milliseconds).

The trim is not free either: the next request's large buffers are then fresh pages, faulted
in again (about 4 ms per 8 MB array), and a binary body of a million parameters leaves only a
few tens of MB free for the next one to reuse. So the trim runs only when the allocator holds
more free memory than RETAINED_BYTES (glibc's ``mallinfo2``; without it, always). The
collection before it is cheap because the objects made at import are frozen out of the
collector's walk (``freeze_startup_objects``, called by app.main): without that it walked
about 87,000 objects, 27-45 ms with the interpreter held (bench/README.md).

Elsewhere than glibc (musl, macOS) there is nothing to call and nothing is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from collections.abc import Callable, MutableMapping
from typing import Any

import anyio.to_thread

# Requests whose body or estimated memory is at least this large are followed by a trim.
LARGE_REQUEST_BYTES = 4 * 1024 * 1024
# ... when the allocator then keeps at least this much free memory.
RETAINED_BYTES = 64 * 1024 * 1024
# The ASGI scope key through which the layers of a request say how large it was.
SCOPE_KEY = "backprop.large_request"


def _malloc_trim() -> Callable[[], object] | None:
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None
    if trim is None:
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return lambda: trim(0)


_TRIM = _malloc_trim()


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")
    ]


def _free_heap() -> Callable[[], int] | None:
    """The bytes glibc keeps free in its heaps (``mallinfo2().fordblks``), when it can say (glibc 2.33+)."""
    name = ctypes.util.find_library("c")
    try:
        info = ctypes.CDLL(name).mallinfo2 if name else None
    except (OSError, AttributeError):
        return None
    if info is None:
        return None
    info.argtypes, info.restype = [], _Mallinfo2
    return lambda: int(info().fordblks)


_FREE_HEAP = _free_heap()


def freeze_startup_objects() -> None:
    """Move every object alive now (modules, schemas, the app) out of the cyclic collector's walk: they live
    as long as the process, and a collection after a large request then walks only what requests made."""
    gc.collect()
    gc.freeze()


def mark_large(scope: MutableMapping[str, Any], size: float) -> None:
    """Note in the request's scope that it held ``size`` bytes (a trim follows when that is large)."""
    if size >= LARGE_REQUEST_BYTES:
        scope[SCOPE_KEY] = True


async def release_if_large(scope: MutableMapping[str, Any]) -> None:
    """After the request: hand freed memory back if the request was large."""
    if _TRIM is not None and scope.get(SCOPE_KEY):
        await anyio.to_thread.run_sync(_collect_and_trim, _TRIM)


def _collect_and_trim(trim: Callable[[], object]) -> None:
    # A request that ended in an exception can still be held by a reference cycle (the
    # exception, its traceback, the frames that hold the parsed body): collect it first.
    gc.collect()
    if _FREE_HEAP is None or _FREE_HEAP() >= RETAINED_BYTES:
        trim()

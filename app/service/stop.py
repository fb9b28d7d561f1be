"""The running request's stop flag: set by the HTTP layer when its client goes away.

Long computations ask it between chunks of work and raise ``Stopped``. A ContextVar, because
worker threads run in a copy of the caller's context (anyio.to_thread), so each request sees
its own flag.
"""

from __future__ import annotations

import threading
from contextvars import ContextVar

from app.nn.errors import Stopped

stop_flag: ContextVar[threading.Event | None] = ContextVar("stop_flag", default=None)


def should_stop() -> bool:
    flag = stop_flag.get()
    return flag is not None and flag.is_set()


def stop_point() -> None:
    """Raise ``Stopped`` when the running request's client has gone."""
    if should_stop():
        raise Stopped

"""Where a request's numpy work runs, chosen by its estimated work.

Small requests (the seed network, a few iterations) run on the event loop: a thread
hop costs more than their whole computation. Anything larger runs in a worker thread,
so ``/healthz`` and small requests keep answering while it computes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import anyio.to_thread
from pydantic import BaseModel

from app.config import Settings
from app.service import estimated_work, passes

P = TypeVar("P")
R = TypeVar("R")
Req = TypeVar("Req", bound=BaseModel)


async def run_compute(fn: Callable[[Req, Settings], P], body: Req, settings: Settings, finish: Callable[[P], R]) -> R:
    """``finish(fn(body, settings))``, inline or in a worker thread (encoding a large answer is work too)."""
    if estimated_work(body, passes(body)) <= settings.inline_work:  # type: ignore[arg-type]
        return finish(fn(body, settings))
    return await anyio.to_thread.run_sync(lambda: finish(fn(body, settings)))

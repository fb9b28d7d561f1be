"""Admission control: how much work and memory one worker process takes on at once.

Every request whose computation runs in a worker thread is admitted here first, by its
estimated work (the unit of ``BACKPROP_MAX_WORK``) and its estimated memory. While what is
in flight plus the newcomer stays within both bounds, it is admitted; beyond them it is
refused at once with ``503`` and ``Retry-After`` rather than queued, so that a client
never waits out its own timeout behind others (a queue on a CPU-bound worker only makes
every request in it late). A request is always admitted when nothing else is in flight,
so any request within the per-request limits can run on an idle worker.

Requests small enough to run on the event loop (``BACKPROP_INLINE_WORK``) are not counted:
they finish before anything else could run.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

# A rough rate for Retry-After: tiny networks run ~1.5e9 work units a second, BLAS-bound ones
# ~8e9 (bench/README.md); the slower rate errs towards asking clients to wait longer.
WORK_PER_SECOND = 1.5e9
MAX_RETRY_AFTER = 30
# The ASGI scope key under which a request's body reservation travels to its computation.
SCOPE_KEY = "backprop.admitted_body"


class Overloaded(Exception):
    """The worker's admitted work or memory is at its bound (503)."""

    def __init__(self, retry_after: int, message: str) -> None:
        self.retry_after = retry_after
        self.message = message
        super().__init__(message)


@dataclass
class Ticket:
    """One admitted request's share; ``release`` gives it back (once)."""

    admission: Admission
    work: float
    memory: float
    released: bool = field(default=False)

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.admission._give_back(self)


class Admission:
    """The work and memory in flight in this process, bounded by ``max_work`` and ``max_memory``."""

    def __init__(self, max_work: float, max_memory: float) -> None:
        self.max_work = max_work
        self.max_memory = max_memory
        self.work = 0.0
        self.memory = 0.0
        self.count = 0
        # Released from whichever thread finishes a response; admitted on the event loop.
        self._lock = threading.Lock()

    def admit(self, work: float, memory: float, holding: Ticket | None = None) -> Ticket:
        """A ticket for this request, or Overloaded when it does not fit beside what is in flight.

        ``holding`` is a ticket the same request already holds (its body's): it counts towards
        the bounds, but does not make the worker busy in the request's own eyes.
        """
        # Client-sent sizes can be integers too large for a float (a request over its limits is
        # refused once it runs; it must not break the counting first).
        work, memory = (x if x < 1e300 else 1e300 for x in (work, memory))
        with self._lock:
            fits = self.work + work <= self.max_work and self.memory + memory <= self.max_memory
            others = self.count - (holding is not None and not holding.released)
            if others and not fits:
                wait = min(MAX_RETRY_AFTER, max(1, math.ceil(self.work / WORK_PER_SECOND)))
                raise Overloaded(
                    wait,
                    f"this worker is at its bound of admitted work or memory ({self.count} large request"
                    f"{'s' if self.count != 1 else ''} in flight); retry after {wait} s, or raise the server's "
                    "settings BACKPROP_MAX_INFLIGHT_WORK / BACKPROP_MAX_INFLIGHT_MEMORY",
                )
            self.work += work
            self.memory += memory
            self.count += 1
        return Ticket(self, work, memory)

    def _give_back(self, ticket: Ticket) -> None:
        with self._lock:
            self.work -= ticket.work
            self.memory -= ticket.memory
            self.count -= 1

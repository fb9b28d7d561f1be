"""uvicorn's httptools protocol, guarded against slow and silent clients.

uvicorn alone (measured with 0.54, httptools): a connection that never completes a
request's headers, or whose body stalls, stays open for ever (its keep-alive timeout only
runs between requests); a request header has no size limit (httptools gathers a header
in memory by repeated concatenation: 100 MB took seconds and +100 MB); and
``limit_concurrency`` answers 503 only once a request's headers are complete, so
connections that send nothing keep a file descriptor each until the process runs out.

``GuardedHttpToolsProtocol`` (passed to uvicorn as ``http=``) adds, per worker:

- a header timeout: a request's headers must be complete ``BACKPROP_HEADER_TIMEOUT``
  seconds after the connection opened or the previous response ended;
- a body timeout: the body must arrive within ``BACKPROP_BODY_TIMEOUT`` seconds of the
  headers plus one second per ``BACKPROP_BODY_MIN_RATE`` bytes received, so a body that
  keeps coming at that rate is never cut, one that trickles is;
- a header size cap, ``BACKPROP_MAX_HEADER_BYTES`` (request line and header lines),
  answered 431; bytes are counted as they arrive, so at most the cap plus one read
  (256 KiB) is ever held;
- a connection cap, ``BACKPROP_MAX_CONNECTIONS``: a connection over it closes the oldest
  connection still waiting for a request's headers (silent, slow or idle keep-alive);
  when every connection has a request in progress the newcomer's request gets uvicorn's
  503. ``GET /healthz`` is never refused that way, so probes keep answering.

A timed-out or refused connection that sent part of a request gets a JSON answer in the
API's error shape (408, 431 or 503) and is closed; one that sent nothing is just closed.

The deadlines cost the fast path nothing per request beyond a few attribute writes: one
sweep per worker, every quarter of the shortest timeout (at most every second), checks
the connections waiting for headers (kept in arrival order, so it stops at the first
that is not due) and the bodies in progress.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from typing import Any

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from app.config import Settings, get_settings

logger = logging.getLogger("backprop.server")

# File descriptors a worker needs besides its connections (listening socket, epoll,
# logging, metrics files, libraries); the soft RLIMIT_NOFILE is raised to make room.
FD_RESERVE = 256
# How often a worker logs a summary of the connections it closed (not one line each).
REPORT_EVERY_S = 10.0


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The keyword arguments ``backprop-api serve`` passes to ``uvicorn.run`` besides the app's."""
    return {
        "http": "app.server:GuardedHttpToolsProtocol",
        # uvicorn answers 503 when connections (or requests in progress) reach this. Our
        # admission keeps at most max_connections open unless every one of them has a
        # request in progress, so the 503 comes exactly then (the +1 is the newcomer).
        "limit_concurrency": settings.max_connections + 1,
        # uvicorn's idle keep-alive timeout (its default, 5 s), never above the header timeout.
        "timeout_keep_alive": min(5.0, settings.header_timeout),
    }


def ensure_fd_room(max_connections: int) -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE (inherited by the workers) to fit ``max_connections``.

    Returns the soft limit before and after; the hard limit is never exceeded.
    """
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return (-1, -1)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = max_connections + FD_RESERVE
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return (soft, soft)
    new = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if new > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return (soft, new)


def _answer(status: int, loc: list[str], msg: str, kind: str) -> tuple[bytes, bytes]:
    body = json.dumps({"detail": [{"loc": loc, "msg": msg, "type": kind}]}, separators=(",", ":")).encode()
    head = (
        b"content-type: application/json\r\nx-content-type-options: nosniff\r\ncache-control: no-store\r\n"
        b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body)
    )
    return STATUS_LINE[status], head + body


class _Guard:
    """One worker's deadlines and connection cap, shared by its connections."""

    def __init__(self, protocol: GuardedHttpToolsProtocol, server_state: ServerState) -> None:
        settings = get_settings()
        self.loop = protocol.loop
        self.connections = server_state.connections
        self.header_timeout = settings.header_timeout
        self.body_timeout = settings.body_timeout
        self.body_min_rate = settings.body_min_rate
        self.max_header_bytes = settings.max_header_bytes
        self.max_connections = settings.max_connections
        # Connections waiting for a request's headers, oldest first (a dict keeps order), with
        # the time each began to wait.
        self.waiting: dict[GuardedHttpToolsProtocol, float] = {}
        self.closed: Counter[str] = Counter()
        self.last_report = self.loop.time()
        self.period = max(0.05, min(1.0, self.header_timeout / 4, self.body_timeout / 4))
        self.answers = {
            "header_timeout": _answer(
                408,
                ["header"],
                f"the request's headers were not complete within BACKPROP_HEADER_TIMEOUT ({self.header_timeout:g} s)",
                "timeout",
            ),
            "body_timeout": _answer(
                408,
                ["body"],
                f"the request body came slower than BACKPROP_BODY_MIN_RATE "
                f"({self.body_min_rate:g} bytes/s) after BACKPROP_BODY_TIMEOUT ({self.body_timeout:g} s)",
                "timeout",
            ),
            "header_too_large": _answer(
                431,
                ["header"],
                f"the request line and headers are over BACKPROP_MAX_HEADER_BYTES ({self.max_header_bytes} bytes)",
                "limit_exceeded",
            ),
            "evicted": _answer(
                503,
                [],
                f"over BACKPROP_MAX_CONNECTIONS ({self.max_connections}) open connections; this one had not sent its request's headers",
                "overloaded",
            ),
        }
        self._check_fd_room()
        self.loop.call_later(self.period, self.sweep)

    def _check_fd_room(self) -> None:
        try:
            import resource
        except ImportError:  # pragma: no cover - not on POSIX
            return
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if soft != resource.RLIM_INFINITY and soft < self.max_connections + FD_RESERVE:
            logger.warning(
                "the file descriptor limit is below BACKPROP_MAX_CONNECTIONS plus a reserve: "
                "connections may fail to be accepted before the cap is reached",
                extra={"fd_limit": soft, "max_connections": self.max_connections, "reserve": FD_RESERVE},
            )

    def make_room(self) -> None:
        """Close the connection that has waited longest for a request's headers, if any."""
        for victim in self.waiting:
            victim.expire("evicted")
            return

    def sweep(self) -> None:
        try:
            now = self.loop.time()
            due = []
            for protocol, since in self.waiting.items():  # oldest first: stop at the first not yet due
                if since + self.header_timeout > now:
                    break
                due.append(protocol)
            for protocol in due:
                protocol.expire("header_timeout")
            for protocol in [c for c in self.connections if isinstance(c, GuardedHttpToolsProtocol)]:
                protocol.check_body(now)
            if self.closed and now - self.last_report >= REPORT_EVERY_S:
                logger.warning(
                    "closed slow, silent or surplus connections",
                    extra={**self.closed, "seconds": round(now - self.last_report, 1), "open": len(self.connections)},
                )
                self.closed.clear()
                self.last_report = now
        except Exception:  # pragma: no cover - the sweep must outlive any surprise
            logger.exception("connection sweep failed")
        finally:
            self.loop.call_later(self.period, self.sweep)


class _HeadersTooLarge(Exception):
    """Raised in a parser callback to stop parsing; ``data_received`` answers 431."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's HttpToolsProtocol with header/body timeouts, a header size cap and a connection cap."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        guard = getattr(server_state, "backprop_guard", None)
        if guard is None:
            guard = server_state.backprop_guard = _Guard(self, server_state)  # type: ignore[attr-defined]
        self.guard: _Guard = guard
        self.received = 0  # bytes fed to the parser so far
        self.chunk = 0  # size of the piece being parsed
        self.in_head = True  # between a message's end (or the start) and the next headers' end
        self.head_from = 0  # offset of the current head (approximate after a pipelined message)
        self.wait_since: float | None = None  # set while in guard.waiting
        self.wait_from = 0
        self.body_since = 0.0
        self.body_from = 0

    # Connection lifecycle

    def connection_made(self, transport: Any) -> None:
        if len(self.connections) >= self.guard.max_connections:
            self.guard.make_room()
        super().connection_made(transport)
        self._wait()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        super().connection_lost(exc)

    def _wait(self) -> None:
        waiting = self.guard.waiting
        waiting.pop(self, None)
        self.wait_since = self.loop.time()
        self.wait_from = self.received
        waiting[self] = self.wait_since

    def _stop_waiting(self) -> None:
        if self.wait_since is not None:
            self.guard.waiting.pop(self, None)
            self.wait_since = None

    # Parsing

    def data_received(self, data: bytes) -> None:
        # uvicorn's data_received, plus the byte count and the 431.
        self._unset_keepalive_if_required()
        self.chunk = len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError as exc:
            if isinstance(exc.__context__, _HeadersTooLarge):
                self.expire("header_too_large")
            else:
                msg = "Invalid HTTP request received."
                self.logger.warning(msg)
                self.send_400_response(msg)
            return
        self.received += self.chunk
        if self.in_head and self.received - self.head_from > self.guard.max_header_bytes:
            self.expire("header_too_large")

    def on_headers_complete(self) -> None:
        self._stop_waiting()
        self.in_head = False
        limit = self.guard.max_header_bytes
        # Bytes before this piece plus all of it is an upper bound; count exactly only near the cap.
        if self.received + self.chunk - self.head_from > limit and self._head_size() > limit:
            raise _HeadersTooLarge
        self.body_since = self.loop.time()
        self.body_from = self.received
        if self.url == b"/healthz" and self.limit_concurrency is not None:
            # Probes are answered even when every connection is busy.
            saved, self.limit_concurrency = self.limit_concurrency, None
            try:
                super().on_headers_complete()
            finally:
                self.limit_concurrency = saved
        else:
            super().on_headers_complete()

    def _head_size(self) -> int:
        """The request line and header lines, as sent (less optional whitespace)."""
        method = self.parser.get_method()
        return len(method) + len(self.url) + 12 + sum(len(n) + len(v) + 4 for n, v in self.headers) + 2

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.in_head = True
        self.head_from = self.received + self.chunk

    def on_response_complete(self) -> None:
        idle = not self.pipeline
        super().on_response_complete()
        if idle and not self.transport.is_closing():
            self._wait()

    # Deadlines

    def check_body(self, now: float) -> None:
        """Close the connection if its request body is coming slower than allowed."""
        cycle = self.cycle
        if cycle is None or not cycle.more_body or cycle.response_complete or cycle.disconnected or self.in_head:
            return
        if self.flow.read_paused:  # we stopped reading (backpressure): not the client's doing
            self.body_since, self.body_from = now, self.received
            return
        guard = self.guard
        if now > self.body_since + guard.body_timeout + (self.received - self.body_from) / guard.body_min_rate:
            self.expire("body_timeout")

    def expire(self, reason: str) -> None:
        """Close the connection for ``reason``: answer it if it sent part of a request, unless a response is under way."""
        self._stop_waiting()
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        self.guard.closed[reason] += 1
        # No longer counted against the cap (uvicorn discards it again once the close completes).
        self.connections.discard(self)
        cycle = self.cycle
        answering = cycle is None or cycle.response_complete or not cycle.response_started
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the app's receive() gets http.disconnect, its send() is dropped
            cycle.message_event.set()
        if reason in ("header_timeout", "evicted"):
            # Answered only if part of a new request came (not a silent or idle connection,
            # nor the rest of a body whose request was already answered).
            partial = self.in_head and self.received > max(self.wait_from, self.head_from)
        else:
            partial = True
        if answering and partial and not self.pipeline:
            status_line, rest = self.guard.answers[reason]
            headers = b"".join(name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers)
            transport.write(status_line + headers + rest)
        transport.close()

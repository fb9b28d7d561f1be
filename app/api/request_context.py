"""Per-request id, JSON access log and Prometheus metrics, as one pure ASGI middleware."""

from __future__ import annotations

import functools
import logging
import os
import re
import time
from collections.abc import Collection

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.dispatch import route_path
from app.api.memory_release import release_if_large
from app.observability import HTTP_LATENCY, HTTP_REQUESTS, request_id_var

access_log = logging.getLogger("backprop.access")

REQUEST_ID_HEADER = b"x-request-id"
CLIENT_CLOSED_REQUEST = 499
# Every answer: browsers must not guess a type other than the one declared (an SVG or a
# JSON error quoting client input must never be run as HTML).
NOSNIFF = (b"x-content-type-options", b"nosniff")
NO_STORE = (b"cache-control", b"no-store")
# A client's id is kept only if it is short and plain, so it cannot forge log lines or headers.
_VALID_ID = re.compile(rb"[A-Za-z0-9._:\-]{1,128}")


@functools.lru_cache(maxsize=4096)
def _counter(method: str, route: str, status: int) -> Counter:
    # labels() takes a lock and builds a key on every call; the children are fixed per label set.
    return HTTP_REQUESTS.labels(method, route, str(status))


@functools.lru_cache(maxsize=1024)
def _latency(method: str, route: str) -> Histogram:
    return HTTP_LATENCY.labels(method, route)


class RequestContext:
    """Honours or assigns ``X-Request-ID``, returns it with the security headers every answer carries,
    logs one JSON line and counts every request."""

    def __init__(self, app: ASGIApp, post_routes: Collection[str] = ()) -> None:
        self.app = app
        # POST paths labelled by their route even when answered before routing (a 413 for the
        # body's size, a client that left mid-body).
        self.post_routes = frozenset(post_routes)

    def _known_route(self, scope: Scope) -> str:
        path = route_path(scope)
        return path if scope["method"] == "POST" and path in self.post_routes else "unmatched"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = dict(scope["headers"]).get(REQUEST_ID_HEADER, b"")
        request_id = sent.decode() if _VALID_ID.fullmatch(sent) else os.urandom(16).hex()
        token = request_id_var.set(request_id)
        start = time.perf_counter()
        status = 500
        completed = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, completed
            if message["type"] == "http.response.body":
                await send(message)
                completed = not message.get("more_body", False)
                return
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", ()))
                headers.append((REQUEST_ID_HEADER, request_id.encode()))
                headers.append(NOSNIFF)
                if not any(name.lower() == b"cache-control" for name, _ in headers):
                    # Answers are computed per request: nothing in between may keep or reuse one,
                    # unless the route says otherwise (the playground, the spec).
                    headers.append(NO_STORE)
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
            if not completed:
                # The app returned without sending a whole answer: its client went away (mid-body,
                # mid-computation or mid-stream). nginx's status for that.
                status = CLIENT_CLOSED_REQUEST
        except OSError:
            # Sending to a client that has gone (uvicorn's ClientDisconnected is an OSError).
            status = CLIENT_CLOSED_REQUEST
            raise
        finally:
            await release_if_large(scope)
            elapsed = time.perf_counter() - start
            route = getattr(scope.get("route"), "path", None) or self._known_route(scope)
            _counter(scope["method"], route, status).inc()
            _latency(scope["method"], route).observe(elapsed)
            access_log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": scope["method"],
                    "path": scope["path"],
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 3),
                    "client": (scope.get("client") or ("", 0))[0],
                },
            )
            request_id_var.reset(token)

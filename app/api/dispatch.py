"""POST requests to the compute routes, served straight from their endpoints.

The compute routes are declared, documented and validated as FastAPI routes (their
OpenAPI entries, their endpoints); this pure ASGI middleware only shortens the way a
request reaches them. FastAPI's per-request path (matching through eleven included
routers twice, a Request and two exit stacks per request, dependency solving, the
exception middleware) costs more than backprop on the seed network itself: about 40% of
a whole /v1/gradients request, measured in bench/README.md. Every compute endpoint takes
only the ``Request``, reads its own body and returns a finished ``Response``, so none of
that path does anything for it.

Errors are answered by the app's own exception handlers (app.api.errors), looked up as
Starlette looks them up, so a response is the same whichever way the request went.
Anything that is not a POST to one of these exact paths (a GET, a trailing slash, an
unknown path) goes on to FastAPI unchanged, for its 404, 405 or redirect.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Receive, Scope, Send

# As Starlette types its exception handlers (every one of ours is async).
Handler = Callable[[Request, Any], Response | Awaitable[Response]]


def post_routes(routes: Iterable[APIRoute]) -> dict[str, APIRoute]:
    """``routes`` that accept POST, by path."""
    return {route.path: route for route in routes if route.methods is not None and "POST" in route.methods}


class ComputeDispatch:
    """Pure ASGI middleware: calls the endpoint of a POST to one of ``routes`` directly."""

    def __init__(self, app: ASGIApp, routes: Mapping[str, APIRoute], handlers: Mapping[Any, Handler]) -> None:
        self.app = app
        self.routes = dict(routes)
        # The app's handlers, by exception class (a live view: later registrations count too).
        self.handlers = handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.routes.get(route_path(scope)) if scope["type"] == "http" and scope["method"] == "POST" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = route  # the route template that logs and metrics are labelled with
        request = Request(scope, receive, send)
        try:
            response = await route.endpoint(request)
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                raise
            answer = handler(request, exc)
            response = await answer if inspect.isawaitable(answer) else answer
        await response(scope, receive, send)

    def _handler(self, exc: Exception) -> Handler | None:
        # The most specific registered class in the exception's MRO, as Starlette chooses.
        for cls in type(exc).__mro__:
            if cls in self.handlers:
                return self.handlers[cls]
        return None


def route_path(scope: Scope) -> str:
    """The request's path below the app's root_path, as Starlette's router matches it."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path

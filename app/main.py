"""The ASGI app: ``app.main:app``."""

from __future__ import annotations

import sys

from fastapi import FastAPI
from fastapi.routing import APIRoute

from app import __version__
from app.api import routes
from app.api.admission import Admission
from app.api.body_limit import BodySizeLimit
from app.api.dispatch import ComputeDispatch, post_routes
from app.api.errors import install_error_handlers
from app.api.memory_release import freeze_startup_objects
from app.api.openapi import install_openapi
from app.api.request_context import RequestContext
from app.config import Settings, get_settings
from app.observability import lean_log_records

DESCRIPTION = """\
Backpropagation for fully connected networks, over HTTP: send weights, inputs and
targets; get every activation, the loss, every gradient, or a training trace.
All computation is float64 with PyTorch's semantics. "Try it out" is prefilled with
the `seed` example (a 2-2-1 network from a blog post that hand-codes backprop).
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    if settings.switch_interval_ms:
        sys.setswitchinterval(settings.switch_interval_ms / 1000)
    lean_log_records()
    app = FastAPI(
        title="backprop-api",
        version=__version__,
        description=DESCRIPTION,
        # A JSON-only API without cookies: a body without a Content-Type is read as JSON.
        strict_content_type=False,
        # /docs and /redoc are served by app.api.routes.docs, from vendored files (no CDN).
        docs_url=None,
        redoc_url=None,
        telemetry=None if settings.opentelemetry else {"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.admission = Admission(settings.max_inflight_work, settings.max_inflight_memory)
    for router in (*routes.COMPUTE, *routes.OTHERS):
        app.include_router(router)
    install_error_handlers(app)
    install_openapi(app)
    # The last added runs first: every request gets its id, log line and metrics, even a 413;
    # compute requests are dispatched once their body is within the limit.
    compute = post_routes(route for router in routes.COMPUTE for route in router.routes if isinstance(route, APIRoute))
    app.add_middleware(ComputeDispatch, routes=compute, handlers=app.exception_handlers)
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
        admission=app.state.admission,
        max_binary_bytes=settings.max_binary_body_bytes,
    )
    app.add_middleware(RequestContext, post_routes=compute.keys())
    return app


app = create_app()
# What the server imports once lives as long as it: out of the collector's walk (app.api.memory_release).
freeze_startup_objects()

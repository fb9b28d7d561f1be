"""Every exception a request can raise, mapped to the contract's error body in one place.

The body is always ``{"detail": [{"loc": [...], "msg": "...", "type": "..."}]}``, its entries
said by app.schemas.error_entries (never echoing what the client sent).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from app.api.admission import Overloaded
from app.api.http_errors import NotAcceptable, UnsupportedMediaType
from app.nn.errors import NonFiniteError
from app.render.graphviz import GraphvizMissing
from app.schemas.error_entries import error_entries, graphviz_missing_entry, limit_entry, non_finite_entry
from app.schemas.responses import ErrorBody
from app.service.limits import OverLimit

error_log = logging.getLogger("backprop.error")

# The error answers every body-taking route documents, all in the contract's shape.
BODY_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorBody, "description": "Over a configured limit; `msg` names the setting that raises it."},
    415: {"model": ErrorBody, "description": "The body is not declared as JSON (`Content-Type: application/json`)."},
    422: {"model": ErrorBody, "description": "Invalid body: `loc` points at the field, `msg` says what was expected."},
    503: {
        "model": ErrorBody,
        "description": "This worker is at its bound of admitted work; `Retry-After` says when to try again.",
        "headers": {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}},
    },
}

# The same answers for routes whose success is not JSON (their response_class would
# otherwise be applied to the error bodies too).
BODY_ERROR_RESPONSES_EXPLICIT: dict[int | str, dict[str, Any]] = {
    status: {
        "description": spec["description"],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
        **({"headers": spec["headers"]} if "headers" in spec else {}),
    }
    for status, spec in BODY_ERROR_RESPONSES.items()
}


# What a route that answers in more than one media type (by Accept) may answer besides. The 406's
# example is a real answer (app.api.openapi); the 501's cannot be (the spec is built where Graphviz is).
NEGOTIATED_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    406: {
        "description": "The Accept header allows none of the media types this endpoint answers in.",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    },
    501: {
        "description": "SVG asked for, but Graphviz's dot is not installed on the server; JSON and DOT still work.",
        "content": {
            "application/json": {
                "schema": {"$ref": "#/components/schemas/ErrorBody"},
                "examples": {
                    "graphviz_missing": {
                        "summary": "Accept: image/svg+xml on a server without Graphviz",
                        "value": {"detail": [graphviz_missing_entry(str(GraphvizMissing()))]},
                    }
                },
            }
        },
    },
}


def _detail(status: int, entries: list[dict[str, Any]]) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": entries})


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    # app.api.body attaches the count of errors it did not build (or locate) to the exception.
    return _detail(422, error_entries(exc.errors(), getattr(exc, "more_errors", 0), getattr(exc, "more_at_least", False)))


async def _non_finite(request: Request, exc: NonFiniteError) -> JSONResponse:
    # app.api.compute keeps the validated body: the layer is named as it was sent, the range is its dtype's.
    body = getattr(request.state, "body", None)
    return _detail(422, [non_finite_entry(exc, getattr(body, "network", None), getattr(body, "dtype", "float64"))])


async def _limit_exceeded(request: Request, exc: OverLimit) -> JSONResponse:
    return _detail(413, [limit_entry(exc.loc, exc.message)])


async def _unsupported_media_type(request: Request, exc: UnsupportedMediaType) -> JSONResponse:
    return _detail(415, [{"loc": ["header", "content-type"], "msg": exc.message, "type": "unsupported_media_type"}])


async def _not_acceptable(request: Request, exc: NotAcceptable) -> JSONResponse:
    return _detail(406, [{"loc": ["header", "accept"], "msg": exc.message, "type": "not_acceptable"}])


async def _graphviz_missing(request: Request, exc: GraphvizMissing) -> JSONResponse:
    return _detail(501, [graphviz_missing_entry(str(exc))])


async def _overloaded(request: Request, exc: Overloaded) -> JSONResponse:
    response = _detail(503, [{"loc": [], "msg": exc.message, "type": "overloaded"}])
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    # A bug, never the client's fault: log it with its traceback, answer without details.
    error_log.error("unhandled exception", exc_info=exc, extra={"path": request.url.path})
    msg = "internal error; the server logged it with this request's X-Request-ID"
    return _detail(500, [{"loc": [], "msg": msg, "type": "internal_error"}])


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(NonFiniteError, _non_finite)  # type: ignore[arg-type]
    app.add_exception_handler(OverLimit, _limit_exceeded)  # type: ignore[arg-type]
    app.add_exception_handler(UnsupportedMediaType, _unsupported_media_type)  # type: ignore[arg-type]
    app.add_exception_handler(NotAcceptable, _not_acceptable)  # type: ignore[arg-type]
    app.add_exception_handler(GraphvizMissing, _graphviz_missing)  # type: ignore[arg-type]
    app.add_exception_handler(Overloaded, _overloaded)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _internal_error)

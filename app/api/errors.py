"""Every exception a request can raise, mapped to the contract's error body in one place.

The body is always ``{"detail": [{"loc": [...], "msg": "...", "type": "..."}]}``; it never
echoes what the client sent (FastAPI's default handler does, and a NaN or 1e400 there
would make the error itself unserialisable), only a short description of it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from app.api.admission import Overloaded
from app.api.http_errors import UnsupportedMediaType
from app.nn.errors import NonFiniteError
from app.schemas.base import LOCATED_ERROR_TYPES, describe
from app.schemas.responses import ErrorBody
from app.service.limits import LimitExceeded

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

MAX_REPORTED_ERRORS = 100
QUANTITY_WORDS = {
    "pre_activation": "pre-activation",
    "activation": "activation",
    "loss": "loss (computed from its output)",
    "gradient": "gradient",
    "numerical gradient": "numerical gradient (the loss at a parameter plus or minus epsilon)",
}


def _detail(status: int, entries: list[dict[str, Any]]) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": entries})


def _message(error: dict[str, Any]) -> str:
    kind, msg = error["type"], error["msg"]
    if kind == "json_invalid":
        reason = (error.get("ctx") or {}).get("error", "malformed")
        return f"the body is not valid JSON: {reason}"
    if kind in LOCATED_ERROR_TYPES or kind == "missing":
        return msg
    return f"{msg}; found {describe(error.get('input'))}"


def error_entries(errors: Sequence[dict[str, Any]], more: int = 0, at_least: bool = False) -> list[dict[str, Any]]:
    """Pydantic's errors as the contract's ``detail`` entries: no echoed input, a described one in ``msg``.

    At most MAX_REPORTED_ERRORS entries, then one that counts the rest: those of ``errors``
    beyond the cap plus ``more``, errors that were counted but never built (a large body's,
    app.api.large_body). ``at_least``: some were not even counted (a large block of a type
    whose failing elements are not simply known was cut), so the count is a lower bound.
    """
    entries = [{"loc": list(error["loc"]), "msg": _message(error), "type": error["type"]} for error in errors[:MAX_REPORTED_ERRORS]]
    hidden = max(0, len(errors) - MAX_REPORTED_ERRORS) + more
    if hidden:
        # A body with a million bad numbers should not get a million-entry answer.
        count = f"at least {hidden}" if at_least else f"{hidden}"
        entries.append({"loc": ["body"], "msg": f"{count} more errors like these were found", "type": "too_many_errors"})
    return entries


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    # app.api.body attaches the count of errors it did not build (or locate) to the exception.
    return _detail(422, error_entries(exc.errors(), getattr(exc, "more_errors", 0), getattr(exc, "more_at_least", False)))


def non_finite_entry(exc: NonFiniteError) -> dict[str, Any]:
    """The error entry of a computation that overflowed (also what the CLI's --local says)."""
    what = QUANTITY_WORDS.get(exc.quantity, exc.quantity)
    msg = (
        f"layer {exc.layer}'s {what} overflowed to a non-finite value (inf or NaN) although every input "
        f"was finite; expected values that stay within float64 range (scale down weights or inputs)"
    )
    return {"loc": ["body", "network", "layers", exc.layer], "msg": msg, "type": "non_finite"}


async def _non_finite(request: Request, exc: NonFiniteError) -> JSONResponse:
    return _detail(422, [non_finite_entry(exc)])


async def _limit_exceeded(request: Request, exc: LimitExceeded) -> JSONResponse:
    return _detail(413, [{"loc": ["body", *exc.loc], "msg": exc.message, "type": "limit_exceeded"}])


async def _unsupported_media_type(request: Request, exc: UnsupportedMediaType) -> JSONResponse:
    return _detail(415, [{"loc": ["header", "content-type"], "msg": exc.message, "type": "unsupported_media_type"}])


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
    app.add_exception_handler(LimitExceeded, _limit_exceeded)  # type: ignore[arg-type]
    app.add_exception_handler(UnsupportedMediaType, _unsupported_media_type)  # type: ignore[arg-type]
    app.add_exception_handler(Overloaded, _overloaded)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _internal_error)

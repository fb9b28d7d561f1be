"""Request bodies parsed and validated: small ones in one pass by pydantic's own JSON parser,
large ones in bounded time and memory by app.api.large_body.

FastAPI's default path (``json.loads`` into Python objects, then validation) costs
several times more per number than ``model_validate_json``, which matters for
networks of a million parameters; errors keep the contract's shape and locations.
A body over THREAD_BODY_BYTES is validated in a worker thread by app.api.large_body,
which parses its arrays of numbers straight into float64 (pydantic would make a Python
float of each, and hold the GIL all the while) and builds at most MAX_REPORTED_ERRORS
errors however many there are; a small body cannot hold enough to matter.
The compute routes call ``read_body`` themselves rather than declaring the body as a
FastAPI dependency: each resolved dependency costs a request about 20 us (bench/README.md),
a tenth of a whole seed /v1/gradients request.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import anyio.to_thread
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from app.api.binary_body import validate_binary
from app.api.http_errors import UnsupportedMediaType
from app.api.large_body import Invalid, StructureTooLarge, validate_large
from app.schemas.error_entries import body_errors
from app.schemas.media_types import SAFETENSORS
from app.schemas.requests import ComputeRequest
from app.service.limits import OverLimit

M = TypeVar("M", bound=BaseModel)

# Bodies larger than this are validated in a worker thread, by app.api.large_body.
THREAD_BODY_BYTES = 64 * 1024


def _media(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _is_json(content_type: str) -> bool:
    media = _media(content_type)
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def is_binary(content_type: str | None) -> bool:
    """Whether a Content-Type declares a safetensors body (app.api.binary_body)."""
    return content_type is not None and _media(content_type) == SAFETENSORS


def body_encoding(request: Request) -> str:
    """``binary`` for a safetensors body, ``json`` for JSON; UnsupportedMediaType for anything else.

    A missing Content-Type is refused too: a cross-site "simple request" (a form post, or
    fetch with ``mode: "no-cors"`` and a Blob) can only send text/plain, form encodings or
    none, and must not be able to make a visitor's browser spend this server's CPU.
    """
    content_type = request.headers.get("content-type")
    if is_binary(content_type):
        return "binary"
    if content_type is None or not _is_json(content_type):
        raise UnsupportedMediaType(content_type)
    return "json"


async def read_body(request: Request, model: type[M]) -> M:
    """The request body as a ``model``; errors (RequestValidationError) are located under ``body``.
    A body declared as neither JSON nor safetensors is refused (UnsupportedMediaType) before it is read."""
    binary = body_encoding(request) == "binary"
    # request.body() would join the body with the stream's closing empty chunk: a copy of
    # the whole body (tens of MB for a large network) that one chunk does not need.
    chunks = [chunk async for chunk in request.stream() if chunk]
    raw = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    del chunks
    if binary:
        header_limit = request.app.state.settings.max_binary_header_bytes
        if len(raw) > THREAD_BODY_BYTES:
            body = await anyio.to_thread.run_sync(parse_binary_body, raw, model, header_limit)
        else:
            body = parse_binary_body(raw, model, header_limit)
        if isinstance(body, ComputeRequest):
            body.came_binary()
        return body
    if len(raw) > THREAD_BODY_BYTES:
        return await anyio.to_thread.run_sync(parse_large_body, raw, model, request.app.state.settings.max_layers)
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise request_error(exc.errors(include_url=False), model) from None


def parse_large_body(raw: bytes, model: type[M], max_layers: int) -> M:
    """``raw`` as a ``model`` by app.api.large_body, its failures as the HTTP layer's exceptions."""
    try:
        return validate_large(raw, model, max_layers)
    except Invalid as exc:
        raise request_error(exc.errors, model, exc.more, exc.at_least) from None
    except StructureTooLarge as exc:
        raise OverLimit(
            (),
            f"the number of {exc.what} in the body",
            exc.found,
            exc.limit,
            "max_layers",
        ) from None


def parse_binary_body(raw: bytes, model: type[M], max_header_bytes: int) -> M:
    """``raw`` (safetensors) as a ``model`` by app.api.binary_body, its errors as the HTTP layer's (a header over
    its limit is already an OverLimit)."""
    try:
        return validate_binary(raw, model, max_header_bytes)
    except Invalid as exc:
        raise request_error(exc.errors, model, exc.more, exc.at_least) from None


def request_error(errors: Sequence[Any], model: type[BaseModel], more: int = 0, at_least: bool = False) -> RequestValidationError:
    """The first MAX_REPORTED_ERRORS of pydantic's ``errors`` for a ``model`` body, said as a client can
    act on them (app.schemas.error_hints) and located under ``body``, the count of the rest (and of
    ``more``, never built) attached for app.api.errors."""
    said = body_errors(errors, model, more, at_least)
    exc = RequestValidationError(said.shown)
    exc.more_errors = said.more  # type: ignore[attr-defined]
    exc.more_at_least = said.at_least  # type: ignore[attr-defined]
    return exc

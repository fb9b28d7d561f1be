"""Request bodies parsed and validated in one pass by pydantic's own JSON parser.

FastAPI's default path (``json.loads`` into Python objects, then validation) costs
several times more per number than ``model_validate_json``, which matters for
networks of a million parameters; errors keep the contract's shape and locations.
The compute routes call ``read_body`` themselves rather than declaring the body as a
FastAPI dependency: each resolved dependency costs a request about 20 us (bench/README.md),
a tenth of a whole seed /v1/gradients request.
"""

from __future__ import annotations

from typing import Any, TypeVar

import anyio.to_thread
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)

# Bodies larger than this are validated in a worker thread so the event loop stays free.
THREAD_BODY_BYTES = 64 * 1024


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


async def read_body(request: Request, model: type[M]) -> M:
    """The request body as a ``model``; errors (RequestValidationError) are located under ``body``."""
    # request.body() would join the body with the stream's closing empty chunk: a copy of
    # the whole body (tens of MB for a large network) that one chunk does not need.
    chunks = [chunk async for chunk in request.stream() if chunk]
    raw = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    content_type = request.headers.get("content-type")
    if content_type and not _is_json(content_type):
        raise RequestValidationError(
            [
                {
                    "type": "unsupported_media_type",
                    "loc": ("body",),
                    "msg": f"the body must be JSON sent as application/json, but its Content-Type is {content_type[:80]}",
                    "input": None,
                }
            ]
        )
    try:
        if len(raw) > THREAD_BODY_BYTES:
            return await anyio.to_thread.run_sync(model.model_validate_json, raw)
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(located(exc)) from None


def located(exc: ValidationError) -> list[dict[str, Any]]:
    """``exc``'s errors with their locations under ``body``, as FastAPI reports body errors."""
    return [{**error, "loc": ("body", *error["loc"])} for error in exc.errors(include_url=False)]

"""Reject request bodies over ``BACKPROP_MAX_BODY_BYTES`` (``BACKPROP_MAX_BINARY_BODY_BYTES`` for safetensors)
with 413 before any of it is parsed."""

from __future__ import annotations

import json
from typing import TypedDict

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.admission import SCOPE_KEY as ADMITTED_BODY_KEY
from app.api.admission import Admission, Overloaded, Ticket
from app.api.body import is_binary
from app.api.memory_release import mark_large

# Parsing and validating a body holds at most this many times its size (Python objects per
# number while pydantic validates; bench/README.md has the measurement). Bodies of at least
# ADMITTED_BODY_BYTES reserve that much of the worker's in-flight memory before they are read.
PARSE_MEMORY_FACTOR = 20
ADMITTED_BODY_BYTES = 1024 * 1024
# A safetensors body's arrays are views of it: the body, and a float64 copy of float32 tensors
# (twice their bytes), at most (bench/README.md).
BINARY_PARSE_MEMORY_FACTOR = 3


class _ErrorEntry(TypedDict):
    """One entry of the API's error ``detail``."""

    loc: list[str]
    msg: str
    type: str


class BodySizeLimit:
    """Pure ASGI middleware: checks Content-Length, then counts the bytes actually received.

    A large body is admitted first (app.api.admission): it reserves the memory its parse
    will hold for the whole request, so that many large bodies at once are refused with 503
    instead of being buffered and parsed together past the worker's memory.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, admission: Admission | None = None, max_binary_bytes: int | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_binary_bytes = max_bytes if max_binary_bytes is None else max_binary_bytes
        self.admission = admission

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length", b"")
        binary = is_binary(headers.get(b"content-type", b"").decode("latin-1"))
        limit, setting = (self.max_binary_bytes, "MAX_BINARY_BODY_BYTES") if binary else (self.max_bytes, "MAX_BODY_BYTES")
        factor = BINARY_PARSE_MEMORY_FACTOR if binary else PARSE_MEMORY_FACTOR
        if declared.isdigit() and int(declared) > limit:
            await self._reject(send, f"{int(declared):,} bytes", limit, setting)
            return
        reservation: Ticket | None = None
        try:
            if declared.isdigit() and int(declared) >= ADMITTED_BODY_BYTES:
                reservation = self._admit(int(declared), factor)
            # Buffer the whole body (the JSON parser needs it anyway) so a body without a
            # Content-Length, or with a false one, is still cut off at the limit.
            chunks, size = [], 0
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return  # the client went away before sending its body
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    await self._reject(send, f"more than {limit:,} bytes", limit, setting)
                    return
                if reservation is None and size >= ADMITTED_BODY_BYTES:
                    reservation = self._admit(limit, factor)  # no (true) length: the worst case
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
        except Overloaded as exc:
            await _send_json(
                send, 503, [{"loc": [], "msg": exc.message, "type": "overloaded"}], ((b"retry-after", str(exc.retry_after).encode()),)
            )
            return
        if reservation is not None:
            scope[ADMITTED_BODY_KEY] = reservation
        try:
            body = b"".join(chunks)
            chunks.clear()  # the body is all that is held from here on
            # Parsing it holds up to ``factor`` times its size (Python objects per JSON number): a trim may follow.
            mark_large(scope, size * factor)
            replayed = False

            async def replay() -> Message:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await self.app(scope, replay, send)
        finally:
            if reservation is not None:
                reservation.release()

    def _admit(self, body_bytes: int, factor: int) -> Ticket | None:
        return None if self.admission is None else self.admission.admit(0, body_bytes * factor)

    async def _reject(self, send: Send, found: str, limit: int, setting: str) -> None:
        detail: list[_ErrorEntry] = [
            {
                "loc": ["body"],
                "msg": f"the request body is {found}, over the limit of {limit:,} bytes; the server's setting BACKPROP_{setting} raises it",
                "type": "limit_exceeded",
            }
        ]
        await _send_json(send, 413, detail)


async def _send_json(send: Send, status: int, detail: list[_ErrorEntry], headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    payload = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": payload})

"""Reject request bodies over ``BACKPROP_MAX_BODY_BYTES`` with 413 before any of it is parsed."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.memory_release import mark_large


class BodySizeLimit:
    """Pure ASGI middleware: checks Content-Length, then counts the bytes actually received."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(send, f"{int(declared):,} bytes")
            return
        # Buffer the whole body (the JSON parser needs it anyway) so a body without a
        # Content-Length, or with a false one, is still cut off at the limit.
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before sending its body
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._reject(send, f"more than {self.max_bytes:,} bytes")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        # Parsing it holds many times its size (Python objects per number): a trim follows.
        mark_large(scope, size * 8)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _reject(self, send: Send, found: str) -> None:
        detail = [
            {
                "loc": ["body"],
                "msg": f"the request body is {found}, over the limit of {self.max_bytes:,} bytes; "
                "the server's setting BACKPROP_MAX_BODY_BYTES raises it",
                "type": "limit_exceeded",
            }
        ]
        payload = json.dumps({"detail": detail}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": payload})

"""Exceptions raised by the HTTP layer itself (not by validation or the engine), each with its status.

``app.api.errors`` maps them to the contract's error body.
"""

from __future__ import annotations

from app.schemas.base import quoted

# A Content-Type quoted in a message is cut to this many characters.
QUOTE_LIMIT = 80


class UnsupportedMediaType(Exception):
    """A POST whose Content-Type is neither JSON nor safetensors (415)."""

    def __init__(self, content_type: str | None) -> None:
        found = "no Content-Type" if content_type is None else f"Content-Type {quoted(content_type, QUOTE_LIMIT)!r}"
        self.message = (
            "the body must be JSON sent with Content-Type: application/json, or safetensors sent with "
            f"Content-Type: application/x-safetensors, but the request has {found}"
        )
        super().__init__(self.message)


class NotAcceptable(Exception):
    """A request whose ``Accept`` allows none of the media types the route answers in (406)."""

    def __init__(self, accept: str, offered: tuple[str, ...]) -> None:
        self.message = (
            f"this endpoint answers {', '.join(offered[:-1])} or {offered[-1]} (by the Accept header; none or */* "
            f"is {offered[0]}), but the request accepts only {quoted(accept, QUOTE_LIMIT)!r}"
        )
        super().__init__(self.message)

"""The bodies of answers: JSON encoded by orjson (numpy arrays included), NDJSON streams, SVG pictures."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import orjson
from fastapi.responses import Response, StreamingResponse

from app.schemas.media_types import DOT, JSON, NDJSON, SVG

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


class JSONBody(Response):
    """``content`` (dicts, lists, floats and C-contiguous float64 arrays) as JSON.

    The service guarantees every float is finite, so nothing here can write NaN or Infinity.
    """

    media_type = JSON

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=_OPTIONS)


def ndjson_response(batches: Iterable[list[Any]]) -> StreamingResponse:
    """One JSON document per line, a batch of lines per chunk of work, sent as each is computed."""

    def lines() -> Iterator[bytes]:
        for batch in batches:
            yield b"".join(orjson.dumps(item, option=_OPTIONS) + b"\n" for item in batch)

    # A sync iterator: Starlette runs each step in a worker thread, off the event loop.
    return StreamingResponse(lines(), media_type=NDJSON)


class SVGBody(Response):
    """An SVG picture."""

    media_type = SVG


class DOTBody(Response):
    """A graph in Graphviz's DOT language (text; Starlette adds ``charset=utf-8``)."""

    media_type = DOT


SVG_RESPONSE: dict[int | str, dict[str, Any]] = {200: {"content": {SVG: {"schema": {"type": "string"}}}, "description": "An SVG picture."}}

"""The bodies of answers: JSON encoded by orjson (numpy arrays included), safetensors, NDJSON streams, SVG pictures."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import orjson
from fastapi.responses import Response, StreamingResponse
from numpy.typing import NDArray

from app.schemas.media_types import DOT, JSON, NDJSON, SAFETENSORS, SVG
from app.schemas.safetensors import encode, tensor_name

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


class JSONBody(Response):
    """``content`` (dicts, lists, floats and C-contiguous float64 arrays) as JSON.

    The service guarantees every float is finite, so nothing here can write NaN or Infinity.
    """

    media_type = JSON

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=_OPTIONS)


# The key of __metadata__ that holds the rest of the answer.
RESPONSE_KEY = "response"


class SafetensorsBody(Response):
    """``content`` as a safetensors file: every array of numbers of the JSON answer (a float array, a list
    of floats or of lists of floats) is a tensor named by its path (app.schemas.safetensors.tensor_name);
    ``__metadata__["response"]`` is the JSON answer without them (where one was a list's item, null)."""

    media_type = SAFETENSORS

    def render(self, content: Any) -> bytes:
        return safetensors_file(content, RESPONSE_KEY)


def safetensors_file(content: Any, key: str) -> bytes:
    """``content`` (JSON-ready, numpy arrays included) as a safetensors file: its arrays of numbers as
    tensors named by their paths, the rest as JSON in ``__metadata__[key]``."""
    tensors: dict[str, NDArray[np.floating[Any]]] = {}
    rest = _without_arrays(content, (), tensors)
    return encode(tensors, {key: orjson.dumps(rest, option=_OPTIONS).decode()})


def _without_arrays(node: Any, path: tuple[str | int, ...], tensors: dict[str, NDArray[np.floating[Any]]]) -> Any:
    """``node`` with its arrays of numbers moved into ``tensors`` (by name): ``_MOVED`` where one was."""
    array = _as_array(node)
    if array is not None:
        tensors[tensor_name(path)] = array
        return _MOVED
    if isinstance(node, dict):
        kept = {key: _without_arrays(value, (*path, key), tensors) for key, value in node.items()}
        return {key: value for key, value in kept.items() if value is not _MOVED}
    if isinstance(node, list):
        return [None if (item := _without_arrays(value, (*path, i), tensors)) is _MOVED else item for i, value in enumerate(node)]
    return node


_MOVED = object()


def _as_array(node: Any) -> NDArray[np.floating[Any]] | None:
    """``node`` as a float array when it is one: a float64 or float32 array of 1 or 2 dimensions, or a
    non-empty list of floats or of equally long lists of floats (a row or a matrix)."""
    if isinstance(node, np.ndarray):
        return node if node.dtype in (np.float64, np.float32) and node.ndim in (1, 2) else None
    if not isinstance(node, list) or not node:
        return None
    if all(type(x) is float for x in node):
        return np.array(node, dtype=np.float64)
    if all(type(row) is list and row and len(row) == len(node[0]) and all(type(x) is float for x in row) for row in node):
        return np.array(node, dtype=np.float64)
    return None


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


BINARY_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {SAFETENSORS: {"schema": {"type": "string", "format": "binary"}}},
        "description": "The answer as JSON or, with `Accept: application/x-safetensors`, as safetensors: each array "
        "of numbers a tensor named by its path (`gradients.0.weights`), `__metadata__.response` the rest as JSON.",
    }
}

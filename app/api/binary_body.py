"""Request bodies sent as safetensors: the request's arrays as raw little-endian bytes.

A binary body (``Content-Type: application/x-safetensors``) is one safetensors file
(app.schemas.safetensors). Each tensor is named by its path in the JSON request it stands
for: ``inputs``, ``targets``, ``network.layers.0.weights``; a bare PyTorch state_dict key
(``0.weight``, ``2.bias``, what ``safetensors.torch.save_file(model.state_dict(), ...)`` writes)
is the network's ``network.state_dict.0.weight``. The header's ``__metadata__["request"]``
holds the request's other fields as a JSON object (``{"loss": "mse", ...}``).

Validation is the JSON path's, with its rules and errors: the tensors are put into that
JSON object as the placeholders of app.api.large_body, whose walk along the request model
finds which of them stand where numbers of their depth are wanted ("claimed"); the block-aware
models then take each claimed tensor's float64 array as the field's value, with no copy
(a float32 tensor is widened once, exactly). A claimed tensor that is not all finite gets
pydantic's own ``finite_number`` errors at its first failing elements (the rest counted); a
tensor anywhere else is put back into the JSON as numbers (cut short when large), so that
pydantic says what it says of such an array there. What can only go wrong in a binary body
(the file itself, a name that cannot be placed) is a ``safetensors_invalid`` error at the
tensor's path, or at ``header``.

The header is at most BACKPROP_MAX_BINARY_HEADER_BYTES, and its JSON is small enough to be
validated in one pass, as a small JSON body is; arrays of any size are tensors, which cost no
Python step per number.
"""

from __future__ import annotations

import json
import secrets
from typing import Any, TypeVar

import numpy as np
import pydantic_core
from numpy.typing import NDArray
from pydantic import BaseModel, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from app.api.large_body import Block, Context, Invalid, Walk, block_aware, invalid_error
from app.schemas.error_entries import MAX_REPORTED_ERRORS
from app.schemas.safetensors import METADATA, SafetensorsError, decode, tensor_path
from app.service.limits import OverLimit

M = TypeVar("M", bound=BaseModel)

# The key of __metadata__ that holds the request's other fields.
REQUEST_KEY = "request"
# Tensors of at most this many numbers are put into the JSON as numbers (pydantic validates them as
# it would in a JSON body); larger ones where numbers are not wanted are cut to this many.
INLINE_NUMBERS = 64
VERBATIM_NUMBERS = 4_096
# A tensor named into a list (``network.layers.7.weights``) may make it at most this long.
MAX_INDEX = 1_000_000

Path = tuple[str | int, ...]


def validate_binary(raw: bytes, model: type[M], max_header_bytes: int) -> M:
    """``raw``, a safetensors body, validated as ``model``; raises Invalid, or OverLimit for a header
    longer than ``max_header_bytes`` (BACKPROP_MAX_BINARY_HEADER_BYTES)."""
    if len(raw) >= 8 and (n := int.from_bytes(raw[:8], "little")) > max_header_bytes:
        raise OverLimit(("header",), "the length of the safetensors header in bytes", n, max_header_bytes, "max_binary_header_bytes")
    try:
        decoded = decode(raw, max_header_bytes=max_header_bytes)
    except SafetensorsError as exc:
        # A tensor's fault is located at the path it is named for.
        loc = exc.loc if exc.loc[0] in ("header", METADATA) else tensor_path(exc.loc[0])
        raise _format_error(loc, exc.message) from None
    tree = _request_object(decoded.metadata)
    nonce = secrets.token_hex(8)
    prefix = f"\x00{nonce}#"
    blocks: list[Block] = []
    arrays: list[NDArray[Any]] = []
    slots: list[tuple[Any, str | int]] = []
    for name, array in decoded.tensors.items():
        path = tensor_path(name)
        if array.ndim > 2:
            raise _format_error(path, f"tensor {name!r} has shape {list(array.shape)}; the arrays of a request are 1-D or 2-D")
        parent, key = _slot(tree, path, name)
        if array.ndim == 0 or array.size <= INLINE_NUMBERS:
            # Small, or empty: pydantic sees exactly what JSON would show (of an empty matrix's rows, as
            # many as a tensor's numbers are cut to: shape [10**9, 0] is a valid file of no bytes).
            parent[key] = array[:VERBATIM_NUMBERS].tolist() if array.ndim else array.tolist()
            continue
        marker: Any = prefix + str(len(blocks))
        for _ in range(array.ndim):
            marker = [marker]
        parent[key] = marker
        blocks.append(Block(0, 0, array.ndim))
        arrays.append(array)
        slots.append((parent, key))
    Walk(prefix, blocks).node(tree, model, ())
    context = Context(prefix, blocks, b"", b"")
    for block, array, (parent, key) in zip(blocks, arrays, slots):
        if block.claimed:
            _claim(block, array)
        else:
            parent[key] = _cut(array)
    skeleton = json.dumps(tree, allow_nan=True, separators=(",", ":"))
    try:
        return block_aware(model).model_validate_json(skeleton, context=context)
    except ValidationError as exc:
        raise invalid_error(exc, context) from None


def _request_object(metadata: dict[str, str]) -> dict[str, Any]:
    """The request's other fields, from ``__metadata__["request"]`` (other metadata keys, which tools
    write for themselves, are ignored)."""
    text = metadata.get(REQUEST_KEY)
    if text is None:
        return {}
    try:
        # pydantic_core's parser: bounded recursion, NaN and big integers read as a JSON body's are.
        tree = pydantic_core.from_json(text)
    except ValueError as exc:
        raise _format_error((METADATA, REQUEST_KEY), f"__metadata__.request must be a JSON object of the request's fields: {exc}") from None
    if not isinstance(tree, dict):
        raise _format_error((METADATA, REQUEST_KEY), "__metadata__.request must be a JSON object of the request's fields")
    return tree


def _slot(tree: dict[str, Any], path: Path, name: str) -> tuple[Any, str | int]:
    """Where the tensor ``name`` goes in ``tree`` (the parent and its key), making the objects and
    lists on the way (a list is filled up to the index with objects or lists of the next part's kind)."""
    node: Any = tree
    for i, key in enumerate(path):
        last = i == len(path) - 1
        if isinstance(node, dict):
            key = str(key)
        elif isinstance(node, list):
            if not isinstance(key, int):
                raise _format_error(path[:i], f"{_where(path[:i])} is an array, so tensor {name!r} must name an index in it, not {key!r}")
            if key >= MAX_INDEX:
                raise _format_error(
                    path[: i + 1], f"tensor {name!r} names index {key} of {_where(path[:i])}, past the largest, {MAX_INDEX - 1}"
                )
            fresh: Any = [] if not last and isinstance(path[i + 1], int) else {}
            while len(node) <= key:
                node.append(None if last else type(fresh)())
        else:
            raise _format_error(
                path[:i], f"{_where(path[:i])} is given in __metadata__.request as a value, so tensor {name!r} cannot go inside it"
            )
        if last:
            if (node.get(key) if isinstance(node, dict) else node[key]) is not None:
                raise _format_error(
                    path, f"{_where(path)} is given twice: as tensor {name!r} and in __metadata__.request or another tensor"
                )
            return node, key
        if isinstance(node, dict) and node.get(key) is None:
            node[key] = [] if isinstance(path[i + 1], int) else {}
        node = node[key]
    raise _format_error((), "a tensor needs a name")


def _where(path: Path) -> str:
    return ".".join(str(part) for part in path) or "the request"


def _claim(block: Block, array: NDArray[Any]) -> None:
    """The block's value: ``array`` as float64, or its first failing (not finite) elements."""
    values = array if array.dtype == np.float64 else array.astype(np.float64)
    finite = np.isfinite(values)
    if finite.all():
        block.values = values
        return
    bad = np.argwhere(~finite)
    block.bad_count = len(bad)
    block.bad = [(tuple(index), float(values[tuple(index)])) for index in bad[: MAX_REPORTED_ERRORS + 1].tolist()]


def _cut(array: NDArray[Any]) -> Any:
    """A tensor where numbers of its depth are not wanted, as JSON numbers: whole when small, else its
    first VERBATIM_NUMBERS numbers (whole rows), enough for pydantic's errors about it."""
    if array.size <= VERBATIM_NUMBERS:
        return array.tolist()
    if array.ndim == 1:
        return array[:VERBATIM_NUMBERS].tolist()
    return array[: max(1, VERBATIM_NUMBERS // max(1, array.shape[1]))].tolist()


def _format_error(loc: Path, message: str) -> Invalid:
    error = InitErrorDetails(type=PydanticCustomError("safetensors_invalid", message), loc=loc, input=None)
    details = ValidationError.from_exception_data("safetensors", [error]).errors(include_url=False)
    return Invalid(details)

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

import functools
import json
import secrets
from typing import Any, TypeVar

import numpy as np
import pydantic_core
from numpy.typing import NDArray
from pydantic import BaseModel, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from app.api.large_body import Block, Context, Invalid, Walk, block_aware, invalid_error
from app.schemas.base import quoted
from app.schemas.error_entries import MAX_REPORTED_ERRORS
from app.schemas.safetensors import METADATA, PlacementError, SafetensorsError, decode, path_text, tensor_path, tensor_slot
from app.service.limits import OverLimit

M = TypeVar("M", bound=BaseModel)

# The key of __metadata__ that holds the request's other fields.
REQUEST_KEY = "request"
# Tensors of at most this many numbers are put into the JSON as numbers (pydantic validates them as
# it would in a JSON body); larger ones where numbers are not wanted are cut to this many.
INLINE_NUMBERS = 64
VERBATIM_NUMBERS = 4_096
# What the tensors add to the JSON pydantic validates besides their placeholders, in all: entries a
# list is filled with up to a tensor's index, empty rows, numbers put in as JSON. A file of a few
# hundred bytes can name index 999,999 or shape [10**9, 0]; past this budget it is a 422, never a
# second of work (the JSON body of a valid request is itself at most the header's 64 KiB).
SKELETON_ITEMS = 65_536
# A tensor that is valid where it stands but not an array of numbers of its depth (a /v1/check claim,
# which may hold nulls) goes in whole, as JSON numbers, up to this many numbers in all.
WHOLE_NUMBERS = 1_000_000

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
    budget = _Budget()
    for name, array in decoded.tensors.items():
        path = tensor_path(name)
        if array.ndim > 2:
            raise _format_error(path, f"tensor {quoted(name, 80)!r} has shape {list(array.shape)}; the arrays of a request are 1-D or 2-D")
        try:
            parent, key = tensor_slot(tree, path, name, functools.partial(budget.spend, name=name))
        except PlacementError as exc:
            raise _format_error(exc.path, exc.message) from None
        if array.ndim == 0 or array.size <= INLINE_NUMBERS:
            # Small, or empty: pydantic sees exactly what JSON would show (of an empty matrix's rows, as
            # many as a tensor's numbers are cut to: shape [10**9, 0] is a valid file of no bytes).
            shown = array[:VERBATIM_NUMBERS] if array.ndim else array
            budget.spend(max(shown.size, len(shown) if shown.ndim else 1), path, name)
            parent[key] = shown.tolist()
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
    whole = WHOLE_NUMBERS
    for block, array, (parent, key) in zip(blocks, arrays, slots):
        if block.claimed:
            _claim(block, array)
        elif _valid_as_numbers(block, array) and array.size <= whole:
            # Valid where it stands, as the same numbers in a JSON body would be (a claim with no null).
            whole -= array.size
            parent[key] = array.tolist()
        else:
            shown = _cut(array)
            budget.spend(min(array.size, VERBATIM_NUMBERS), block.path, "")
            parent[key] = shown
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


class _Budget:
    """What the tensors add to the JSON skeleton, counted against SKELETON_ITEMS before it is made."""

    def __init__(self) -> None:
        self.left = SKELETON_ITEMS

    def spend(self, items: int, path: Path, name: str) -> None:
        self.left -= items
        if self.left < 0:
            what = f"tensor {quoted(name, 80)!r}" if name else path_text(path)
            raise _format_error(
                path,
                f"{what} takes the body past {SKELETON_ITEMS:,} values outside its arrays of numbers (entries that fill a "
                "list up to a tensor's index, empty rows, small or misplaced arrays written out as numbers); name "
                "tensors by the indices the request has, and send its other fields in __metadata__.request",
            )


def _valid_as_numbers(block: Block, array: NDArray[Any]) -> bool:
    """Whether ``array`` is valid where the walk found it, though not claimed: a list (of rows, for a
    matrix) whose elements may be finite numbers, and every number finite."""
    kind = block.kind
    if kind is None or not kind.numbers or kind.rows != (array.ndim == 2):
        return False
    if (kind.rows and array.shape[1] < kind.row_min) or (kind.max_items is not None and len(array) > kind.max_items):
        return False
    return bool(np.isfinite(array).all())


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

"""Large request bodies validated in bounded time and memory, with the answers pydantic would give.

Pydantic parses and validates a body in one pass, and for a large hostile body that pass is
the problem: every number becomes a JSON value and then a Python float (about 70 bytes for
a 2-byte ``0,``: 1.1 GB for 32 MiB of zeros), every failing element an error object
(4,000,000 ``""`` in a row: 4.6 GB and 47 s), a million keys a million errors; and
pydantic-core holds the GIL throughout, so even in a worker thread the event loop stalls.
A large body is therefore validated in four steps, none of which takes a Python step per
value or holds the GIL for long:

1. Scan. Strings are found (and blanked in a same-length ``view``, so that only structure
   remains), then the braces and colons of objects, then, in each stretch between those,
   the "blocks": the largest arrays of scalars (rows) and arrays of rows (matrices) of at
   least MIN_BLOCK_BYTES. bytes methods and numpy do it all. A body with more objects and
   keys, or more values outside blocks, than a request within the server's layer limit can
   have is answered 413 (StructureTooLarge): pydantic would spend seconds on it, and no
   valid request is near it (the limit grows with BACKPROP_MAX_LAYERS).
2. Skeleton. Blocks of finite numbers are parsed into float64 (app.schemas.number_arrays),
   a chunk at a time. Each block is replaced by a placeholder, a marker string in an array
   as deep as the block, and the small rest is parsed and walked along the request model's
   fields (``Walk``): a block where the model wants numbers of its depth (``NumberArray``
   in app.schemas.base: weights, biases, inputs, targets' rows) is "claimed"; any other is
   put back as JSON for pydantic: whole when it is small or valid for its place (a trainable
   mask of a million booleans), else cut after its first failing elements (``_replacement``).
3. Validate. Pydantic validates the skeleton through block-aware variants of the request
   models (``block_aware``), whose number fields take a claimed block's array as their value,
   then run the models' own checks (shapes, ranges) on it. A claimed block that is not all
   finite numbers (a string, ``NaN``, ``1e400``, an empty row) has been read with
   pydantic_core's parser a chunk at a time (its scalars as one flat list, not a list per
   row), its failing elements found with C-speed type checks; its first ones are handed to
   pydantic, which makes their errors exactly as it would have, and put at their places.
4. Errors. At most MAX_REPORTED_ERRORS + 1 errors are built per block (and in all for claimed
   ones); the rest are counted, exactly, except where a large block of a type with no simple
   check had to be cut (then the count is "at least").

A body that is not JSON gets pydantic's own error, from pydantic, on a copy in which the
blocks already known to be valid are blanked (an empty array as deep, same length, same line
breaks: same position), so that the numbers before the error are not parsed again.
tests/api/test_hostile_bodies.py compares this path with pydantic's on random hostile bodies;
bench/parse_memory.py measures it. A safetensors body (app.api.binary_body) takes steps 2 to 4 with
its tensors as the blocks: ``Block``, ``Walk``, ``Context``, ``block_aware`` and ``invalid_error``
are shared with it.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import secrets
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

import annotated_types
import numpy as np
import pydantic_core
from numpy.typing import NDArray
from pydantic import (
    BaseModel,
    BeforeValidator,
    PlainValidator,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    create_model,
)
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails, InitErrorDetails

from app.schemas.base import (
    FiniteFloat,
    NumberArray,
    StrictBool,
    StrictInt,
    StrictModel,
)
from app.schemas.error_entries import MAX_REPORTED_ERRORS  # errors built per block (and reported in all)
from app.schemas.number_arrays import WHITESPACE, Floats, parse_array

M = TypeVar("M", bound=BaseModel)

# Arrays shorter than this stay in the skeleton, for pydantic.
MIN_BLOCK_BYTES = 32
# Per layer allowed in the limits: objects and keys, and values outside blocks (inline arrays
# under MIN_BLOCK_BYTES, keys), with room to spare for a valid request's other fields.
EVENTS_PER_LAYER, EVENTS_SPARE = 10, 1_000
VALUES_PER_LAYER, VALUES_SPARE = 80, 10_000
# An unclaimed block is put back whole when it has at most this many elements (and all such
# blocks together at most VERBATIM_BUDGET), so that pydantic never has many errors to build.
VERBATIM_ITEMS = 4_096
VERBATIM_BUDGET = 65_536
# ... or when its elements' validity is unknown (no simple type) and it has at most this many.
UNKNOWN_VERBATIM_ITEMS = 100_000
# Strings located one at a time up to this many, then with numpy.
FEW_STRINGS = 4_096
# Brackets of one stretch located one at a time up to this many, then with numpy.
FEW_BRACKETS = 4_096
# A dirty block is read by pydantic_core this many bytes at a time (the GIL is free between).
READ_CHUNK_BYTES = 1 << 20
# A skeleton this many times the limit of values outside blocks is not even parsed (413 at once);
# up to it, a body that is not JSON (a large one cut short: its rows are blocks) is told so.
HARD_LIMIT_FACTOR = 4


class StructureTooLarge(Exception):
    """More objects and keys, or values outside arrays of numbers, than a request within the limits has."""

    def __init__(self, what: str, found: int, limit: int) -> None:
        self.what, self.found, self.limit = what, found, limit
        super().__init__(f"{what}: {found} > {limit}")


class Invalid(Exception):
    """The body's errors: pydantic's (``errors``, locations relative to the body), ``more`` not built."""

    def __init__(self, errors: list[ErrorDetails], more: int = 0, at_least: bool = False) -> None:
        self.errors, self.more, self.at_least = errors, more, at_least
        super().__init__(f"{len(errors)} errors, {more} more")


def validate_large(raw: bytes, model: type[M], max_layers: int) -> M:
    """``raw`` validated as ``model``; raises Invalid or StructureTooLarge (see the module doc)."""
    scan = _scan(raw, max_layers)
    values_limit = VALUES_PER_LAYER * max_layers + VALUES_SPARE
    if scan.outside + len(scan.blocks) > HARD_LIMIT_FACTOR * values_limit:
        raise StructureTooLarge("values outside arrays of numbers", scan.outside + len(scan.blocks), values_limit)
    nonce = secrets.token_hex(8)
    _parse_all(raw, scan.view, scan.blocks)
    skeleton = _assemble(raw, scan.blocks, lambda i, block: _placeholder(nonce, i, block.depth))
    try:
        tree = pydantic_core.from_json(skeleton)
    except ValueError:
        return _not_json(raw, scan.blocks, model)
    # Not JSON is said first; then a structure no request within the limits has.
    if scan.outside > values_limit:
        raise StructureTooLarge("values outside arrays of numbers", scan.outside, values_limit)
    if len(scan.blocks) > values_limit:
        raise StructureTooLarge("arrays", len(scan.blocks), values_limit)
    Walk(f"\x00{nonce}#", scan.blocks).node(tree, model, ())
    context = Context(f"\x00{nonce}#", scan.blocks, raw, scan.view)
    for block in scan.blocks:
        if block.values is not None and (block.claimed or not block.direct or block.kind is None):
            block.items = len(block.values)  # valid JSON already; its items are all it needs
        elif not _analyze(raw, scan.view, block):
            return _not_json(raw, scan.blocks, model)
    final = _assemble(raw, scan.blocks, lambda i, block: _replacement(raw, nonce, i, block, context))
    try:
        return block_aware(model).model_validate_json(final, context=context)
    except ValidationError as exc:
        raise invalid_error(exc, context) from None


# -- 1. scan ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Block:
    start: int
    end: int  # exclusive
    depth: int  # 1: an array of scalars; 2: an array of such arrays (and maybe scalars)
    values: NDArray[np.float64] | list[list[float]] | None = None  # when all finite numbers (see number_arrays)
    claimed: bool = False  # at a place that wants numbers of this depth
    path: tuple[str | int, ...] = ()
    kind: _Kind | None = None  # what an unclaimed block's elements should be (see Walk)
    direct: bool = False  # the block is itself the value pydantic checks (not inside one it rejects whole)
    python: bool = False  # pydantic reaches it through a function validator, as Python objects (see Walk)
    items: int = 0  # top-level elements
    bad: list[tuple[tuple[int, ...], Any]] = field(default_factory=list)  # first failing elements
    bad_count: int = 0
    bad_to_cut: int = 0  # failing elements up to the end of the top-level element of the last one in ``bad``
    clean: dict[int, int] = field(default_factory=dict)  # a large dirty block's clean chunks: start -> elements


@dataclass
class _Scan:
    view: bytes  # the body with string contents blanked (same length)
    blocks: list[Block]
    outside: int  # commas outside blocks: the skeleton's values, roughly


_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]")


def _scan(raw: bytes, max_layers: int) -> _Scan:
    view = _view(raw)
    events_limit = EVENTS_PER_LAYER * max_layers + EVENTS_SPARE
    events = _events(view, events_limit)
    if events is None:
        raise StructureTooLarge("objects and keys", _count_events(view), events_limit)
    blocks: list[Block] = []
    lo = 0
    for hi in itertools.chain(events, [len(view)]):
        if hi - lo >= MIN_BLOCK_BYTES:
            blocks.extend(_stretch_blocks(view, lo, hi))
        lo = hi + 1
    outside, pos = 0, 0
    for block in blocks:
        outside += view.count(b",", pos, block.start)
        pos = block.end
    outside += view.count(b",", pos)
    return _Scan(view, blocks, outside)


def _view(raw: bytes) -> bytes:
    """``raw`` with the contents of its strings replaced by 'x' (quotes kept, same length), so that
    brackets, braces, colons and commas in the view are all structure; ``raw`` itself when no string
    holds any."""
    spans: list[tuple[int, int]] = []
    find, pos = raw.find, 0
    while (q := find(b'"', pos)) >= 0:
        e = find(b'"', q + 1)
        while e > 0 and raw[e - 1] == 0x5C and _escaped(raw, e):
            e = find(b'"', e + 1)
        if e < 0:
            e = len(raw)  # unterminated: the rest is the string (pydantic will say so)
        spans.append((q, e))
        if len(spans) > FEW_STRINGS:
            return _view_np(raw)
        pos = e + 1
    if not any(c in raw[s + 1 : e] for s, e in spans for c in (b"[", b"]", b"{", b"}", b":", b",")):
        return raw
    view = bytearray(raw)
    for s, e in spans:
        view[s + 1 : e] = b"x" * (e - s - 1)
    return bytes(view)


def _escaped(raw: bytes, quote: int) -> bool:
    k = quote - 1
    while k >= 0 and raw[k] == 0x5C:
        k -= 1
    return (quote - 1 - k) % 2 == 1


def _view_np(raw: bytes) -> bytes:
    """_view for a body of many strings: inside a string is where an odd number of (unescaped) quotes
    precede, a running parity over the body (a few bytes per byte of memory)."""
    a = np.frombuffer(raw, dtype=np.uint8)
    quote = a == 0x22
    if b"\\" in raw:
        # A quote after an odd run of backslashes is escaped.
        after = np.flatnonzero(quote[1:] & (a[:-1] == 0x5C)) + 1
        if after.size:
            slashes = np.flatnonzero(a == 0x5C)
            run_starts = np.flatnonzero(np.diff(slashes, prepend=-2) != 1)
            k = np.searchsorted(slashes, after - 1)
            run = run_starts[np.searchsorted(run_starts, k, side="right") - 1]
            quote[after[(k - run + 1) % 2 == 1]] = False
    inside = np.bitwise_xor.accumulate(quote.view(np.uint8))
    inside &= ~quote.view(np.uint8)
    view = a.copy()
    view[inside.view(bool)] = ord("x")
    return view.tobytes()


def _events(view: bytes, limit: int) -> list[int] | None:
    """Sorted positions of the braces and colons of ``view``, or None when there are more than ``limit``."""
    found: list[int] = []
    for char in (b"{", b"}", b":"):
        pos = view.find(char)
        while pos >= 0:
            found.append(pos)
            if len(found) > limit:
                return None
            pos = view.find(char, pos + 1)
    found.sort()
    return found


def _count_events(view: bytes) -> int:
    return view.count(b"{") + view.count(b"}") + view.count(b":")


def _stretch_blocks(view: bytes, lo: int, hi: int) -> list[Block]:
    """The blocks in ``view[lo:hi]``, a stretch without braces or colons: its largest arrays of depth 1 or 2."""
    first = view.find(b"[", lo, hi)
    if first < 0:
        return []
    positions = _bracket_positions(view, lo, hi)
    if positions is None:
        # Many brackets: most often the stretch holds one matrix of many rows (or one long row).
        brackets = view[lo:hi].translate(None, _NOT_BRACKETS)
        last = view.rfind(b"]", lo, hi)
        if brackets == b"[]":
            return _large_enough([Block(first, last + 1, 1)])
        rows = (len(brackets) - 2) // 2
        if brackets == b"[" + b"[]" * rows + b"]" and _opens_with_row(view, first, view.find(b"[", first + 1)):
            return _large_enough([Block(first, last + 1, 2)])
        a = np.frombuffer(view, dtype=np.uint8, count=hi - lo, offset=lo)
        positions = np.flatnonzero((a == 0x5B) | (a == 0x5D)) + lo
    if not positions.size:
        return []
    is_open = np.frombuffer(view, dtype=np.uint8)[positions] == 0x5B
    return _large_enough(_arrays(view, positions, is_open))


def _opens_with_row(view: bytes, opening: int, first_row: int) -> bool:
    """Whether the array opened at ``opening`` starts with the row opened at ``first_row`` (nothing but
    whitespace between). A matrix block must: validators look at an array's first element to tell rows
    from scalars, and the placeholder that stands for a block shows a row first."""
    return not view[opening + 1 : first_row].strip(WHITESPACE)


def _bracket_positions(view: bytes, lo: int, hi: int) -> NDArray[np.int64] | None:
    found: list[int] = []
    for char in (b"[", b"]"):
        pos = view.find(char, lo, hi)
        while pos >= 0:
            found.append(pos)
            if len(found) > FEW_BRACKETS:
                return None
            pos = view.find(char, pos + 1, hi)
    found.sort()
    return np.array(found, dtype=np.int64)


def _arrays(view: bytes, positions: NDArray[np.int64], is_open: NDArray[np.bool_]) -> list[Block]:
    """Rows (an opening bracket right before its closing one) and matrices (an opening bracket, a row
    first, rows only, its closing bracket), in order; rows inside a matrix are part of it. O(brackets),
    no sort."""
    n = positions.size
    row = np.zeros(n, dtype=bool)  # opens a row
    row[:-1] = is_open[:-1] & ~is_open[1:]
    # The bracket sequence with each row as one token: 0 close, 1 open, 2 row.
    kept = ~np.concatenate(([False], row[:-1]))
    index = np.flatnonzero(kept)
    token = np.where(row[index], 2, is_open[index].astype(np.int8))
    is_row = token == 2
    if not is_row.any():
        return []
    edges = np.diff(np.concatenate(([False], is_row, [False])).astype(np.int8))
    run_starts, run_ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    before = np.where(run_starts > 0, token[np.maximum(run_starts - 1, 0)], -1)
    after = np.where(run_ends + 1 < token.size, token[np.minimum(run_ends + 1, token.size - 1)], -1)
    matrix = (before == 1) & (after == 0)
    blocks: list[Block] = []
    for s, e, m in zip(run_starts.tolist(), run_ends.tolist(), matrix.tolist()):
        opening = int(positions[index[s - 1]]) if m else 0
        if m and _opens_with_row(view, opening, int(positions[index[s]])):
            blocks.append(Block(opening, int(positions[index[e + 1]]) + 1, 2))
        else:
            for k in index[s : e + 1].tolist():
                blocks.append(Block(int(positions[k]), int(positions[k + 1]) + 1, 1))
    return blocks


def _large_enough(blocks: list[Block]) -> list[Block]:
    return [b for b in blocks if b.end - b.start >= MIN_BLOCK_BYTES]


def _parse_all(raw: bytes, view: bytes, blocks: list[Block]) -> None:
    """_parse every block; rows that follow each other (the rows of a matrix that is not a block, as in
    a body cut short) are parsed together, a megabyte at a time, as one matrix."""
    i = 0
    while i < len(blocks):
        j, size = i, blocks[i].end - blocks[i].start
        while (
            blocks[i].depth == 1
            and j + 1 < len(blocks)
            and blocks[j + 1].depth == 1
            and size < READ_CHUNK_BYTES
            and view[blocks[j].end : blocks[j + 1].start].strip(WHITESPACE) == b","
        ):
            j += 1
            size += blocks[j].end - blocks[j].start
        if j == i:
            _parse(raw, view, blocks[i])
        else:
            _parse_rows(raw, blocks[i : j + 1])
        i = j + 1


def _parse_rows(raw: bytes, rows: list[Block]) -> None:
    """Adjacent row blocks parsed as one matrix; when one of them is not all numbers, halves of them."""
    values = parse_array(b"[" + raw[rows[0].start : rows[-1].end] + b"]")
    if values is None and len(rows) > 1:
        half = len(rows) // 2
        _parse_rows(raw, rows[:half])
        _parse_rows(raw, rows[half:])
        return
    if values is None:
        return
    if isinstance(values, np.ndarray):
        # Rows of a matrix that is not a block are never valid (it holds something else too, or is cut
        # short), so they only have to be numbers: plain views, made at C speed.
        for row, value in zip(rows, values.view(np.ndarray)):
            row.values = value
    else:
        for row, value in zip(rows, values):
            row.values = np.array(value, dtype=np.float64)


def _parse(raw: bytes, view: bytes, block: Block) -> None:
    """``block.values``: its numbers as float64 when it is all finite numbers (app.schemas.number_arrays).
    A large block is read a chunk at a time, and of a dirty one the clean chunks are remembered."""
    if block.end - block.start <= 2 * READ_CHUNK_BYTES:
        block.values = parse_array(raw[block.start : block.end])
        return
    parts: list[Any] = []
    for lo, hi in _chunks(view, block):
        if block.depth == 2 and _long_row(view, lo, hi):
            pieces: list[Floats] = []
            whole = True
            for sub_lo, sub_hi in _chunks(view, _row_of(view, lo, hi)):
                piece = parse_array(b"[" + raw[sub_lo:sub_hi] + b"]")
                if isinstance(piece, Floats) and piece.ndim == 1:
                    pieces.append(piece)
                    block.clean[sub_lo] = len(piece)
                else:
                    whole = False
            parts.append(np.concatenate(pieces).reshape(1, -1) if whole else None)
            continue
        values = parse_array(b"[" + raw[lo:hi] + b"]")
        if values is not None and (2 if isinstance(values, list) else values.ndim) == block.depth:
            parts.append(values)
            block.clean[lo] = len(values)
        else:
            parts.append(None)
    if any(part is None for part in parts):
        return
    if block.depth == 1 or (all(isinstance(p, np.ndarray) for p in parts) and len({p.shape[1] for p in parts}) == 1):
        block.values = np.concatenate(parts).view(Floats)
    else:  # rows of different lengths: lists, as number_arrays gives them
        block.values = [row for p in parts for row in (p if isinstance(p, list) else np.ndarray.tolist(p))]
    block.clean.clear()


# -- 2. skeleton ------------------------------------------------------------------------------


def _placeholder(nonce: str, i: int, depth: int) -> bytes:
    """A block's stand-in: a marker string in an array as deep as the block, so that whatever looks
    at the value's shape (a union's discriminator) sees the shape of the block."""
    return b"[" * depth + f'"\\u0000{nonce}#{i}"'.encode() + b"]" * depth


def _assemble(raw: bytes, blocks: list[Block], replace: Callable[[int, Block], bytes]) -> bytes:
    parts, pos = [], 0
    for i, block in enumerate(blocks):
        parts.append(raw[pos : block.start])
        parts.append(replace(i, block))
        pos = block.end
    parts.append(raw[pos:])
    return b"".join(parts)


class Walk:
    """Walks the parsed skeleton along the model's fields and records, for each block, its path and
    what pydantic will want there: ``claimed`` for numbers of its depth, else ``kind`` (see _kind)."""

    def __init__(self, prefix: str, blocks: list[Block]) -> None:
        self.prefix, self.blocks = prefix, blocks

    def block(self, node: Any) -> Block | None:
        return _placeheld(node, self.prefix, self.blocks)

    def node(self, node: Any, annotation: Any, path: tuple[str | int, ...], python: bool = False) -> None:
        """``python``: a function validator on the way (a wrap validator hands its inner validators
        Python objects, and pydantic then calls an integer beyond float64 "not a valid number" rather than
        "not finite")."""
        annotation, marks = _unwrap(annotation)
        python = python or any(isinstance(m, _FUNCTION_VALIDATORS) for m in marks)
        block = self.block(node)
        origin = get_origin(annotation)
        if origin is Union or origin is types.UnionType:
            member = _union_member(annotation, node, marks)
            if member is None:
                return self._rejected_whole(node, path, direct=True)
            return self.node(node, member, path, python)
        if block is not None:
            block.path, block.direct, block.python = path, True, python
            number = next((m for m in marks if isinstance(m, NumberArray)), None)
            if number is not None and number.depth == block.depth:
                block.claimed = True
            else:
                block.kind = _kind(Annotated[(annotation, *marks)] if marks else annotation)
            return
        if node is None or annotation is _ANYTHING_REJECTED:
            return self._rejected_whole(node, path, direct=True)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if not isinstance(node, dict):
                return self._rejected_whole(node, path, direct=True)
            decorators = annotation.__pydantic_decorators__
            python = python or any(d.info.mode in ("before", "wrap") for d in decorators.model_validators.values())
            wrapped = {f for d in decorators.field_validators.values() if d.info.mode != "after" for f in d.info.fields}
            for key, value in node.items():
                info = annotation.model_fields.get(key)
                if info is None:
                    self._rejected_whole(value, path + (key,), direct=True)
                else:
                    self.node(value, _field_annotation(info), path + (key,), python or key in wrapped)
            return
        if origin is dict and isinstance(node, dict) and get_args(annotation):
            # dict[str, X] (a state_dict): each value at its key, as X.
            value_annotation = get_args(annotation)[1]
            for key, value in node.items():
                self.node(value, value_annotation, path + (key,), python)
            return
        if origin in (list, tuple) and isinstance(node, list):
            args = get_args(annotation)
            for i, item in enumerate(node):
                if origin is list or len(args) == 2 and args[1] is Ellipsis:
                    item_annotation = args[0]
                elif i < len(args):
                    item_annotation = args[i]
                else:
                    item_annotation = _ANYTHING_REJECTED
                self.node(item, item_annotation, path + (i,), python)
            return
        self._rejected_whole(node, path, direct=True)

    def _rejected_whole(self, node: Any, path: tuple[str | int, ...], direct: bool = False) -> None:
        """``node`` is one error or none as a whole (an array where an object is wanted, an extra key):
        what its blocks hold never reaches an error; a block that is the node itself is described by its
        length (``direct``)."""
        block = self.block(node)
        if block is not None:
            block.path, block.direct, block.kind = path, direct, None
            return
        if isinstance(node, dict):
            for key, value in node.items():
                self._rejected_whole(value, path + (key,))
        elif isinstance(node, list):
            for i, value in enumerate(node):
                self._rejected_whole(value, path + (i,))


_ANYTHING_REJECTED = object()
_FUNCTION_VALIDATORS = (WrapValidator, BeforeValidator, PlainValidator)


def _unwrap(annotation: Any) -> tuple[Any, list[Any]]:
    """``annotation`` without Annotated layers (and their metadata), and without ``| None`` when it is
    an optional single type."""
    marks: list[Any] = []
    while True:
        if get_origin(annotation) is Annotated:
            marks.extend(annotation.__metadata__)
            annotation = annotation.__origin__
            continue
        origin = get_origin(annotation)
        if origin is Union or origin is types.UnionType:
            args = [a for a in get_args(annotation) if a is not type(None)]
            if len(args) == 1:
                annotation = args[0]
                continue
        return annotation, marks


def _field_annotation(info: FieldInfo) -> Any:
    return Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation


def _union_member(annotation: Any, node: Any, marks: list[Any]) -> Any:
    """The member of a union that pydantic will validate ``node`` against, when that is clear."""
    members = [a for a in get_args(annotation) if a is not type(None)]
    discriminator = next((m for m in marks if hasattr(m, "discriminator")), None)
    if discriminator is not None and callable(discriminator.discriminator):
        tag = discriminator.discriminator(node)
        for member in members:
            _, member_marks = _unwrap(member)
            if any(getattr(m, "tag", None) == tag for m in member_marks):
                return member
        return None
    if isinstance(node, dict):
        # A discriminated union of models: the one whose literal field matches.
        for member in members:
            model, _ = _unwrap(member)
            if not (isinstance(model, type) and issubclass(model, BaseModel)):
                continue
            for name, info in model.model_fields.items():
                if get_origin(info.annotation) is typing.Literal and name in node and node[name] in get_args(info.annotation):
                    return member
    return None


class _Check:
    """What an element must be to pass, checked for a whole list at C speed (no Python step per element)."""

    NUMBER, BOOL, INT, LITERAL, NEVER = "number", "bool", "int", "literal", "never"

    def __init__(self, kind: str, allowed: frozenset[Any] = frozenset()) -> None:
        self.kind, self.allowed = kind, allowed

    def failing(self, items: list[Any]) -> NDArray[np.bool_]:
        """A boolean mask of the ``items`` that pydantic rejects."""
        n = len(items)
        if self.kind == _Check.NEVER:
            return np.ones(n, dtype=bool)
        kinds = set(map(type, items))
        if len(kinds) == 1:  # all of one type (a row of strings): one code for all
            codes = np.full(n, _TYPE_CODES.get(kinds.pop(), 0), dtype=np.int8)
        else:
            codes = np.fromiter(map(_TYPE_CODES.get, map(type, items), itertools.repeat(0)), dtype=np.int8, count=n)
        if self.kind == _Check.BOOL:
            return np.not_equal(codes, _BOOL)
        if self.kind == _Check.INT:
            return np.not_equal(codes, _INT)
        bad: NDArray[np.bool_]
        if self.kind == _Check.LITERAL:
            bad = codes != _STR
            strings = ~bad
            if strings.any():
                known = np.fromiter(map(self.allowed.__contains__, _where(items, strings)), dtype=bool, count=int(strings.sum()))
                bad[np.flatnonzero(strings)[~known]] = True
            return bad
        # A finite number: a float that is finite, an integer within float64's range.
        bad = (codes != _FLOAT) & (codes != _INT)
        floats = codes == _FLOAT
        if floats.any():
            values = np.fromiter(_where(items, floats), dtype=np.float64, count=int(floats.sum()))
            bad[np.flatnonzero(floats)[~np.isfinite(values)]] = True
        ints = codes == _INT
        if ints.any():
            try:
                np.fromiter(_where(items, ints), dtype=np.float64, count=int(ints.sum()))
            except OverflowError:
                for i in np.flatnonzero(ints).tolist():
                    if _as_parsed(items[i]) is not items[i]:
                        bad[i] = True
        return bad


def _where(items: list[Any], mask: NDArray[np.bool_]) -> typing.Iterator[Any]:
    return itertools.compress(items, mask.tolist())


_FLOAT, _INT, _BOOL, _STR = 1, 2, 3, 4
_TYPE_CODES = {float: _FLOAT, int: _INT, bool: _BOOL, str: _STR}


@dataclass(frozen=True)
class _Kind:
    """What an unclaimed block's elements must be: ``check`` (None: not simply known); ``rows``: each
    element a list (``row_min`` items at least) whose items must pass ``check``."""

    check: _Check | None
    rows: bool = False
    row_min: int = 0
    max_items: int | None = None
    numbers: bool = False  # its elements (a row's items) may be finite numbers (app.api.binary_body)


def _kind(annotation: Any) -> _Kind | None:
    """For a list (or tuple) annotation, what its elements must be; None when not a list (the whole
    block is then one error, whatever its contents)."""
    annotation, marks = _unwrap(annotation)
    origin = get_origin(annotation)
    if origin not in (list, tuple):
        return None
    max_items = next((m.max_length for m in marks if isinstance(m, annotated_types.MaxLen)), None)
    args = get_args(annotation)
    if origin is tuple:
        return _Kind(None, max_items=len(args) if args and args[-1] is not Ellipsis else None)
    item, item_marks = _unwrap(args[0])
    if get_origin(item) is list:
        row_min = next((m.min_length for m in item_marks if isinstance(m, annotated_types.MinLen)), 0)
        element = get_args(item)[0]
        return _Kind(_check(element), rows=True, row_min=row_min, max_items=max_items, numbers=_takes_numbers(element))
    return _Kind(_check(args[0]), max_items=max_items, numbers=_takes_numbers(args[0]))


def _takes_numbers(annotation: Any) -> bool:
    """Whether ``annotation`` takes a finite number (FiniteFloat, or a union with it: ``FiniteFloat | None``)."""
    bare, _ = _unwrap(annotation)
    if get_origin(bare) is Union or get_origin(bare) is types.UnionType:
        return any(_takes_numbers(member) for member in get_args(bare))
    return annotation == FiniteFloat or bare is float


def _check(annotation: Any) -> _Check | None:
    if annotation == StrictBool:
        return _Check(_Check.BOOL)
    if annotation == StrictInt:
        return _Check(_Check.INT)
    if annotation == FiniteFloat:
        return _Check(_Check.NUMBER)
    bare, _ = _unwrap(annotation)
    if get_origin(bare) is typing.Literal:
        return _Check(_Check.LITERAL, frozenset(get_args(bare)))
    if isinstance(bare, type) and issubclass(bare, BaseModel):
        return _Check(_Check.NEVER)  # a block holds no objects
    return None


_NUMBER_CHECK = _Check(_Check.NUMBER)


def _analyze(raw: bytes, view: bytes, block: Block) -> bool:
    """Count ``block``'s top-level elements and find its first failing ones (for what its place wants;
    claimed: finite numbers), reading it a chunk at a time; False when it is not valid JSON."""
    check: _Check | None
    if block.claimed:
        check, rows, row_min = _NUMBER_CHECK, block.depth == 2, 1
    elif block.kind is not None and block.direct:
        check, rows, row_min = block.kind.check, block.kind.rows, block.kind.row_min
    else:
        check, rows, row_min = None, False, 0
    if block.values is not None and (check is None or (check.kind == _Check.NEVER and not rows)):
        # Valid JSON already, and what fails (nothing known, or every element) needs only the count and,
        # for the errors, the first elements as parsed.
        block.items = len(block.values)
        if check is not None:
            first = _first_items(raw, view, block, MAX_REPORTED_ERRORS + 1)
            block.bad = [((i,), x) for i, x in enumerate(first)]
            block.bad_count, block.bad_to_cut = block.items, len(block.bad)
        return True
    index = 0
    for lo, hi in _chunks(view, block):
        if block.depth == 2 and check is not None and rows and _long_row(view, lo, hi):
            # One long row (the chunks cut between rows): its items, a chunk at a time.
            if not _analyze_row(raw, view, block, index, lo, hi, check):
                return False
            index += 1
            continue
        if check is _NUMBER_CHECK and lo in block.clean:
            index += block.clean[lo]  # all finite numbers (see _parse)
            continue
        elements = _elements(raw, view, lo, hi, block.depth)
        if elements is None:
            return False
        if check is not None:
            _collect(block, index, elements, check, rows, row_min)
        index += elements.count
    block.items = index
    return True


def _long_row(view: bytes, lo: int, hi: int) -> bool:
    """Whether the chunk ``view[lo:hi]`` of a matrix block is one long row (the chunks cut between rows,
    so a row longer than two chunks is a chunk of its own), to be read a chunk at a time in turn."""
    if hi - lo <= 2 * READ_CHUNK_BYTES:
        return False
    opening = view.find(b"[", lo, hi)
    closing = view.rfind(b"]", lo, hi)
    return (
        opening >= 0
        and view.find(b"[", opening + 1, hi) < 0
        and not view[lo:opening].strip(WHITESPACE)
        and not view[closing + 1 : hi].strip(WHITESPACE)
    )


def _row_of(view: bytes, lo: int, hi: int) -> Block:
    return Block(view.find(b"[", lo, hi), view.rfind(b"]", lo, hi) + 1, 1)


def _analyze_row(raw: bytes, view: bytes, block: Block, top: int, lo: int, hi: int, check: _Check) -> bool:
    """_analyze for a matrix block's one long row, ``raw[lo:hi]`` (top-level element ``top``)."""
    column = 0
    for sub_lo, sub_hi in _chunks(view, _row_of(view, lo, hi)):
        if check is _NUMBER_CHECK and sub_lo in block.clean:
            column += block.clean[sub_lo]  # all finite numbers (see _parse)
            continue
        elements = _elements(raw, view, sub_lo, sub_hi, 1)
        if elements is None:
            return False
        bad = np.flatnonzero(check.failing(elements.flat))
        kept: list[tuple[tuple[int, ...], Any]] = [((top, column + j), elements.flat[j]) for j in bad[: MAX_REPORTED_ERRORS + 1].tolist()]
        _add(block, kept, np.full(bad.size, top))
        column += elements.count
    if column == 0:
        _add(block, [((top,), [])], np.full(1, top))  # an empty row: too short
    return True


def _first_items(raw: bytes, view: bytes, block: Block, n: int) -> list[Any]:
    """The first ``n`` top-level elements of ``block`` (valid JSON), as pydantic parses them: a prefix of
    the block, four times longer each time it holds too few."""
    size = 1 << 12
    while True:
        _, end = _chunks(view, block, chunk_bytes=size, first=True)[0]
        items: list[Any] = pydantic_core.from_json(b"[" + raw[block.start + 1 : end] + b"]")
        if len(items) >= n or end >= block.end - 1:
            return items[:n]
        size *= 4


def _chunks(view: bytes, block: Block, chunk_bytes: int | None = None, first: bool = False) -> list[tuple[int, int]]:
    """The block's contents (without its brackets) cut between elements into pieces of about
    READ_CHUNK_BYTES (only the first piece with ``first``); the view has no commas or brackets inside
    strings."""
    size = READ_CHUNK_BYTES if chunk_bytes is None else chunk_bytes
    start, end = block.start + 1, block.end - 1
    sep = b"]" if block.depth == 2 else b","
    cuts, pos = [], start
    while end - pos > size:
        cut = view.find(sep, pos + size, end)
        if cut >= 0 and sep == b"]":
            cut = view.find(b",", cut, end)
        if cut < 0:
            break
        cuts.append((pos, cut))
        if first:
            return cuts
        pos = cut + 1
    cuts.append((pos, end))
    return cuts


@dataclass
class _Elements:
    """A piece of a block, parsed: per top-level element whether it is an array (a row) and its length,
    and every scalar in order (a row's items, or the element itself; an empty row holds a stand-in)."""

    is_row: NDArray[np.bool_]
    length: NDArray[np.int64]
    offset: NDArray[np.intp]  # of each element's first scalar in ``flat``
    flat: list[Any]

    @property
    def count(self) -> int:
        return int(self.is_row.size)

    def value(self, k: int) -> Any:
        """Element ``k`` as pydantic parses it."""
        if not self.is_row[k]:
            return self.flat[self.offset[k]]
        return self.flat[self.offset[k] : self.offset[k] + self.length[k]]


def _elements(raw: bytes, view: bytes, lo: int, hi: int, depth: int) -> _Elements | None:
    """``raw[lo:hi]``, a block's top-level elements (rows of scalars only), parsed at C speed: its
    scalars as one flat JSON list, the rows' brackets blanked; a list per row would cost ~200 ns a row.
    None when the piece is not valid JSON."""
    text = b"[" + raw[lo:hi] + b"]"
    if depth == 1 or view.find(b"[", lo, hi) < 0:
        try:
            flat = pydantic_core.from_json(text)
        except ValueError:
            return None
        n = len(flat)
        return _Elements(np.zeros(n, dtype=bool), np.zeros(n, dtype=np.int64), np.arange(n), flat)
    v = np.frombuffer(view, dtype=np.uint8, count=hi - lo, offset=lo)
    is_open, is_close = v == 0x5B, v == 0x5D
    opens, closes = np.flatnonzero(is_open), np.flatnonzero(is_close)
    if opens.size != closes.size or (opens > closes).any() or (opens[1:] < closes[:-1]).any():
        return None  # not rows of scalars: the scanner's rows are flat, so this is malformed
    inside = np.cumsum(is_open.view(np.int8) - is_close.view(np.int8), dtype=np.int8).view(bool)
    is_comma = v == 0x2C
    commas_inside = np.cumsum(is_comma & inside, dtype=np.int32)
    commas_between = np.cumsum(is_comma & ~inside, dtype=np.int32)
    element_of_row = commas_between[opens]
    n = int(commas_between[-1]) + 1
    if element_of_row.size and np.diff(element_of_row).min(initial=1) == 0:
        return None  # two rows in one element: a comma is missing
    solid = np.cumsum(~np.isin(v, _WHITESPACE_CODES), dtype=np.int32)
    empty = solid[closes - 1] - solid[opens] == 0
    row_length = np.where(empty, 0, commas_inside[closes] - commas_inside[opens] + 1)
    a = np.frombuffer(raw, dtype=np.uint8, count=hi - lo, offset=lo).copy()
    a[opens] = a[closes] = 0x20
    a[opens[empty]] = 0x30  # an empty row's stand-in scalar, so that every element holds a slot
    try:
        flat = pydantic_core.from_json(b"[" + a.tobytes() + b"]")
    except ValueError:
        return None
    is_row = np.zeros(n, dtype=bool)
    is_row[element_of_row] = True
    length = np.zeros(n, dtype=np.int64)
    length[element_of_row] = row_length
    slots = np.where(is_row, np.maximum(length, 1), 1)
    if len(flat) != int(slots.sum()):
        return None
    return _Elements(is_row, length, np.cumsum(slots) - slots, flat)


_WHITESPACE_CODES = np.frombuffer(WHITESPACE, dtype=np.uint8)


def _collect(block: Block, index: int, elements: _Elements, check: _Check, rows: bool, row_min: int) -> None:
    """Add the failing elements of a piece of ``block`` (its top-level elements from ``index`` on) to its
    count, and the first ones to ``block.bad``: with ``rows``, an element that is not an array or is too
    short, or the (row, column) of a failing item; else an element that fails ``check``."""
    is_row, length, offset, flat = elements.is_row, elements.length, elements.offset, elements.flat
    scalar = ~is_row
    if rows:
        scalar_fails = scalar
    elif not is_row.any():
        scalar_fails = check.failing(flat)  # a row of scalars: ``flat`` is its elements
    else:
        scalar_fails = np.zeros(is_row.size, dtype=bool)
        first_slot = np.zeros(len(flat), dtype=bool)
        first_slot[offset[scalar]] = True
        scalar_fails[scalar] = check.failing(list(itertools.compress(flat, first_slot.tolist())))
    if not rows:
        whole = np.flatnonzero(scalar_fails | is_row)  # an array where a scalar is wanted fails whole
        _add(block, [((index + k,), elements.value(k)) for k in whole[: MAX_REPORTED_ERRORS + 1].tolist()], whole + index)
        return
    whole = np.flatnonzero(scalar | (is_row & (length < row_min)))
    # Items of the (non-empty) rows that fail.
    in_rows = np.zeros(len(flat), dtype=bool)
    full = np.flatnonzero(is_row & (length > 0))
    if full.size:
        in_rows[np.repeat(offset[full], length[full]) + _ranges(length[full])] = True
    bad_items = np.flatnonzero(in_rows & check.failing(flat))
    item_top = np.repeat(np.arange(is_row.size), np.diff(np.append(offset, len(flat))))[bad_items]
    tops = np.concatenate((whole, item_top))
    sub = np.concatenate((np.full(whole.size, -1), bad_items))
    order = np.lexsort((sub, tops))[: MAX_REPORTED_ERRORS + 1]
    kept: list[tuple[tuple[int, ...], Any]] = []
    for k in order.tolist():
        top = int(tops[k])
        if sub[k] < 0:
            kept.append(((index + top,), elements.value(top)))
        else:
            kept.append(((index + top, int(sub[k] - offset[top])), flat[int(sub[k])]))
    _add(block, kept, tops + index)


def _ranges(lengths: NDArray[np.int64]) -> NDArray[np.int64]:
    """0, 1, ..., n-1 for each n in ``lengths``, concatenated."""
    ends = np.cumsum(lengths)
    return np.arange(int(ends[-1])) - np.repeat(ends - lengths, lengths)


def _add(block: Block, kept: list[tuple[tuple[int, ...], Any]], tops: NDArray[np.intp]) -> None:
    """Count a piece's failing elements (``tops``: their top-level indices in the block), keep the first
    ones, and, when the last kept one is in this piece, how many fail up to its top-level element."""
    room = MAX_REPORTED_ERRORS + 1 - len(block.bad)
    if room > 0 and kept:
        block.bad.extend(kept[:room])
        cut = block.bad[-1][0][0]
        block.bad_to_cut = block.bad_count + int(np.count_nonzero(tops <= cut))
    block.bad_count += int(tops.size)


# -- 3. validate ------------------------------------------------------------------------------


class Context(dict[str, Any]):
    """The validation context: the blocks, by placeholder; errors built so far; errors counted, not built."""

    def __init__(self, prefix: str, blocks: list[Block], raw: bytes, view: bytes) -> None:
        super().__init__(blocks=blocks, prefix=prefix)
        self.prefix, self.blocks, self.raw, self.view = prefix, blocks, raw, view
        self.built = 0  # errors built for claimed blocks
        self.more = 0  # errors counted, not built
        self.at_least = False  # some were neither built nor counted
        self.verbatim = 0  # elements of unclaimed blocks put back whole
        self.sized: dict[str, int] = {}  # stand-in marker -> the length of the block it stands for
        self.too_long: dict[tuple[str | int | None, int], int] = {}  # (field, length given to pydantic) -> real length


def _replacement(raw: bytes, nonce: str, i: int, block: Block, context: Context) -> bytes:
    """What stands for ``block`` in the JSON pydantic validates."""
    text = raw[block.start : block.end]
    if block.claimed:
        return _placeholder(nonce, i, block.depth)
    if not block.direct:
        # Inside a value pydantic rejects whole: never looked at, but for a discriminator's value that
        # it quotes in its message; put back when small.
        if block.items <= VERBATIM_ITEMS and context.verbatim + block.items <= VERBATIM_BUDGET:
            context.verbatim += block.items
            return text
        return b"[]"
    kind = block.kind
    if kind is None:
        # The block is itself the value, where no array is wanted: one error, whatever the array holds;
        # a marked stand-in, so that the error can describe the block's length.
        context.sized[f"\x01{nonce}#{i}"] = block.items
        return f'["\\u0001{nonce}#{i}"]'.encode()
    if kind.max_items is not None and block.items > kind.max_items:
        # "at most 2 items, not N": one error, whatever the items; N is the block's length.
        context.too_long[(block.path[-1] if block.path else None, kind.max_items + 1)] = block.items
        return _json_list(_first_items(raw, context.view, block, kind.max_items + 1))
    small = block.items <= VERBATIM_ITEMS and context.verbatim + block.items <= VERBATIM_BUDGET
    if small or (kind.check is not None and not block.bad_count) or (kind.check is None and block.items <= UNKNOWN_VERBATIM_ITEMS):
        context.verbatim += block.items
        return text  # small, or large and valid (a trainable mask of a million booleans)
    # Cut after its first failing elements (or its first elements, when failing is not simply known).
    if kind.check is not None:
        keep = block.bad[-1][0][0] + 1
        context.more += block.bad_count - block.bad_to_cut
    else:
        keep = MAX_REPORTED_ERRORS + 1
        context.at_least = True
    return _json_list(_first_items(raw, context.view, block, keep))


def _json_list(items: list[Any]) -> bytes:
    """``items`` as JSON that pydantic parses back to the same values (NaN and Infinity included)."""
    return json.dumps(items, allow_nan=True).encode()


def _placeheld(node: Any, prefix: str, blocks: list[Block]) -> Block | None:
    """The block that ``node`` (``["<marker>"]`` or ``[["<marker>"]]``) stands for, if it is a placeholder."""
    if type(node) is list and len(node) == 1:
        inner = node[0]
        if type(inner) is list and len(inner) == 1:
            inner = inner[0]
            depth = 2
        else:
            depth = 1
        if type(inner) is str and inner.startswith(prefix):
            block = blocks[int(inner[len(prefix) :])]
            return block if block.depth == depth else None
    return None


def _resolver(depth: int, python: bool) -> Callable[[Any, ValidatorFunctionWrapHandler, ValidationInfo], Any]:
    """The wrap validator of a block-aware NumberArray type. ``python``: the type is already reached
    through another function validator (pydantic hands it Python objects in the original model too)."""

    def resolve(value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
        context = info.context
        if isinstance(context, Context):
            block = _placeheld(value, context.prefix, context.blocks)
            if block is not None and block.claimed:
                if block.values is not None:
                    return block.values
                return _raise_block_errors(block, handler, context)
        return handler(value) if python else _as_json(value, handler)

    return resolve


def _as_json(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """``handler(value)`` as pydantic validates the JSON the value came from: a wrap validator hands it
    Python objects, and for those an integer beyond float64 is "not a valid number", where JSON's is
    infinite, "not a finite number"."""
    huge = [(loc, x) for loc, x in _numbers(value) if type(x) is int and _as_parsed(x) is not x]
    if not huge:
        return handler(value)
    places: dict[tuple[int | str, ...], Any] = dict(huge)
    copy = [list(r) if type(r) is list else r for r in value]
    for loc, x in huge:
        target = copy
        for k in loc[:-1]:
            target = target[k]
        target[loc[-1]] = _as_parsed(x)
    try:
        return handler(copy)
    except ValidationError as exc:
        errors = []
        for e in exc.errors(include_url=False):
            found = places.get(tuple(e["loc"]), e["input"])
            error = InitErrorDetails(type=e["type"], loc=e["loc"], input=found)
            if "ctx" in e:
                error["ctx"] = e["ctx"]
            errors.append(error)
        raise ValidationError.from_exception_data("numbers", errors) from None


def _numbers(value: Any) -> typing.Iterator[tuple[tuple[int, ...], Any]]:
    if type(value) is not list:
        return
    for i, x in enumerate(value):
        if type(x) is list:
            for j, y in enumerate(x):
                yield (i, j), y
        else:
            yield (i,), x


def _raise_block_errors(block: Block, handler: ValidatorFunctionWrapHandler, context: Context) -> Any:
    """Pydantic's own errors for the block's first failing elements, at their places; the rest counted."""
    if not block.bad:
        # Every element passes (an empty array: fine for biases, too short for a row): pydantic decides.
        return handler(pydantic_core.from_json(context.raw[block.start : block.end]))
    room = max(1, MAX_REPORTED_ERRORS + 1 - context.built)
    chosen = block.bad[:room]
    context.built += len(chosen)
    context.more += block.bad_count - len(chosen)
    # A stand-in holding only the failing elements, in order, validated by pydantic itself; ``places``
    # maps each stand-in location to the element's location in the block.
    stand_in: list[Any] = []
    places: dict[tuple[int | str, ...], tuple[int, ...]] = {}
    originals: dict[tuple[int | str, ...], Any] = dict(chosen)
    row = None
    for index, value in chosen:
        if len(index) == 1:  # an element of a row, or a whole row of a matrix that fails (not an array, empty)
            places[(len(stand_in),)] = index
            stand_in.append(value if block.python else _as_parsed(value))
            row = None
            continue
        if row != index[0]:
            row = index[0]
            places[(len(stand_in),)] = (row,)
            stand_in.append([])
        places[(len(stand_in) - 1, len(stand_in[-1]))] = index
        stand_in[-1].append(value if block.python else _as_parsed(value))
    try:
        handler(stand_in)
    except ValidationError as exc:
        errors = []
        for e in exc.errors(include_url=False):
            loc = tuple(e["loc"])
            n = next(k for k in (2, 1, 0) if loc[:k] in places or k == 0)
            where = (*places.get(loc[:n], loc[:n]), *loc[n:])
            found = originals.get(where, e["input"])
            error = InitErrorDetails(type=e["type"], loc=where, input=found)
            if "ctx" in e:
                error["ctx"] = e["ctx"]
            errors.append(error)
        raise ValidationError.from_exception_data("block", errors) from None
    raise AssertionError("failing elements passed validation")  # pragma: no cover


def _as_parsed(value: Any) -> Any:
    """``value`` as pydantic's JSON path sees it for a float: an integer beyond float64 is infinite there
    (the error's input is then put back to the integer)."""
    if type(value) is int:
        try:
            float(value)
        except OverflowError:
            return math.inf if value > 0 else -math.inf
    return value


def block_aware(model: type[M]) -> type[M]:
    """``model`` whose NumberArray fields (and those of its nested models) take a claimed block's array
    from the validation context; unchanged for everything else."""
    # functools.cache keeps no type variable: what it returns for ``model`` is ``model`` or a subclass.
    return typing.cast("type[M]", _block_aware(model))


@functools.cache
def _block_aware(model: type[BaseModel]) -> type[BaseModel]:
    overrides: dict[str, Any] = {}
    decorators = model.__pydantic_decorators__
    python_model = any(d.info.mode in ("before", "wrap") for d in decorators.model_validators.values())
    wrapped = {f for d in decorators.field_validators.values() if d.info.mode != "after" for f in d.info.fields}
    for name, info in model.model_fields.items():
        python = python_model or name in wrapped or any(isinstance(m, _FUNCTION_VALIDATORS) for m in info.metadata)
        annotation = _swap(info.annotation, python)
        metadata, number = _with_resolver(list(info.metadata), python)
        if annotation is info.annotation and number is None:
            continue
        new_info = FieldInfo.merge_field_infos(info)
        new_info.metadata = metadata
        new_info.annotation = annotation
        overrides[name] = (annotation, new_info)
    if not overrides:
        return model
    return create_model(model.__name__, __base__=model, __module__=model.__module__, **overrides)


def _with_resolver(metadata: list[Any], python: bool) -> tuple[list[Any], NumberArray | None]:
    """``metadata`` with the resolver right after its NumberArray mark (before a union's Tag, which
    must stay outermost), and the mark."""
    for i, mark in enumerate(metadata):
        if isinstance(mark, NumberArray):
            return [*metadata[: i + 1], WrapValidator(_resolver(mark.depth, python)), *metadata[i + 1 :]], mark
    return metadata, None


def _swap(annotation: Any, python: bool = False) -> Any:
    """``annotation`` with nested models replaced by their block-aware variants and NumberArray types
    given the resolver; the same object when nothing changes. ``python``: under a function validator."""
    if isinstance(annotation, type) and issubclass(annotation, StrictModel):
        return block_aware(annotation)
    origin = get_origin(annotation)
    if origin is Annotated:
        python = python or any(isinstance(m, _FUNCTION_VALIDATORS) for m in annotation.__metadata__)
        inner = _swap(annotation.__origin__, python)
        metadata, number = _with_resolver(list(annotation.__metadata__), python)
        if number is None and inner is annotation.__origin__:
            return annotation
        return Annotated[(inner, *metadata)]
    args = get_args(annotation)
    if not args:
        return annotation
    swapped = tuple(_swap(a, python) for a in args)
    if all(s is a for s, a in zip(swapped, args)):
        return annotation
    if origin is Union or origin is types.UnionType:
        return Union[swapped]  # noqa: UP007 (built from a tuple)
    return origin[swapped if len(swapped) > 1 else swapped[0]]


# -- 4. errors --------------------------------------------------------------------------------


def invalid_error(exc: ValidationError, context: Context) -> Invalid:
    errors = exc.errors(include_url=False)
    for error in errors[: MAX_REPORTED_ERRORS + 1]:
        value = error.get("input")
        if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str) and value[0] in context.sized:
            error["input"] = _Sized(context.sized[value[0]])
        ctx = error.get("ctx")
        if error["type"] == "too_long" and ctx and "actual_length" in ctx and error["loc"]:
            real = context.too_long.get((error["loc"][-1], ctx["actual_length"]))
            if real is not None:
                error["msg"] = error["msg"].replace(f"not {ctx['actual_length']}", f"not {real}")
                ctx["actual_length"] = real
                error["input"] = _Sized(real)
    return Invalid(errors, context.more, context.at_least)


class _Sized(list[Any]):
    """Stands for a block in an error's ``input``: only its length is ever described."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def __len__(self) -> int:
        return self.n


def _not_json(raw: bytes, blocks: list[Block], model: type[M]) -> M:
    """Pydantic's own error for a body that is not valid JSON, found on a copy in which the blocks known
    to be valid are blanked: an empty array as deep, same length, same line breaks, so the same position."""
    parts, pos = [], 0
    for block in blocks:
        if block.values is None:
            continue
        text = raw[block.start : block.end]
        blank = bytearray(text.translate(_BLANK))
        blank[0], blank[-1] = 0x5B, 0x5D
        if block.depth == 2:
            inner_open = text.index(b"[", 1)
            inner_close = text.rindex(b"]", 0, len(text) - 1)
            blank[inner_open], blank[inner_close] = 0x5B, 0x5D
        parts += [raw[pos : block.start], bytes(blank)]
        pos = block.end
    parts.append(raw[pos:])
    try:
        model.model_validate_json(b"".join(parts))
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        if any(e["type"] == "json_invalid" for e in errors):
            raise Invalid(errors) from None
    # Not expected (the body was found not to be JSON); should it be after all, pydantic's own answer.
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise Invalid(exc.errors(include_url=False)) from None


_blank = bytearray(b" " * 256)
_blank[ord("\n")] = ord("\n")
_BLANK = bytes(_blank)

"""Arrays of JSON numbers parsed straight from a body's bytes into float64, never one Python object per number.

``parse_array(text)`` takes the text of a JSON array of numbers (a row) or of arrays of
numbers (a matrix) and returns its values as a float64 array (``Floats``, 2-D when the rows
are of one length; rows of different lengths, never valid, as lists of floats), or None
when anything in it is not a finite JSON number: a string, true, false, null, NaN, 1e400,
a malformed number, an empty row, an object, a deeper array. None sends the caller to the
exact path (pydantic on that text), so this module only has to be right about what it
accepts, and it accepts exactly what pydantic's strict ``FiniteFloat`` accepts, with the
same float64 values (both round correctly; the JSON integer ``-0`` is 0.0, as pydantic
makes it). tests/api/test_hostile_bodies.py compares both on random and hostile bodies.

Two readers, chosen by the array's density (bytes per number):

- Sparse arrays (real data: ``-0.05497372040917787``, about 20 bytes a number) go to
  orjson, a strict RFC 8259 parser in C, then ``np.array``: 60-100 ns a number, as fast
  as pydantic's own parser (bench/large.py's 21 MB of weights: 0.1 s).
- Dense arrays are what an attacker sends: 32 MiB of ``0,`` is 16 million numbers, and a
  per-number parser (orjson, pydantic) costs 25-70 ns each there, a second in all. They
  are read with numpy, a chunk of 128 KB at a time (bigger temporaries cost page faults):
  a number of at most SHORT characters is looked up, from the symbols of its last SHORT
  characters, in a table of every such JSON number and its value (built once, with
  orjson as the judge of what a number is); the longer numbers of a dense chunk go to
  orjson. About 25 ns a number: 0.4 s for 16 million, the GIL released between chunks.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray

WHITESPACE = b" \t\n\r"
_SEPARATOR = re.compile(rb"[,;]")
# Bytes per number at or above which an array is read by orjson in one call.
SPARSE_BYTES_PER_NUMBER = 8
# Dense arrays are read this many bytes at a time.
CHUNK_BYTES = 1 << 17

# Characters that cannot occur in an array of numbers; any of them sends the text to the exact path.
_NOT_NUMBERS = (b'"', b"t", b"f", b"n", b"{", b"N", b"I")

# Symbols of the dense reader: a number's characters, the separators, anything else.
_NUMBER_CHARS = b"0123456789-.eE+"
_SEP = len(_NUMBER_CHARS)  # ',' between numbers, ';' between rows
_OTHER = _SEP + 1
_BASE = _OTHER + 1
_symbols = bytearray([_OTHER] * 256)
for _i, _c in enumerate(_NUMBER_CHARS):
    _symbols[_c] = _i
_symbols[ord(",")] = _SEP
_symbols[ord(";")] = _SEP
SYMBOLS = bytes(_symbols)


# Numbers of at most this many characters are looked up rather than parsed.
SHORT = 4


@functools.cache
def _short_numbers() -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Value and validity of every JSON number of one to SHORT characters, indexed by the symbols of
    the SHORT characters that end at a separator (a shorter number's are a separator and whatever
    precedes it). Built once, with orjson as the judge of what a JSON number is."""
    size = _BASE**SHORT
    valid = np.zeros(size, dtype=bool)
    value = np.zeros(size, dtype=np.float64)
    for length in range(1, SHORT + 1):
        for chars in itertools.product(_NUMBER_CHARS, repeat=length):
            token = bytes(chars)
            try:
                parsed = orjson.loads(token)
            except orjson.JSONDecodeError:
                continue
            code = sum(_symbols[c] * _BASE**i for i, c in enumerate(reversed(token)))
            if length < SHORT:
                code += _SEP * _BASE**length
            # Whatever precedes the separator before a shorter number: every combination.
            free = SHORT - length - 1
            codes = code + (np.arange(_BASE**free) * _BASE ** (length + 1) if free > 0 else np.zeros(1, dtype=np.int64))
            valid[codes] = True
            value[codes] = float(parsed)  # the integer -0 is 0.0, as pydantic makes it
    return value, valid


class Floats(np.ndarray):
    """A float64 array that Python code reads as it would read the lists pydantic gives: iterating a
    row, or indexing one number, gives Python floats (``repr`` 0.5, not ``np.float64(0.5)``, in the
    messages of the models' own checks). To numpy it is an ordinary array."""

    def __iter__(self) -> Iterator[Any]:
        if self.ndim == 1:
            return iter(self.tolist())
        return self._each_row()

    def _each_row(self) -> Iterator[list[float]]:
        # Rows as lists of floats, a few thousand at a time: a model's check that walks a matrix of a
        # million rows would spend seconds making a numpy view of each.
        for start in range(0, len(self), 4096):
            yield from np.ndarray.tolist(self[start : start + 4096])

    def __getitem__(self, key: Any) -> Any:
        item = super().__getitem__(key)
        return float(item) if type(item) is np.float64 else item

    def __array_wrap__(self, array: np.ndarray, context: Any = None, return_scalar: bool = False) -> Any:
        # What numpy computes from it is an ordinary array (or scalar).
        result = array.view(np.ndarray)
        return result[()] if return_scalar else result


def parse_array(text: bytes) -> Floats | list[list[float]] | None:
    """``text`` (one JSON array of finite numbers, or of non-empty such arrays) as float64; see the module doc."""
    if any(c in text for c in _NOT_NUMBERS):
        return None
    if len(text) >= SPARSE_BYTES_PER_NUMBER * (text.count(b",") + 1):
        values = _parse_sparse(text)
    else:
        values = _parse_dense(text)
    return values.view(Floats) if isinstance(values, np.ndarray) else values


def _parse_sparse(text: bytes) -> NDArray[np.float64] | list[list[float]] | None:
    try:
        parsed = orjson.loads(text)  # only numbers and arrays can be in it (see _NOT_NUMBERS)
    except orjson.JSONDecodeError:
        return None  # malformed, or a number that is not finite (1e400)
    if not isinstance(parsed, list) or not parsed:
        return None
    if not isinstance(parsed[0], list):
        try:
            values = np.array(parsed, dtype=np.float64)
        except (TypeError, ValueError):
            return None
        return values if values.ndim == 1 else None
    try:
        matrix = np.array(parsed, dtype=np.float64)
    except (TypeError, ValueError):
        pass  # rows of different lengths (or not all rows)
    else:
        return matrix if matrix.ndim == 2 and matrix.shape[1] > 0 else None
    rows: list[NDArray[np.float64]] = []
    for row in parsed:
        if not isinstance(row, list) or not row:
            return None
        try:
            rows.append(np.array(row, dtype=np.float64))
        except (TypeError, ValueError):
            return None
        if rows[-1].ndim != 1:
            return None
    return _ragged(np.concatenate(rows), np.array([r.size for r in rows]))


def _ragged(values: NDArray[np.float64], lengths: NDArray[np.integer[Any]]) -> list[list[float]]:
    """Rows of different lengths, as pydantic gives them (lists of floats): never a valid matrix, they
    only have to reach the model's check that names the first row of another length."""
    flat = values.tolist()
    ends = np.cumsum(lengths).tolist()
    return [flat[a:b] for a, b in zip([0, *ends[:-1]], ends)]


def _parse_dense(text: bytes) -> NDArray[np.float64] | list[list[float]] | None:
    compact = _without_whitespace(text)
    if compact is None or len(compact) < 3 or compact[0] != 0x5B or compact[-1] != 0x5D:
        return None
    inner = compact[1:-1]
    if inner[0] != 0x5B:  # a row: [n,n,...]
        if b"[" in inner or b"]" in inner:
            return None
        parsed = _parse_stream(inner)
        return None if parsed is None else parsed[0]
    # A matrix: [n,...],[n,...],... with brackets at the rows' ends only, and a comma between rows.
    rows = inner.count(b"[")
    if inner.translate(None, _NOT_BRACKETS) != b"[]" * rows or inner.count(b"],[") != rows - 1 or inner[-1] != 0x5D:
        return None
    stream = inner[1:-1].replace(b"],[", b";")
    parsed = _parse_stream(stream)
    if parsed is None:
        return None
    values, row_ends = parsed
    if row_ends.size != rows - 1:
        return None
    if rows == 1:
        return values.reshape(1, -1)
    lengths = np.diff(row_ends, prepend=-1, append=values.size - 1)
    if (lengths == lengths[0]).all():
        return values.reshape(rows, int(lengths[0]))
    return _ragged(values, lengths)


_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]")
_ws_mark = bytearray(range(256))
for _c in _NUMBER_CHARS:
    _ws_mark[_c] = ord("n")
for _c in WHITESPACE:
    _ws_mark[_c] = ord(" ")
_WS_MARK = bytes(_ws_mark)


def _without_whitespace(text: bytes) -> bytes | None:
    """``text`` without JSON whitespace, or None when whitespace separated two parts of one token."""
    if not any(w in text for w in (b" ", b"\n", b"\t", b"\r")):
        return text
    # Whitespace is allowed next to brackets and commas; a number, whitespace, a number is invalid.
    marked = text.translate(_WS_MARK)
    while b"  " in marked:
        marked = marked.replace(b"  ", b" ")
    if b"n n" in marked:
        return None
    return text.translate(None, WHITESPACE)


def _parse_stream(stream: bytes) -> tuple[NDArray[np.float64], NDArray[np.intp]] | None:
    """(values, token indices of the ';' row ends) of numbers separated by ',' (and ';' between rows)."""
    if not stream:
        return None
    values, row_ends, base = [], [], 0
    start, size = 0, len(stream)
    while start < size:
        end = size
        if size - start > CHUNK_BYTES:
            cut = _SEPARATOR.search(stream, start + CHUNK_BYTES)
            end = cut.start() if cut else size
        parsed = _parse_chunk(stream[start:end])
        if parsed is None:
            return None
        chunk_values, chunk_rows = parsed
        values.append(chunk_values)
        row_ends.append(chunk_rows + base)
        base += chunk_values.size
        if end < size and stream[end] == 0x3B:
            row_ends.append(np.array([base - 1]))
        start = end + 1
        if start == size:
            return None  # a trailing separator
    return (values[0] if len(values) == 1 else np.concatenate(values)), np.concatenate(row_ends)


def _parse_chunk(chunk: bytes) -> tuple[NDArray[np.float64], NDArray[np.intp]] | None:
    # Separators before and after, so every number has one on each side.
    data = b"," * SHORT + chunk + b","
    symbols = np.frombuffer(data.translate(SYMBOLS), dtype=np.uint8)
    seps = np.flatnonzero(symbols == _SEP)[SHORT - 1 :]
    lengths = np.diff(seps) - 1
    if not lengths.all():
        return None  # an empty token: two separators in a row, or one at either end
    ends = seps[1:]
    values = np.empty(ends.size, dtype=np.float64)
    short = lengths <= SHORT
    all_short = bool(short.all())
    short_ends = ends if all_short else ends[short]
    if short_ends.size:
        table_value, table_valid = _short_numbers()
        code = symbols[short_ends - 1].astype(np.int32)
        for i in range(1, SHORT):
            code += symbols[short_ends - 1 - i].astype(np.int32) * _BASE**i
        if not table_valid[code].all():
            return None
        if all_short:
            values[:] = table_value[code]
        else:
            values[short] = table_value[code]
    if not short_ends.size:
        try:
            parsed = orjson.loads(b"[" + chunk.replace(b";", b",") + b"]")
        except orjson.JSONDecodeError:
            return None
        if len(parsed) != values.size:
            return None
        values[:] = np.fromiter(parsed, dtype=np.float64, count=len(parsed))
    elif not all_short:
        # The longer numbers of a dense chunk: orjson, on just their bytes.
        # Each longer number's bytes and the separator after it (data starts with SHORT separators).
        a = np.frombuffer(data, dtype=np.uint8)
        keep = np.zeros(a.size, dtype=bool)
        keep[SHORT:] = np.repeat(~short, np.diff(seps))
        text = a[keep].tobytes().replace(b";", b",")[:-1]
        try:
            parsed = orjson.loads(b"[" + text + b"]")
        except orjson.JSONDecodeError:
            return None  # not a JSON number, or one that is not finite (1e400)
        # Only number characters reach orjson (see _NOT_NUMBERS), so every item is an int or a float.
        if len(parsed) != values.size - short_ends.size:
            return None
        values[~short] = np.fromiter(parsed, dtype=np.float64, count=len(parsed))
    rows = np.flatnonzero(np.frombuffer(data, dtype=np.uint8)[ends] == 0x3B)
    return values, rows

"""The safetensors container, read and written strictly: the binary encoding of arrays.

A safetensors file (Hugging Face's format, what ``safetensors.torch.save_file`` writes) is

    [8 bytes: N, little-endian u64] [N bytes: a JSON header] [the data: every tensor's bytes]

The header maps each tensor's name to ``{"dtype", "shape", "data_offsets": [begin, end]}`` (byte
offsets into the data), and may hold ``"__metadata__"``, a map of strings to strings. Reading it
here checks everything a hostile body could get wrong before any array is made: the header's
length against the body and a limit, its JSON, every entry's dtype (``F64`` or ``F32``), shape
and offsets (inside the data, of exactly the shape's size, not overlapping, and covering the
data with no gap, as the format requires). Arrays are then views into the body (no copy).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.schemas.base import quoted
from app.schemas.media_types import SAFETENSORS

MEDIA_TYPE = SAFETENSORS
DTYPES: Mapping[str, np.dtype[Any]] = {"F64": np.dtype("<f8"), "F32": np.dtype("<f4")}
NAMES = {np.dtype("float64"): "F64", np.dtype("float32"): "F32"}
METADATA = "__metadata__"


class SafetensorsError(ValueError):
    """A body that is not a valid safetensors file: ``loc`` is where (the header, or a tensor's name)
    and ``message`` what was expected and what was found."""

    def __init__(self, loc: tuple[str, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message


@dataclass(frozen=True)
class Decoded:
    """The tensors by name (float arrays viewing the body) and the header's ``__metadata__``."""

    tensors: dict[str, NDArray[np.floating[Any]]]
    metadata: dict[str, str]


def decode(body: bytes, *, max_header_bytes: int = 1 << 20) -> Decoded:
    """``body`` read as a safetensors file (SafetensorsError when it is not one)."""
    if len(body) < 8:
        raise SafetensorsError(("header",), f"a safetensors body starts with an 8-byte header length; the body has {len(body)} bytes")
    n = int.from_bytes(body[:8], "little")
    if 8 + n > len(body):
        raise SafetensorsError(("header",), f"the header says it is {n:,} bytes, but only {len(body) - 8:,} follow its length")
    if n > max_header_bytes:
        raise SafetensorsError(("header",), f"the header is {n:,} bytes, more than the {max_header_bytes:,} allowed")
    try:
        header = json.loads(body[8 : 8 + n], object_pairs_hook=_unique_keys)
    except _RepeatedName as exc:
        raise SafetensorsError(("header",), f"the header names {exc.name!r} twice; each tensor has one name") from None
    except (ValueError, RecursionError) as exc:
        # Malformed, not UTF-8, nested past the interpreter's depth, or an integer of thousands of digits.
        raise SafetensorsError(("header",), f"the header is not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(header, dict):
        raise SafetensorsError(("header",), f"the header must be a JSON object, found {type(header).__name__}")
    metadata = _metadata(header.pop(METADATA, None))
    data = memoryview(body)[8 + n :]
    entries = sorted(((name, _entry(name, spec, len(data))) for name, spec in header.items()), key=lambda item: item[1][2])
    position = 0
    tensors: dict[str, NDArray[np.floating[Any]]] = {}
    for name, (dtype, shape, begin, end) in entries:
        if begin != position:
            what = "overlaps the tensor before it" if begin < position else f"leaves a gap of {begin - position} bytes before it"
            raise SafetensorsError((name,), f"tensor {name!r} starts at byte {begin}, which {what}; tensors must follow one another")
        position = end
        tensors[name] = np.frombuffer(data, dtype=dtype, count=math.prod(shape), offset=begin).reshape(shape)
    if position != len(data):
        raise SafetensorsError(("header",), f"the tensors end at byte {position} of the data, but the data has {len(data)} bytes")
    return Decoded(tensors, metadata)


class _RepeatedName(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name[:80]


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object of the header, refusing a key given twice (json.loads would keep the last)."""
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _RepeatedName(key)
            seen.add(key)
    return out


def _metadata(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise SafetensorsError((METADATA,), "__metadata__ must map strings to strings")
    return dict(value)


# A tensor has at most this many dimensions, each at most MAX_DIMENSION: what numpy can shape (a size-0
# tensor of shape [10**30, 0] needs no bytes, but no array has such a dimension).
MAX_DIMENSIONS = 32
MAX_DIMENSION = 2**40


def _entry(name: str, spec: Any, data_bytes: int) -> tuple[np.dtype[Any], tuple[int, ...], int, int]:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise SafetensorsError(("header",), f"a tensor's name is not valid UTF-8: {name[:40]!r}") from None
    if not isinstance(spec, dict) or set(spec) != {"dtype", "shape", "data_offsets"}:
        raise SafetensorsError((name,), f"tensor {name!r} must be described by exactly dtype, shape and data_offsets")
    dtype = DTYPES.get(spec["dtype"]) if isinstance(spec["dtype"], str) else None
    if dtype is None:
        raise SafetensorsError((name,), f"tensor {name!r} has dtype {spec['dtype']!r}; expected one of {', '.join(DTYPES)}")
    shape = spec["shape"]
    if not isinstance(shape, list) or not all(type(d) is int and 0 <= d for d in shape):
        raise SafetensorsError((name,), f"tensor {name!r} has shape {str(shape)[:80]}; expected a list of non-negative integers")
    if len(shape) > MAX_DIMENSIONS or any(d > MAX_DIMENSION for d in shape):
        raise SafetensorsError(
            (name,),
            f"tensor {name!r} has shape {str(shape)[:80]}; expected at most {MAX_DIMENSIONS} dimensions of at most {MAX_DIMENSION:,}",
        )
    offsets = spec["data_offsets"]
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(type(o) is int for o in offsets):
        raise SafetensorsError((name,), f"tensor {name!r} has data_offsets {offsets!r}; expected [begin, end]")
    begin, end = offsets
    if not 0 <= begin <= end <= data_bytes:
        raise SafetensorsError((name,), f"tensor {name!r} spans bytes {begin}..{end}, outside the data's {data_bytes} bytes")
    size = math.prod(shape) * dtype.itemsize
    if size and math.prod(shape) > data_bytes:
        raise SafetensorsError((name,), f"tensor {name!r} of shape {shape} needs more bytes than the data has ({data_bytes})")
    if end - begin != size:
        raise SafetensorsError((name,), f"tensor {name!r} of shape {shape} and dtype {spec['dtype']} needs {size} bytes, not {end - begin}")
    return dtype, tuple(shape), begin, end


def encode(tensors: Mapping[str, NDArray[np.floating[Any]]], metadata: Mapping[str, str] | None = None) -> bytes:
    """``tensors`` (float64 or float32) as a safetensors file, in the given order, little-endian."""
    header: dict[str, Any] = {METADATA: dict(metadata)} if metadata else {}
    parts: list[memoryview] = []
    position = 0
    for name, array in tensors.items():
        dtype = NAMES.get(array.dtype)
        if dtype is None:
            raise ValueError(f"{name}: only float64 and float32 are encoded, not {array.dtype}")
        # A view of the array's own bytes (a copy only when it is not C-contiguous little-endian): the
        # one join below is the only copy of the data.
        raw = np.ascontiguousarray(array, dtype=DTYPES[dtype]).data.cast("B")
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [position, position + raw.nbytes]}
        parts.append(raw)
        position += raw.nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned, as safetensors writes it
    return b"".join([len(text).to_bytes(8, "little"), text, *parts])


# -- tensor names: a tensor of a request or an answer is named by its path in the JSON body ---------

STATE_DICT = "state_dict"
# What safetensors.torch.save_file writes for an nn.Sequential of Linear layers: ``0.weight``, ``2.bias``.
_STATE_DICT_KEY = re.compile(r"[0-9]+\.(weight|bias)\Z")
# A list index (a longer run of digits stays a name, which no list takes).
_INDEX = re.compile(r"[0-9]{1,18}\Z")
NETWORK_STATE_DICT = ("network", STATE_DICT)


def is_state_dict_key(name: str) -> bool:
    """Whether ``name`` is a key of a PyTorch state_dict of Linear layers (``0.weight``, ``2.bias``)."""
    return _STATE_DICT_KEY.match(name) is not None


def tensor_path(name: str) -> tuple[str | int, ...]:
    """The path into the JSON body that the tensor ``name`` stands for: ``network.layers.0.weights`` is
    ``("network", "layers", 0, "weights")``; after ``state_dict`` the rest is one key
    (``network.state_dict.0.weight``); a bare state_dict key (``0.weight``) is the network's."""
    if is_state_dict_key(name):
        return (*NETWORK_STATE_DICT, name)
    parts = name.split(".")
    path: list[str | int] = []
    for i, part in enumerate(parts):
        if path and path[-1] == STATE_DICT:
            path.append(".".join(parts[i:]))
            break
        path.append(int(part) if _INDEX.match(part) else part)
    return tuple(path)


def tensor_name(path: tuple[str | int, ...]) -> str:
    """The name of the tensor at ``path`` (the inverse of tensor_path): the network's state_dict keys
    keep their own names, so that a file of only those is a state_dict PyTorch loads as it is."""
    if len(path) == 3 and path[:2] == NETWORK_STATE_DICT and is_state_dict_key(str(path[2])):
        return str(path[2])
    return ".".join(str(part) for part in path)


class PlacementError(ValueError):
    """A tensor whose name cannot be placed in the JSON it comes with: ``path`` is where, ``message`` why."""

    def __init__(self, path: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def tensor_slot(
    tree: dict[str, Any], path: tuple[str | int, ...], name: str, spend: Callable[[int, tuple[str | int, ...]], None] | None = None
) -> tuple[Any, str | int]:
    """Where the tensor ``name`` (at ``path``) goes in ``tree``, the JSON object it comes with: the parent
    and its key, the objects and lists on the way made (a list is filled up to the index with objects or
    lists of the next part's kind, each entry first told to ``spend``, which may refuse by raising). The
    one reading of a binary body's names, the service's and the client's. PlacementError when the place
    is a value already given (in the JSON or by another tensor), inside a value, or not an index of a list."""
    node: Any = tree
    for i, key in enumerate(path):
        last = i == len(path) - 1
        if isinstance(node, dict):
            key = str(key)
        elif isinstance(node, list):
            if not isinstance(key, int):
                raise PlacementError(
                    path[:i],
                    f"{path_text(path[:i])} is an array, so tensor {quoted(name, 80)!r} must name an index in it "
                    f"(at most 18 digits), not {quoted(str(key), 40)!r}",
                )
            if key >= len(node) and spend is not None:
                spend(key + 1 - len(node), path[: i + 1])
            fresh: Any = [] if not last and isinstance(path[i + 1], int) else {}
            while len(node) <= key:
                node.append(None if last else type(fresh)())
        else:
            raise PlacementError(
                path[:i], f"{path_text(path[:i])} is given in the JSON as a value, so tensor {quoted(name, 80)!r} cannot go inside it"
            )
        if last:
            if (node.get(key) if isinstance(node, dict) else node[key]) is not None:
                raise PlacementError(
                    path, f"{path_text(path)} is given twice: as tensor {quoted(name, 80)!r} and in the JSON or another tensor"
                )
            return node, key
        if isinstance(node, dict) and node.get(key) is None:
            node[key] = [] if isinstance(path[i + 1], int) else {}
        node = node[key]
    raise PlacementError((), "a tensor needs a name")


def path_text(path: tuple[str | int, ...]) -> str:
    """A path into a body as a tensor's name writes it (``network.layers.0``), cut for a message."""
    return quoted(".".join(str(part) for part in path), 120) or "the request"

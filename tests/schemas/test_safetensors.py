"""The safetensors container (app/schemas/safetensors.py) against Hugging Face's own package, and
every way a header can lie."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.schemas.safetensors import SafetensorsError, decode, encode

safetensors_numpy = pytest.importorskip("safetensors.numpy")


def _file(header: dict, data: bytes = b"") -> bytes:
    text = json.dumps(header).encode()
    return len(text).to_bytes(8, "little") + text + data


def test_what_the_package_writes_we_read_and_the_reverse(rng):
    tensors = {"0.weight": rng.normal(size=(3, 2)), "0.bias": rng.normal(size=3).astype(np.float32), "inputs": rng.normal(size=(4, 2))}
    theirs = safetensors_numpy.save(tensors, metadata={"activations": '["relu"]'})
    decoded = decode(theirs)
    assert decoded.metadata == {"activations": '["relu"]'}
    for name, array in tensors.items():
        assert decoded.tensors[name].dtype == array.dtype and np.array_equal(decoded.tensors[name], array)
    ours = encode(tensors, {"activations": '["relu"]'})
    back = safetensors_numpy.load(ours)
    assert all(np.array_equal(back[name], array) and back[name].dtype == array.dtype for name, array in tensors.items())


def test_arrays_are_views_of_the_body_not_copies(rng):
    body = encode({"x": rng.normal(size=(100, 10))})
    assert not decode(body).tensors["x"].flags.owndata


BAD = [
    ("short", b"\x01\x00", ("header",), "8-byte header length"),
    ("header-too-long", ((1 << 20) + 8).to_bytes(8, "little") + b" " * ((1 << 20) + 8), ("header",), "more than the"),
    ("header-past-a-short-body", (10**9).to_bytes(8, "little"), ("header",), "only 0 follow"),
    ("header-past-body", (100).to_bytes(8, "little") + b"{}", ("header",), "only 2 follow"),
    ("not-json", (3).to_bytes(8, "little") + b"{x}", ("header",), "not valid JSON"),
    ("not-object", _file([1]), ("header",), "JSON object"),  # type: ignore[arg-type]
    ("dtype", _file({"x": {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]}}, b"\0" * 8), ("x",), "expected one of F64, F32"),
    ("shape", _file({"x": {"dtype": "F64", "shape": [-1], "data_offsets": [0, 8]}}, b"\0" * 8), ("x",), "non-negative"),
    ("size", _file({"x": {"dtype": "F64", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8), ("x",), "needs 16 bytes"),
    ("outside", _file({"x": {"dtype": "F64", "shape": [2], "data_offsets": [0, 16]}}, b"\0" * 8), ("x",), "outside the data"),
    (
        "overlap",
        _file(
            {"a": {"dtype": "F64", "shape": [2], "data_offsets": [0, 16]}, "b": {"dtype": "F64", "shape": [1], "data_offsets": [8, 16]}},
            b"\0" * 16,
        ),
        ("b",),
        "overlaps",
    ),
    ("gap", _file({"a": {"dtype": "F64", "shape": [1], "data_offsets": [8, 16]}}, b"\0" * 16), ("a",), "gap of 8 bytes"),
    ("trailing", _file({"a": {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]}}, b"\0" * 12), ("header",), "the data has 12 bytes"),
    ("keys", _file({"a": {"dtype": "F64", "shape": [1]}}, b"\0" * 8), ("a",), "exactly dtype, shape and data_offsets"),
    ("metadata", _file({"__metadata__": {"a": 1}}), ("__metadata__",), "strings to strings"),
]


@pytest.mark.parametrize(("body", "loc", "words"), [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_a_lying_header_is_refused_naming_where(body, loc, words):
    with pytest.raises(SafetensorsError) as raised:
        decode(body, max_header_bytes=1 << 20)
    assert raised.value.loc == loc and words in raised.value.message


def test_every_truncation_of_a_valid_body_is_refused_or_exact(rng):
    body = encode({"w": rng.normal(size=(2, 3)), "b": rng.normal(size=2)}, {"k": "v"})
    for cut in range(len(body)):
        with pytest.raises(SafetensorsError):
            decode(body[:cut])
    assert set(decode(body).tensors) == {"w", "b"}

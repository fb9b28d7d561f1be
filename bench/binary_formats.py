"""Binary encodings for our payloads, measured: safetensors against the Open Inference Protocol's
binary tensor extension (KServe V2 / Triton), with JSON as the baseline, in one run.

    .venv/bin/python bench/binary_formats.py [--parameters 1000000]

For a /v1/gradients body of a network of about ``--parameters`` parameters (and its answer, the
same arrays again), each format is encoded from float64 arrays and decoded back to float64 arrays
(validated: sizes and offsets checked, arrays viewing the body where the format allows it). JSON
is orjson both ways (the service's own decoder is slower: bench/large.py). KServe's binary
extension is implemented here as its spec writes it: a JSON header whose tensors give
``binary_data_size``, the raw little-endian bytes after it in order, the header's length in
``Inference-Header-Content-Length`` (returned beside the body). Prints microseconds (best of
several) and bytes, and each format's ratio to JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import best  # noqa: E402

from app.schemas.safetensors import decode, encode  # noqa: E402


def payload(parameters: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    width = int((parameters / 2) ** 0.5)
    return {
        "network.layers.0.weights": rng.normal(size=(width, width)),
        "network.layers.0.biases": rng.normal(size=width),
        "network.layers.1.weights": rng.normal(size=(width, width)),
        "network.layers.1.biases": rng.normal(size=width),
        "inputs": rng.normal(size=(8, width)),
        "targets": rng.normal(size=(8, width)),
    }


def kserve_encode(tensors: dict[str, np.ndarray]) -> tuple[bytes, int]:
    header = {
        "inputs": [
            {"name": name, "shape": list(a.shape), "datatype": "FP64", "parameters": {"binary_data_size": a.nbytes}}
            for name, a in tensors.items()
        ]
    }
    text = json.dumps(header).encode()
    return text + b"".join(np.ascontiguousarray(a, dtype="<f8").tobytes() for a in tensors.values()), len(text)


def kserve_decode(body: bytes, header_length: int) -> dict[str, np.ndarray]:
    header = json.loads(body[:header_length])
    data = memoryview(body)[header_length:]
    out, position = {}, 0
    for entry in header["inputs"]:
        if entry["datatype"] != "FP64":
            raise ValueError("datatype")
        size = entry["parameters"]["binary_data_size"]
        count = int(np.prod(entry["shape"]))
        if size != 8 * count or position + size > len(data):
            raise ValueError("binary_data_size")
        out[entry["name"]] = np.frombuffer(data, dtype="<f8", count=count, offset=position).reshape(entry["shape"])
        position += size
    if position != len(data):
        raise ValueError("trailing bytes")
    return out


def json_encode(tensors: dict[str, np.ndarray]) -> bytes:
    return orjson.dumps(tensors, option=orjson.OPT_SERIALIZE_NUMPY)


def json_decode(body: bytes) -> dict[str, np.ndarray]:
    return {name: np.asarray(value, dtype=np.float64) for name, value in orjson.loads(body).items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--parameters", type=int, default=1_000_000)
    args = parser.parse_args()
    tensors = payload(args.parameters, np.random.default_rng(0))
    values = sum(a.size for a in tensors.values())
    js = json_encode(tensors)
    st = encode(tensors)
    ks, ks_header = kserve_encode(tensors)
    rows = [
        ("json (orjson)", len(js), best(lambda: json_encode(tensors)), best(lambda: json_decode(js))),
        ("safetensors", len(st), best(lambda: encode(tensors)), best(lambda: decode(st).tensors)),
        ("kserve binary", len(ks), best(lambda: kserve_encode(tensors)), best(lambda: kserve_decode(ks, ks_header))),
    ]
    print(f"{values:,} float64 values ({args.parameters:,} parameters requested)")
    print(f"{'format':<15} {'bytes':>12} {'encode us':>10} {'decode us':>10} {'vs json enc':>12} {'vs json dec':>12}")
    base_enc, base_dec = rows[0][2], rows[0][3]
    for name, size, enc, dec in rows:
        print(f"{name:<15} {size:>12,} {enc * 1e6:>10.0f} {dec * 1e6:>10.0f} {base_enc / enc:>11.0f}x {base_dec / dec:>11.0f}x")


if __name__ == "__main__":
    main()

"""Safetensors bodies and answers for tests, written and read with Hugging Face's ``safetensors``
package (an implementation independent of the service's): a JSON body's arrays of numbers as
tensors named by their paths, the rest as ``__metadata__["request"]``."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from safetensors.numpy import load, save

SAFETENSORS = "application/x-safetensors"
BINARY_HEADERS = {"content-type": SAFETENSORS}
BINARY_BOTH = {"content-type": SAFETENSORS, "accept": SAFETENSORS}


def numeric_array(node: Any) -> np.ndarray | None:
    """``node`` as a float64 array when it is a non-empty list of floats or of equally long lists of floats."""
    if not isinstance(node, list) or not node:
        return None
    if all(type(x) is float for x in node):
        return np.array(node)
    if all(isinstance(r, list) and r and len(r) == len(node[0]) and all(type(x) is float for x in r) for r in node):
        return np.array(node)
    return None


def split(node: Any, path: tuple[Any, ...], tensors: dict[str, np.ndarray], dtype: Any = np.float64) -> Any:
    """``node`` with its arrays of numbers moved into ``tensors`` (named by dotted path)."""
    array = numeric_array(node)
    if array is not None and path:
        tensors[".".join(str(p) for p in path)] = array.astype(dtype)
        return None
    if isinstance(node, dict):
        kept = {k: split(v, (*path, k), tensors, dtype) for k, v in node.items()}
        return {k: v for k, v in kept.items() if v is not None or node[k] is None}
    if isinstance(node, list):
        return [split(v, (*path, i), tensors, dtype) for i, v in enumerate(node)]
    return node


def to_binary(body: dict[str, Any], dtype: Any = np.float64) -> bytes:
    """A JSON request body as a safetensors body (``dtype`` the tensors')."""
    tensors: dict[str, np.ndarray] = {}
    rest = split(body, (), tensors, dtype)
    return save(tensors, metadata={"request": json.dumps(rest)})


def header(raw: bytes) -> dict[str, Any]:
    n = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8 : 8 + n])


def from_binary_answer(raw: bytes) -> Any:
    """A safetensors answer read back into the JSON answer it stands for (tensors as nested lists)."""
    answer = json.loads(header(raw)["__metadata__"]["response"])
    for name, array in load(raw).items():
        path: list[Any]
        if name.split(".")[0].isdigit():  # a state_dict key of the answer's network
            path = ["network", "state_dict", name]
        else:
            parts = name.split(".")
            path = []
            for i, part in enumerate(parts):
                if path and path[-1] == "state_dict":
                    path.append(".".join(parts[i:]))
                    break
                path.append(int(part) if part.isdigit() else part)
        node = answer
        for part in path[:-1]:
            if isinstance(node, dict):
                node = node.setdefault(part, {})
            else:
                node = node[part]
        node[path[-1]] = array.tolist()
    return answer

"""Bodies with their network in torch's state_dict form, and answers' networks back in layers form."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np


def as_state_dict(body: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    """``body`` with its network in state_dict form: increasing indices with random gaps (0, 1, 2 as an
    nn.Sequential of Linear layers only; 0, 2, 4 with activation modules between; past 9, where the
    order of the digits is not the order of the text), its keys in a random order."""
    out = copy.deepcopy(body)
    layers = out["network"]["layers"]
    indices = np.cumsum([0, *rng.integers(1, 7, len(layers) - 1)]).tolist() if rng.random() < 0.7 else list(range(len(layers)))
    entries: list[tuple[str, Any]] = []
    for index, layer in zip(indices, layers):
        entries.append((f"{index}.weight", layer["weights"]))
        if "biases" in layer:
            entries.append((f"{index}.bias", layer["biases"]))
    order = rng.permutation(len(entries))
    out["network"] = {
        "state_dict": {entries[i][0]: entries[i][1] for i in order.tolist()},
        "activations": [layer.get("activation", "identity") for layer in layers],
    }
    return out


def as_layers(network: dict[str, Any]) -> dict[str, Any]:
    """A state_dict-form network of an answer in layers form (a bias not sent: zeros)."""
    state_dict = network["state_dict"]
    weights = sorted((int(key.split(".")[0]), key) for key in state_dict if key.endswith(".weight"))
    layers = []
    for (index, key), activation in zip(weights, network["activations"]):
        biases = state_dict.get(f"{index}.bias", [0.0] * len(state_dict[key]))
        layers.append({"weights": state_dict[key], "biases": biases, "activation": activation})
    return {"layers": layers}

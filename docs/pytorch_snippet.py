"""Rebuild the network of a /v1/train answer (state_dict form) as a PyTorch model, and reproduce its loss.

    python docs/pytorch_snippet.py request.json answer.json

``request.json`` is the body sent to /v1/train (its network in state_dict form), ``answer.json`` the
JSON answer. Needs torch only.
"""

from __future__ import annotations

import json
import sys
from collections import OrderedDict
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

# The service's activations as torch modules (leaky_relu's slope and elu's alpha as app/nn/activations.py has them).
ACTIVATIONS = {
    "identity": nn.Identity,
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.01),
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "softplus": nn.Softplus,
    "elu": lambda: nn.ELU(alpha=1.0),
    "softmax": lambda: nn.Softmax(dim=1),
}


def rebuild(network: dict[str, Any], dtype: torch.dtype = torch.float64) -> nn.Sequential:
    """An nn.Sequential of Linear layers, each followed by its activation; its state_dict has exactly the
    network's keys (a Linear is named by its index, 0, 2, ...; a Linear without bias where none is sent)."""
    state_dict = {key: torch.tensor(value, dtype=dtype) for key, value in network["state_dict"].items()}
    indices = sorted((key.split(".")[0] for key in state_dict if key.endswith(".weight")), key=int)
    modules: OrderedDict[str, nn.Module] = OrderedDict()
    for index, activation in zip(indices, network["activations"]):
        out_features, in_features = state_dict[f"{index}.weight"].shape
        modules[index] = nn.Linear(in_features, out_features, bias=f"{index}.bias" in state_dict, dtype=dtype)
        modules[f"{index}_activation"] = ACTIVATIONS[activation]()
    model = nn.Sequential(modules)
    model.load_state_dict(state_dict)  # strict: every key, and no other
    return model


def loss(model: nn.Sequential, request: dict[str, Any], dtype: torch.dtype = torch.float64) -> float:
    """The request's loss of ``model`` on its inputs and targets."""
    x = torch.tensor(request["inputs"], dtype=dtype)
    targets, reduction = request["targets"], request.get("reduction", "mean")
    with torch.no_grad():
        if request["loss"] == "mse":
            return F.mse_loss(model(x), torch.tensor(targets, dtype=dtype), reduction=reduction).item()
        logits = model[:-1](x)  # without the last activation: torch's fused losses take the pre-activation
        if request["loss"] == "binary_cross_entropy":
            return F.binary_cross_entropy_with_logits(logits, torch.tensor(targets, dtype=dtype), reduction=reduction).item()
        indices = not isinstance(targets[0], list)  # cross_entropy: class indices, or rows of class probabilities
        y = torch.tensor(targets, dtype=torch.long if indices else dtype)
        weight = None if request.get("class_weights") is None else torch.tensor(request["class_weights"], dtype=dtype)
        smoothing = request.get("label_smoothing", 0.0)
        return F.cross_entropy(logits, y, weight=weight, reduction=reduction, label_smoothing=smoothing).item()


def main(request_path: str, answer_path: str) -> None:
    with open(request_path) as f:
        request = json.load(f)
    with open(answer_path) as f:
        answer = json.load(f)
    dtype = torch.float32 if request.get("dtype") == "float32" else torch.float64
    model = rebuild(answer["network"], dtype)
    print(model)
    print(f"loss {loss(model, request, dtype)!r}, the service's final_loss {answer['final_loss']!r}")


if __name__ == "__main__":
    main(*sys.argv[1:3])

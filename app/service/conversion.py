"""Request models to what the engine takes: float64 (or, for ``dtype`` float32, float32) arrays, layers, a bound
loss, an optimizer, a check's problem."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

from app.nn.check import Problem
from app.nn.layout import Layout
from app.nn.losses import LOSSES, Loss, Reduction, class_index_targets
from app.nn.mistakes import ProblemShape
from app.nn.network import Layer
from app.nn.optimizers import Optimizer
from app.schemas.network import LayerSpec, NetworkSpec
from app.schemas.requests import CheckRequest, DiagramRequest, ForwardRequest, LossRequest, OptimizerConfig, TrainRequest

Array = NDArray[np.float64]


def dtype_of(req: ForwardRequest | DiagramRequest) -> np.dtype[Any]:
    """The numpy dtype the request computes in: its ``dtype`` field."""
    return np.dtype(req.dtype)


def matrix(rows: list[list[float]], dtype: DTypeLike = np.float64) -> Array:
    """``rows`` as a ``[len(rows)][len(rows[0])]`` array of ``dtype`` (float64 by default)."""
    return np.asarray(rows, dtype=dtype)


def to_layers(network: NetworkSpec, dtype: DTypeLike = np.float64) -> tuple[Layer, ...]:
    """The network's layers, their arrays of ``dtype``."""
    return tuple(_to_layer(spec, dtype) for spec in network.layers)


def _to_layer(spec: LayerSpec, dtype: DTypeLike) -> Layer:
    weights = matrix(spec.weights, dtype)
    biases = np.zeros(len(spec.weights), dtype=dtype) if spec.biases is None else np.asarray(spec.biases, dtype=dtype)
    return Layer(weights, biases, spec.activation)


def to_targets(req: LossRequest | DiagramRequest) -> Array:
    """``[batch][out_last]`` targets in the request's dtype: the rows as sent, or class indices as one-hot
    rows (which ``to_loss`` tells the loss to read as class indices)."""
    dtype = dtype_of(req)
    if req.index_targets:
        return class_index_targets(req.targets, req.network.n_out).astype(dtype, copy=False)  # type: ignore[arg-type]
    return matrix(req.targets, dtype)  # type: ignore[arg-type]


def loss_arguments(req: LossRequest) -> tuple[tuple[Layer, ...], Array, Array, Loss, Reduction]:
    """What the engine's loss functions take first, from a loss request: the layers, the inputs
    ``[batch][in]``, the targets ``[batch][out_last]`` (all in the request's dtype), the bound loss and the reduction."""
    dtype = dtype_of(req)
    return to_layers(req.network, dtype), matrix(req.inputs, dtype), to_targets(req), to_loss(req), req.reduction


def to_loss(req: LossRequest | DiagramRequest) -> Loss:
    """The request's loss bound with its cross_entropy options: ``LOSSES[name]`` itself when there are none
    (the engine casts the class weights to the dtype it computes in)."""
    weights = None if req.class_weights is None else np.asarray(req.class_weights, dtype=np.float64)
    return LOSSES[req.loss].bind(  # type: ignore[index]
        class_weights=weights, label_smoothing=req.label_smoothing, index_targets=req.index_targets
    )


def loss_words(req: LossRequest | DiagramRequest) -> str:
    """The loss and the options it was given, for a caption: ``cross_entropy, class indices, label_smoothing 0.1``."""
    words = [str(req.loss)]
    if req.index_targets:
        words.append("class indices")
    if req.label_smoothing:
        words.append(f"label_smoothing {req.label_smoothing:g}")
    if req.class_weights is not None:
        words.append("class_weights")
    return ", ".join(words)


def to_optimizer(config: OptimizerConfig) -> Optimizer[Any]:
    """The engine optimizer of the request's ``optimizer`` (each config model builds its own)."""
    return config.build()


def to_mask(req: TrainRequest | CheckRequest, layout: Layout) -> NDArray[np.bool_] | None:
    """The flat boolean trainable mask in ``layout`` order, or None when everything trains. A layer sent in
    state_dict form without its ``<index>.bias`` has no bias to train (a torch Linear without bias, and
    the answer has no key for it): its zeros stay frozen."""
    keys = req.network.state_dict_keys
    no_bias = [] if keys is None else [bias is None for _, bias in keys]
    if req.trainable is None and not any(no_bias):
        return None
    mask = np.ones(layout.size, dtype=bool)
    views = layout.views(mask)
    for (w, b), spec in zip(views, req.trainable or ()):
        if spec.weights is not None:
            w[...] = spec.weights
        if spec.biases is not None:
            b[...] = spec.biases
    for (_, b), frozen in zip(views, no_bias):
        if frozen:
            b[...] = False
    return mask


def to_problem_shape(req: CheckRequest) -> ProblemShape:
    """The shape of ``req``'s problem from its sizes alone (no arrays made): what decides which known
    mistakes its check searches, read before admission."""
    layers = req.network.layers
    layout = Layout.of_shapes([(layer.n_out, layer.n_in) for layer in layers], [layer.activation for layer in layers])
    optimizer = to_optimizer(req.optimizer) if req.optimizer is not None else None
    return ProblemShape.of(layout, req.size.batch, to_loss(req), req.reduction, optimizer)


def to_problem(req: CheckRequest) -> Problem:
    """The computation the claims are about, as the engine takes it."""
    layers = to_layers(req.network)
    trains = req.optimizer is not None
    return Problem(
        layers=layers,
        inputs=matrix(req.inputs),
        targets=to_targets(req),
        loss=to_loss(req),
        reduction=req.reduction,
        optimizer=to_optimizer(req.optimizer) if req.optimizer is not None else None,
        iterations=req.iterations if trains and req.iterations is not None else 1,
        trainable=to_mask(req, Layout.of(layers)) if trains else None,
    )

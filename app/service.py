"""The only place where request models become float64 arrays and results become response models.

Limits are checked here, before any numpy work, from the validated request's sizes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.config import Settings
from app.nn.network import Forward, Layer, Layout, evaluate, forward
from app.nn.optimizers import SGD, Adam, Optimizer
from app.nn.training import TrainingResult, recorded_count, train
from app.observability import record_work
from app.schemas.network import LayerSpec, NetworkSpec
from app.schemas.requests import ForwardRequest, LossRequest, OptimizerConfig, SGDConfig, TrainRequest
from app.schemas.responses import (
    ForwardResponse,
    GradientsResponse,
    LayerGradient,
    LayerValues,
    LossResponse,
    TraceEntry,
    TrainResponse,
)

# Each layer costs a fixed amount of Python and numpy call overhead per iteration however
# small it is; counting it as this many multiply-adds keeps deep, tiny networks from
# slipping under the work limit (10,000 ~ a few microseconds of overhead).
LAYER_WORK_FLOOR = 10_000


class LimitExceeded(Exception):
    """A request over a configured limit: ``loc`` is the field, ``setting`` the variable that raises it."""

    def __init__(self, loc: tuple[str | int, ...], what: str, found: float, limit: float, setting: str) -> None:
        self.loc = loc
        self.setting = setting
        self.message = (
            f"{what} is {_amount(found)}, over the limit of {_amount(limit)}; "
            f"the server's setting BACKPROP_{setting.upper()} raises it"
        )
        super().__init__(self.message)


def _amount(n: float) -> str:
    """``n`` with thousands separators; client-sent integers can be too large for a float."""
    if isinstance(n, int):
        digits = len(str(abs(n)))
        return f"{n:,}" if digits <= 30 else f"an integer of {digits} digits"
    return f"{n:,.0f}" if abs(n) < 1e30 else f"{n:.3g}"


@dataclass(frozen=True)
class _Size:
    layers: int
    parameters: int
    batch: int
    activations: int


def _size(req: ForwardRequest) -> _Size:
    widths = sum(layer.n_out for layer in req.network.layers) + req.network.n_in
    batch = len(req.inputs)
    return _Size(len(req.network.layers), req.network.n_parameters, batch, batch * widths)


def _check(found: float, limit: float, loc: tuple[str | int, ...], what: str, setting: str) -> None:
    if found > limit:
        raise LimitExceeded(loc, what, found, limit, setting)


def check_limits(req: ForwardRequest, settings: Settings, iterations: int = 1) -> None:
    """Raise LimitExceeded when ``req`` is over any configured limit."""
    s = _size(req)
    _check(s.layers, settings.max_layers, ("network", "layers"), "the number of layers", "max_layers")
    _check(s.parameters, settings.max_parameters, ("network",), "the number of parameters", "max_parameters")
    _check(s.batch, settings.max_batch, ("inputs",), "the batch size (input rows)", "max_batch")
    _check(
        s.activations,
        settings.max_activations,
        ("inputs",),
        "batch x the sum of layer widths (values held by a forward pass)",
        "max_activations",
    )
    _check(iterations, settings.max_iterations, ("iterations",), "iterations", "max_iterations")
    work = iterations * max(s.batch * s.parameters, LAYER_WORK_FLOOR * s.layers)
    _check(work, settings.max_work, (), "the work (iterations x batch x parameters)", "max_work")


def _check_trace(req: TrainRequest, settings: Settings) -> None:
    s = _size(req)
    per_entry = 1
    per_entry += s.batch * req.network.n_out if "output" in req.record else 0
    per_entry += s.parameters if "gradients" in req.record else 0
    per_entry += s.parameters if "network" in req.record else 0
    entries = recorded_count(req.iterations, req.record_every)
    _check(
        entries * per_entry,
        settings.max_trace_values,
        ("record",),
        "the number of values in the trace (recorded iterations x values recorded each)",
        "max_trace_values",
    )


# -- schemas -> arrays ---------------------------------------------------------------------


def to_layers(network: NetworkSpec) -> tuple[Layer, ...]:
    return tuple(_to_layer(spec) for spec in network.layers)


def _to_layer(spec: LayerSpec) -> Layer:
    weights = np.asarray(spec.weights, dtype=np.float64)
    biases = np.zeros(len(spec.weights)) if spec.biases is None else np.asarray(spec.biases, dtype=np.float64)
    return Layer(weights, biases, spec.activation)


def _matrix(rows: list[list[float]]) -> np.ndarray:
    return np.asarray(rows, dtype=np.float64)


def to_optimizer(config: OptimizerConfig) -> Optimizer:
    if isinstance(config, SGDConfig):
        return SGD(config.learning_rate, config.momentum, config.nesterov, config.weight_decay)
    return Adam(config.learning_rate, tuple(config.betas), config.eps, config.weight_decay)


def to_mask(req: TrainRequest, layout: Layout) -> np.ndarray | None:
    """The flat boolean trainable mask in ``layout`` order, or None when everything trains."""
    if req.trainable is None:
        return None
    mask = np.ones(layout.size, dtype=bool)
    for (w, b), spec in zip(layout.views(mask), req.trainable):
        if spec.weights is not None:
            w[...] = spec.weights
        if spec.biases is not None:
            b[...] = spec.biases
    return mask


# -- arrays -> schemas ---------------------------------------------------------------------


def _network_out(layout: Layout, params: np.ndarray) -> NetworkSpec:
    return NetworkSpec.model_construct(
        layers=[
            LayerSpec.model_construct(weights=w.tolist(), biases=b.tolist(), activation=act)
            for (w, b), act in zip(layout.views(params), layout.activations)
        ]
    )


def _gradients_out(layout: Layout, grad: np.ndarray) -> list[LayerGradient]:
    return [LayerGradient(weights=w.tolist(), biases=b.tolist()) for w, b in layout.views(grad)]


def _layers_out(fwd: Forward) -> list[LayerValues]:
    return [LayerValues(pre_activation=z.tolist(), activation=a.tolist()) for z, a in zip(fwd.pre, fwd.post)]


# -- endpoints -------------------------------------------------------------------------------


def run_forward(req: ForwardRequest, settings: Settings) -> ForwardResponse:
    check_limits(req, settings)
    fwd = forward(to_layers(req.network), _matrix(req.inputs))
    record_work(req.network.n_parameters)
    return ForwardResponse(output=fwd.output.tolist(), layers=_layers_out(fwd))


def run_loss(req: LossRequest, settings: Settings) -> LossResponse:
    check_limits(req, settings)
    ev = evaluate(
        to_layers(req.network), _matrix(req.inputs), _matrix(req.targets), req.loss, req.reduction, gradients=False
    )
    record_work(req.network.n_parameters)
    return LossResponse(loss=ev.loss, output=ev.forward.output.tolist())


def run_gradients(req: LossRequest, settings: Settings) -> GradientsResponse:
    check_limits(req, settings)
    ev = evaluate(to_layers(req.network), _matrix(req.inputs), _matrix(req.targets), req.loss, req.reduction)
    assert ev.gradient is not None
    record_work(req.network.n_parameters)
    return GradientsResponse(
        loss=ev.loss, output=ev.forward.output.tolist(), gradients=_gradients_out(ev.layout, ev.gradient)
    )


def run_train(req: TrainRequest, settings: Settings) -> TrainResponse:
    check_limits(req, settings, iterations=req.iterations)
    _check_trace(req, settings)
    layers = to_layers(req.network)
    layout = Layout.of(layers)
    result = train(
        layers,
        _matrix(req.inputs),
        _matrix(req.targets),
        req.loss,
        req.reduction,
        to_optimizer(req.optimizer),
        req.iterations,
        record_every=req.record_every,
        record=frozenset(req.record),
        trainable=to_mask(req, layout),
    )
    completed = req.iterations if result.diverged_at is None else result.diverged_at - 1
    record_work(layout.size, completed, training=True)
    return _train_out(result)


def _train_out(result: TrainingResult) -> TrainResponse:
    trace = []
    t = result.trace
    for i in range(len(t)):
        fields: dict[str, object] = {"iteration": int(t.iterations[i]), "loss": float(t.losses[i])}
        if t.outputs is not None:
            fields["output"] = t.outputs[i].tolist()
        if t.gradients is not None:
            fields["gradients"] = _gradients_out(result.layout, t.gradients[i])
        if t.params is not None:
            fields["network"] = _network_out(result.layout, t.params[i])
        trace.append(TraceEntry(**fields))
    out: dict[str, object] = {
        "status": result.status,
        "trace": trace,
        "network": _network_out(result.layout, result.params),
        "final_loss": result.final_loss,
    }
    if result.diverged_at is not None:
        out["diverged_at"] = result.diverged_at
    return TrainResponse(**out)

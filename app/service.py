"""The only place where request models become float64 arrays and results become response payloads.

Limits are checked here, before any numpy work, from the validated request's sizes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

import numpy as np
import orjson

from app.config import Settings
from app.nn.errors import Stopped
from app.nn.explain import explain, explanation_size, explanation_steps
from app.nn.gradcheck import gradcheck
from app.nn.losses import LOSSES, Loss, class_index_targets
from app.nn.network import Forward, Layer, Layout, evaluate, forward
from app.nn.optimizers import SGD, Adam, Optimizer
from app.nn.training import Outcome, TraceChunk, recorded_count, start_training
from app.observability import record_work
from app.render.svg import loss_curve, network_diagram
from app.schemas.network import LayerSpec, NetworkSpec
from app.schemas.requests import (
    DiagramRequest,
    ExplainRequest,
    ForwardRequest,
    GradcheckRequest,
    LossRequest,
    OptimizerConfig,
    SGDConfig,
    TrainRequest,
)

# The running request's "stop" flag, set by the HTTP layer when its client goes away; long
# computations ask it between chunks of work and raise Stopped. A ContextVar, because worker
# threads run in a copy of the caller's context (anyio.to_thread), so each request sees its own.
stop_flag: ContextVar[threading.Event | None] = ContextVar("stop_flag", default=None)


def should_stop() -> bool:
    flag = stop_flag.get()
    return flag is not None and flag.is_set()


def _stop_point() -> None:
    if should_stop():
        raise Stopped


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
            f"{what} is {_amount(found)}, over the limit of {_amount(limit)}; the server's setting BACKPROP_{setting.upper()} raises it"
        )
        super().__init__(self.message)


def _amount(n: float) -> str:
    """``n`` with thousands separators; client-sent integers can be too large for a float."""
    if isinstance(n, int):
        digits = len(str(abs(n)))
        return f"{n:,}" if digits <= 30 else f"an integer of {digits} digits"
    return f"{n:,.0f}" if abs(n) < 1e30 else f"{n:.3g}"


def _check(found: float, limit: float, loc: tuple[str | int, ...], what: str, setting: str) -> None:
    if found > limit:
        raise LimitExceeded(loc, what, found, limit, setting)


def check_limits(req: ForwardRequest, settings: Settings, iterations: int = 1) -> None:
    """Raise LimitExceeded when ``req`` is over any configured limit."""
    s = req.size
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
    _check(estimated_work(req, iterations), settings.max_work, (), "the work (iterations x batch x parameters)", "max_work")


def _check_trace(req: TrainRequest, settings: Settings) -> None:
    s = req.size
    per_entry = 1
    per_entry += s.batch * req.network.n_out if "output" in req.record else 0
    per_entry += s.parameters if "gradients" in req.record else 0
    per_entry += s.parameters if "network" in req.record else 0
    entries = recorded_count(req.iterations, req.record_every)
    _check_output(entries * per_entry, settings, ("record",), "the trace (recorded iterations x values recorded each)")


def _check_output(values: int, settings: Settings, loc: tuple[str | int, ...], what: str) -> None:
    """The answer's size is a limit like the others, checked before the work that would produce it:
    a small body can ask for a very large answer (a forward pass over 100,000 rows of a wide layer)."""
    _check(values, settings.max_output_values, loc, f"the number of values in the answer, {what},", "max_output_values")


# -- schemas -> arrays ---------------------------------------------------------------------


def to_layers(network: NetworkSpec) -> tuple[Layer, ...]:
    return tuple(_to_layer(spec) for spec in network.layers)


def _to_layer(spec: LayerSpec) -> Layer:
    weights = np.asarray(spec.weights, dtype=np.float64)
    biases = np.zeros(len(spec.weights)) if spec.biases is None else np.asarray(spec.biases, dtype=np.float64)
    return Layer(weights, biases, spec.activation)


def _matrix(rows: list[list[float]]) -> np.ndarray:
    return np.asarray(rows, dtype=np.float64)


def to_targets(req: LossRequest | DiagramRequest) -> np.ndarray:
    """``[batch][out_last]`` float64 targets: the rows as sent, or class indices as one-hot rows (which
    ``to_loss`` tells the loss to read as class indices)."""
    if req.index_targets:
        return class_index_targets(req.targets, req.network.n_out)  # type: ignore[arg-type]
    return _matrix(req.targets)  # type: ignore[arg-type]


def to_loss(req: LossRequest | DiagramRequest) -> Loss:
    """The request's loss bound with its cross_entropy options: ``LOSSES[name]`` itself when there are none."""
    weights = None if req.class_weights is None else np.asarray(req.class_weights, dtype=np.float64)
    return LOSSES[req.loss].bind(  # type: ignore[index]
        class_weights=weights, label_smoothing=req.label_smoothing, index_targets=req.index_targets
    )


def _loss_words(req: DiagramRequest) -> str:
    """The loss and the options it was given, for a caption: ``cross_entropy, class indices, label_smoothing 0.1``."""
    words = [str(req.loss)]
    if req.index_targets:
        words.append("class indices")
    if req.label_smoothing:
        words.append(f"label_smoothing {req.label_smoothing:g}")
    if req.class_weights is not None:
        words.append("class_weights")
    return ", ".join(words)


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


# -- arrays -> response payloads ---------------------------------------------------------
# Payloads are plain dicts in the exact shape of the response models (app.schemas.responses),
# holding C-contiguous float64 arrays that the HTTP layer serialises directly: building a
# pydantic model per number would cost more than the backprop itself on large networks.

Payload = dict[str, Any]


def _matrix_out(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a)


def network_payload(layout: Layout, params: np.ndarray) -> Payload:
    return {
        "layers": [
            {"weights": _matrix_out(w), "biases": _matrix_out(b), "activation": act}
            for (w, b), act in zip(layout.views(params), layout.activations)
        ]
    }


def gradients_payload(layout: Layout, grad: np.ndarray) -> list[Payload]:
    return [{"weights": _matrix_out(w), "biases": _matrix_out(b)} for w, b in layout.views(grad)]


def _layers_out(fwd: Forward) -> list[Payload]:
    return [{"pre_activation": _matrix_out(z), "activation": _matrix_out(a)} for z, a in zip(fwd.pre, fwd.post)]


# -- endpoints -------------------------------------------------------------------------------


def run_forward(req: ForwardRequest, settings: Settings) -> Payload:
    """The ForwardResponse payload."""
    check_limits(req, settings)
    s = req.size
    # Every layer's pre-activation and activation, and the output again.
    _check_output(
        s.batch * (2 * (s.widths - req.network.n_in) + req.network.n_out),
        settings,
        ("inputs",),
        "batch x (2 x the sum of layer widths + output width)",
    )
    fwd = forward(to_layers(req.network), _matrix(req.inputs))
    record_work(req.size.parameters)
    return {"output": _matrix_out(fwd.output), "layers": _layers_out(fwd)}


def run_loss(req: LossRequest, settings: Settings) -> Payload:
    """The LossResponse payload."""
    check_limits(req, settings)
    _check_output(req.size.batch * req.network.n_out + 1, settings, ("inputs",), "the output (batch x output width)")
    ev = evaluate(to_layers(req.network), _matrix(req.inputs), to_targets(req), to_loss(req), req.reduction, gradients=False)
    record_work(req.size.parameters)
    return {"loss": ev.loss, "output": _matrix_out(ev.forward.output)}


def run_gradients(req: LossRequest, settings: Settings) -> Payload:
    """The GradientsResponse payload."""
    check_limits(req, settings)
    s = req.size
    _check_output(s.batch * req.network.n_out + 1 + s.parameters, settings, ("inputs",), "the output and a gradient per parameter")
    ev = evaluate(to_layers(req.network), _matrix(req.inputs), to_targets(req), to_loss(req), req.reduction)
    assert ev.gradient is not None
    record_work(req.size.parameters)
    return {"loss": ev.loss, "output": _matrix_out(ev.forward.output), "gradients": gradients_payload(ev.layout, ev.gradient)}


def gradcheck_passes(req: ForwardRequest) -> int:
    """Forward passes a gradient check makes: two per parameter, and one with backprop."""
    return 2 * req.size.parameters + 1


def passes(req: ForwardRequest) -> int:
    """How many forward/backward passes ``req`` asks for: its iterations, a gradient check's, or 1."""
    if isinstance(req, TrainRequest):
        return req.iterations
    if isinstance(req, GradcheckRequest):
        return gradcheck_passes(req)
    return 1


def run_gradcheck(req: GradcheckRequest, settings: Settings) -> Payload:
    """The GradcheckResponse payload."""
    check_limits(req, settings, iterations=gradcheck_passes(req))
    _check_output(2 * req.size.parameters + 8, settings, ("network",), "two gradients per parameter")
    result = gradcheck(
        to_layers(req.network),
        _matrix(req.inputs),
        to_targets(req),
        to_loss(req),
        req.reduction,
        epsilon=req.epsilon,
        atol=req.atol,
        rtol=req.rtol,
        should_stop=should_stop,
    )
    record_work(req.size.parameters, gradcheck_passes(req))
    layer, kind, index = result.layout.locate(result.worst)
    return {
        "passed": result.passed,
        "max_abs_error": result.max_abs_error,
        "max_rel_error": result.max_rel_error,
        "worst": {
            "layer": layer,
            "kind": kind,
            "index": list(index),
            "analytical": float(result.analytical[result.worst]),
            "numerical": float(result.numerical[result.worst]),
        },
        "numerical": gradients_payload(result.layout, result.numerical),
        "analytical": gradients_payload(result.layout, result.analytical),
    }


def run_explain(req: ExplainRequest, settings: Settings) -> Payload:
    """The ExplainResponse payload."""
    check_limits(req, settings)
    p = req.parameter
    shapes = [(layer.n_out, layer.n_in) for layer in req.network.layers]
    _check(
        explanation_steps(shapes, req.size.batch, p.layer),
        settings.max_explain_steps,
        ("parameter",),
        "the number of steps in this derivation (samples x units between the output and the parameter)",
        "max_explain_steps",
    )
    _check_output(
        explanation_size(shapes, req.size.batch, p.layer),
        settings,
        ("parameter",),
        "the numbers of every step and every line of the derivation",
    )
    e = explain(to_layers(req.network), _matrix(req.inputs), to_targets(req), to_loss(req), req.reduction, p.layer, p.kind, p.index)
    record_work(req.size.parameters)
    return {
        "gradient": e.gradient,
        "parameter": {"layer": p.layer, "kind": p.kind, "index": list(p.index)},
        "samples": [
            {
                "sample": d.sample,
                "steps": [
                    {
                        "symbol": st.symbol,
                        "meaning": st.meaning,
                        "value": st.value,
                        "factors": [{"symbol": t.symbol, "meaning": t.meaning, "value": t.value} for t in st.factors],
                        "line": st.line,
                    }
                    for st in d.steps
                ],
                "contribution": d.contribution,
            }
            for d in e.samples
        ],
        "reduction": {"kind": e.reduction, "divisor": e.divisor, "total": e.total, "line": e.reduction_line},
        "lines": list(e.lines),
    }


def run_diagram(req: DiagramRequest, settings: Settings) -> str:
    """The network as SVG, labelled with activations (inputs given) and gradients (targets given)."""
    widths = [req.network.n_in] + [layer.n_out for layer in req.network.layers]
    _check(max(widths), settings.max_diagram_units, ("network",), "the widest column of neurons", "max_diagram_units")
    edges = sum(layer.n_out * layer.n_in for layer in req.network.layers)
    _check(edges, settings.max_diagram_edges, ("network",), "the number of weights to draw", "max_diagram_edges")
    layers = to_layers(req.network)
    values = gradients = None
    caption = "edge width: |weight|; blue positive, red negative"
    if req.inputs is not None:
        check_limits(ForwardRequest.model_construct(network=req.network, inputs=req.inputs), settings)
        x = _matrix(req.inputs)
        if req.targets is not None:
            ev = evaluate(layers, x, to_targets(req), to_loss(req), req.reduction)
            fwd = ev.forward
            assert ev.gradient is not None
            gradients = [w.tolist() for w, _ in ev.layout.views(ev.gradient)]
            caption += f"; edge labels: dL/dw ({_loss_words(req)}, {req.reduction}, loss {ev.loss:.6g})"
        else:
            fwd = forward(layers, x)
        values = [x[0].tolist()] + [a[0].tolist() for a in fwd.post]
        caption += f"; neuron labels: activations of sample 0 of {len(x)}"
    return network_diagram([l.weights.tolist() for l in layers], [l.activation for l in layers], values, gradients, caption)


def run_train_plot(req: TrainRequest, settings: Settings) -> str:
    """The loss curve of the recorded iterations of a training, as SVG."""
    _check_output(2 * recorded_count(req.iterations, req.record_every), settings, ("iterations",), "the plotted points")
    layout, chunks = _start(req.model_copy(update={"record": []}), settings)
    iterations: list[int] = []
    losses: list[float] = []
    summary: Payload = {}
    for item in chunks:
        _stop_point()
        if isinstance(item, TraceChunk):
            iterations.extend(item.iterations.tolist())
            losses.extend(item.losses.tolist())
        else:
            summary = _summary(layout, item, req)
    final = summary["final_loss"]
    caption = f"{summary['status']}" + (f" at iteration {summary['diverged_at']}" if "diverged_at" in summary else "")
    caption += f"; final loss {final:.6g}" if final is not None else "; final loss not finite"
    return loss_curve(iterations, losses, caption)


def _start(req: TrainRequest, settings: Settings) -> tuple[Layout, Iterator[TraceChunk | Outcome]]:
    check_limits(req, settings, iterations=req.iterations)
    _check_trace(req, settings)
    layers = to_layers(req.network)
    layout = Layout.of(layers)
    chunks = start_training(
        layers,
        _matrix(req.inputs),
        to_targets(req),
        to_loss(req),
        req.reduction,
        to_optimizer(req.optimizer),
        req.iterations,
        record_every=req.record_every,
        record=frozenset(req.record),
        trainable=to_mask(req, layout),
    )
    return layout, chunks


def trace_entries(layout: Layout, chunk: TraceChunk) -> list[Payload]:
    """One TraceEntry payload per recorded iteration of ``chunk``; optional keys only when recorded."""
    entries: list[Payload] = [{"iteration": i, "loss": loss} for i, loss in zip(chunk.iterations.tolist(), chunk.losses.tolist())]
    for k, entry in enumerate(entries):
        if chunk.outputs is not None:
            entry["output"] = chunk.outputs[k]
        if chunk.gradients is not None:
            entry["gradients"] = gradients_payload(layout, chunk.gradients[k])
        if chunk.params is not None:
            entry["network"] = network_payload(layout, chunk.params[k])
    return entries


def _summary(layout: Layout, outcome: Outcome, req: TrainRequest) -> Payload:
    completed = req.iterations if outcome.diverged_at is None else outcome.diverged_at - 1
    record_work(layout.size, completed, training=True)
    out: Payload = {"status": outcome.status}
    if outcome.diverged_at is not None:
        out["diverged_at"] = outcome.diverged_at
    out["network"] = network_payload(layout, outcome.params)
    out["final_loss"] = outcome.final_loss
    return out


def run_train(req: TrainRequest, settings: Settings) -> Payload:
    """The TrainResponse payload; its ``trace`` already encoded as JSON (an ``orjson.Fragment``).

    Each chunk's entries are encoded as soon as they are computed: kept as payloads (a dict
    and a few small arrays per entry) until the end, a long trace held about six times the
    memory of its JSON.
    """
    layout, chunks = _start(req, settings)
    encoded: list[bytes] = []
    summary: Payload = {}
    for item in chunks:
        _stop_point()
        if isinstance(item, TraceChunk):
            # "[a,b]" -> "a,b": the chunks are joined into one array below.
            encoded.append(orjson.dumps(trace_entries(layout, item), option=orjson.OPT_SERIALIZE_NUMPY)[1:-1])
        else:
            summary = _summary(layout, item, req)
    trace = orjson.Fragment(b"[" + b",".join(part for part in encoded if part) + b"]")
    del encoded
    status = {k: summary.pop(k) for k in ("status", "diverged_at") if k in summary}
    return {**status, "trace": trace, **summary}


def stream_train(req: TrainRequest, settings: Settings) -> Iterator[list[Payload]]:
    """Limits and iteration 1 are checked now (raising as ``run_train`` does); the iterator then yields,
    as training computes them, lists of TraceEntry payloads (one per recorded iteration), and last
    ``[summary]``: the TrainResponse payload without ``trace``."""
    layout, chunks = _start(req, settings)

    def entries() -> Iterator[list[Payload]]:
        for item in chunks:
            if isinstance(item, TraceChunk):
                yield trace_entries(layout, item)
            else:
                yield [_summary(layout, item, req)]

    return entries()


# Bytes per value held while computing: a forward pass keeps pre-activations, activations and
# deltas in the workspace (and one more copy per answer); parameters live as the network,
# the gradient, two optimizer states and two history rows while training.
BYTES_PER_ACTIVATION = 8 * 4
BYTES_PER_PARAMETER = 8 * 8


def estimated_memory(req: ForwardRequest) -> int:
    """Bytes ``req``'s computation holds at its peak, roughly (admission control's estimate; the
    answer's own size is bounded separately by BACKPROP_MAX_OUTPUT_VALUES)."""
    s = req.size
    return s.activations * BYTES_PER_ACTIVATION + s.parameters * BYTES_PER_PARAMETER


def estimated_work(req: ForwardRequest, iterations: int = 1) -> int:
    """The work estimate the limits use: iterations x max(batch x parameters, floor x layers)."""
    s = req.size
    return iterations * max(s.batch * s.parameters, LAYER_WORK_FLOOR * s.layers)

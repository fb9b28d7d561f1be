"""``POST /v1/train`` and ``/v1/train/plot``: a training's trace, as one answer, a stream, or a loss curve."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import orjson

from app.config import Settings
from app.nn.layout import Layout
from app.nn.training import Outcome, TraceChunk, recorded_count, start_training
from app.render.svg import loss_curve
from app.schemas.requests import TrainRequest
from app.service.conversion import dtype_of, matrix, to_layers, to_loss, to_mask, to_optimizer, to_targets
from app.service.limits import check_limits, check_output, check_trace
from app.service.payloads import TraceEntryPayload, TrainPayload, TrainSummaryPayload, gradients_payload, network_payload
from app.service.stop import stop_point


def completed_iterations(req: TrainRequest, summary: TrainSummaryPayload) -> int:
    """How many of ``req``'s iterations completed (all of them unless the training diverged)."""
    diverged_at = summary.get("diverged_at")
    return req.iterations if diverged_at is None else diverged_at - 1


def run_train(req: TrainRequest, settings: Settings) -> TrainPayload:
    """The TrainResponse payload; its ``trace`` already encoded as JSON (an ``orjson.Fragment``), or, for an
    answer in safetensors, the entries with their arrays.

    Each chunk's entries are encoded as soon as they are computed: kept as payloads (a dict
    and a few small arrays per entry) until the end, a long trace held about six times the
    memory of its JSON.
    """
    layout, chunks = _start(req, settings)
    keys = req.network.state_dict_keys
    encoded: list[bytes] = []
    entries: list[TraceEntryPayload] = []  # an answer in safetensors keeps the arrays as they are
    summary: TrainSummaryPayload | None = None
    for item in chunks:
        stop_point()
        if isinstance(item, TraceChunk) and req.binary_answer:
            entries.extend(trace_entries(layout, item, keys))
        elif isinstance(item, TraceChunk):
            # "[a,b]" -> "a,b": the chunks are joined into one array below.
            encoded.append(orjson.dumps(trace_entries(layout, item, keys), option=orjson.OPT_SERIALIZE_NUMPY)[1:-1])
        else:
            summary = _summary(layout, item, keys)
    assert summary is not None  # training always ends with its Outcome
    trace = entries if req.binary_answer else orjson.Fragment(b"[" + b",".join(part for part in encoded if part) + b"]")
    del encoded
    answer: TrainPayload = {"status": summary["status"]}  # type: ignore[typeddict-item]  # completed just below
    if "diverged_at" in summary:
        answer["diverged_at"] = summary["diverged_at"]
    answer["trace"] = trace
    answer["network"] = summary["network"]
    answer["final_loss"] = summary["final_loss"]
    return answer


def stream_train(req: TrainRequest, settings: Settings) -> Iterator[list[TraceEntryPayload] | list[TrainSummaryPayload]]:
    """Limits and iteration 1 are checked now (raising as ``run_train`` does); the iterator then yields,
    as training computes them, lists of TraceEntry payloads (one per recorded iteration), and last
    ``[summary]``: the TrainResponse payload without ``trace``."""
    layout, chunks = _start(req, settings)
    keys = req.network.state_dict_keys

    def entries() -> Iterator[list[TraceEntryPayload] | list[TrainSummaryPayload]]:
        for item in chunks:
            if isinstance(item, TraceChunk):
                yield trace_entries(layout, item, keys)
            else:
                yield [_summary(layout, item, keys)]

    return entries()


@dataclass(frozen=True)
class LossCurve:
    """A training's loss curve as SVG, and the summary of the training that drew it."""

    svg: str
    summary: TrainSummaryPayload


def run_train_plot(req: TrainRequest, settings: Settings) -> LossCurve:
    """The loss curve of the recorded iterations of a training, as SVG."""
    check_output(2 * recorded_count(req.iterations, req.record_every), settings, ("iterations",), "the plotted points")
    layout, chunks = _start(req.model_copy(update={"record": []}), settings)
    iterations: list[int] = []
    losses: list[float] = []
    summary: TrainSummaryPayload | None = None
    for item in chunks:
        stop_point()
        if isinstance(item, TraceChunk):
            iterations.extend(item.iterations.tolist())
            losses.extend(item.losses.tolist())
        else:
            summary = _summary(layout, item, req.network.state_dict_keys)
    assert summary is not None  # training always ends with its Outcome
    final = summary["final_loss"]
    caption = summary["status"] + (f" at iteration {summary['diverged_at']}" if "diverged_at" in summary else "")
    caption += f"; final loss {final:.6g}" if final is not None else "; final loss not finite"
    return LossCurve(loss_curve(iterations, losses, caption), summary)


def trace_entries(layout: Layout, chunk: TraceChunk, keys: list[tuple[str, str | None]] | None = None) -> list[TraceEntryPayload]:
    """One TraceEntry payload per recorded iteration of ``chunk``; optional keys only when recorded. ``keys``:
    the request's state_dict keys, when its network was sent in that form (network_payload)."""
    entries: list[TraceEntryPayload] = [{"iteration": i, "loss": loss} for i, loss in zip(chunk.iterations.tolist(), chunk.losses.tolist())]
    for k, entry in enumerate(entries):
        if chunk.outputs is not None:
            entry["output"] = chunk.outputs[k]
        if chunk.gradients is not None:
            entry["gradients"] = gradients_payload(layout, chunk.gradients[k])
        if chunk.params is not None:
            entry["network"] = network_payload(layout, chunk.params[k], keys)
    return entries


def _start(req: TrainRequest, settings: Settings) -> tuple[Layout, Iterator[TraceChunk | Outcome]]:
    check_limits(req, settings, iterations=req.iterations)
    check_trace(req, settings)
    dtype = dtype_of(req)
    layers = to_layers(req.network, dtype)
    layout = Layout.of(layers)
    chunks = start_training(
        layers,
        matrix(req.inputs, dtype),
        to_targets(req),
        to_loss(req),
        req.reduction,
        to_optimizer(req.optimizer),
        req.iterations,
        record_every=req.record_every,
        record=frozenset(req.record),
        trainable=to_mask(req, layout),
        dtype=dtype,
    )
    return layout, chunks


def _summary(layout: Layout, outcome: Outcome, keys: list[tuple[str, str | None]] | None = None) -> TrainSummaryPayload:
    out: TrainSummaryPayload = {"status": outcome.status}  # type: ignore[typeddict-item]  # completed just below
    if outcome.diverged_at is not None:
        out["diverged_at"] = outcome.diverged_at
    out["network"] = network_payload(layout, outcome.params, keys)
    out["final_loss"] = outcome.final_loss
    return out

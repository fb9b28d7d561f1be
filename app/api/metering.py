"""The work metrics (parameters processed, training iterations), recorded at the HTTP edge
once a computation has answered: the service computes and never reports on itself."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from app.observability import record_work
from app.schemas.requests import CheckRequest, ForwardRequest, TrainRequest
from app.service.limits import check_passes, passes
from app.service.payloads import TrainSummaryPayload
from app.service.train import LossCurve, completed_iterations


def metered(body: Any, result: Any) -> Any:
    """``result`` of computing ``body``, its work recorded: now for an answer, at its last line for a
    stream (which computes as it is sent). Bodies that run no forward pass (a diagram) record nothing."""
    if isinstance(body, TrainRequest):
        if isinstance(result, LossCurve):
            _record_training(body, result.summary)
        elif isinstance(result, dict):
            _record_training(body, result)  # type: ignore[arg-type]  # the TrainPayload holds the summary's keys
        else:
            return _metered_stream(body, result)
    elif isinstance(body, CheckRequest) and isinstance(result, dict):
        # The passes it made: its two runs and the variants its search tried.
        record_work(body.size.parameters, check_passes(body, result["search"]["variants_tried"]))
    elif isinstance(body, ForwardRequest):
        record_work(body.size.parameters, passes(body))
    return result


def _record_training(body: TrainRequest, summary: TrainSummaryPayload) -> None:
    record_work(body.size.parameters, completed_iterations(body, summary), training=True)


def _metered_stream(body: TrainRequest, batches: Iterator[list[Any]]) -> Iterator[list[Any]]:
    for batch in batches:
        if batch and "status" in batch[-1]:
            _record_training(body, batch[-1])
        yield batch

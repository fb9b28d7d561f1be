"""``POST /v1/loss``: the loss and the output, without gradients."""

from __future__ import annotations

from app.config import Settings
from app.nn.network import evaluate
from app.schemas.requests import LossRequest
from app.service.conversion import dtype_of, loss_arguments
from app.service.limits import check_limits, check_output
from app.service.payloads import LossPayload, contiguous


def run_loss(req: LossRequest, settings: Settings) -> LossPayload:
    """The LossResponse payload."""
    check_limits(req, settings)
    check_output(req.size.batch * req.network.n_out + 1, settings, ("inputs",), "the output (batch x output width)")
    ev = evaluate(*loss_arguments(req), gradients=False, dtype=dtype_of(req))
    return {"loss": ev.loss, "output": contiguous(ev.forward.output)}

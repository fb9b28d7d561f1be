"""``POST /v1/gradients``: the loss, the output and dLoss/d every weight and bias."""

from __future__ import annotations

from app.config import Settings
from app.nn.network import evaluate
from app.schemas.requests import LossRequest
from app.service.conversion import dtype_of, loss_arguments
from app.service.limits import check_limits, check_output
from app.service.payloads import GradientsPayload, contiguous, gradients_payload


def run_gradients(req: LossRequest, settings: Settings) -> GradientsPayload:
    """The GradientsResponse payload."""
    check_limits(req, settings)
    s = req.size
    check_output(s.batch * req.network.n_out + 1 + s.parameters, settings, ("inputs",), "the output and a gradient per parameter")
    ev = evaluate(*loss_arguments(req), dtype=dtype_of(req))
    assert ev.gradient is not None
    return {"loss": ev.loss, "output": contiguous(ev.forward.output), "gradients": gradients_payload(ev.layout, ev.gradient)}

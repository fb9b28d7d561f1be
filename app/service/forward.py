"""``POST /v1/forward``: every layer's pre-activation and activation."""

from __future__ import annotations

from app.config import Settings
from app.nn.network import forward
from app.schemas.requests import ForwardRequest
from app.service.conversion import dtype_of, matrix, to_layers
from app.service.limits import check_limits, check_output
from app.service.payloads import ForwardPayload, contiguous, layers_payload


def run_forward(req: ForwardRequest, settings: Settings) -> ForwardPayload:
    """The ForwardResponse payload."""
    check_limits(req, settings)
    s = req.size
    # Every layer's pre-activation and activation, and the output again.
    check_output(
        s.batch * (2 * (s.widths - req.network.n_in) + req.network.n_out),
        settings,
        ("inputs",),
        "batch x (2 x the sum of layer widths + output width)",
    )
    dtype = dtype_of(req)
    fwd = forward(to_layers(req.network, dtype), matrix(req.inputs, dtype), dtype=dtype)
    return {"output": contiguous(fwd.output), "layers": layers_payload(fwd)}

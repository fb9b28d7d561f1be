"""``POST /v1/gradcheck``: backprop against central finite differences."""

from __future__ import annotations

from app.config import Settings
from app.nn.gradcheck import gradcheck
from app.schemas.requests import GradcheckRequest
from app.service.conversion import loss_arguments
from app.service.limits import check_limits, check_output, gradcheck_passes
from app.service.payloads import GradcheckPayload, gradients_payload
from app.service.stop import should_stop


def run_gradcheck(req: GradcheckRequest, settings: Settings) -> GradcheckPayload:
    """The GradcheckResponse payload."""
    check_limits(req, settings, iterations=gradcheck_passes(req))
    check_output(2 * req.size.parameters + 8, settings, ("network",), "two gradients per parameter")
    result = gradcheck(
        *loss_arguments(req),
        epsilon=req.epsilon,
        atol=req.atol,
        rtol=req.rtol,
        should_stop=should_stop,
    )
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

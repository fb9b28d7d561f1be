"""``POST /v1/explain``: the chain rule for one parameter, with every number."""

from __future__ import annotations

from app.config import Settings
from app.nn.explain import explain, explanation_size, explanation_steps
from app.schemas.requests import ExplainRequest
from app.service.conversion import loss_arguments
from app.service.limits import check, check_limits, check_output
from app.service.payloads import ExplainPayload


def run_explain(req: ExplainRequest, settings: Settings) -> ExplainPayload:
    """The ExplainResponse payload."""
    check_limits(req, settings)
    p = req.parameter
    shapes = [(layer.n_out, layer.n_in) for layer in req.network.layers]
    check(
        explanation_steps(shapes, req.size.batch, p.layer),
        settings.max_explain_steps,
        ("parameter",),
        "the number of steps in this derivation (samples x units between the output and the parameter)",
        "max_explain_steps",
    )
    check_output(
        explanation_size(shapes, req.size.batch, p.layer),
        settings,
        ("parameter",),
        "the numbers of every step and every line of the derivation",
    )
    e = explain(*loss_arguments(req), p.layer, p.kind, p.index)
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
                        "latex": st.latex,
                    }
                    for st in d.steps
                ],
                "contribution": d.contribution,
            }
            for d in e.samples
        ],
        "reduction": {"kind": e.reduction, "divisor": e.divisor, "total": e.total, "line": e.reduction_line, "latex": e.reduction_latex},
        "lines": list(e.lines),
    }

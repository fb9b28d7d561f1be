from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, Response

from app.api.accept import negotiate
from app.api.compute import compute
from app.api.errors import BODY_ERROR_RESPONSES, NEGOTIATED_ERROR_RESPONSES
from app.api.openapi import request_body
from app.api.response_bodies import DOTBody, JSONBody, SVGBody
from app.schemas.media_types import DOT, JSON, SVG
from app.schemas.requests import GraphRequest
from app.schemas.responses import GraphResponse
from app.service.graph import run_graph, run_graph_dot, run_graph_svg
from app.service.limits import graph_cost

router = APIRouter(prefix="/v1/graph", tags=["learning"])

# What the answer can be, by Accept; the first when there is none (or */*).
FORMATS = (JSON, DOT, SVG)
# The answer depends on Accept: caches (were any to keep it) must key on it.
VARY = {"Vary": "Accept"}

DESCRIPTION = (
    "The scalar computation graph of the loss, as micrograd draws it: every input, weight and bias, each product "
    "`w * a`, each sum, each activation, the targets, the loss terms and the reduction, as nodes with `op`, `value` "
    "and `grad` (dLoss/dnode), and on each edge the local derivative d(to)/d(from). One `sample` (0 by default) or, "
    "with `sample: null`, the whole (small) batch; `labels` name nodes for the picture (the seed example's are the "
    "blog post's x1, f1, z_hat, CE).\n\n"
    "The answer by `Accept`: `application/json` (the default) the graph as data, with `null` for a value that is not "
    "finite; `text/vnd.graphviz` the Graphviz DOT text; `image/svg+xml` the picture laid out by Graphviz's `dot` "
    "(501 `graphviz_missing` when the server does not have it; JSON and DOT work all the same). Another Accept is a "
    "406. The nodes are limited by `BACKPROP_MAX_GRAPH_NODES`, a picture's edges by `BACKPROP_MAX_GRAPH_SVG_EDGES` and "
    "its layout time by `BACKPROP_GRAPH_SVG_TIMEOUT` (each a 413 naming it)."
)


@router.post(
    "",
    operation_id="graph",
    summary="The computation graph, scalar by scalar: values, grads and local derivatives (JSON, Graphviz DOT or SVG)",
    description=DESCRIPTION,
    response_model=GraphResponse,
    responses={
        **BODY_ERROR_RESPONSES,
        **NEGOTIATED_ERROR_RESPONSES,
        200: {
            "content": {DOT: {"schema": {"type": "string"}}, SVG: {"schema": {"type": "string"}}},
            "description": "The graph as data (JSON), as Graphviz DOT text, or laid out as an SVG picture, by Accept.",
        },
    },
    openapi_extra=request_body("graph"),
)
async def graph(request: Request) -> Response:
    form = negotiate(request.headers.get("accept"), FORMATS)
    svg = form == SVG
    run: Callable[[GraphRequest, Any], Any] = run_graph_svg if svg else run_graph_dot if form == DOT else run_graph
    finish: Callable[..., Response] = SVGBody if svg else DOTBody if form == DOT else JSONBody
    return await compute(request, GraphRequest, run, lambda answer: finish(answer, headers=VARY), cost=lambda body: graph_cost(body, svg))

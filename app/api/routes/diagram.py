from fastapi import APIRouter, Request

from app.api.compute import compute
from app.api.errors import BODY_ERROR_RESPONSES_EXPLICIT
from app.api.openapi import request_body
from app.api.response_bodies import SVG_RESPONSE, SVGBody
from app.schemas.requests import DiagramRequest
from app.service.diagram import run_diagram

router = APIRouter(prefix="/v1/diagram", tags=["learning"])


@router.post(
    "",
    operation_id="diagram",
    summary="Draw the network (SVG): weights as edges; activations and gradients as labels when data is given",
    response_class=SVGBody,
    responses={**BODY_ERROR_RESPONSES_EXPLICIT, **SVG_RESPONSE},
    openapi_extra=request_body("diagram"),
)
async def diagram(request: Request) -> SVGBody:
    return await compute(request, DiagramRequest, run_diagram, SVGBody)

from fastapi import APIRouter, Request

from app.api.compute import compute
from app.api.errors import BODY_ERROR_RESPONSES
from app.api.openapi import request_body
from app.api.response_bodies import BINARY_ANSWER, JSONBody
from app.schemas.requests import ExplainRequest
from app.schemas.responses import ExplainResponse
from app.service.explain import run_explain

router = APIRouter(prefix="/v1/explain", tags=["learning"])


@router.post(
    "",
    operation_id="explain",
    summary="The chain rule for one parameter's gradient, sample by sample, with every number",
    response_model=ExplainResponse,
    responses={**BODY_ERROR_RESPONSES, **BINARY_ANSWER},
    openapi_extra=request_body("explain"),
)
async def explain(request: Request) -> JSONBody:
    return await compute(request, ExplainRequest, run_explain)

from fastapi import APIRouter, Request

from app.api.compute import compute
from app.api.errors import BODY_ERROR_RESPONSES
from app.api.openapi import request_body
from app.api.response_bodies import BINARY_ANSWER, JSONBody
from app.schemas.requests import ForwardRequest
from app.schemas.responses import ForwardResponse
from app.service.forward import run_forward

router = APIRouter(prefix="/v1/forward", tags=["backprop"])


@router.post(
    "",
    operation_id="forward",
    summary="Forward pass: every layer's pre-activation and activation",
    response_model=ForwardResponse,
    responses={**BODY_ERROR_RESPONSES, **BINARY_ANSWER},
    openapi_extra=request_body("forward"),
)
async def forward(request: Request) -> JSONBody:
    return await compute(request, ForwardRequest, run_forward)

from fastapi import APIRouter, Request

from app.api.compute import compute
from app.api.errors import BODY_ERROR_RESPONSES
from app.api.openapi import request_body
from app.api.response_bodies import BINARY_ANSWER, JSONBody
from app.schemas.requests import LossRequest
from app.schemas.responses import GradientsResponse
from app.service.gradients import run_gradients

router = APIRouter(prefix="/v1/gradients", tags=["backprop"])


@router.post(
    "",
    operation_id="gradients",
    summary="Backpropagation: dLoss/dParameter for every weight and bias",
    response_model=GradientsResponse,
    responses={**BODY_ERROR_RESPONSES, **BINARY_ANSWER},
    openapi_extra=request_body("gradients"),
)
async def gradients(request: Request) -> JSONBody:
    return await compute(request, LossRequest, run_gradients)

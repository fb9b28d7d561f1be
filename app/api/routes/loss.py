from fastapi import APIRouter, Request

from app.api.compute import compute
from app.api.errors import BODY_ERROR_RESPONSES
from app.api.openapi import request_body
from app.api.response_bodies import BINARY_ANSWER, JSONBody
from app.schemas.requests import LossRequest
from app.schemas.responses import LossResponse
from app.service.loss import run_loss

router = APIRouter(prefix="/v1/loss", tags=["backprop"])


@router.post(
    "",
    operation_id="loss",
    summary="The loss of the network's output against targets",
    response_model=LossResponse,
    responses={**BODY_ERROR_RESPONSES, **BINARY_ANSWER},
    openapi_extra=request_body("loss"),
)
async def loss(request: Request) -> JSONBody:
    return await compute(request, LossRequest, run_loss)

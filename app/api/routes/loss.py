from fastapi import APIRouter

from app import service
from app.api.compute import run_compute
from app.api.deps import LossBody, SettingsDep
from app.api.errors import BODY_ERROR_RESPONSES
from app.api.examples import LOSS_FIELDS
from app.api.json_response import JSONBody
from app.api.openapi import request_body
from app.schemas.requests import LossRequest
from app.schemas.responses import LossResponse

router = APIRouter(prefix="/v1/loss", tags=["backprop"])


@router.post(
    "",
    operation_id="loss",
    summary="The loss of the network's output against targets",
    response_model=LossResponse,
    responses=BODY_ERROR_RESPONSES,
    openapi_extra=request_body(LossRequest, LOSS_FIELDS),
)
async def loss(body: LossBody, settings: SettingsDep) -> JSONBody:
    return await run_compute(service.run_loss, body, settings, JSONBody)

from typing import Annotated

from fastapi import APIRouter, Body

from app import service
from app.api.deps import SettingsDep
from app.api.errors import BODY_ERROR_RESPONSES
from app.api.examples import LOSS_FIELDS, openapi_examples
from app.schemas.requests import LossRequest
from app.schemas.responses import GradientsResponse

router = APIRouter(prefix="/v1/gradients", tags=["backprop"])


@router.post(
    "",
    operation_id="gradients",
    responses=BODY_ERROR_RESPONSES,
    summary="Backpropagation: dLoss/dParameter for every weight and bias",
    response_model=GradientsResponse,
)
def gradients(
    body: Annotated[LossRequest, Body(openapi_examples=openapi_examples(LOSS_FIELDS))], settings: SettingsDep
) -> GradientsResponse:
    return service.run_gradients(body, settings)

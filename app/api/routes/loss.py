from typing import Annotated

from fastapi import APIRouter, Body

from app import service
from app.api.deps import SettingsDep
from app.api.errors import BODY_ERROR_RESPONSES
from app.api.examples import LOSS_FIELDS, openapi_examples
from app.schemas.requests import LossRequest
from app.schemas.responses import LossResponse

router = APIRouter(prefix="/v1/loss", tags=["backprop"])


@router.post("", operation_id="loss", responses=BODY_ERROR_RESPONSES, summary="The loss of the network's output against targets", response_model=LossResponse)
def loss(
    body: Annotated[LossRequest, Body(openapi_examples=openapi_examples(LOSS_FIELDS))], settings: SettingsDep
) -> LossResponse:
    return service.run_loss(body, settings)

from typing import Annotated

from fastapi import APIRouter, Body

from app import service
from app.api.deps import SettingsDep
from app.api.errors import BODY_ERROR_RESPONSES
from app.api.examples import openapi_examples
from app.schemas.requests import TrainRequest
from app.schemas.responses import TrainResponse

router = APIRouter(prefix="/v1/train", tags=["backprop"])


@router.post(
    "",
    operation_id="train",
    responses=BODY_ERROR_RESPONSES,
    summary="Train with SGD or Adam and return the trace",
    description="Optional trace keys appear only when asked for in `record`; "
    "`diverged_at` only when `status` is `diverged`.",
    response_model=TrainResponse,
    response_model_exclude_unset=True,
)
def train(body: Annotated[TrainRequest, Body(openapi_examples=openapi_examples())], settings: SettingsDep) -> TrainResponse:
    return service.run_train(body, settings)

from typing import Annotated

from fastapi import APIRouter, Body

from app import service
from app.api.deps import SettingsDep
from app.api.errors import BODY_ERROR_RESPONSES
from app.api.examples import FORWARD_FIELDS, openapi_examples
from app.schemas.requests import ForwardRequest
from app.schemas.responses import ForwardResponse

router = APIRouter(prefix="/v1/forward", tags=["backprop"])


@router.post(
    "",
    operation_id="forward",
    responses=BODY_ERROR_RESPONSES,
    summary="Forward pass: every layer's pre-activation and activation",
    response_model=ForwardResponse,
)
def forward(
    body: Annotated[ForwardRequest, Body(openapi_examples=openapi_examples(FORWARD_FIELDS))], settings: SettingsDep
) -> ForwardResponse:
    return service.run_forward(body, settings)

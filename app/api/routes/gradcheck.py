from fastapi import APIRouter, Request

from app.api.compute import compute
from app.api.errors import BODY_ERROR_RESPONSES
from app.api.openapi import request_body
from app.api.response_bodies import BINARY_ANSWER, JSONBody
from app.schemas.requests import GradcheckRequest
from app.schemas.responses import GradcheckResponse
from app.service.gradcheck import run_gradcheck

router = APIRouter(prefix="/v1/gradcheck", tags=["learning"])


@router.post(
    "",
    operation_id="gradcheck",
    summary="Check backprop against central finite differences, as torch.autograd.gradcheck does",
    response_model=GradcheckResponse,
    responses={**BODY_ERROR_RESPONSES, **BINARY_ANSWER},
    openapi_extra=request_body("gradcheck"),
)
async def gradcheck(request: Request) -> JSONBody:
    return await compute(request, GradcheckRequest, run_gradcheck)

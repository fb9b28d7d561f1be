from fastapi import APIRouter, Request

from app.api.compute import compute
from app.api.errors import BODY_ERROR_RESPONSES
from app.api.openapi import request_body
from app.api.response_bodies import BINARY_ANSWER, JSONBody
from app.schemas.requests import CheckRequest
from app.schemas.responses import CheckResponse
from app.service.check import run_check

router = APIRouter(prefix="/v1/check", tags=["learning"])

DESCRIPTION = (
    "The body is a problem as `/v1/gradients` takes it (or, with `optimizer` and `iterations`, a training as "
    "`/v1/train` takes it) and `claimed`: any of the numbers a learner works out, in the shapes this service "
    "answers them in, `null` for a number not worked out. Each claimed array is checked element by element: "
    "`correct` against the true value, `consistent` against what follows from the learner's own earlier claimed "
    "numbers (error carried forward). A claimed quantity earns its kind's `points` when correct, or when "
    "consistent unless `carry_forward` is false. `first_wrong` is the path of the earliest claimed element that "
    "is neither; `diagnoses` are the known mistakes that reproduce the wrong numbers, found by a search bounded "
    "by what `BACKPROP_MAX_WORK` leaves after the check itself (`search` says whether it was complete)."
)


@router.post(
    "",
    operation_id="check",
    summary="Check a learner's numbers: which are right, which follow from their own, and which mistake explains the rest",
    description=DESCRIPTION,
    response_model=CheckResponse,
    responses={**BODY_ERROR_RESPONSES, **BINARY_ANSWER},
    openapi_extra=request_body("check"),
)
async def check(request: Request) -> JSONBody:
    return await compute(request, CheckRequest, run_check)

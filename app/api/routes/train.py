from fastapi import APIRouter, Request, Response

from app.api.accept import quality
from app.api.compute import compute
from app.api.errors import BODY_ERROR_RESPONSES, BODY_ERROR_RESPONSES_EXPLICIT
from app.api.openapi import request_body
from app.api.response_bodies import BINARY_ANSWER, SVG_RESPONSE, SVGBody, ndjson_response
from app.schemas.media_types import JSON, NDJSON, SAFETENSORS
from app.schemas.requests import TrainRequest
from app.schemas.responses import TrainResponse
from app.service.train import LossCurve, run_train, run_train_plot, stream_train

router = APIRouter(prefix="/v1/train", tags=["backprop"])

STREAM_DESCRIPTION = (
    "With `Accept: application/x-ndjson`: one JSON object per line, each recorded trace entry "
    "as soon as it is computed, then a last line with the summary (`status`, `diverged_at` when "
    "diverged, `network`, `final_loss`): the JSON response without `trace`."
)


@router.post(
    "",
    operation_id="train",
    summary="Train with SGD or Adam and return the trace",
    description="Optional trace keys appear only when asked for in `record`; "
    "`diverged_at` only when `status` is `diverged`. " + STREAM_DESCRIPTION,
    response_model=TrainResponse,
    responses={
        **BODY_ERROR_RESPONSES,
        200: {
            "content": {NDJSON: {"schema": {"type": "string"}}, **BINARY_ANSWER[200]["content"]},
            "description": "The trace (JSON), a stream of it (NDJSON), or its arrays as safetensors.",
        },
    },
    openapi_extra=request_body("train"),
)
async def train(request: Request) -> Response:
    accept = request.headers.get("accept")
    # The stream when asked for by name and ranked over safetensors (and no lower than JSON).
    if (
        accept
        and NDJSON in accept
        and quality(accept, NDJSON) >= quality(accept, JSON)
        and quality(accept, NDJSON) > quality(accept, SAFETENSORS)
    ):
        return await compute(request, TrainRequest, stream_train, ndjson_response)
    return await compute(request, TrainRequest, run_train)


@router.post(
    "/plot",
    operation_id="trainPlot",
    summary="Train as /v1/train does and draw the loss curve of the recorded iterations (SVG)",
    response_class=SVGBody,
    responses={**BODY_ERROR_RESPONSES_EXPLICIT, **SVG_RESPONSE},
    openapi_extra=request_body("train_plot"),
)
async def train_plot(request: Request) -> SVGBody:
    return await compute(request, TrainRequest, run_train_plot, _svg)


def _svg(curve: LossCurve) -> SVGBody:
    return SVGBody(curve.svg)

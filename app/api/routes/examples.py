from typing import TYPE_CHECKING, Annotated, Literal

import orjson
from fastapi import APIRouter, HTTPException, Path, Query, Request, Response

from app.api.accept import prefers
from app.api.binary_body import REQUEST_KEY
from app.api.response_bodies import safetensors_file
from app.examples import DEFAULT_ENDPOINT, ENDPOINTS, EXAMPLES, ExampleNotFound, example_json, find_example
from app.schemas.media_types import JSON, SAFETENSORS
from app.schemas.responses import ErrorBody, ExampleList, ExampleSummary

router = APIRouter(prefix="/v1/examples", tags=["examples"])

if TYPE_CHECKING:
    EndpointName = str
else:  # the names of the catalogue, so the spec lists them and a wrong one is a 422
    EndpointName = Literal[tuple(ENDPOINTS)]
FOR_DESCRIPTION = (
    "The endpoint to give the body for: "
    + ", ".join(f"`{name}` ({e.path})" for name, e in ENDPOINTS.items())
    + f". Default `{DEFAULT_ENDPOINT}`. The body is exactly that operation's Swagger example."
)
ANY_BODY = {"anyOf": [{"$ref": f"#/components/schemas/{name}"} for name in dict.fromkeys(e.model.__name__ for e in ENDPOINTS.values())]}


def _not_found(loc: str, msg: str) -> HTTPException:
    return HTTPException(404, detail=[{"loc": ["path" if loc == "name" else "query", loc], "msg": msg, "type": "not_found"}])


@router.get(
    "",
    operation_id="listExamples",
    summary="The named examples, each with a one-line description and the endpoints it has a body for",
)
def list_examples() -> ExampleList:
    return ExampleList(
        examples=[ExampleSummary(name=e.name, description=e.description, endpoints=list(e.endpoints)) for e in EXAMPLES.values()]
    )


@router.get(
    "/{name}",
    operation_id="getExample",
    summary="A ready-to-post body for one endpoint (by default /v1/train)",
    response_class=Response,
    responses={
        200: {
            "description": "The body, ready to post to the endpoint: JSON or, with `Accept: application/x-safetensors`, "
            "the same body as safetensors (its arrays as tensors, the rest in `__metadata__.request`).",
            "content": {"application/json": {"schema": ANY_BODY}, SAFETENSORS: {"schema": {"type": "string", "format": "binary"}}},
        },
        404: {"model": ErrorBody, "description": "No example has that name, or it has no body for that endpoint."},
        422: {"model": ErrorBody, "description": "`for` is not an endpoint's name."},
    },
)
def get_example(
    request: Request,
    name: Annotated[str, Path(description="An example's name.", examples=["seed"])],
    endpoint: Annotated[EndpointName, Query(alias="for", description=FOR_DESCRIPTION)] = DEFAULT_ENDPOINT,
) -> Response:
    try:
        find_example(name, endpoint)
    except ExampleNotFound as missing:
        raise _not_found(missing.field, missing.message) from None
    if prefers(request.headers.get("accept"), SAFETENSORS, JSON):
        return Response(safetensors_file(orjson.loads(example_json(name, endpoint)), REQUEST_KEY), media_type=SAFETENSORS)
    return Response(example_json(name, endpoint), media_type=JSON)

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path

from app.api.examples import EXAMPLES, example_body
from app.schemas.requests import TrainRequest
from app.schemas.responses import ErrorBody, ExampleList, ExampleSummary

router = APIRouter(prefix="/v1/examples", tags=["examples"])


@router.get("", operation_id="listExamples", summary="The named example bodies, each with a one-line description")
def list_examples() -> ExampleList:
    return ExampleList(examples=[ExampleSummary(name=e.name, description=e.description) for e in EXAMPLES.values()])


@router.get(
    "/{name}",
    operation_id="getExample",
    summary="A ready-to-post /v1/train body",
    response_model=TrainRequest,
    responses={404: {"model": ErrorBody, "description": "No example has that name."}},
)
def get_example(name: Annotated[str, Path(description="An example's name.", examples=["seed"])]) -> Any:
    if name not in EXAMPLES:
        msg = f"no example named {name[:40]!r}; expected one of: {', '.join(EXAMPLES)}"
        raise HTTPException(404, detail=[{"loc": ["path", "name"], "msg": msg, "type": "not_found"}])
    return example_body(name)

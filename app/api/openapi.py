"""Request bodies in the OpenAPI spec for routes that parse their body themselves (app.api.body)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from app.api.examples import openapi_examples

REF = "#/components/schemas/{model}"


def request_body(model: type[BaseModel], fields: tuple[str, ...] | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """``openapi_extra`` declaring ``model`` as the JSON body, with the named examples (seed first)."""
    examples = {name: dict(ex) for name, ex in openapi_examples(fields, extra).items()}
    content = {"schema": {"$ref": REF.format(model=model.__name__)}, "examples": examples}
    return {"requestBody": {"required": True, "content": {"application/json": content}}}


def install_openapi(app: FastAPI, body_models: list[type[BaseModel]]) -> None:
    """Make ``app.openapi()`` include the schemas of ``body_models`` (and what they refer to)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            _, defs = models_json_schema([(m, "validation") for m in body_models], ref_template=REF)
            schemas = spec.setdefault("components", {}).setdefault("schemas", {})
            for name, schema in defs.get("$defs", {}).items():
                schemas.setdefault(name, schema)
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

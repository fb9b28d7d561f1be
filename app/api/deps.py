"""Shared route dependencies as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.api.body import json_body
from app.config import Settings
from app.schemas.requests import DiagramRequest, ExplainRequest, ForwardRequest, GradcheckRequest, LossRequest, TrainRequest


async def app_settings(request: Request) -> Settings:
    """The settings the app was created with (``create_app``), ``get_settings()`` by default."""
    # async: a plain def dependency would cost every request an extra threadpool hop.
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(app_settings)]
ForwardBody = Annotated[ForwardRequest, Depends(json_body(ForwardRequest))]
LossBody = Annotated[LossRequest, Depends(json_body(LossRequest))]
TrainBody = Annotated[TrainRequest, Depends(json_body(TrainRequest))]
GradcheckBody = Annotated[GradcheckRequest, Depends(json_body(GradcheckRequest))]
ExplainBody = Annotated[ExplainRequest, Depends(json_body(ExplainRequest))]
DiagramBody = Annotated[DiagramRequest, Depends(json_body(DiagramRequest))]

"""Shared route dependencies as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.config import Settings


async def app_settings(request: Request) -> Settings:
    """The settings the app was created with (``create_app``), ``get_settings()`` by default."""
    # async: a plain def dependency would cost every request an extra threadpool hop.
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(app_settings)]

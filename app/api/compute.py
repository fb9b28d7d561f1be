"""A compute route's whole path: read and validate the body, compute, encode.

Where the numpy work runs is chosen by its estimated work. Small requests (the seed
network, a few iterations) run on the event loop: a thread hop costs more than their
whole computation. Anything larger runs in a worker thread, so ``/healthz`` and small
requests keep answering while it computes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import anyio.to_thread
from fastapi import Request
from pydantic import BaseModel

from app.api.body import read_body
from app.api.json_response import JSONBody
from app.config import Settings
from app.api.http_errors import UnsupportedMediaType
from app.service import estimated_work, passes

P = TypeVar("P")
R = TypeVar("R")
Req = TypeVar("Req", bound=BaseModel)


async def compute(
    request: Request, model: type[Req], fn: Callable[[Req, Settings], P], finish: Callable[[P], R] = JSONBody  # type: ignore[assignment]
) -> R:
    """``finish(fn(body, settings))`` for the body read as ``model``, inline or in a worker thread
    (encoding a large answer is work too)."""
    require_json(request)
    body = await read_body(request, model)
    settings: Settings = request.app.state.settings
    if estimated_work(body, passes(body)) <= settings.inline_work:
        return finish(fn(body, settings))
    return await anyio.to_thread.run_sync(_finish, fn, body, settings, finish)


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def require_json(request: Request) -> None:
    """Raise UnsupportedMediaType unless the body is declared as JSON.

    A missing Content-Type is refused too: a cross-site "simple request" (a form post, or
    fetch with ``mode: "no-cors"`` and a Blob) can only send text/plain, form encodings or
    none, and must not be able to make a visitor's browser spend this server's CPU.
    """
    content_type = request.headers.get("content-type")
    if content_type is None or not _is_json(content_type):
        raise UnsupportedMediaType(content_type)


def _finish(fn: Callable[[Any, Settings], Any], body: Any, settings: Settings, finish: Callable[[Any], Any]) -> Any:
    return finish(fn(body, settings))

"""A compute route's whole path: read and validate the body, compute, encode.

Where the numpy work runs is chosen by its estimated work. Small requests (the seed
network, a few iterations) run on the event loop: a thread hop costs more than their
whole computation. Anything larger runs in a worker thread, so ``/healthz`` and small
requests keep answering while it computes. Those are admitted first (app.api.admission:
503 with Retry-After beyond the worker's bounds) and stop, between chunks of work, when
their client disconnects.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast

import anyio
import anyio.to_thread
from fastapi import Request, Response
from starlette.types import Receive, Scope, Send

from app.api.accept import prefers
from app.api.admission import SCOPE_KEY as ADMITTED_BODY_KEY
from app.api.admission import Admission, Ticket
from app.api.body import read_body
from app.api.memory_release import mark_large
from app.api.metering import metered
from app.api.response_bodies import JSONBody, SafetensorsBody
from app.config import Settings
from app.nn.errors import Stopped
from app.schemas.media_types import JSON, SAFETENSORS
from app.schemas.requests import ComputeRequest
from app.service.limits import estimated_memory, estimated_work, passes
from app.service.stop import stop_flag

P = TypeVar("P")
R = TypeVar("R")
Req = TypeVar("Req", bound=ComputeRequest)


async def compute(
    request: Request,
    model: type[Req],
    fn: Callable[[Req, Settings], P],
    finish: Callable[[P], R] = JSONBody,  # type: ignore[assignment]
    cost: Callable[[Req], tuple[float, int]] | None = None,
) -> R:
    """``finish(fn(body, settings))`` for the body read as ``model``, inline or in a worker thread
    (encoding a large answer is work too). ``cost``: the body's estimated work and memory, when
    ``estimated_work`` and ``estimated_memory`` do not know what ``fn`` does with it."""
    body = await read_body(request, model)
    request.state.body = body  # app.api.errors names a layer's fault as the body sent it
    settings: Settings = request.app.state.settings
    if finish is JSONBody and prefers(request.headers.get("accept"), SAFETENSORS, JSON):
        finish, settings = SafetensorsBody, binary_answer_settings(settings)  # type: ignore[assignment]
        body.answer_binary()
    work, memory = cost(body) if cost is not None else (estimated_work(body, passes(body)), None)
    if work <= settings.inline_work:
        return cast(R, _finish(fn, body, settings, finish))
    admission: Admission = request.app.state.admission
    memory = estimated_memory(body) if memory is None else memory
    mark_large(request.scope, memory)
    ticket = admission.admit(work, memory, holding=request.scope.get(ADMITTED_BODY_KEY))
    try:
        result = await _watching_disconnect(request, fn, body, settings, finish)
    except BaseException:
        ticket.release()
        raise
    # Held until the answer is sent: a stream computes as it is sent, and a JSON answer's bytes
    # are memory until then.
    return Admitted(result, ticket)  # type: ignore[return-value]


async def _watching_disconnect(
    request: Request, fn: Callable[[Any, Settings], Any], body: Any, settings: Settings, finish: Callable[[Any], Any]
) -> Any:
    """``finish(fn(body, settings))`` in a worker thread, asked to stop (service.stop_flag) as soon as
    the client disconnects; returns ``ClientGone()`` then, which sends nothing."""
    flag = threading.Event()
    token = stop_flag.set(flag)  # the worker thread runs in a copy of this context
    try:
        error: Exception | None = None
        async with anyio.create_task_group() as group:
            group.start_soon(_set_on_disconnect, request, flag)
            try:
                result = await anyio.to_thread.run_sync(_finish, fn, body, settings, finish)
            except Stopped:
                result = ClientGone()
            except Exception as exc:  # raised below, outside the task group (which would wrap it)
                error = exc
            group.cancel_scope.cancel()
    finally:
        stop_flag.reset(token)
    if flag.is_set():
        return ClientGone()
    if error is not None:
        raise error
    return result


async def _set_on_disconnect(request: Request, flag: threading.Event) -> None:
    # The body has been read, so the next message the server has for us is the disconnect.
    while (await request.receive())["type"] != "http.disconnect":
        pass
    flag.set()


# An answer sent as safetensors takes 8 bytes a number, where JSON takes 14-30: it may hold this many
# times BACKPROP_MAX_OUTPUT_VALUES numbers (the setting's description says so).
BINARY_OUTPUT_FACTOR = 4


def binary_answer_settings(settings: Settings) -> Settings:
    """The settings a request answered in safetensors is held to."""
    return settings.model_copy(update={"max_output_values": BINARY_OUTPUT_FACTOR * settings.max_output_values})


class ClientGone(Response):
    """The answer to a client that has gone: nothing is sent (logged and counted as 499)."""

    def __init__(self) -> None:
        super().__init__(status_code=499)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        return None


class Admitted(Response):
    """``inner``, sent as it is; the admission ticket is given back once it has been sent (or failed)."""

    def __init__(self, inner: Response, ticket: Ticket) -> None:
        self.inner, self.ticket = inner, ticket
        self.status_code, self.background = inner.status_code, None
        self.raw_headers = inner.raw_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.inner(scope, receive, send)
        finally:
            self.ticket.release()


def _finish(fn: Callable[[Any, Settings], Any], body: Any, settings: Settings, finish: Callable[[Any], Any]) -> Any:
    return finish(metered(body, fn(body, settings)))

"""A typed Python client for backprop-api, on httpx: ``BackpropClient`` and its async twin.

    from app.client import BackpropClient
    with BackpropClient("http://127.0.0.1:8000") as client:
        body = client.example("seed")
        result = client.gradients(**{k: body[k] for k in ("network", "inputs", "targets", "loss")})
        result.gradients[1].weights_array      # numpy view of dLoss/dW for layer 1
        for item in client.train(**body, stream=True):
            print(item)                        # TraceEntry ..., then TrainSummary

Arguments are the request body's fields, as plain lists, numpy arrays or the service's
own pydantic models; results are the service's response models. A 422 raises
``ValidationFailed``, a 413 ``LimitExceeded``, a 404 ``NotFound``. Connection failures,
timeouts and 500/502/503/504 answers are retried with exponential backoff, or after the
answer's ``Retry-After`` when it gives one (every
endpoint is a pure computation, so a repeated request is safe), then raise
``ServiceUnavailable``.
"""

from __future__ import annotations

import asyncio
import datetime
import email.utils
import json
import math
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any, TypeVar

import httpx
import numpy as np
from pydantic import BaseModel

from app.schemas.responses import (
    ErrorEntry,
    ExampleList,
    ExplainResponse,
    ForwardResponse,
    GradcheckResponse,
    GradientsResponse,
    LossResponse,
    TraceEntry,
    TrainResponse,
    TrainSummary,
)

M = TypeVar("M", bound=BaseModel)
RETRY_STATUSES = frozenset({500, 502, 503, 504})
NDJSON = "application/x-ndjson"
DEFAULT_URL = "http://127.0.0.1:8000"


class BackpropError(Exception):
    """Anything the service answered with an error, or could not answer."""


class ServiceError(BackpropError):
    """An error answer: ``status`` and the contract's ``detail`` entries (``loc``, ``msg``, ``type``)."""

    def __init__(self, status: int, detail: list[ErrorEntry], text: str) -> None:
        self.status = status
        self.detail = detail
        lines = [f"{'.'.join(map(str, d.loc))}: {d.msg}" for d in detail] or [text[:500]]
        super().__init__(f"HTTP {status}: " + "; ".join(lines))


class ValidationFailed(ServiceError):
    """422: the body was not valid; each ``detail`` entry names the field and what was expected."""


class LimitExceeded(ServiceError):
    """413: over a configured limit; the message names the server setting that raises it."""


class NotFound(ServiceError):
    """404: no such resource (e.g. an unknown example name)."""


class ServiceUnavailable(BackpropError):
    """The service could not be reached, or kept failing, after every retry."""


def jsonable(value: Any) -> Any:
    """Lists, numbers, dicts and strings from numpy arrays, numpy scalars and pydantic models."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_unset=True)
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def _error(response: httpx.Response) -> ServiceError:
    detail: list[ErrorEntry] = []
    try:
        raw = response.json().get("detail")
        if isinstance(raw, list):
            detail = [ErrorEntry.model_validate(d) for d in raw]
    except (ValueError, AttributeError):
        pass
    kind = {422: ValidationFailed, 413: LimitExceeded, 404: NotFound}.get(response.status_code, ServiceError)
    return kind(response.status_code, detail, response.text)


def _parse(response: httpx.Response, model: type[M] | None) -> Any:
    if response.status_code >= 400:
        raise _error(response)
    if model is None:
        return response.text if response.headers.get("content-type", "").startswith("image/") else response.json()
    return model.model_validate_json(response.content)


def _stream_item(line: str) -> TraceEntry | TrainSummary:
    data = json.loads(line)
    return TrainSummary.model_validate(data) if "status" in data else TraceEntry.model_validate(data)


class _Options:
    """Connection options and the retry policy both clients share."""

    def __init__(self, base_url: str, timeout: float, retries: int, backoff: float) -> None:
        self.base_url, self.timeout, self.retries, self.backoff = base_url.rstrip("/"), timeout, retries, backoff

    def delay(self, attempt: int, response: httpx.Response | None = None) -> float:
        """Seconds before the next attempt: the answer's ``Retry-After`` when it gives one (a 503 from
        an overloaded worker says when it expects room), else ``backoff * 2**attempt``."""
        after = _retry_after(response.headers.get("retry-after")) if response is not None else None
        return after if after is not None else self.backoff * 2**attempt

    def build(self, http: httpx.Client | httpx.AsyncClient, method: str, path: str, body: dict[str, Any] | None, headers: dict[str, str] | None) -> httpx.Request:
        content = None if body is None else json.dumps(jsonable(body)).encode()
        return http.build_request(method, path, content=content, headers={"Content-Type": "application/json", **(headers or {})})

    def gave_up(self, method: str, path: str, failure: str) -> ServiceUnavailable:
        return ServiceUnavailable(f"{method} {path} failed {self.retries + 1} times; last: {failure}")


# A server's Retry-After is honoured up to this many seconds.
MAX_RETRY_AFTER = 60.0


def _retry_after(value: str | None) -> float | None:
    """``Retry-After`` (seconds, or an HTTP date) as seconds from now, at most MAX_RETRY_AFTER; None if absent or unreadable."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = (when - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER) if math.isfinite(seconds) else None


def _retry_reason(response: httpx.Response) -> str | None:
    """Why an answer should be retried (a server-side failure), or None when it is the answer."""
    return f"HTTP {response.status_code}" if response.status_code in RETRY_STATUSES else None


class BackpropClient:
    """Synchronous client; ``retries`` extra attempts after the first, waiting ``backoff * 2**n`` seconds."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        timeout: float = 60.0,
        retries: int = 3,
        backoff: float = 0.25,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._options = _Options(base_url, timeout, retries, backoff)
        self._http = httpx.Client(base_url=self._options.base_url, timeout=timeout, transport=transport)

    def __enter__(self) -> BackpropClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, method: str, path: str, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None, stream: bool = False) -> httpx.Response:
        request = self._options.build(self._http, method, path, body, headers)
        failure = ""
        for attempt in range(self._options.retries + 1):
            response: httpx.Response | None = None
            try:
                response = self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                failure = f"{type(exc).__name__}: {exc}"
            else:
                if (reason := _retry_reason(response)) is None:
                    return response
                failure = reason
                response.close()
            if attempt < self._options.retries:
                time.sleep(self._options.delay(attempt, response))
        raise self._options.gave_up(method, path, failure)

    def _post(self, path: str, body: dict[str, Any], model: type[M] | None) -> Any:
        return _parse(self._send("POST", path, body), model)

    def forward(self, **body: Any) -> ForwardResponse:
        """``network``, ``inputs``."""
        return self._post("/v1/forward", body, ForwardResponse)

    def loss(self, **body: Any) -> LossResponse:
        """``network``, ``inputs``, ``targets``, ``loss``, optional ``reduction``."""
        return self._post("/v1/loss", body, LossResponse)

    def gradients(self, **body: Any) -> GradientsResponse:
        """As ``loss``."""
        return self._post("/v1/gradients", body, GradientsResponse)

    def gradcheck(self, **body: Any) -> GradcheckResponse:
        """As ``loss``, plus optional ``epsilon``, ``atol``, ``rtol``."""
        return self._post("/v1/gradcheck", body, GradcheckResponse)

    def explain(self, **body: Any) -> ExplainResponse:
        """As ``loss``, plus ``parameter`` (``{"layer": k, "kind": "weights", "index": [j, i]}``)."""
        return self._post("/v1/explain", body, ExplainResponse)

    def diagram(self, **body: Any) -> str:
        """``network``, optional ``inputs``, ``targets``, ``loss``: an SVG document."""
        return self._post("/v1/diagram", body, None)

    def train_plot(self, **body: Any) -> str:
        """As ``train``: the loss curve, an SVG document."""
        return self._post("/v1/train/plot", body, None)

    def train(self, *, stream: bool = False, **body: Any) -> Any:
        """The /v1/train body's fields. With ``stream``, an iterator of TraceEntry as they are
        computed, then one TrainSummary; otherwise the whole TrainResponse."""
        if not stream:
            return self._post("/v1/train", body, TrainResponse)
        return self._stream(body)

    def _stream(self, body: dict[str, Any]) -> Iterator[TraceEntry | TrainSummary]:
        response = self._send("POST", "/v1/train", body, headers={"Accept": NDJSON}, stream=True)
        try:
            if response.status_code >= 400:
                response.read()
                raise _error(response)
            for line in response.iter_lines():
                if line:
                    yield _stream_item(line)
        finally:
            response.close()

    def examples(self) -> ExampleList:
        return _parse(self._send("GET", "/v1/examples"), ExampleList)

    def example(self, name: str, endpoint: str = "train") -> dict[str, Any]:
        """The named example's ready-to-post body for ``endpoint`` (forward, loss, gradients, gradcheck,
        explain, train, train_plot or diagram; by default the /v1/train body)."""
        from urllib.parse import quote, urlencode

        query = "" if endpoint == "train" else "?" + urlencode({"for": endpoint})
        return _parse(self._send("GET", f"/v1/examples/{quote(name, safe='')}{query}"), None)

    def health(self) -> dict[str, Any]:
        return _parse(self._send("GET", "/healthz"), None)


class AsyncBackpropClient:
    """The asynchronous twin of BackpropClient: the same methods, awaited (``train(stream=True)`` is an async iterator)."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        timeout: float = 60.0,
        retries: int = 3,
        backoff: float = 0.25,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._options = _Options(base_url, timeout, retries, backoff)
        self._http = httpx.AsyncClient(base_url=self._options.base_url, timeout=timeout, transport=transport)

    async def __aenter__(self) -> AsyncBackpropClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, method: str, path: str, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None, stream: bool = False) -> httpx.Response:
        request = self._options.build(self._http, method, path, body, headers)
        failure = ""
        for attempt in range(self._options.retries + 1):
            response: httpx.Response | None = None
            try:
                response = await self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                failure = f"{type(exc).__name__}: {exc}"
            else:
                if (reason := _retry_reason(response)) is None:
                    return response
                failure = reason
                await response.aclose()
            if attempt < self._options.retries:
                await asyncio.sleep(self._options.delay(attempt, response))
        raise self._options.gave_up(method, path, failure)

    async def _post(self, path: str, body: dict[str, Any], model: type[M] | None) -> Any:
        return _parse(await self._send("POST", path, body), model)

    async def forward(self, **body: Any) -> ForwardResponse:
        return await self._post("/v1/forward", body, ForwardResponse)

    async def loss(self, **body: Any) -> LossResponse:
        return await self._post("/v1/loss", body, LossResponse)

    async def gradients(self, **body: Any) -> GradientsResponse:
        return await self._post("/v1/gradients", body, GradientsResponse)

    async def gradcheck(self, **body: Any) -> GradcheckResponse:
        return await self._post("/v1/gradcheck", body, GradcheckResponse)

    async def explain(self, **body: Any) -> ExplainResponse:
        return await self._post("/v1/explain", body, ExplainResponse)

    async def diagram(self, **body: Any) -> str:
        return await self._post("/v1/diagram", body, None)

    async def train_plot(self, **body: Any) -> str:
        return await self._post("/v1/train/plot", body, None)

    async def train(self, *, stream: bool = False, **body: Any) -> Any:
        """The whole TrainResponse; with ``stream``, the async iterator of ``train_stream``."""
        if stream:
            return self.train_stream(**body)
        return await self._post("/v1/train", body, TrainResponse)

    async def train_stream(self, **body: Any) -> AsyncIterator[TraceEntry | TrainSummary]:
        """TraceEntry items as they are computed, then one TrainSummary."""
        response = await self._send("POST", "/v1/train", body, headers={"Accept": NDJSON}, stream=True)
        try:
            if response.status_code >= 400:
                await response.aread()
                raise _error(response)
            async for line in response.aiter_lines():
                if line:
                    yield _stream_item(line)
        finally:
            await response.aclose()

    async def examples(self) -> ExampleList:
        return _parse(await self._send("GET", "/v1/examples"), ExampleList)

    async def example(self, name: str, endpoint: str = "train") -> dict[str, Any]:
        """The named example's ready-to-post body for ``endpoint`` (by default the /v1/train body)."""
        from urllib.parse import quote, urlencode

        query = "" if endpoint == "train" else "?" + urlencode({"for": endpoint})
        return _parse(await self._send("GET", f"/v1/examples/{quote(name, safe='')}{query}"), None)

    async def health(self) -> dict[str, Any]:
        return _parse(await self._send("GET", "/healthz"), None)

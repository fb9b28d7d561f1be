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
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any, Literal, TypeVar, cast, overload

import httpx
import numpy as np
from pydantic import BaseModel

from app.schemas.media_types import DOT, JSON, NDJSON, SVG
from app.schemas.requests import CheckRequest, LossRequest, TrainRequest
from app.schemas.responses import (
    CheckResponse,
    ErrorEntry,
    ExampleList,
    ExplainResponse,
    ForwardResponse,
    GradcheckResponse,
    GradientsResponse,
    GraphResponse,
    LossResponse,
    TraceEntry,
    TrainResponse,
    TrainSummary,
)

M = TypeVar("M", bound=BaseModel)
R = TypeVar("R")
RETRY_STATUSES = frozenset({500, 502, 503, 504})
DEFAULT_URL = "http://127.0.0.1:8000"


class BackpropError(Exception):
    """Anything the service answered with an error, or could not answer."""


class ServiceError(BackpropError):
    """An error answer: ``status`` and the contract's ``detail`` entries (``loc``, ``msg``, ``type``)."""

    def __init__(self, status: int, detail: list[ErrorEntry], text: str) -> None:
        self.status = status
        self.detail = detail
        self.text = text
        super().__init__(f"HTTP {status}: " + self.explanation())

    def explanation(self) -> str:
        """The ``detail`` entries as ``loc: msg`` lines joined by "; " (the answer's text when it has none),
        without the status."""
        lines = [f"{'.'.join(map(str, d.loc))}: {d.msg}" if d.loc else d.msg for d in self.detail] or [self.text[:500] or str(self.status)]
        return "; ".join(lines)


class ValidationFailed(ServiceError):
    """422: the body was not valid; each ``detail`` entry names the field and what was expected."""


class LimitExceeded(ServiceError):
    """413: over a configured limit; the message names the server setting that raises it."""


class NotFound(ServiceError):
    """404: no such resource (e.g. an unknown example name)."""


class ServiceUnavailable(BackpropError):
    """The service could not be reached, or kept failing, after every retry; ``unreachable`` when no
    attempt got an answer at all (nothing listening, a wrong address), ``failure`` the last failure."""

    def __init__(self, message: str, failure: str = "", unreachable: bool = False) -> None:
        super().__init__(message)
        self.failure = failure
        self.unreachable = unreachable


class _Null:
    """A JSON null the body sends (a None argument is left out, so the service's default applies)."""


NULL = _Null()


def jsonable(value: Any) -> Any:
    """Lists, numbers, dicts and strings from numpy arrays, numpy scalars and pydantic models (NULL: null)."""
    if value is NULL:
        return None
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


def verbatim(body: Any) -> Any:
    """``body`` as it is, its nulls included (``jsonable`` leaves a None out so that the service's default
    applies; a body read from a file means its nulls: ``"sample": null`` is every sample of /v1/graph)."""
    if isinstance(body, Mapping):
        return {key: NULL if value is None else verbatim(value) for key, value in body.items()}
    if isinstance(body, list):
        return [verbatim(value) for value in body]
    return body


# Argument types: plain lists, numpy arrays or the service's own models all serialise.
MatrixLike = Sequence[Sequence[float]] | np.ndarray
VectorLike = Sequence[float] | np.ndarray
TargetsLike = Sequence[Sequence[float]] | Sequence[int] | np.ndarray
NetworkLike = Mapping[str, Any] | BaseModel
LossName = Literal["binary_cross_entropy", "cross_entropy", "mse"]
Reduction = Literal["mean", "sum"]
# /v1/graph's answer: the graph as data, as Graphviz DOT text, or as an SVG picture; asked for by Accept.
GraphFormat = Literal["json", "dot", "svg"]
GRAPH_MEDIA_TYPES: dict[str, str] = {"json": JSON, "dot": DOT, "svg": SVG}

# Each endpoint's path and answer model (None: the text of an SVG document), for ``send``.
# Each endpoint's path and what it answers: a response model, or str (an SVG picture).
ENDPOINTS: dict[str, tuple[str, type[Any]]] = {
    "forward": ("/v1/forward", ForwardResponse),
    "loss": ("/v1/loss", LossResponse),
    "gradients": ("/v1/gradients", GradientsResponse),
    "gradcheck": ("/v1/gradcheck", GradcheckResponse),
    "explain": ("/v1/explain", ExplainResponse),
    "train": ("/v1/train", TrainResponse),
    "train_plot": ("/v1/train/plot", str),
    "diagram": ("/v1/diagram", str),
    "check": ("/v1/check", CheckResponse),
    "graph": ("/v1/graph", GraphResponse),
}

_LOSS_FIELDS = tuple(LossRequest.model_fields)
_TRAIN_FIELDS = tuple(TrainRequest.model_fields)
_CHECK_FIELDS = tuple(CheckRequest.model_fields)


def _loss_fields(arguments: Mapping[str, Any]) -> dict[str, Any]:
    return {name: arguments[name] for name in _LOSS_FIELDS if name in arguments}  # dtype: not yet a method argument


def _train_fields(arguments: Mapping[str, Any]) -> dict[str, Any]:
    return {name: arguments[name] for name in _TRAIN_FIELDS if name in arguments}  # dtype: not yet a method argument


def _check_fields(arguments: Mapping[str, Any]) -> dict[str, Any]:
    return {name: arguments[name] for name in _CHECK_FIELDS if name in arguments}  # dtype: not yet a method argument


def _graph_request(arguments: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str], type[Any]]:
    """The body, headers and answer type of a ``graph`` call: ``sample`` None is sent as null (every
    sample), not left out; ``format`` is the Accept header."""
    sample = arguments["sample"]
    body = _fields(**_loss_fields(arguments), sample=NULL if sample is None else sample, labels=arguments["labels"])
    form = arguments["format"]
    return body, {"Accept": GRAPH_MEDIA_TYPES[form]}, GraphResponse if form == "json" else str


def _fields(**fields: Any) -> dict[str, Any]:
    """The body: the given fields, leaving out those not given (None), so the service's defaults apply."""
    return {name: value for name, value in fields.items() if value is not None}


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


def _parse(response: httpx.Response, model: type[R]) -> R:
    """The answer as ``model``: a response model, ``str`` (an SVG picture) or ``dict`` (any JSON object)."""
    if response.status_code >= 400:
        raise _error(response)
    if model is str:
        return cast(R, response.text)
    if model is dict:
        answer = response.json()
        if not isinstance(answer, dict):
            raise ServiceError(response.status_code, [], f"expected a JSON object, got {type(answer).__name__}")
        return cast(R, answer)
    assert issubclass(model, BaseModel), model
    return cast(R, model.model_validate_json(response.content))


def stream_item(line: str) -> TraceEntry | TrainSummary:
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

    def build(
        self, http: httpx.Client | httpx.AsyncClient, method: str, path: str, body: dict[str, Any] | None, headers: dict[str, str] | None
    ) -> httpx.Request:
        content = None if body is None else json.dumps(jsonable(body)).encode()
        return http.build_request(method, path, content=content, headers={"Content-Type": "application/json", **(headers or {})})

    def gave_up(self, method: str, path: str, failure: str, answered: bool) -> ServiceUnavailable:
        message = f"{method} {path} failed {self.retries + 1} times; last: {failure}"
        return ServiceUnavailable(message, failure, unreachable=not answered)


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
        seconds = (when - datetime.datetime.now(datetime.UTC)).total_seconds()
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

    def _send(
        self, method: str, path: str, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None, stream: bool = False
    ) -> httpx.Response:
        request = self._options.build(self._http, method, path, body, headers)
        failure, answered = "", False
        for attempt in range(self._options.retries + 1):
            response: httpx.Response | None = None
            try:
                response = self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                failure = f"{type(exc).__name__}: {exc}"
            else:
                if (reason := _retry_reason(response)) is None:
                    return response
                failure, answered = reason, True
                response.close()
            if attempt < self._options.retries:
                time.sleep(self._options.delay(attempt, response))
        raise self._options.gave_up(method, path, failure, answered)

    def _post(self, path: str, body: dict[str, Any], model: type[R], headers: dict[str, str] | None = None) -> R:
        return _parse(self._send("POST", path, body, headers), model)

    def send(self, endpoint: str, body: Mapping[str, Any], *, stream: bool = False, format: GraphFormat = "json") -> Any:
        """A body as it is (e.g. read from a file) to ``/v1/{endpoint}``, answered as the typed method
        of that endpoint answers (``stream`` for ``train``, ``format`` for ``graph``); unknown fields are
        the service's 422."""
        path, model = ENDPOINTS[endpoint]
        sent = verbatim(body)
        if stream:
            return self._stream(sent)
        if format != "json":
            return self._post(path, sent, str, {"Accept": GRAPH_MEDIA_TYPES[format]})
        return self._post(path, sent, model)

    def forward(self, *, network: NetworkLike, inputs: MatrixLike) -> ForwardResponse:
        """Every layer's pre-activation and activation for ``inputs`` ``[batch][in]``."""
        return self._post("/v1/forward", _fields(network=network, inputs=inputs), ForwardResponse)

    def loss(
        self,
        *,
        network: NetworkLike,
        inputs: MatrixLike,
        targets: TargetsLike,
        loss: LossName,
        reduction: Reduction | None = None,
        label_smoothing: float | None = None,
        class_weights: VectorLike | None = None,
    ) -> LossResponse:
        """The loss of ``network`` on ``inputs`` against ``targets`` ``[batch][out]``; ``reduction``
        ``mean`` (the service's default) or ``sum``; ``label_smoothing`` and ``class_weights`` for
        ``cross_entropy``, as in ``torch.nn.functional.cross_entropy``."""
        return self._post("/v1/loss", _fields(**_loss_fields(locals())), LossResponse)

    def gradients(
        self,
        *,
        network: NetworkLike,
        inputs: MatrixLike,
        targets: TargetsLike,
        loss: LossName,
        reduction: Reduction | None = None,
        label_smoothing: float | None = None,
        class_weights: VectorLike | None = None,
    ) -> GradientsResponse:
        """As ``loss``, plus dLoss/dparameter for every layer's weights and biases."""
        return self._post("/v1/gradients", _fields(**_loss_fields(locals())), GradientsResponse)

    def gradcheck(
        self,
        *,
        network: NetworkLike,
        inputs: MatrixLike,
        targets: TargetsLike,
        loss: LossName,
        reduction: Reduction | None = None,
        label_smoothing: float | None = None,
        class_weights: VectorLike | None = None,
        epsilon: float | None = None,
        atol: float | None = None,
        rtol: float | None = None,
    ) -> GradcheckResponse:
        """Backprop's gradients against central differences of step ``epsilon``, judged as
        ``torch.autograd.gradcheck`` does with ``atol`` and ``rtol`` (defaults: the service's)."""
        fields = _loss_fields(locals()) | {"epsilon": epsilon, "atol": atol, "rtol": rtol}
        return self._post("/v1/gradcheck", _fields(**fields), GradcheckResponse)

    def explain(
        self,
        *,
        network: NetworkLike,
        inputs: MatrixLike,
        targets: TargetsLike,
        loss: LossName,
        parameter: Mapping[str, Any],
        reduction: Reduction | None = None,
        label_smoothing: float | None = None,
        class_weights: VectorLike | None = None,
    ) -> ExplainResponse:
        """The chain rule for one ``parameter`` (``{"layer": k, "kind": "weights", "index": [j, i]}``
        or ``{"layer": k, "kind": "biases", "index": [j]}``), sample by sample."""
        fields = _loss_fields(locals()) | {"parameter": parameter}
        return self._post("/v1/explain", _fields(**fields), ExplainResponse)

    def check(
        self,
        *,
        network: NetworkLike,
        inputs: MatrixLike,
        targets: TargetsLike,
        loss: LossName,
        claimed: Mapping[str, Any] | BaseModel,
        reduction: Reduction | None = None,
        label_smoothing: float | None = None,
        class_weights: VectorLike | None = None,
        optimizer: Mapping[str, Any] | None = None,
        iterations: int | None = None,
        trainable: Sequence[Mapping[str, Any] | None] | None = None,
        tolerance: Mapping[str, float] | None = None,
        points: Mapping[str, float] | None = None,
        carry_forward: bool | None = None,
    ) -> CheckResponse:
        """A learner's ``claimed`` numbers checked against the problem (as ``gradients`` takes it; with
        ``optimizer`` and ``iterations``, a training as ``train`` takes it): each claimed array correct,
        consistent with the learner's own earlier numbers, scored with ``points``, and the known mistakes
        that reproduce the wrong ones. ``claimed`` is ``{"layers": [{"pre_activation", "activation",
        "delta"}, ...], "output", "loss", "gradients": [{"weights", "biases"}, ...]}`` (with training,
        ``{"iterations": [{"iteration": 1, ..., "network": {"layers": [...]}}]}``), None for a number not
        worked out; ``tolerance`` is ``{"rtol", "atol"}``."""
        return self._post("/v1/check", _fields(**_check_fields(locals())), CheckResponse)

    @overload
    def graph(
        self,
        *,
        network: NetworkLike,
        inputs: MatrixLike,
        targets: TargetsLike,
        loss: LossName,
        reduction: Reduction | None = None,
        label_smoothing: float | None = None,
        class_weights: VectorLike | None = None,
        sample: int | None = 0,
        labels: Mapping[str, str] | None = None,
        format: Literal["json"] = "json",
    ) -> GraphResponse: ...

    @overload
    def graph(
        self,
        *,
        network: NetworkLike,
        inputs: MatrixLike,
        targets: TargetsLike,
        loss: LossName,
        reduction: Reduction | None = None,
        label_smoothing: float | None = None,
        class_weights: VectorLike | None = None,
        sample: int | None = 0,
        labels: Mapping[str, str] | None = None,
        format: Literal["dot", "svg"],
    ) -> str: ...

    def graph(
        self,
        *,
        network: NetworkLike,
        inputs: MatrixLike,
        targets: TargetsLike,
        loss: LossName,
        reduction: Reduction | None = None,
        label_smoothing: float | None = None,
        class_weights: VectorLike | None = None,
        sample: int | None = 0,
        labels: Mapping[str, str] | None = None,
        format: GraphFormat = "json",
    ) -> GraphResponse | str:
        """The scalar computation graph of the loss (as ``loss`` takes the problem) for one ``sample`` (its
        row; None: every sample of a small batch): every node's value and grad dLoss/dnode, every edge's
        local derivative. ``labels`` name nodes for the picture (``{"inputs[0][0]": "x1", "loss": "CE"}``).
        ``format`` ``"json"``: a GraphResponse; ``"dot"``: Graphviz DOT text; ``"svg"``: the picture laid
        out by the server's Graphviz (a ServiceError with status 501 when it has none)."""
        body, headers, model = _graph_request(locals())
        answer: GraphResponse | str = self._post("/v1/graph", body, model, headers)
        return answer

    def diagram(
        self,
        *,
        network: NetworkLike,
        inputs: MatrixLike | None = None,
        targets: TargetsLike | None = None,
        loss: LossName | None = None,
        reduction: Reduction | None = None,
    ) -> str:
        """The network drawn as an SVG document; labelled with activations given ``inputs``, and
        with gradients given ``targets`` and ``loss`` too."""
        fields = {"network": network, "inputs": inputs, "targets": targets, "loss": loss, "reduction": reduction}
        return self._post("/v1/diagram", _fields(**fields), str)

    def train_plot(
        self,
        *,
        network: NetworkLike,
        inputs: MatrixLike,
        targets: TargetsLike,
        loss: LossName,
        optimizer: Mapping[str, Any],
        iterations: int,
        reduction: Reduction | None = None,
        label_smoothing: float | None = None,
        class_weights: VectorLike | None = None,
        record_every: int | None = None,
        record: Sequence[str] | None = None,
        trainable: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> str:
        """As ``train``: the loss curve of the recorded iterations, an SVG document."""
        return self._post("/v1/train/plot", _fields(**_train_fields(locals())), str)

    def train(
        self,
        *,
        network: NetworkLike,
        inputs: MatrixLike,
        targets: TargetsLike,
        loss: LossName,
        optimizer: Mapping[str, Any],
        iterations: int,
        reduction: Reduction | None = None,
        label_smoothing: float | None = None,
        class_weights: VectorLike | None = None,
        record_every: int | None = None,
        record: Sequence[str] | None = None,
        trainable: Sequence[Mapping[str, Any] | None] | None = None,
        stream: bool = False,
    ) -> Any:
        """Train with ``optimizer`` (``{"name": "sgd", "learning_rate": 0.5, ...}`` or ``{"name": "adam", ...}``)
        for ``iterations`` full-batch steps, recording every ``record_every``-th iteration's loss and the
        ``record``-ed extras (``"output"``, ``"gradients"``, ``"network"``); ``trainable`` masks freeze
        parameters. The whole TrainResponse; with ``stream``, an iterator of TraceEntry as they are
        computed, then one TrainSummary."""
        body = _fields(**_train_fields(locals()))
        return self._stream(body) if stream else self._post("/v1/train", body, TrainResponse)

    def _stream(self, body: dict[str, Any]) -> Iterator[TraceEntry | TrainSummary]:
        response = self._send("POST", "/v1/train", body, headers={"Accept": NDJSON}, stream=True)
        try:
            if response.status_code >= 400:
                response.read()
                raise _error(response)
            for line in response.iter_lines():
                if line:
                    yield stream_item(line)
        finally:
            response.close()

    def examples(self) -> ExampleList:
        return _parse(self._send("GET", "/v1/examples"), ExampleList)

    def example(self, name: str, endpoint: str = "train") -> dict[str, Any]:
        """The named example's ready-to-post body for ``endpoint`` (forward, loss, gradients, gradcheck,
        explain, train, train_plot, diagram, check or graph; by default the /v1/train body)."""
        from urllib.parse import quote, urlencode

        query = "" if endpoint == "train" else "?" + urlencode({"for": endpoint})
        return _parse(self._send("GET", f"/v1/examples/{quote(name, safe='')}{query}"), dict)

    def health(self) -> dict[str, Any]:
        return _parse(self._send("GET", "/healthz"), dict)


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

    async def _send(
        self, method: str, path: str, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None, stream: bool = False
    ) -> httpx.Response:
        request = self._options.build(self._http, method, path, body, headers)
        failure, answered = "", False
        for attempt in range(self._options.retries + 1):
            response: httpx.Response | None = None
            try:
                response = await self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                failure = f"{type(exc).__name__}: {exc}"
            else:
                if (reason := _retry_reason(response)) is None:
                    return response
                failure, answered = reason, True
                await response.aclose()
            if attempt < self._options.retries:
                await asyncio.sleep(self._options.delay(attempt, response))
        raise self._options.gave_up(method, path, failure, answered)

    async def _post(self, path: str, body: dict[str, Any], model: type[R], headers: dict[str, str] | None = None) -> R:
        return _parse(await self._send("POST", path, body, headers), model)

    async def send(self, endpoint: str, body: Mapping[str, Any], *, stream: bool = False, format: GraphFormat = "json") -> Any:
        """As BackpropClient.send; with ``stream``, the async iterator of ``train``'s stream."""
        path, model = ENDPOINTS[endpoint]
        sent = verbatim(body)
        if stream:
            return self._stream(sent)
        if format != "json":
            return await self._post(path, sent, str, {"Accept": GRAPH_MEDIA_TYPES[format]})
        return await self._post(path, sent, model)

    async def forward(self, *, network: NetworkLike, inputs: MatrixLike) -> ForwardResponse:
        """As BackpropClient.forward."""
        return await self._post("/v1/forward", _fields(network=network, inputs=inputs), ForwardResponse)

    async def loss(
        self,
        *,
        network: NetworkLike,
        inputs: MatrixLike,
        targets: TargetsLike,
        loss: LossName,
        reduction: Reduction | None = None,
        label_smoothing: float | None = None,
        class_weights: VectorLike | None = None,
    ) -> LossResponse:
        """As BackpropClient.loss."""
        return await self._post("/v1/loss", _fields(**_loss_fields(locals())), LossResponse)

    async def gradients(
        self,
        *,
        network: NetworkLike,
        inputs: MatrixLike,
        targets: TargetsLike,
        loss: LossName,
        reduction: Reduction | None = None,
        label_smoothing: float | None = None,
        class_weights: VectorLike | None = None,
    ) -> GradientsResponse:
        """As BackpropClient.gradients."""
        return await self._post("/v1/gradients", _fields(**_loss_fields(locals())), GradientsResponse)

    async def gradcheck(
        self,
        *,
        network: NetworkLike,
        inputs: MatrixLike,
        targets: TargetsLike,
        loss: LossName,
        reduction: Reduction | None = None,
        label_smoothing: float | None = None,
        class_weights: VectorLike | None = None,
        epsilon: float | None = None,
        atol: float | None = None,
        rtol: float | None = None,
    ) -> GradcheckResponse:
        """As BackpropClient.gradcheck."""
        fields = _loss_fields(locals()) | {"epsilon": epsilon, "atol": atol, "rtol": rtol}
        return await self._post("/v1/gradcheck", _fields(**fields), GradcheckResponse)

    async def explain(
        self,
        *,
        network: NetworkLike,
        inputs: MatrixLike,
        targets: TargetsLike,
        loss: LossName,
        parameter: Mapping[str, Any],
        reduction: Reduction | None = None,
        label_smoothing: float | None = None,
        class_weights: VectorLike | None = None,
    ) -> ExplainResponse:
        """As BackpropClient.explain."""
        fields = _loss_fields(locals()) | {"parameter": parameter}
        return await self._post("/v1/explain", _fields(**fields), ExplainResponse)

    async def check(
        self,
        *,
        network: NetworkLike,
        inputs: MatrixLike,
        targets: TargetsLike,
        loss: LossName,
        claimed: Mapping[str, Any] | BaseModel,
        reduction: Reduction | None = None,
        label_smoothing: float | None = None,
        class_weights: VectorLike | None = None,
        optimizer: Mapping[str, Any] | None = None,
        iterations: int | None = None,
        trainable: Sequence[Mapping[str, Any] | None] | None = None,
        tolerance: Mapping[str, float] | None = None,
        points: Mapping[str, float] | None = None,
        carry_forward: bool | None = None,
    ) -> CheckResponse:
        """As BackpropClient.check."""
        return await self._post("/v1/check", _fields(**_check_fields(locals())), CheckResponse)

    @overload
    async def graph(
        self,
        *,
        network: NetworkLike,
        inputs: MatrixLike,
        targets: TargetsLike,
        loss: LossName,
        reduction: Reduction | None = None,
        label_smoothing: float | None = None,
        class_weights: VectorLike | None = None,
        sample: int | None = 0,
        labels: Mapping[str, str] | None = None,
        format: Literal["json"] = "json",
    ) -> GraphResponse: ...

    @overload
    async def graph(
        self,
        *,
        network: NetworkLike,
        inputs: MatrixLike,
        targets: TargetsLike,
        loss: LossName,
        reduction: Reduction | None = None,
        label_smoothing: float | None = None,
        class_weights: VectorLike | None = None,
        sample: int | None = 0,
        labels: Mapping[str, str] | None = None,
        format: Literal["dot", "svg"],
    ) -> str: ...

    async def graph(
        self,
        *,
        network: NetworkLike,
        inputs: MatrixLike,
        targets: TargetsLike,
        loss: LossName,
        reduction: Reduction | None = None,
        label_smoothing: float | None = None,
        class_weights: VectorLike | None = None,
        sample: int | None = 0,
        labels: Mapping[str, str] | None = None,
        format: GraphFormat = "json",
    ) -> GraphResponse | str:
        """As BackpropClient.graph."""
        body, headers, model = _graph_request(locals())
        answer: GraphResponse | str = await self._post("/v1/graph", body, model, headers)
        return answer

    async def diagram(
        self,
        *,
        network: NetworkLike,
        inputs: MatrixLike | None = None,
        targets: TargetsLike | None = None,
        loss: LossName | None = None,
        reduction: Reduction | None = None,
    ) -> str:
        """As BackpropClient.diagram."""
        fields = {"network": network, "inputs": inputs, "targets": targets, "loss": loss, "reduction": reduction}
        return await self._post("/v1/diagram", _fields(**fields), str)

    async def train_plot(
        self,
        *,
        network: NetworkLike,
        inputs: MatrixLike,
        targets: TargetsLike,
        loss: LossName,
        optimizer: Mapping[str, Any],
        iterations: int,
        reduction: Reduction | None = None,
        label_smoothing: float | None = None,
        class_weights: VectorLike | None = None,
        record_every: int | None = None,
        record: Sequence[str] | None = None,
        trainable: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> str:
        """As BackpropClient.train_plot."""
        return await self._post("/v1/train/plot", _fields(**_train_fields(locals())), str)

    async def train(
        self,
        *,
        network: NetworkLike,
        inputs: MatrixLike,
        targets: TargetsLike,
        loss: LossName,
        optimizer: Mapping[str, Any],
        iterations: int,
        reduction: Reduction | None = None,
        label_smoothing: float | None = None,
        class_weights: VectorLike | None = None,
        record_every: int | None = None,
        record: Sequence[str] | None = None,
        trainable: Sequence[Mapping[str, Any] | None] | None = None,
        stream: bool = False,
    ) -> Any:
        """As BackpropClient.train; with ``stream``, an async iterator (``async for item in await client.train(..., stream=True)``)."""
        body = _fields(**_train_fields(locals()))
        return self._stream(body) if stream else await self._post("/v1/train", body, TrainResponse)

    async def _stream(self, body: dict[str, Any]) -> AsyncIterator[TraceEntry | TrainSummary]:
        """TraceEntry items as they are computed, then one TrainSummary."""
        response = await self._send("POST", "/v1/train", body, headers={"Accept": NDJSON}, stream=True)
        try:
            if response.status_code >= 400:
                await response.aread()
                raise _error(response)
            async for line in response.aiter_lines():
                if line:
                    yield stream_item(line)
        finally:
            await response.aclose()

    async def examples(self) -> ExampleList:
        return _parse(await self._send("GET", "/v1/examples"), ExampleList)

    async def example(self, name: str, endpoint: str = "train") -> dict[str, Any]:
        """The named example's ready-to-post body for ``endpoint`` (by default the /v1/train body)."""
        from urllib.parse import quote, urlencode

        query = "" if endpoint == "train" else "?" + urlencode({"for": endpoint})
        return _parse(await self._send("GET", f"/v1/examples/{quote(name, safe='')}{query}"), dict)

    async def health(self) -> dict[str, Any]:
        return _parse(await self._send("GET", "/healthz"), dict)

"""A typed Python client for backprop-api, on httpx: ``BackpropClient`` and its async twin.

    from app.client import BackpropClient
    with BackpropClient("http://127.0.0.1:8000") as client:
        body = client.example("seed")
        result = client.gradients(**{k: body[k] for k in ("network", "inputs", "targets", "loss")})
        result.gradients[1].weights_array      # numpy view of dLoss/dW for layer 1
        for item in client.train(**body, stream=True):
            print(item)                        # TraceEntry ..., then TrainSummary

Arguments are the request body's fields, as plain lists, numpy arrays or the service's
own pydantic models; results are the service's response models. ``dtype="float32"`` computes as
torch's default dtype does (/v1/forward, /v1/loss, /v1/gradients, /v1/train).

``encoding="binary"`` (the client's, or any call's) sends the arrays as raw little-endian bytes, a
safetensors file, and takes the answer so: the response models then hold numpy arrays where JSON has
lists of numbers (no list of a million floats is built; ``as_lists`` makes the JSON encoding's model,
e.g. for ``model_dump_json``). ``send(endpoint, content)`` posts a safetensors file (bytes) as it is, and
``raw=True`` returns the answer's bytes (``safetensors.torch.load`` reads a trained state_dict from
them). Errors are JSON either way; ``train(stream=True)`` streams JSON lines either way.

    with BackpropClient(encoding="binary") as client:
        network = {"state_dict": model.state_dict(), "activations": ["tanh", "identity"]}  # torch's nn.Sequential
        grads = client.gradients(network=network, inputs=x, targets=y, loss="mse")
        grads.gradients[0].weights             # dLoss/dW of layer 0, a float64 numpy array

A 422 raises
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
import functools
import json
import math
import time
import types
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Annotated, Any, Literal, TypeVar, Union, cast, get_args, get_origin, overload

import httpx
import numpy as np
import pydantic_core
from numpy.typing import NDArray
from pydantic import BaseModel, TypeAdapter
from pydantic.fields import FieldInfo

from app.schemas.base import NumberArray
from app.schemas.media_types import DOT, JSON, NDJSON, SAFETENSORS, SVG
from app.schemas.requests import (
    CheckRequest,
    DiagramRequest,
    ExplainRequest,
    ForwardRequest,
    GradcheckRequest,
    GraphRequest,
    LossRequest,
    TrainRequest,
)
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
from app.schemas.safetensors import decode, encode, tensor_name, tensor_path, tensor_slot

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
    """Lists, numbers, dicts and strings from numpy arrays (and what converts to one, as a torch tensor),
    numpy scalars and pydantic models (NULL: null)."""
    if value is NULL:
        return None
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "__array__"):  # e.g. a CPU torch.Tensor
        return np.asarray(value).tolist()
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


# -- the binary encoding: safetensors bodies and answers ---------------------------------------

# How bodies and answers travel: JSON, or safetensors (the arrays as raw little-endian bytes, the rest as
# JSON in the header's __metadata__).
Encoding = Literal["json", "binary"]
# The __metadata__ keys that hold a request's other fields and an answer's.
REQUEST_KEY, RESPONSE_KEY = "request", "response"
_MOVED = object()
_NUMBERS = frozenset({int, float})
F64, F32 = np.dtype("<f8"), np.dtype("<f4")


def encode_request(body: Mapping[str, Any], model: type[BaseModel]) -> bytes:
    """``body`` (a request for ``model``, e.g. LossRequest; as the typed methods take it: lists, numpy arrays,
    pydantic models) as a safetensors file. Each array of numbers where ``model`` wants one (weights, biases,
    inputs, targets' rows, a state_dict's tensors) is a tensor named by its path (``inputs``,
    ``network.layers.0.weights``; a top-level network's state_dict keys by their own names, ``0.weight``):
    float32 arrays as F32, any other numbers as F64. The rest (class-index targets, the loss's name, a
    ragged matrix, ...) is JSON in ``__metadata__["request"]``."""
    tensors: dict[str, NDArray[np.floating[Any]]] = {}
    rest = _split(_plain(body), model, (), (), tensors)
    return encode(tensors, {REQUEST_KEY: json.dumps(rest)})


def decode_request(content: bytes) -> dict[str, Any]:
    """A safetensors request body as the JSON body it stands for, its tensors numpy arrays at their paths
    (the inverse of ``encode_request``; e.g. a file written by ``safetensors.torch.save_file(tensors,
    path, metadata={"request": json.dumps(fields)})``)."""
    return _merged(content, REQUEST_KEY)


def decode_answer(content: bytes, model: type[M]) -> M:
    """A safetensors answer as ``model`` (e.g. GradientsResponse), holding its arrays as numpy arrays where
    the JSON answer has lists of numbers (float64; float32 for a float32 computation); a network in it
    (NetworkSpec) is validated as a request's is, its arrays float64. No list of floats is made:
    ``as_lists`` gives the JSON encoding's model."""
    return _built(model, _merged(content, RESPONSE_KEY))


def as_lists(model: M) -> M:
    """``model`` with lists where it holds numpy arrays: the same model the JSON encoding answers (what
    ``model_dump_json`` needs). For ``dtype`` float32 the numbers are the same float32 values, each as the
    float64 it exactly is, where the JSON answer writes float32's shortest form (``0.70103073`` for
    ``0.7010307312011719``): equal once read back as float32."""
    return type(model).model_validate(_listed(model.model_dump(exclude_unset=True, by_alias=True, warnings=False)))


def _plain(value: Any) -> Any:
    """``value`` as JSON values (as ``jsonable`` makes them), numpy arrays kept."""
    if value is NULL:
        return None
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "__array__"):  # e.g. a CPU torch.Tensor
        return np.asarray(value)
    if isinstance(value, BaseModel):
        return _plain(value.model_dump(exclude_unset=True))  # Python mode: the arrays a model holds stay arrays
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return list(value) if all(type(v) in _NUMBERS for v in value) else [_plain(v) for v in value]
    return value


def _split(value: Any, annotation: Any, metadata: Sequence[Any], path: tuple[str | int, ...], tensors: dict[str, Any]) -> Any:
    """``value`` (at ``path``, of type ``annotation``) with each array of numbers where the type wants one
    moved into ``tensors``: ``_MOVED`` when it is one."""
    if (depths := _array_depths(annotation, metadata)) and (array := _number_array(value)) is not None and array.ndim in depths:
        tensors[tensor_name(path)] = array
        return _MOVED
    members = _members(annotation)
    if isinstance(value, dict):
        models = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
        model = next((m for m in models if set(value) <= set(_fields_by_key(m))), models[0] if models else None)
        if model is not None:
            fields = _fields_by_key(model)
            kept = {
                k: _split(v, fields[k].annotation, fields[k].metadata, (*path, k), tensors) if k in fields else _listed(v)
                for k, v in value.items()
            }
        else:
            item = next((get_args(m)[1] for m in members if get_origin(m) is dict), None)
            kept = {k: _split(v, item, (), (*path, k), tensors) for k, v in value.items()}
        # An object whose every field became a tensor (a state_dict) is left out: the tensors make it.
        return {k: v for k, v in kept.items() if v is not _MOVED and not (v == {} and isinstance(value[k], dict) and value[k])}
    if isinstance(value, list):
        item = next((get_args(m)[0] for m in members if get_origin(m) is list), None)
        if item is not None and any(isinstance(v, dict) for v in value):
            return [None if (kept := _split(v, item, (), (*path, i), tensors)) is _MOVED else kept for i, v in enumerate(value)]
    return _listed(value)  # JSON: an array not wanted as one (class indices) as its numbers


def _number_array(value: Any) -> NDArray[np.floating[Any]] | None:
    """``value`` as a tensor when it is a non-empty array of numbers of 1 or 2 dimensions (a numpy array of
    numbers, a list of numbers, a list of equally long lists of numbers): float32 kept, else float64."""
    if isinstance(value, np.ndarray):
        if value.ndim not in (1, 2) or value.size == 0 or value.dtype.kind not in "fiu":
            return None
        return np.ascontiguousarray(value, dtype=F32 if value.dtype.kind == "f" and value.dtype.itemsize == 4 else F64)
    if not isinstance(value, list) or not value:
        return None
    if isinstance(value[0], list | np.ndarray):
        width = len(value[0])
        if not width or not all(_numbers(row) and len(row) == width for row in value):
            return None
    elif not _numbers(value):
        return None
    try:
        return np.array(value, dtype=F64)
    except (OverflowError, ValueError, TypeError):  # an integer past float64's range: left to the service to refuse
        return None


def _numbers(row: Any) -> bool:
    if isinstance(row, np.ndarray):
        return row.ndim == 1 and row.dtype.kind in "fiu"
    return isinstance(row, list) and {type(x) for x in row} <= _NUMBERS  # a bool is not a number here


def _members(annotation: Any) -> list[Any]:
    """The types ``annotation`` stands for: Annotated unwrapped, a union's members."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _members(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return [m for arg in get_args(annotation) for m in _members(arg)]
    return [annotation]


def _array_depths(annotation: Any, metadata: Sequence[Any] = ()) -> frozenset[int]:
    """The depths of the number arrays that the service parses as arrays at a place of type
    ``annotation`` (its NumberArray marks: a matrix 2, a row 1)."""
    depths = {m.depth for m in metadata if isinstance(m, NumberArray)}
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *more = get_args(annotation)
        depths |= _array_depths(base, more)
    elif origin is Union or origin is types.UnionType:
        for arg in get_args(annotation):
            depths |= _array_depths(arg)
    return frozenset(depths)


@functools.cache
def _fields_by_key(model: type[BaseModel]) -> dict[str, FieldInfo]:
    """A model's fields by the key a body gives them (their alias, else their name)."""
    return {field.alias or name: field for name, field in model.model_fields.items()}


def _merged(content: bytes, key: str) -> dict[str, Any]:
    """The JSON object in ``__metadata__[key]`` with each tensor (a writable copy) put at its path."""
    decoded = decode(content, max_header_bytes=1 << 62)  # no limit of its own: the whole body is here already
    text = decoded.metadata.get(key)
    try:
        tree = pydantic_core.from_json(text) if text is not None else {}  # bounded nesting, as the service reads it
    except ValueError as exc:
        raise ValueError(f"__metadata__.{key} is not JSON: {exc}") from None
    if not isinstance(tree, dict):
        raise ValueError(f"__metadata__.{key} must be a JSON object, not {type(tree).__name__}")
    for name, array in decoded.tensors.items():
        # The service's own reading of the names (app.schemas.safetensors.tensor_slot), so that --local and
        # the summaries read a file as the service does.
        parent, place = tensor_slot(tree, tensor_path(name), name)
        parent[place] = array.copy()
    return tree


def _built(model: type[M], data: Any) -> M:
    """``data`` (JSON values and numpy arrays) as ``model``, its arrays kept where the model wants floats."""
    if not _holds_array(data):
        return model.model_validate(data)
    if model.__pydantic_decorators__.model_validators:
        # A network: its own checks (and the layers of a state_dict) run; its number fields take float64 arrays as they are.
        return model.model_validate(_widened(data))
    fields = _fields_by_key(model)
    if not isinstance(data, dict) or not set(data) <= set(fields) or any(f.is_required() and k not in data for k, f in fields.items()):
        return model.model_validate(data)  # raises what the JSON encoding would
    return model.model_construct(**{k: _built_value(fields[k].annotation, v) for k, v in data.items()})


def _built_value(annotation: Any, value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value if value.ndim in _float_depths(annotation) else _adapter(annotation).validate_python(value.tolist())
    if _holds_array(value):
        for member in _members(annotation):
            if isinstance(value, dict) and isinstance(member, type) and issubclass(member, BaseModel):
                return _built(member, value)
            if isinstance(value, list) and get_origin(member) is list:
                return [_built_value(get_args(member)[0], v) for v in value]
            if isinstance(value, dict) and get_origin(member) is dict:
                return {k: _built_value(get_args(member)[1], v) for k, v in value.items()}
    return _adapter(annotation).validate_python(value)


def _float_depths(annotation: Any) -> frozenset[int]:
    """1 when ``annotation`` is a list of floats, 2 a list of lists of floats (a union: either)."""
    depths: set[int] = set()
    for member in _members(annotation):
        if get_origin(member) is list:
            item = get_args(member)[0]
            if _members(item) == [float]:
                depths.add(1)
            elif 1 in _float_depths(item):
                depths.add(2)
    return frozenset(depths)


_ADAPTERS: dict[int, tuple[Any, TypeAdapter[Any]]] = {}


def _adapter(annotation: Any) -> TypeAdapter[Any]:
    if (found := _ADAPTERS.get(id(annotation))) is None or found[0] is not annotation:
        found = _ADAPTERS[id(annotation)] = (annotation, TypeAdapter(annotation))
    return found[1]


def _holds_array(value: Any) -> bool:
    if isinstance(value, np.ndarray):
        return True
    if isinstance(value, dict):
        return any(_holds_array(v) for v in value.values())
    if isinstance(value, list):
        return any(isinstance(v, np.ndarray | dict | list) and _holds_array(v) for v in value)
    return False


def _widened(value: Any) -> Any:
    """``value`` with its float32 arrays as float64 (exactly)."""
    if isinstance(value, np.ndarray):
        return value.astype(np.float64) if value.dtype != np.float64 else value
    if isinstance(value, dict):
        return {k: _widened(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_widened(v) for v in value]
    return value


def _listed(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {k: _listed(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_listed(v) for v in value]
    return value


# What a call posts: the body's fields, or a safetensors file as it is.
Body = dict[str, Any] | bytes

# Argument types: plain lists, numpy arrays or the service's own models all serialise.
MatrixLike = Sequence[Sequence[float]] | np.ndarray
VectorLike = Sequence[float] | np.ndarray
TargetsLike = Sequence[Sequence[float]] | Sequence[int] | np.ndarray
NetworkLike = Mapping[str, Any] | BaseModel
LossName = Literal["binary_cross_entropy", "cross_entropy", "mse"]
Reduction = Literal["mean", "sum"]
# What the service computes in (float32: as torch's default dtype; /v1/forward, /v1/loss, /v1/gradients, /v1/train).
Dtype = Literal["float64", "float32"]
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

# Each endpoint's request model: where a binary body's tensors go (``encode_request``).
REQUEST_MODELS: dict[str, type[BaseModel]] = {
    "forward": ForwardRequest,
    "loss": LossRequest,
    "gradients": LossRequest,
    "gradcheck": GradcheckRequest,
    "explain": ExplainRequest,
    "train": TrainRequest,
    "train_plot": TrainRequest,
    "diagram": DiagramRequest,
    "check": CheckRequest,
    "graph": GraphRequest,
}
_REQUEST_BY_PATH = {path: REQUEST_MODELS[name] for name, (path, _) in ENDPOINTS.items()}

_LOSS_FIELDS = tuple(LossRequest.model_fields)
_TRAIN_FIELDS = tuple(TrainRequest.model_fields)
_CHECK_FIELDS = tuple(CheckRequest.model_fields)


def _loss_fields(arguments: Mapping[str, Any]) -> dict[str, Any]:
    return {name: arguments[name] for name in _LOSS_FIELDS}


def _train_fields(arguments: Mapping[str, Any]) -> dict[str, Any]:
    return {name: arguments[name] for name in _TRAIN_FIELDS}


def _check_fields(arguments: Mapping[str, Any]) -> dict[str, Any]:
    return {name: arguments[name] for name in _CHECK_FIELDS}


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
    """The answer as ``model``: a response model (from JSON, or from safetensors holding numpy arrays),
    ``str`` (an SVG picture), ``dict`` (any JSON object) or ``bytes`` (the answer's body as it is)."""
    if response.status_code >= 400:
        raise _error(response)
    if model is bytes:
        return cast(R, response.content)
    if model is str:
        return cast(R, response.text)
    if _media_type(response) == SAFETENSORS:
        assert issubclass(model, BaseModel), model
        return cast(R, decode_answer(response.content, model))
    if model is dict:
        answer = response.json()
        if not isinstance(answer, dict):
            raise ServiceError(response.status_code, [], f"expected a JSON object, got {type(answer).__name__}")
        return cast(R, answer)
    assert issubclass(model, BaseModel), model
    return cast(R, model.model_validate_json(response.content))


def _media_type(response: httpx.Response) -> str:
    content_type: str = response.headers.get("content-type", "")
    return content_type.split(";", 1)[0].strip().lower()


# A binary answer is asked for before JSON: an endpoint whose answer has no arrays to speak of (/v1/graph)
# answers JSON.
BINARY_ACCEPT = f"{SAFETENSORS}, {JSON};q=0.5"


def _sending(
    options: _Options, endpoint: str, body: Mapping[str, Any] | bytes, format: GraphFormat, encoding: Encoding | None, raw: bool
) -> tuple[str, Body, type[Any], dict[str, str] | None]:
    """What ``send`` posts, for both clients: the path, the body (bytes as they are), what the answer is
    read as (the endpoint's model, a graph's text, or the raw bytes) and the headers that ask for it."""
    path, model = ENDPOINTS[endpoint]
    sent = body if isinstance(body, bytes) else verbatim(body)
    if format != "json":
        return path, sent, str, {"Accept": GRAPH_MEDIA_TYPES[format]}
    if raw:
        return path, sent, bytes, None if options.binary(encoding) else {"Accept": JSON}
    return path, sent, model, None


def _accepting(binary: bool, model: type[Any], headers: dict[str, str] | None) -> dict[str, str] | None:
    """``headers`` with an Accept that prefers safetensors when the answer is wanted binary and is a
    response model (or the answer's bytes), and no other Accept is given."""
    if binary and (model is bytes or issubclass(model, BaseModel)) and "Accept" not in (headers or {}):
        return {**(headers or {}), "Accept": BINARY_ACCEPT}
    return headers


def stream_item(line: str) -> TraceEntry | TrainSummary:
    data = json.loads(line)
    return TrainSummary.model_validate(data) if "status" in data else TraceEntry.model_validate(data)


class _Options:
    """Connection options and the retry policy both clients share."""

    def __init__(self, base_url: str, timeout: float, retries: int, backoff: float, encoding: Encoding) -> None:
        if encoding not in ("json", "binary"):
            raise ValueError(f"encoding must be 'json' or 'binary', not {encoding!r}")
        self.base_url, self.timeout, self.retries, self.backoff = base_url.rstrip("/"), timeout, retries, backoff
        self.encoding = encoding

    def binary(self, encoding: Encoding | None) -> bool:
        """Whether a call with ``encoding`` (None: the client's) travels as safetensors."""
        chosen = self.encoding if encoding is None else encoding
        if chosen not in ("json", "binary"):
            raise ValueError(f"encoding must be 'json' or 'binary', not {chosen!r}")
        return chosen == "binary"

    def delay(self, attempt: int, response: httpx.Response | None = None) -> float:
        """Seconds before the next attempt: the answer's ``Retry-After`` when it gives one (a 503 from
        an overloaded worker says when it expects room), else ``backoff * 2**attempt``."""
        after = _retry_after(response.headers.get("retry-after")) if response is not None else None
        return after if after is not None else self.backoff * 2**attempt

    def build(
        self,
        http: httpx.Client | httpx.AsyncClient,
        method: str,
        path: str,
        body: Body | None,
        headers: dict[str, str] | None,
        binary: bool = False,
    ) -> httpx.Request:
        """The request: a JSON body; with ``binary``, a safetensors body (``encode_request``); bytes as they are
        (a safetensors file)."""
        content_type = JSON
        if body is None:
            content = None
        elif isinstance(body, bytes):
            content, content_type = body, SAFETENSORS
        elif binary:
            content, content_type = encode_request(body, _REQUEST_BY_PATH[path]), SAFETENSORS
        else:
            content = json.dumps(jsonable(body)).encode()
        return http.build_request(method, path, content=content, headers={"Content-Type": content_type, **(headers or {})})

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
    """Synchronous client; ``retries`` extra attempts after the first, waiting ``backoff * 2**n`` seconds;
    ``encoding`` how bodies and answers travel (``"json"``, or ``"binary"``: safetensors), which each call's
    ``encoding`` overrides."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        timeout: float = 60.0,
        retries: int = 3,
        backoff: float = 0.25,
        transport: httpx.BaseTransport | None = None,
        encoding: Encoding = "json",
    ) -> None:
        self._options = _Options(base_url, timeout, retries, backoff, encoding)
        self._http = httpx.Client(base_url=self._options.base_url, timeout=timeout, transport=transport)

    def __enter__(self) -> BackpropClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(
        self,
        method: str,
        path: str,
        body: Body | None = None,
        headers: dict[str, str] | None = None,
        stream: bool = False,
        binary: bool = False,
    ) -> httpx.Response:
        request = self._options.build(self._http, method, path, body, headers, binary)
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

    def _post(self, path: str, body: Body, model: type[R], headers: dict[str, str] | None = None, encoding: Encoding | None = None) -> R:
        binary = self._options.binary(encoding)
        return _parse(self._send("POST", path, body, _accepting(binary, model, headers), binary=binary), model)

    def send(
        self,
        endpoint: str,
        body: Mapping[str, Any] | bytes,
        *,
        stream: bool = False,
        format: GraphFormat = "json",
        encoding: Encoding | None = None,
        raw: bool = False,
    ) -> Any:
        """A body as it is (e.g. read from a file; bytes: a safetensors file, sent as it is) to
        ``/v1/{endpoint}``, answered as the typed method of that endpoint answers (``stream`` for ``train``,
        ``format`` for ``graph``); unknown fields are the service's 422. ``raw``: the answer's body as bytes
        (with ``encoding="binary"`` a safetensors file, for ``decode_answer`` or torch)."""
        path, sent, answer, headers = _sending(self._options, endpoint, body, format, encoding, raw)
        if stream:
            return self._stream(sent, encoding)
        return self._post(path, sent, answer, headers, encoding)

    def forward(
        self, *, network: NetworkLike, inputs: MatrixLike, dtype: Dtype | None = None, encoding: Encoding | None = None
    ) -> ForwardResponse:
        """Every layer's pre-activation and activation for ``inputs`` ``[batch][in]``."""
        return self._post("/v1/forward", _fields(network=network, inputs=inputs, dtype=dtype), ForwardResponse, encoding=encoding)

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
        dtype: Dtype | None = None,
        encoding: Encoding | None = None,
    ) -> LossResponse:
        """The loss of ``network`` on ``inputs`` against ``targets`` ``[batch][out]``; ``reduction``
        ``mean`` (the service's default) or ``sum``; ``label_smoothing`` and ``class_weights`` for
        ``cross_entropy``, as in ``torch.nn.functional.cross_entropy``."""
        return self._post("/v1/loss", _fields(**_loss_fields(locals())), LossResponse, encoding=encoding)

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
        dtype: Dtype | None = None,
        encoding: Encoding | None = None,
    ) -> GradientsResponse:
        """As ``loss``, plus dLoss/dparameter for every layer's weights and biases."""
        return self._post("/v1/gradients", _fields(**_loss_fields(locals())), GradientsResponse, encoding=encoding)

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
        dtype: Dtype | None = None,
        epsilon: float | None = None,
        atol: float | None = None,
        rtol: float | None = None,
        encoding: Encoding | None = None,
    ) -> GradcheckResponse:
        """Backprop's gradients against central differences of step ``epsilon``, judged as
        ``torch.autograd.gradcheck`` does with ``atol`` and ``rtol`` (defaults: the service's)."""
        fields = _loss_fields(locals()) | {"epsilon": epsilon, "atol": atol, "rtol": rtol}
        return self._post("/v1/gradcheck", _fields(**fields), GradcheckResponse, encoding=encoding)

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
        dtype: Dtype | None = None,
        encoding: Encoding | None = None,
    ) -> ExplainResponse:
        """The chain rule for one ``parameter`` (``{"layer": k, "kind": "weights", "index": [j, i]}``
        or ``{"layer": k, "kind": "biases", "index": [j]}``), sample by sample."""
        fields = _loss_fields(locals()) | {"parameter": parameter}
        return self._post("/v1/explain", _fields(**fields), ExplainResponse, encoding=encoding)

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
        dtype: Dtype | None = None,
        optimizer: Mapping[str, Any] | None = None,
        iterations: int | None = None,
        trainable: Sequence[Mapping[str, Any] | None] | None = None,
        tolerance: Mapping[str, float] | None = None,
        points: Mapping[str, float] | None = None,
        carry_forward: bool | None = None,
        encoding: Encoding | None = None,
    ) -> CheckResponse:
        """A learner's ``claimed`` numbers checked against the problem (as ``gradients`` takes it; with
        ``optimizer`` and ``iterations``, a training as ``train`` takes it): each claimed array correct,
        consistent with the learner's own earlier numbers, scored with ``points``, and the known mistakes
        that reproduce the wrong ones. ``claimed`` is ``{"layers": [{"pre_activation", "activation",
        "delta"}, ...], "output", "loss", "gradients": [{"weights", "biases"}, ...]}`` (with training,
        ``{"iterations": [{"iteration": 1, ..., "network": {"layers": [...]}}]}``), None for a number not
        worked out; ``tolerance`` is ``{"rtol", "atol"}``."""
        return self._post("/v1/check", _fields(**_check_fields(locals())), CheckResponse, encoding=encoding)

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
        dtype: Dtype | None = None,
        sample: int | None = 0,
        labels: Mapping[str, str] | None = None,
        format: Literal["json"] = "json",
        encoding: Encoding | None = None,
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
        dtype: Dtype | None = None,
        sample: int | None = 0,
        labels: Mapping[str, str] | None = None,
        format: Literal["dot", "svg"],
        encoding: Encoding | None = None,
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
        dtype: Dtype | None = None,
        sample: int | None = 0,
        labels: Mapping[str, str] | None = None,
        format: GraphFormat = "json",
        encoding: Encoding | None = None,
    ) -> GraphResponse | str:
        """The scalar computation graph of the loss (as ``loss`` takes the problem) for one ``sample`` (its
        row; None: every sample of a small batch): every node's value and grad dLoss/dnode, every edge's
        local derivative. ``labels`` name nodes for the picture (``{"inputs[0][0]": "x1", "loss": "CE"}``).
        ``format`` ``"json"``: a GraphResponse; ``"dot"``: Graphviz DOT text; ``"svg"``: the picture laid
        out by the server's Graphviz (a ServiceError with status 501 when it has none)."""
        body, headers, model = _graph_request(locals())
        answer: GraphResponse | str = self._post("/v1/graph", body, model, headers, encoding)
        return answer

    def diagram(
        self,
        *,
        network: NetworkLike,
        inputs: MatrixLike | None = None,
        targets: TargetsLike | None = None,
        loss: LossName | None = None,
        reduction: Reduction | None = None,
        encoding: Encoding | None = None,
    ) -> str:
        """The network drawn as an SVG document; labelled with activations given ``inputs``, and
        with gradients given ``targets`` and ``loss`` too."""
        fields = {"network": network, "inputs": inputs, "targets": targets, "loss": loss, "reduction": reduction}
        return self._post("/v1/diagram", _fields(**fields), str, encoding=encoding)

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
        dtype: Dtype | None = None,
        record_every: int | None = None,
        record: Sequence[str] | None = None,
        trainable: Sequence[Mapping[str, Any] | None] | None = None,
        encoding: Encoding | None = None,
    ) -> str:
        """As ``train``: the loss curve of the recorded iterations, an SVG document."""
        return self._post("/v1/train/plot", _fields(**_train_fields(locals())), str, encoding=encoding)

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
        dtype: Dtype | None = None,
        record_every: int | None = None,
        record: Sequence[str] | None = None,
        trainable: Sequence[Mapping[str, Any] | None] | None = None,
        stream: bool = False,
        encoding: Encoding | None = None,
    ) -> Any:
        """Train with ``optimizer`` (``{"name": "sgd", "learning_rate": 0.5, ...}`` or ``{"name": "adam", ...}``)
        for ``iterations`` full-batch steps, recording every ``record_every``-th iteration's loss and the
        ``record``-ed extras (``"output"``, ``"gradients"``, ``"network"``); ``trainable`` masks freeze
        parameters. The whole TrainResponse; with ``stream``, an iterator of TraceEntry as they are
        computed, then one TrainSummary."""
        body = _fields(**_train_fields(locals()))
        return self._stream(body, encoding) if stream else self._post("/v1/train", body, TrainResponse, encoding=encoding)

    def _stream(self, body: Body, encoding: Encoding | None = None) -> Iterator[TraceEntry | TrainSummary]:
        # The stream's lines are JSON in either encoding; the body travels in the one chosen.
        binary = self._options.binary(encoding)
        response = self._send("POST", "/v1/train", body, headers={"Accept": NDJSON}, stream=True, binary=binary)
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
        encoding: Encoding = "json",
    ) -> None:
        self._options = _Options(base_url, timeout, retries, backoff, encoding)
        self._http = httpx.AsyncClient(base_url=self._options.base_url, timeout=timeout, transport=transport)

    async def __aenter__(self) -> AsyncBackpropClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(
        self,
        method: str,
        path: str,
        body: Body | None = None,
        headers: dict[str, str] | None = None,
        stream: bool = False,
        binary: bool = False,
    ) -> httpx.Response:
        request = self._options.build(self._http, method, path, body, headers, binary)
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

    async def _post(
        self, path: str, body: Body, model: type[R], headers: dict[str, str] | None = None, encoding: Encoding | None = None
    ) -> R:
        binary = self._options.binary(encoding)
        return _parse(await self._send("POST", path, body, _accepting(binary, model, headers), binary=binary), model)

    async def send(
        self,
        endpoint: str,
        body: Mapping[str, Any] | bytes,
        *,
        stream: bool = False,
        format: GraphFormat = "json",
        encoding: Encoding | None = None,
        raw: bool = False,
    ) -> Any:
        """As BackpropClient.send; with ``stream``, the async iterator of ``train``'s stream."""
        path, sent, answer, headers = _sending(self._options, endpoint, body, format, encoding, raw)
        if stream:
            return self._stream(sent, encoding)
        return await self._post(path, sent, answer, headers, encoding)

    async def forward(
        self, *, network: NetworkLike, inputs: MatrixLike, dtype: Dtype | None = None, encoding: Encoding | None = None
    ) -> ForwardResponse:
        """As BackpropClient.forward."""
        return await self._post("/v1/forward", _fields(network=network, inputs=inputs, dtype=dtype), ForwardResponse, encoding=encoding)

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
        dtype: Dtype | None = None,
        encoding: Encoding | None = None,
    ) -> LossResponse:
        """As BackpropClient.loss."""
        return await self._post("/v1/loss", _fields(**_loss_fields(locals())), LossResponse, encoding=encoding)

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
        dtype: Dtype | None = None,
        encoding: Encoding | None = None,
    ) -> GradientsResponse:
        """As BackpropClient.gradients."""
        return await self._post("/v1/gradients", _fields(**_loss_fields(locals())), GradientsResponse, encoding=encoding)

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
        dtype: Dtype | None = None,
        epsilon: float | None = None,
        atol: float | None = None,
        rtol: float | None = None,
        encoding: Encoding | None = None,
    ) -> GradcheckResponse:
        """As BackpropClient.gradcheck."""
        fields = _loss_fields(locals()) | {"epsilon": epsilon, "atol": atol, "rtol": rtol}
        return await self._post("/v1/gradcheck", _fields(**fields), GradcheckResponse, encoding=encoding)

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
        dtype: Dtype | None = None,
        encoding: Encoding | None = None,
    ) -> ExplainResponse:
        """As BackpropClient.explain."""
        fields = _loss_fields(locals()) | {"parameter": parameter}
        return await self._post("/v1/explain", _fields(**fields), ExplainResponse, encoding=encoding)

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
        dtype: Dtype | None = None,
        optimizer: Mapping[str, Any] | None = None,
        iterations: int | None = None,
        trainable: Sequence[Mapping[str, Any] | None] | None = None,
        tolerance: Mapping[str, float] | None = None,
        points: Mapping[str, float] | None = None,
        carry_forward: bool | None = None,
        encoding: Encoding | None = None,
    ) -> CheckResponse:
        """As BackpropClient.check."""
        return await self._post("/v1/check", _fields(**_check_fields(locals())), CheckResponse, encoding=encoding)

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
        dtype: Dtype | None = None,
        sample: int | None = 0,
        labels: Mapping[str, str] | None = None,
        format: Literal["json"] = "json",
        encoding: Encoding | None = None,
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
        dtype: Dtype | None = None,
        sample: int | None = 0,
        labels: Mapping[str, str] | None = None,
        format: Literal["dot", "svg"],
        encoding: Encoding | None = None,
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
        dtype: Dtype | None = None,
        sample: int | None = 0,
        labels: Mapping[str, str] | None = None,
        format: GraphFormat = "json",
        encoding: Encoding | None = None,
    ) -> GraphResponse | str:
        """As BackpropClient.graph."""
        body, headers, model = _graph_request(locals())
        answer: GraphResponse | str = await self._post("/v1/graph", body, model, headers, encoding)
        return answer

    async def diagram(
        self,
        *,
        network: NetworkLike,
        inputs: MatrixLike | None = None,
        targets: TargetsLike | None = None,
        loss: LossName | None = None,
        reduction: Reduction | None = None,
        encoding: Encoding | None = None,
    ) -> str:
        """As BackpropClient.diagram."""
        fields = {"network": network, "inputs": inputs, "targets": targets, "loss": loss, "reduction": reduction}
        return await self._post("/v1/diagram", _fields(**fields), str, encoding=encoding)

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
        dtype: Dtype | None = None,
        record_every: int | None = None,
        record: Sequence[str] | None = None,
        trainable: Sequence[Mapping[str, Any] | None] | None = None,
        encoding: Encoding | None = None,
    ) -> str:
        """As BackpropClient.train_plot."""
        return await self._post("/v1/train/plot", _fields(**_train_fields(locals())), str, encoding=encoding)

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
        dtype: Dtype | None = None,
        record_every: int | None = None,
        record: Sequence[str] | None = None,
        trainable: Sequence[Mapping[str, Any] | None] | None = None,
        stream: bool = False,
        encoding: Encoding | None = None,
    ) -> Any:
        """As BackpropClient.train; with ``stream``, an async iterator (``async for item in await client.train(..., stream=True)``)."""
        body = _fields(**_train_fields(locals()))
        return self._stream(body, encoding) if stream else await self._post("/v1/train", body, TrainResponse, encoding=encoding)

    async def _stream(self, body: Body, encoding: Encoding | None = None) -> AsyncIterator[TraceEntry | TrainSummary]:
        """TraceEntry items as they are computed, then one TrainSummary."""
        binary = self._options.binary(encoding)
        response = await self._send("POST", "/v1/train", body, headers={"Accept": NDJSON}, stream=True, binary=binary)
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

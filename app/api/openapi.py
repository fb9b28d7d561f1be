"""The OpenAPI spec: request bodies of routes that parse their body themselves (app.api.body), and
examples that are real answers.

Every request example is ``example_body(name, endpoint)``, the body ``GET /v1/examples/{name}?for=``
answers. Every response example is computed when the spec is built: the service answers the
requests of ``response_cases()`` through the same routes and error handlers as any request (only
the outer middleware, the access log and metrics of clients' requests, is left out), at the
settings' defaults whatever the environment says, so the committed spec is the same everywhere.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI
from fastapi.middleware.asyncexitstack import AsyncExitStackMiddleware
from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema
from starlette.middleware.exceptions import ExceptionMiddleware

from app.api.admission import Admission
from app.config import Settings
from app.examples import (
    BLOG,
    DEFAULT_ENDPOINT,
    ENDPOINTS,
    SEED,
    example_body,
    openapi_examples,
)
from app.schemas.media_types import SAFETENSORS

REF = "#/components/schemas/{model}"


def request_body(endpoint: str) -> dict[str, Any]:
    """``openapi_extra`` declaring ``endpoint``'s request model as the JSON body, with the named
    examples' bodies for it (seed first, so it prefills "Try it out")."""
    content = {"schema": {"$ref": REF.format(model=ENDPOINTS[endpoint].model.__name__)}, "examples": openapi_examples(endpoint)}
    return {
        "requestBody": {
            "required": True,
            "description": BINARY_BODY_DESCRIPTION,
            "content": {"application/json": content, SAFETENSORS: {"schema": {"type": "string", "format": "binary"}}},
        }
    }


BINARY_BODY_DESCRIPTION = (
    "JSON, or safetensors (`Content-Type: application/x-safetensors`): each array of numbers a tensor "
    "named by its path in the JSON body (`inputs`, `network.layers.0.weights`; a PyTorch state_dict key "
    "such as `0.weight` is the network's), F64 or F32, and `__metadata__.request` the other fields as JSON."
)


def default_settings() -> Settings:
    """The settings' own defaults, whatever the environment says (init arguments win over it)."""
    return Settings(**{name: field.get_default(call_default_factory=True) for name, field in Settings.model_fields.items()})


# -- response examples ---------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """A request whose answer is the ``key`` example of ``operation``'s ``status`` response."""

    method: str
    operation: str  # the path template in the spec
    status: int
    key: str
    summary: str
    path: str = ""  # the request's path, when not the template itself
    query: str = ""
    body: Any = None  # JSON, or bytes sent as they are
    content_type: str = "application/json"
    accept: str | None = None  # the Accept header, when the answer's media type is chosen by it

    @property
    def url(self) -> str:
        return (self.path or self.operation) + (f"?{self.query}" if self.query else "")


def _seed(endpoint: str, **changes: Any) -> dict[str, Any]:
    body = example_body(SEED.name, endpoint)
    body.update(copy.deepcopy(changes))
    return body


def _post_cases(endpoint: str, limits: Settings) -> list[Case]:
    e = ENDPOINTS[endpoint]
    seed = _seed(endpoint)

    def case(status: int, key: str, summary: str, body: Any, content_type: str = "application/json", accept: str | None = None) -> Case:
        return Case("POST", e.path, status, key, summary, body=body, content_type=content_type, accept=accept)

    cases = [] if e.svg else [case(200, "seed", SEED.titles[endpoint], seed)]
    if endpoint == "check":
        cases.append(case(200, BLOG.name, BLOG.titles[endpoint], example_body(BLOG.name, endpoint)))
    if endpoint == "graph":
        summary = "The blog post's network: its computation graph as Graphviz DOT (Accept: text/vnd.graphviz)"
        cases.append(case(200, "seed_dot", summary, seed, accept="text/vnd.graphviz"))
    layers = seed["network"]["layers"]
    if endpoint in ("train", "train_plot"):
        n = limits.max_iterations + 1
        summary = f"The seed body with iterations {n:,}: over BACKPROP_MAX_ITERATIONS (default {limits.max_iterations:,})"
        cases.append(case(413, "iterations", summary, _seed(endpoint, iterations=n)))
    elif endpoint == "check":
        n = limits.max_iterations + 1
        summary = f"A claim about iteration {n:,} of a training: over BACKPROP_MAX_ITERATIONS (default {limits.max_iterations:,})"
        training = {"optimizer": {"name": "sgd", "learning_rate": 0.5}, "iterations": n}
        claimed = {"iterations": [{"iteration": n, "loss": 0.3}]}
        cases.append(case(413, "iterations", summary, _seed(endpoint, **training, claimed=claimed)))
    elif endpoint == "graph":
        n = limits.max_graph_nodes // 10
        summary = (
            f"The seed network on {n:,} copies of its input, every sample drawn (sample null): over BACKPROP_MAX_GRAPH_NODES "
            f"(default {limits.max_graph_nodes:,})"
        )
        cases.append(case(413, "graph_nodes", summary, _seed(endpoint, inputs=[[0.7, 0.3]] * n, targets=[[1.0]] * n, sample=None)))
    elif endpoint == "diagram":
        n = limits.max_diagram_units + 1
        wide = [
            {**layers[0], "weights": [layers[0]["weights"][0]] * n, "biases": [0.0] * n},
            {**layers[1], "weights": [[layers[1]["weights"][0][0]] * n]},
        ]
        summary = f"The seed network with {n} hidden units: over BACKPROP_MAX_DIAGRAM_UNITS (default {limits.max_diagram_units})"
        cases.append(case(413, "diagram_units", summary, _seed(endpoint, network={"layers": wide})))
    else:
        n = limits.max_layers + 1
        deep = [layers[0]] * (n - 1) + [layers[1]]
        summary = f"The seed network, its hidden layer repeated to {n:,} layers: over BACKPROP_MAX_LAYERS (default {limits.max_layers:,})"
        cases.append(case(413, "layers", summary, _seed(endpoint, network={"layers": deep})))
    one_row = "The seed body with inputs [0.7, 0.3]: one sample must be a row, [[0.7, 0.3]]"
    cases.append(case(422, "inputs_1d", one_row, _seed(endpoint, inputs=[0.7, 0.3])))
    if endpoint == "forward":
        three = [[1.0, 2.0, 3.0]]
        cases.append(case(422, "inputs_width", "Three input values for a network with two inputs", _seed(endpoint, inputs=three)))
    elif endpoint == "explain":
        missing = {"layer": 1, "kind": "weights", "index": [0, 2]}
        summary = "A weight the network does not have: weights[0][2] of a layer with 2 inputs"
        cases.append(case(422, "parameter", summary, _seed(endpoint, parameter=missing)))
    elif endpoint in ("train", "train_plot"):
        optimizer = {"name": "sgd", "learning_rate": 0.5, "nesterov": True}
        cases.append(case(422, "nesterov", "Nesterov momentum asked for without momentum", _seed(endpoint, optimizer=optimizer)))
    elif endpoint == "check":
        column: dict[str, Any] = {"gradients": [None, {"weights": [[-0.1289], [-0.1528]]}]}
        summary = "Layer 1's weight gradients claimed as a column: they are a row, [1][2], as the layer's weights"
        cases.append(case(422, "claimed_shape", summary, _seed(endpoint, claimed=column)))
    elif endpoint == "graph":
        summary = "sample 1 of a batch of one sample"
        cases.append(case(422, "sample", summary, _seed(endpoint, sample=1)))
        summary = "An Accept the endpoint cannot answer in: text/html (it answers JSON, Graphviz DOT or SVG)"
        cases.append(case(406, "text_html", summary, seed, accept="text/html"))
    elif endpoint == "diagram":
        summary = "Targets to label gradients, but no loss to compute them with"
        cases.append(case(422, "targets_without_loss", summary, _seed(endpoint, loss=None)))
    else:
        summary = "cross_entropy on the seed's sigmoid output (it needs softmax)"
        cases.append(case(422, "loss", summary, _seed(endpoint, loss="cross_entropy")))
    text = json.dumps(seed).encode()
    cases.append(case(415, "text_plain", "The seed body sent as Content-Type: text/plain", text, "text/plain"))
    return cases


def response_cases(limits: Settings | None = None) -> list[Case]:
    """The requests whose answers are the spec's response examples, at ``limits`` (the defaults)."""
    limits = limits or default_settings()
    cases = [case for endpoint in ENDPOINTS for case in _post_cases(endpoint, limits)]
    listing, one = "/v1/examples", "/v1/examples/{name}"
    seed = f"/v1/examples/{SEED.name}"
    cases += [
        Case("GET", listing, 200, "examples", "The named examples and the endpoints each one has a body for"),
        Case("GET", one, 200, SEED.name, f"seed (for={DEFAULT_ENDPOINT}): {SEED.titles[DEFAULT_ENDPOINT]}", path=seed),
        Case(
            "GET",
            one,
            200,
            "seed_gradients",
            f"seed?for=gradients: {SEED.titles['gradients']}",
            path=seed,
            query=urlencode({"for": "gradients"}),
        ),
        Case("GET", one, 404, "unknown_name", "An example name that does not exist", path="/v1/examples/mnist"),
        Case("GET", one, 422, "unknown_endpoint", "A for= value that is not an endpoint", path=seed, query=urlencode({"for": "backward"})),
    ]
    return cases


async def _answer(app: Any, state: SimpleNamespace, case: Case) -> tuple[int, str, bytes]:
    sent = case.body if isinstance(case.body, bytes) or case.body is None else json.dumps(case.body).encode()
    path = case.path or case.operation
    headers = [(b"host", b"localhost")]
    if sent is not None:
        headers += [(b"content-type", case.content_type.encode()), (b"content-length", str(len(sent)).encode())]
    if case.accept is not None:
        headers.append((b"accept", case.accept.encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": case.method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": case.query.encode(),
        "root_path": "",
        "headers": headers,
        "client": None,
        "server": ("localhost", 80),
        "app": state,
        "state": {},
    }
    pending = [{"type": "http.request", "body": sent or b"", "more_body": False}]
    out: dict[str, Any] = {"status": 0, "body": b"", "type": "application/json"}

    async def receive() -> dict[str, Any]:
        if pending:
            return pending.pop()
        await asyncio.Event().wait()  # no disconnect: the caller waits for the whole answer
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
            out["type"] = dict(message.get("headers", [])).get(b"content-type", b"application/json").decode()
        elif message["type"] == "http.response.body":
            out["body"] += message.get("body", b"")

    await app(scope, receive, send)
    return out["status"], out["type"], out["body"]


def compute_answers(app: FastAPI, cases: Iterable[Case], settings: Settings) -> list[tuple[int, str, Any]]:
    """``app``'s answers (status, media type, JSON or text) to ``cases`` at ``settings``: its router and its exception
    handlers, as FastAPI stacks them, without the outer middleware (ComputeDispatch answers the
    same, tests/api/test_dispatch.py; the access log and request metrics are for clients' requests).
    An unexpected exception is raised, not answered.

    Run on an event loop of their own in a thread: the spec is built from inside the app's loop
    (``GET /openapi.json``) as well as outside any (``python scripts/export_openapi.py``).
    """
    handlers = {key: handler for key, handler in app.exception_handlers.items() if key not in (500, Exception)}
    asgi = ExceptionMiddleware(AsyncExitStackMiddleware(app.router), handlers=handlers)
    # What the endpoints read from request.app: these settings, and an admission of their own.
    admission = Admission(settings.max_inflight_work, settings.max_inflight_memory)
    state = SimpleNamespace(state=SimpleNamespace(settings=settings, admission=admission))

    async def run_all() -> list[tuple[int, str, bytes]]:
        return [await _answer(asgi, state, case) for case in cases]

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="openapi-examples") as pool:
        answers = pool.submit(asyncio.run, run_all()).result()
    out: list[tuple[int, str, Any]] = []
    for status, content_type, body in answers:
        media = content_type.split(";")[0].strip()
        out.append((status, media, json.loads(body) if media == "application/json" else body.decode()))
    return out


def add_response_examples(app: FastAPI, spec: dict[str, Any]) -> None:
    """Put the real answer to each of ``response_cases()`` into ``spec`` as a response example."""
    cases = response_cases()
    spec["paths"] = copy.deepcopy(spec["paths"])  # so no two operations share a response's dict
    for case, (status, media, answer) in zip(cases, compute_answers(app, cases, default_settings())):
        if status != case.status:
            raise RuntimeError(
                f"the spec's example {case.key!r} of {case.method} {case.url} answered {status}, not {case.status}: {answer}"
            )
        response = spec["paths"][case.operation][case.method.lower()]["responses"][str(case.status)]
        examples = response["content"][media].setdefault("examples", {})
        examples[case.key] = {"summary": case.summary, "value": answer}


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` include the schemas of every endpoint's request model (and what they
    refer to; the compute routes read their bodies themselves), and the response examples."""
    body_models = list(dict.fromkeys(e.model for e in ENDPOINTS.values()))

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            _, defs = models_json_schema([(m, "validation") for m in body_models], ref_template=REF)
            schemas = spec.setdefault("components", {}).setdefault("schemas", {})
            for name, schema in defs.get("$defs", {}).items():
                schemas.setdefault(name, schema)
            # FastAPI writes openapi_extra without its nulls (xor's "trainable": null): put the
            # request examples back exactly as GET /v1/examples/{name}?for= answers them.
            for endpoint, e in ENDPOINTS.items():
                if "post" in spec["paths"].get(e.path, {}):
                    content = spec["paths"][e.path]["post"]["requestBody"]["content"]["application/json"]
                    content["examples"] = openapi_examples(endpoint)
            add_response_examples(app, spec)
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

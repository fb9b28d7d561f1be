"""ComputeDispatch: compute POSTs go straight to their endpoints and answer exactly as through FastAPI."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

import app.main
from app.api.dispatch import ComputeDispatch
from app.api.routes import gradients as gradients_route
from app.config import Settings
from app.examples import example_body
from app.main import create_app

NDJSON = {"Accept": "application/x-ndjson"}


def dispatched_routes(application: Any) -> dict[str, Any]:
    (middleware,) = [m for m in application.user_middleware if m.cls is ComputeDispatch]
    return middleware.kwargs["routes"]


@pytest.fixture
def both(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, TestClient]]:
    """Clients of the app as served and of the same app without ComputeDispatch (FastAPI's own path)."""
    settings = Settings(max_iterations=5_000, max_parameters=100)
    served = create_app(settings)
    with monkeypatch.context() as m:
        m.setattr(app.main, "ComputeDispatch", lambda app, routes, handlers: app)
        plain = create_app(settings)
    assert dispatched_routes(served) and not [m for m in plain.user_middleware if m.cls is ComputeDispatch]
    with TestClient(served, raise_server_exceptions=False) as a, TestClient(plain, raise_server_exceptions=False) as b:
        yield a, b


def test_every_post_operation_is_dispatched():
    application = create_app(Settings())
    posts = {path for path, ops in application.openapi()["paths"].items() if "post" in ops}
    assert set(dispatched_routes(application)) == posts and len(posts) == 10


def _cases(seed: dict[str, Any]) -> list[tuple[str, Any, dict[str, str]]]:
    loss = {k: seed[k] for k in ("network", "inputs", "targets", "loss", "reduction")}
    fwd = {k: seed[k] for k in ("network", "inputs")}
    overflow = copy.deepcopy(loss)
    overflow["network"]["layers"][0]["weights"] = [[1e300, 1e300], [1e300, 1e300]]
    overflow["inputs"] = [[1e300, 1e300]]
    wide = copy.deepcopy(loss)
    wide["network"]["layers"][0]["weights"] = [[0.1, 0.2]] * 40
    wide["network"]["layers"][0]["biases"] = [0.0] * 40
    explain = {**loss, "parameter": {"layer": 0, "kind": "weights", "index": [0, 1]}}
    return [
        ("/v1/forward", fwd, {}),
        ("/v1/loss", loss, {}),
        ("/v1/gradients", loss, {}),
        ("/v1/gradcheck", loss, {}),
        ("/v1/explain", explain, {}),
        ("/v1/train", seed, {}),
        ("/v1/train", seed, NDJSON),
        ("/v1/train/plot", seed, {}),
        ("/v1/diagram", loss, {}),
        ("/v1/check", example_body("blog", "check"), {}),
        ("/v1/check", {**loss, "claimed": {"gradients": [None]}}, {}),
        ("/v1/graph", example_body("seed", "graph"), {}),
        ("/v1/graph", example_body("seed", "graph"), {"Accept": "text/vnd.graphviz"}),
        ("/v1/graph", example_body("seed", "graph"), {"Accept": "text/html"}),
        ("/v1/graph", {**loss, "sample": 3}, {}),
        ("/v1/gradients", {**loss, "loss": "hinge"}, {}),
        ("/v1/gradients", {**loss, "extra": 1}, {}),
        ("/v1/gradients", overflow, {}),
        ("/v1/gradients", wide, {}),
        ("/v1/train", {**seed, "iterations": 10_000}, NDJSON),
        ("/v1/gradients", b"{not json", {"Content-Type": "application/json"}),
        ("/v1/gradients", b"<xml/>", {"Content-Type": "text/xml"}),
        ("/v1/gradients", b"", {}),
    ]


CASES = _cases(example_body("seed"))


@pytest.mark.parametrize("path, body, headers", CASES, ids=[f"{i}-{path}" for i, (path, _, _) in enumerate(CASES)])
def test_dispatched_answers_equal_fastapis(both, path, body, headers):
    sent = {"content": body} if isinstance(body, bytes) else {"json": body}
    a, b = (c.post(path, headers=headers, **sent) for c in both)
    assert a.status_code == b.status_code
    assert a.headers["content-type"] == b.headers["content-type"]
    assert a.content == b.content


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_other_methods_still_get_fastapis_405(both, method):
    a, b = (c.request(method, "/v1/gradients") for c in both)
    assert a.status_code == b.status_code == 405 and a.headers["allow"] == b.headers["allow"] == "POST"
    assert a.content == b.content


@pytest.mark.parametrize("path", ["/v1/gradients/", "/v1/gradient", "/V1/gradients"])
def test_other_paths_still_get_fastapis_answer(both, seed_loss_body, path):
    a, b = (c.post(path, json=seed_loss_body, follow_redirects=False) for c in both)
    assert a.status_code == b.status_code != 200 and a.content == b.content


def test_unhandled_errors_answer_500_by_the_apps_handler(both, seed_loss_body, monkeypatch):
    def broken(*args: Any) -> None:
        raise RuntimeError("kaput")

    monkeypatch.setattr(gradients_route, "run_gradients", broken)
    a, b = (c.post("/v1/gradients", json=seed_loss_body) for c in both)
    assert a.status_code == b.status_code == 500 and a.json() == b.json()
    assert a.json()["detail"][0]["type"] == "internal_error" and "kaput" not in a.text


def test_served_below_a_root_path(seed_loss_body):
    with TestClient(create_app(Settings()), root_path="/api") as c:
        r = c.post("/api/v1/gradients", json=seed_loss_body)
    assert r.status_code == 200 and len(r.json()["gradients"]) == 2


@pytest.mark.anyio
async def test_dispatch_never_passes_a_compute_post_on(seed_loss_body):
    """The middleware answers a compute POST itself; anything else reaches the wrapped app."""
    reached: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        reached.append(f"{scope['method']} {scope['path']}")
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    application = create_app(Settings())
    dispatch = ComputeDispatch(inner, dispatched_routes(application), application.exception_handlers)
    body = json.dumps(seed_loss_body).encode()

    async def call(method: str, path: str) -> int:
        scope = {
            "type": "http",
            "method": method,
            "path": path,
            "root_path": "",
            "query_string": b"",
            "app": application,
            "headers": [(b"content-type", b"application/json")],
        }
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await dispatch(scope, receive, send)
        return sent[0]["status"]

    assert await call("POST", "/v1/gradients") == 200 and reached == []
    assert await call("GET", "/v1/gradients") == 204 and await call("POST", "/healthz") == 204
    assert reached == ["GET /v1/gradients", "POST /healthz"]

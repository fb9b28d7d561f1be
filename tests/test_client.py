"""The Python client: in-process (httpx's ASGI transport), against a live server, errors and retries."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import httpx
import numpy as np
import pytest
import uvicorn

from app.client import AsyncBackpropClient, BackpropClient, LimitExceeded, NotFound, ServiceUnavailable, ValidationFailed
from app.config import Settings
from app.main import create_app
from app.schemas.responses import CheckResponse, GradientsResponse, GraphResponse, TraceEntry, TrainResponse, TrainSummary
from tests.support.live_server import free_port, running_server
from tests.support.seed_trace import SEED_LOSSES, SEED_W11

LOSS_FIELDS = ("network", "inputs", "targets", "loss", "reduction")


def run(coro):
    return asyncio.run(coro)


def in_process(**settings) -> AsyncBackpropClient:
    return AsyncBackpropClient("http://test", transport=httpx.ASGITransport(app=create_app(Settings(**settings))), backoff=0.001)


def test_async_client_in_process(seed_body):
    async def scenario():
        async with in_process() as client:
            body = await client.example("seed")
            assert body["network"] == seed_body["network"] and body["trainable"] == seed_body["trainable"]
            grads = await client.gradients(**{k: body[k] for k in LOSS_FIELDS})
            assert isinstance(grads, GradientsResponse)
            assert grads.gradients[1].weights_array.shape == (1, 2)
            assert grads.gradients[1].weights_array[0, 0] == pytest.approx((0.7010307863243558 - 1) * 0.4312, rel=1e-12)
            trained = await client.train(**body)
            assert isinstance(trained, TrainResponse)
            assert [e.loss for e in trained.trace] == pytest.approx(SEED_LOSSES, abs=1e-12)
            items = [item async for item in await client.train(**body, stream=True)]
            assert isinstance(items[-1], TrainSummary) and all(isinstance(i, TraceEntry) for i in items[:-1])
            assert [i.network.layers[1].weights[0][0] for i in items[:-1]] == pytest.approx(SEED_W11, abs=1e-12)
            assert (await client.examples()).examples[0].name == "seed"
            assert (await client.diagram(network=body["network"])).startswith("<svg")

    run(scenario())


def test_async_check_in_process():
    async def scenario():
        async with in_process() as client:
            blog = await client.example("blog", "check")
            out = await client.check(**blog)
            assert isinstance(out, CheckResponse)
            assert out.first_wrong == ["iterations", 0, "output", 0, 0] and out.score < out.max_score
            assert any(d.name == "parameter_substituted" for d in out.diagnoses)
            seed = await client.example("seed", "check")
            assert (await client.check(**seed)).first_wrong is None
            assert (await client.send("check", seed)).score == 6
            with pytest.raises(ValidationFailed) as err:
                await client.check(**{**seed, "claimed": {"gradients": [None]}})
            assert err.value.detail[0].loc == ["body", "claimed", "gradients"]

    run(scenario())


def test_sync_check_sends_the_fields_given_nulls_in_arrays_included(seed_body):
    from fastapi.testclient import TestClient

    service = TestClient(create_app(Settings()))
    sent = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        r = service.post(request.url.path, content=request.content, headers={"Content-Type": "application/json"})
        return httpx.Response(r.status_code, content=r.content, headers={"Content-Type": "application/json"})

    fields = {k: seed_body[k] for k in ("network", "inputs", "targets", "loss")}
    with BackpropClient("http://test", transport=httpx.MockTransport(answer)) as client:
        claimed = {"output": [[0.7010307863243558]], "gradients": [None, {"weights": np.array([[-0.12891552493693778, 0.0]])}]}
        out = client.check(**fields, claimed=claimed, points={"gradients": 2.0})
        assert out.first_wrong == ["gradients", 1, "weights", 0, 1] and (out.score, out.max_score) == (1.0, 3.0)
        with pytest.raises(TypeError, match="claims"):
            client.check(**fields, claims={})  # type: ignore[call-arg]
    service.close()
    assert set(sent[0]) == {"network", "inputs", "targets", "loss", "claimed", "points"}
    assert sent[0]["claimed"]["gradients"][0] is None


def test_numpy_arrays_are_accepted(seed_body):
    async def scenario():
        async with in_process() as client:
            layers = [{**l, "weights": np.array(l["weights"]), "biases": np.array(l["biases"])} for l in seed_body["network"]["layers"]]
            out = await client.forward(network={"layers": layers}, inputs=np.array([[0.7, 0.3]]))
            np.testing.assert_allclose(out.output_array, [[0.7010307863243558]], rtol=1e-15)

    run(scenario())


def test_typed_errors(seed_body):
    async def scenario():
        async with in_process(max_iterations=2) as client:
            with pytest.raises(ValidationFailed) as err:
                await client.gradients(**{**{k: seed_body[k] for k in LOSS_FIELDS}, "inputs": [[1.0, 2.0, 3.0]]})
            assert err.value.status == 422 and err.value.detail[0].loc == ["body", "inputs"]
            with pytest.raises(LimitExceeded) as limit:
                await client.train(**seed_body)
            assert "BACKPROP_MAX_ITERATIONS" in str(limit.value)
            with pytest.raises(NotFound):
                await client.example("nope")
            with pytest.raises(ValidationFailed):
                await (await client.train(**{**seed_body, "iterations": 0}, stream=True)).__anext__()

    run(scenario())


class Flaky:
    """An ASGI app that answers 503 to the first ``failures`` requests, then serves the real app."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0
        self.app = create_app(Settings())

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            self.calls += 1
            if self.calls <= self.failures:
                await send({"type": "http.response.start", "status": 503, "headers": [(b"content-type", b"text/plain")]})
                await send({"type": "http.response.body", "body": b"busy"})
                return
        await self.app(scope, receive, send)


def test_async_retries_then_succeeds():
    flaky = Flaky(failures=2)

    async def scenario():
        async with AsyncBackpropClient("http://test", transport=httpx.ASGITransport(app=flaky), retries=3, backoff=0.001) as client:
            assert (await client.health())["status"] == "ok"

    run(scenario())
    assert flaky.calls == 3


def test_async_gives_up_after_its_retries():
    flaky = Flaky(failures=10)

    async def scenario():
        async with AsyncBackpropClient("http://test", transport=httpx.ASGITransport(app=flaky), retries=2, backoff=0.001) as client:
            with pytest.raises(ServiceUnavailable, match="3 times; last: HTTP 503"):
                await client.health()

    run(scenario())
    assert flaky.calls == 3


@pytest.fixture
def flaky_server():
    """A real uvicorn on loopback serving an app that fails twice, then answers."""
    flaky = Flaky(failures=2)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(flaky, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}", flaky
    server.should_exit = True
    thread.join(timeout=10)


@pytest.mark.slow
def test_sync_client_retries_against_a_live_server(flaky_server, seed_body):
    url, flaky = flaky_server
    with BackpropClient(url, retries=3, backoff=0.01) as client:
        result = client.train(**seed_body)
    assert flaky.calls == 3
    assert result.trace[0].loss == pytest.approx(SEED_LOSSES[0], abs=1e-12)


def test_sync_client_connection_refused_is_service_unavailable():
    with BackpropClient(f"http://127.0.0.1:{free_port()}", retries=1, backoff=0.001) as client:
        with pytest.raises(ServiceUnavailable, match="ConnectError"):
            client.health()


@pytest.mark.slow
def test_sync_client_streams_from_a_live_server(tmp_path, seed_body):
    seed_body.update(iterations=2000, record_every=100, record=[])
    with running_server(tmp_path / "server.log") as (url, _), BackpropClient(url) as client:
        items = list(client.train(**seed_body, stream=True))
        assert [i.iteration for i in items[:-1]] == [*range(1, 2000, 100), 2000]
        assert isinstance(items[-1], TrainSummary) and items[-1].status == "completed"
        with pytest.raises(ValidationFailed):
            client.loss(network=seed_body["network"], inputs=[[1.0]], targets=[[1.0]], loss="mse")


class Busy(Flaky):
    """503 with ``Retry-After: 2`` to the first request, then the real app."""

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and self.calls < self.failures:
            self.calls += 1
            headers = [(b"content-type", b"application/json"), (b"retry-after", b"2")]
            await send({"type": "http.response.start", "status": 503, "headers": headers})
            await send({"type": "http.response.body", "body": b'{"detail": []}'})
            return
        await self.app(scope, receive, send)


def test_clients_wait_as_long_as_retry_after_says(monkeypatch):
    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr("app.client.time.sleep", waits.append)
    monkeypatch.setattr("app.client.asyncio.sleep", fake_sleep)
    sync_app = Busy(failures=1)
    client = BackpropClient("http://test", transport=httpx.MockTransport(lambda request: _busy_then_ok(request, sync_app)), backoff=0.001)
    assert client.health()["status"] == "ok"

    async def scenario():
        async with AsyncBackpropClient("http://test", transport=httpx.ASGITransport(app=Busy(failures=1)), backoff=0.001) as c:
            assert (await c.health())["status"] == "ok"

    run(scenario())
    assert waits == [2.0, 2.0]


def _busy_then_ok(request: httpx.Request, state: Busy) -> httpx.Response:
    if state.calls < state.failures:
        state.calls += 1
        return httpx.Response(503, headers={"retry-after": "2"}, json={"detail": []})
    return httpx.Response(200, json={"status": "ok"})


@pytest.mark.parametrize(
    "value, expected",
    [
        ("3", 3.0),
        ("0", 0.0),
        ("-5", 0.0),
        ("1e9", 60.0),
        ("soon", None),
        ("nan", None),
        (None, None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
    ],
)
def test_retry_after_values(value, expected):
    from app.client import _retry_after

    assert _retry_after(value) == expected


def test_a_misspelt_field_fails_in_python_before_any_request(seed_body):
    sent = []
    client = BackpropClient("http://test", transport=httpx.MockTransport(lambda request: sent.append(request) or httpx.Response(200)))
    fields = {k: seed_body[k] for k in ("network", "inputs", "targets", "loss")}
    with pytest.raises(TypeError, match="reducton"):
        client.gradients(**fields, reducton="sum")
    with pytest.raises(TypeError):
        client.gradients(fields["network"], fields["inputs"])  # keyword-only
    assert sent == []


def test_fields_not_given_are_left_to_the_services_defaults(seed_body):
    sent = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(200, json={"loss": 0.5, "output": [[0.5]]})

    client = BackpropClient("http://test", transport=httpx.MockTransport(answer))
    client.loss(network=seed_body["network"], inputs=[[0.7, 0.3]], targets=[[1.0]], loss="binary_cross_entropy")
    client.loss(network=seed_body["network"], inputs=[[0.7, 0.3]], targets=[[1.0]], loss="binary_cross_entropy", reduction="sum")
    assert set(sent[0]) == {"network", "inputs", "targets", "loss"} and sent[1]["reduction"] == "sum"


def test_send_posts_a_body_as_it_is(seed_body):
    async def scenario():
        async with in_process() as client:
            body = {k: seed_body[k] for k in ("network", "inputs", "targets", "loss")}
            assert (await client.send("gradients", body)).loss == pytest.approx(SEED_LOSSES[0], abs=1e-15)
            with pytest.raises(ValidationFailed) as failed:
                await client.send("gradients", {**body, "lr": 0.1})
            assert failed.value.detail[0].loc == ["body", "lr"]

    run(scenario())


def test_the_client_is_typed():
    import importlib.resources

    assert importlib.resources.files("app").joinpath("py.typed").is_file()


def test_graph_as_data_as_dot_and_as_svg(monkeypatch):
    import app.render.graphviz
    from app.client import ServiceError

    async def scenario():
        async with in_process() as client:
            body = await client.example("seed", "graph")
            graph = await client.graph(**body)
            assert isinstance(graph, GraphResponse) and graph.value == SEED_LOSSES[0]
            z_hat = next(i for i, n in enumerate(graph.nodes) if n.label == "z_hat")
            assert any(e.from_ == z_hat for e in graph.edges)
            assert (await client.graph(**body, format="dot")).startswith("digraph computation {")
            assert (await client.send("graph", body)).value == graph.value
            batch = {**body, "inputs": [[0.7, 0.3], [0.1, 0.2]], "targets": [[1.0], [0.0]], "sample": None, "labels": None}
            assert (await client.graph(**batch)).samples == [0, 1]  # None is sent as null: every sample
            monkeypatch.setattr(app.render.graphviz.shutil, "which", lambda name: None)
            with pytest.raises(ServiceError) as missing:
                await client.graph(**body, format="svg")
            assert missing.value.status == 501 and missing.value.detail[0].type == "graphviz_missing"

    run(scenario())


def test_sync_graph_sends_accept_and_a_null_sample(seed_body):
    sent = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append((request.headers["accept"], json.loads(request.content)))
        return httpx.Response(200, text="digraph computation {}\n", headers={"Content-Type": "text/vnd.graphviz"})

    fields = {k: seed_body[k] for k in ("network", "inputs", "targets", "loss")}
    with BackpropClient("http://test", transport=httpx.MockTransport(answer)) as client:
        assert client.graph(**fields, sample=None, format="dot") == "digraph computation {}\n"
        client.graph(**fields, labels={"loss": "CE"}, format="svg")
        assert client.send("graph", {**fields, "sample": None}, format="dot").startswith("digraph")
    assert sent[0][0] == "text/vnd.graphviz" and sent[0][1]["sample"] is None and "labels" not in sent[0][1]
    assert sent[1][0] == "image/svg+xml" and sent[1][1]["sample"] == 0 and sent[1][1]["labels"] == {"loss": "CE"}
    assert sent[2][0] == "text/vnd.graphviz" and sent[2][1]["sample"] is None

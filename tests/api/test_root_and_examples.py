"""Issue 12, items 7 and 8: an example body for every endpoint, Swagger examples that are real
answers, and ``GET /`` linking everything."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from types import MappingProxyType
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

import app.api.routes.examples
import app.examples
import app.schemas.responses
from app.api.openapi import response_cases
from app.api.routes.root import prefers_html, root_answer
from app.client import AsyncBackpropClient, BackpropClient
from app.config import Settings
from app.examples import (
    DEFAULT_ENDPOINT,
    ENDPOINTS,
    EXAMPLES,
    SEED,
    NamedExample,
    example_body,
    example_json,
)
from app.main import create_app
from app.schemas.requests import TrainRequest
from tests.support.seed_trace import SEED_LOSSES

FITS = [(name, endpoint) for name, example in EXAMPLES.items() for endpoint in example.endpoints]
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
# GET /v1/examples/seed as it answered before ?for= existed, byte for byte.
SEED_TRAIN_BODY = (
    b'{"network":{"layers":[{"weights":[[0.436,0.42],[0.55,0.42]],"biases":[0.0,0.0],"activation":"relu"},'
    b'{"weights":[[0.026,1.0]],"biases":[0.33],"activation":"sigmoid"}]},"inputs":[[0.7,0.3]],"targets":[[1.0]],'
    b'"loss":"binary_cross_entropy","reduction":"mean","optimizer":{"name":"sgd","learning_rate":0.5,"momentum":0.0,'
    b'"nesterov":false,"weight_decay":0.0},"iterations":3,"record_every":1,"record":["output","gradients","network"],'
    b'"trainable":[{"weights":[[false,false],[false,false]],"biases":[false,false]},{"weights":[[true,false]],"biases":[false]}]}'
)


@pytest.fixture(scope="module")
def served() -> Any:
    with TestClient(create_app(Settings())) as c:
        yield c


@pytest.fixture(scope="module")
def spec(served: TestClient) -> dict[str, Any]:
    return served.get("/openapi.json").json()


def request_examples(spec: dict[str, Any], endpoint: str) -> dict[str, Any]:
    return spec["paths"][ENDPOINTS[endpoint].path]["post"]["requestBody"]["content"]["application/json"]["examples"]


# -- GET /v1/examples/{name}?for= ----------------------------------------------------------


@pytest.mark.parametrize("name, endpoint", FITS)
def test_each_body_posts_as_is_and_is_the_swagger_example(served, spec, name, endpoint):
    r = served.get(f"/v1/examples/{name}", params={"for": endpoint})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.json() == example_body(name, endpoint)
    if EXAMPLES[name].in_spec:
        assert r.json() == request_examples(spec, endpoint)[name]["value"]
    else:  # a dataset's hundreds of numbers are served here, not carried by the spec
        assert name not in request_examples(spec, endpoint)
    posted = served.post(ENDPOINTS[endpoint].path, content=r.content, headers={"Content-Type": "application/json"})
    assert posted.status_code == 200, posted.text
    assert posted.headers["content-type"].startswith("image/svg+xml" if ENDPOINTS[endpoint].svg else "application/json")


def test_the_default_is_the_train_body_byte_for_byte(served):
    assert DEFAULT_ENDPOINT == "train"
    assert served.get("/v1/examples/seed").content == SEED_TRAIN_BODY == example_json("seed")
    for name in EXAMPLES:
        default = served.get(f"/v1/examples/{name}")
        assert default.content == served.get(f"/v1/examples/{name}", params={"for": "train"}).content
        TrainRequest.model_validate_json(default.content)


def test_the_seed_gradients_body_gives_the_posts_gradients(served):
    body = served.get("/v1/examples/seed?for=gradients").json()
    assert set(body) == {"network", "inputs", "targets", "loss", "reduction"}
    out = served.post("/v1/gradients", json=body).json()
    assert out["loss"] == pytest.approx(SEED_LOSSES[0], abs=1e-15)


def test_the_list_says_which_endpoints_each_example_fits(served):
    listed = served.get("/v1/examples").json()["examples"]
    assert [e["name"] for e in listed] == list(EXAMPLES)
    for entry in listed:
        assert entry["endpoints"] == list(EXAMPLES[entry["name"]].endpoints)
        for endpoint in ENDPOINTS:
            status = served.get(f"/v1/examples/{entry['name']}", params={"for": endpoint}).status_code
            assert status == (200 if endpoint in entry["endpoints"] else 404)


def test_an_unknown_endpoint_is_a_422_naming_the_query(served):
    r = served.get("/v1/examples/seed", params={"for": "backward"})
    assert r.status_code == 422
    (err,) = r.json()["detail"]
    assert err["loc"] == ["query", "for"] and "gradients" in err["msg"]


def test_an_example_that_does_not_fit_is_a_404_naming_the_query(served, monkeypatch):
    train_only = NamedExample("train_only", "Only a training.", SEED.body, {"train": "a training"})
    patched = MappingProxyType({**EXAMPLES, train_only.name: train_only})
    monkeypatch.setattr(app.examples, "EXAMPLES", patched)
    monkeypatch.setattr(app.api.routes.examples, "EXAMPLES", patched)
    assert served.get("/v1/examples/train_only").status_code == 200
    assert served.get("/v1/examples").json()["examples"][-1]["endpoints"] == ["train"]
    r = served.get("/v1/examples/train_only", params={"for": "gradients"})
    assert r.status_code == 404
    (err,) = r.json()["detail"]
    assert err["loc"] == ["query", "for"] and err["type"] == "not_found" and "/v1/gradients" in err["msg"]
    with pytest.raises(KeyError):
        example_body("train_only", "gradients")


def test_unknown_name_still_names_the_path(served):
    r = served.get("/v1/examples/mnist", params={"for": "gradients"})
    assert r.status_code == 404 and r.json()["detail"][0]["loc"] == ["path", "name"]


def test_the_for_parameter_is_a_documented_enum(spec):
    (param,) = [p for p in spec["paths"]["/v1/examples/{name}"]["get"]["parameters"] if p["name"] == "for"]
    assert param["in"] == "query" and not param["required"]
    assert param["schema"]["enum"] == list(ENDPOINTS) and param["schema"]["default"] == "train"
    assert all(e.path in param["description"] for e in ENDPOINTS.values())


# -- Swagger's examples ----------------------------------------------------------------------


def test_every_operation_is_prefilled_with_the_seed_titled_for_it(spec):
    titles = {}
    for endpoint in ENDPOINTS:
        examples = request_examples(spec, endpoint)
        assert list(examples)[0] == "seed" and list(examples) == [n for n, e in EXAMPLES.items() if endpoint in e.endpoints and e.in_spec]
        titles[endpoint] = examples["seed"]["summary"]
        for name, example in examples.items():
            assert example["summary"] == EXAMPLES[name].titles[endpoint]
    assert titles["gradients"] == "The blog post's network: its gradients"
    assert len(set(titles.values())) == len(titles)  # each names what that operation shows
    assert all("SGD steps on w11 alone" not in t for e, t in titles.items() if e != "train")


def _model(schema_ref: str) -> Any:
    return getattr(app.schemas.responses, schema_ref.rsplit("/", 1)[1])


CASES = response_cases()


@pytest.mark.parametrize("case", CASES, ids=[f"{c.method} {c.operation} {c.status} {c.key}" for c in CASES])
def test_every_response_example_is_what_the_service_answers(served, spec, case):
    """Recomputed through the whole app (middleware, dispatch and all), as a client gets it."""
    # An answer in another media type than JSON (asked for by Accept) is its example there, as text.
    text = case.status == 200 and case.accept is not None and case.accept != "application/json"
    media = case.accept if text else "application/json"
    content = spec["paths"][case.operation][case.method.lower()]["responses"][str(case.status)]["content"][media]
    example = content["examples"][case.key]
    assert example["summary"] == case.summary
    headers = {} if case.accept is None else {"Accept": case.accept}
    if case.body is None:
        r = served.request(case.method, case.url, headers=headers)
    elif isinstance(case.body, bytes):
        r = served.request(case.method, case.url, content=case.body, headers={"Content-Type": case.content_type, **headers})
    else:
        r = served.request(case.method, case.url, json=case.body, headers=headers)
    assert r.status_code == case.status
    if text:
        assert r.headers["content-type"].startswith(media) and r.text == example["value"]
        return
    assert r.json() == example["value"]
    ref = content["schema"].get("$ref")
    if ref:
        _model(ref).model_validate(example["value"])
    else:  # getExample's 200: one of the request models
        ENDPOINTS["gradients" if case.query else "train"].model.model_validate(example["value"])


def test_json_operations_have_real_200_413_and_422_examples(spec):
    for endpoint, e in ENDPOINTS.items():
        responses = spec["paths"][e.path]["post"]["responses"]
        for status in ("413", "415", "422") if e.svg else ("200", "413", "415", "422"):
            assert responses[status]["content"]["application/json"]["examples"], (endpoint, status)
        if e.svg:
            assert "examples" not in responses["200"]["content"].get("application/json", {})


def test_the_train_example_is_the_seed_training_without_diverged_at(spec):
    example = spec["paths"]["/v1/train"]["post"]["responses"]["200"]["content"]["application/json"]["examples"]["seed"]["value"]
    assert example["status"] == "completed" and "diverged_at" not in example
    assert [e["loss"] for e in example["trace"]] == pytest.approx(SEED_LOSSES, abs=1e-12)
    assert example["network"]["layers"][1]["weights"][0][0] == 0.21566472402149306


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


def _examples(node: Any) -> list[Any]:
    if isinstance(node, dict):
        found = list(node["examples"].values()) if isinstance(node.get("examples"), dict) else []
        return found + [e for k, v in node.items() if k != "examples" for e in _examples(v)]
    if isinstance(node, list):
        return [e for v in node for e in _examples(v)]
    return []


def test_no_example_holds_a_placeholder(spec):
    examples = _examples(spec["paths"])
    assert len(examples) > 50
    assert "string" not in [s for example in examples for s in _strings(example)]
    assert '"diverged_at": 0' not in json.dumps(examples)


def test_the_spec_is_the_same_whatever_the_environment_says(monkeypatch, spec):
    monkeypatch.setenv("BACKPROP_MAX_ITERATIONS", "7")
    monkeypatch.setenv("BACKPROP_MAX_LAYERS", "3")
    assert json.loads(json.dumps(create_app(Settings()).openapi())) == spec


# -- GET / -------------------------------------------------------------------------------------


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.tags: set[str] = set()
        self.sources: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        found = dict(attrs)
        if tag == "a" and found.get("href"):
            self.hrefs.append(found["href"] or "")
        self.sources += [v or "" for k, v in attrs if k in ("src", "srcset", "action", "data")]


def json_links(answer: dict[str, Any]) -> list[str]:
    return list(answer["links"].values()) + [url for e in answer["examples"] for url in e["bodies"].values()]


@pytest.mark.slow
def test_root_for_a_browser_is_html_linking_everything(served):
    r = served.get("/", headers={"Accept": BROWSER_ACCEPT})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = Links()
    page.feed(r.text)
    expected = ["/docs", "/redoc", "/playground", "/v1/examples"] + [
        f"/v1/examples/{name}" + ("" if endpoint == "train" else f"?for={endpoint}") for name, endpoint in FITS
    ]
    assert set(expected) <= set(page.hrefs)
    assert sorted(page.hrefs) == sorted(json_links(served.get("/").json()))
    for href in page.hrefs:
        assert served.get(href).status_code == 200, href


def test_root_page_runs_no_script_and_loads_nothing(served):
    r = served.get("/", headers={"Accept": "text/html"})
    page = Links()
    page.feed(r.text)
    assert "script" not in page.tags and not page.sources and "<script" not in r.text.lower()
    assert all(href.startswith("/") and not href.startswith("//") for href in page.hrefs)
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp and r.headers["x-frame-options"] == "DENY"
    (style,) = re.findall(r"<style>(.*?)</style>", r.text, flags=re.S)
    assert f"'sha256-{base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()}'" in csp
    assert r.headers["vary"] == "Accept"


@pytest.mark.parametrize("accept", [None, "application/json", "*/*", "application/json, text/html;q=0.5"])
def test_root_for_anything_else_is_json_with_the_same_links(served, accept):
    r = served.get("/", headers={"Accept": accept} if accept else {})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    answer = app.schemas.responses.Root.model_validate(r.json())
    assert answer.name == "backprop-api" and answer.version == served.app.version
    assert {k: answer.links[k] for k in ("docs", "redoc", "playground", "examples")} == {
        "docs": "/docs",
        "redoc": "/redoc",
        "playground": "/playground",
        "examples": "/v1/examples",
    }
    assert {e.name: list(e.bodies) for e in answer.examples} == {n: list(e.endpoints) for n, e in EXAMPLES.items()}
    for url in json_links(r.json()):
        assert served.get(url).status_code == 200, url


def test_root_is_not_in_the_spec(spec):
    assert "/" not in spec["paths"]


@pytest.mark.parametrize(
    "accept, html",
    [
        (BROWSER_ACCEPT, True),
        ("text/html", True),
        ("text/*", True),
        ("", False),
        ("*/*", False),
        ("application/json", False),
        ("text/html;q=0.5, application/json", False),
        ("text/html, application/json", False),
        ("text/html;q=0", False),
        ("application/xhtml+xml", True),
    ],
)
def test_accept_negotiation(accept, html):
    assert prefers_html(accept) is html


@pytest.mark.slow
def test_root_links_live_under_the_root_path():
    answer = root_answer("/api")
    assert answer.links["docs"] == "/api/docs" and answer.examples[0].bodies["gradients"] == "/api/v1/examples/seed?for=gradients"


# -- client and command line -------------------------------------------------------------------


def test_async_client_example_for_an_endpoint():
    async def scenario() -> None:
        transport = httpx.ASGITransport(app=create_app(Settings()))
        async with AsyncBackpropClient("http://test", transport=transport) as client:
            assert await client.example("seed") == example_body("seed")
            body = await client.example("seed", endpoint="gradients")
            assert body == example_body("seed", "gradients")
            assert (await client.gradients(**body)).loss == pytest.approx(SEED_LOSSES[0], abs=1e-15)

    asyncio.run(scenario())


def test_sync_client_example_asks_for_the_endpoint():
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json={})

    with BackpropClient("http://test", transport=httpx.MockTransport(answer)) as client:
        client.example("seed")
        client.example("seed", endpoint="train_plot")
    assert seen == ["http://test/v1/examples/seed", "http://test/v1/examples/seed?for=train_plot"]


@pytest.mark.slow
def test_cli_example_for_an_endpoint():
    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True, text=True, timeout=120)

    out = cli("example", "seed", "--for", "explain", "--local")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == example_body("seed", "explain")
    usage = cli("example", "--help").stdout
    assert "{" + ",".join(ENDPOINTS) + "}" in usage  # the command's choices are the endpoints
    assert cli("example", "seed", "--for", "backward", "--local").returncode == 2

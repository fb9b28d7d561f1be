"""Request ids, JSON logs and Prometheus metrics."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from app.observability import JsonFormatter


def test_request_id_is_assigned_and_returned(client):
    r = client.get("/healthz")
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"])
    assert client.get("/healthz").headers["x-request-id"] != r.headers["x-request-id"]


def test_request_id_sent_by_the_client_is_honoured(client, seed_loss_body):
    r = client.post("/v1/loss", json=seed_loss_body, headers={"X-Request-ID": "trace-42.a:b"})
    assert r.headers["x-request-id"] == "trace-42.a:b"
    r = client.post("/v1/loss", json={}, headers={"X-Request-ID": "bad-error-path"})
    assert r.status_code == 422 and r.headers["x-request-id"] == "bad-error-path"


@pytest.mark.parametrize("sent", ["x" * 129, "has space", 'quote"d', "new\\nline"])
def test_unsafe_request_ids_are_replaced(client, sent):
    r = client.get("/healthz", headers={"X-Request-ID": sent})
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"])


def metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            if line[len(name)] in " {":
                total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_count_requests_by_route_and_status(client, seed_body):
    before = client.get("/metrics").text
    client.post("/v1/train", json=seed_body)
    client.post("/v1/train", json={})
    client.get("/nope")
    after = client.get("/metrics")
    assert after.status_code == 200 and after.headers["content-type"].startswith("text/plain")

    def delta(name: str, **labels: str) -> float:
        return metric(after.text, name, **labels) - metric(before, name, **labels)

    assert delta("backprop_http_requests_total", method="POST", route="/v1/train", status="200") == 1
    assert delta("backprop_http_requests_total", method="POST", route="/v1/train", status="422") == 1
    assert delta("backprop_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert delta("backprop_http_request_duration_seconds_count", route="/v1/train") == 2


def test_metrics_count_training_work(client, seed_body):
    before = client.get("/metrics").text
    client.post("/v1/train", json=seed_body)  # 3 iterations of a 9-parameter network
    text = client.get("/metrics").text
    assert metric(text, "backprop_training_iterations_total") - metric(before, "backprop_training_iterations_total") == 3
    assert metric(text, "backprop_parameters_processed_total") - metric(before, "backprop_parameters_processed_total") == 27


def test_access_log_is_structured(client, caplog):
    with caplog.at_level(logging.INFO, logger="backprop.access"):
        r = client.get("/healthz", headers={"X-Request-ID": "abc123"})
    (record,) = [rec for rec in caplog.records if rec.name == "backprop.access"]
    line = json.loads(JsonFormatter().format(record))
    assert line["request_id"] == "abc123" == r.headers["x-request-id"]
    assert (line["method"], line["route"], line["status"]) == ("GET", "/healthz", 200)
    assert line["duration_ms"] >= 0 and line["level"] == "info"


def test_unhandled_errors_are_json_and_logged(caplog):
    app = create_app(Settings())

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("kaput")

    with TestClient(app, raise_server_exceptions=False) as c, caplog.at_level(logging.ERROR, logger="backprop.error"):
        r = c.get("/boom")
    assert r.status_code == 500
    assert r.json()["detail"][0]["type"] == "internal_error" and "kaput" not in r.text
    (record,) = [rec for rec in caplog.records if rec.name == "backprop.error"]
    assert "kaput" in json.loads(JsonFormatter().format(record))["exception"]


OTEL_PROBE = """
import sys
from opentelemetry import trace

tracers = []


class Recording(trace.TracerProvider):
    def get_tracer(self, *args, **kwargs):
        tracers.append(args)
        return trace.NoOpTracer()


trace.set_tracer_provider(Recording())
from fastapi.testclient import TestClient
from app.config import Settings
from app.main import create_app

with TestClient(create_app(Settings(opentelemetry=sys.argv[1] == "on"))) as c:
    assert c.get("/healthz").status_code == 200
print(len(tracers))
"""


@pytest.mark.slow
@pytest.mark.parametrize("setting, instrumented", [("on", True), ("off", False)])
def test_opentelemetry_is_opt_in(setting, instrumented):
    """With an OpenTelemetry provider configured, FastAPI's native tracing runs only when the setting asks."""
    # A process of its own: OpenTelemetry's global provider can be set once per process.
    out = subprocess.run([sys.executable, "-c", OTEL_PROBE, setting], capture_output=True, text=True, check=True).stdout
    assert (int(out) > 0) == instrumented

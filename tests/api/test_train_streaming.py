"""NDJSON streaming of /v1/train (``Accept: application/x-ndjson``): the trace entry by entry, then a summary."""

from __future__ import annotations

import json

import pytest

from app.schemas.responses import TraceEntry, TrainResponse
from tests.support.seed_trace import SEED_LOSSES, SEED_W11


def ndjson(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def test_stream_seed(client, seed_body):
    with client.stream("POST", "/v1/train", json=seed_body, headers={"Accept": "application/x-ndjson"}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
        lines = ndjson(r.read().decode())
    *entries, summary = lines
    assert [e["loss"] for e in entries] == pytest.approx(SEED_LOSSES, abs=1e-12)
    assert [e["network"]["layers"][1]["weights"][0][0] for e in entries] == pytest.approx(SEED_W11, abs=1e-12)
    for e in entries:
        TraceEntry.model_validate(e)
    assert "trace" not in summary and summary["status"] == "completed"
    TrainResponse.model_validate({**summary, "trace": entries})


def test_stream_equals_the_json_response(client, seed_body):
    seed_body.update(iterations=1000, record_every=7, record=["output"], trainable=None)
    whole = client.post("/v1/train", json=seed_body).json()
    with client.stream("POST", "/v1/train", json=seed_body, headers={"Accept": "application/x-ndjson"}) as r:
        *entries, summary = ndjson(r.read().decode())
    assert entries == whole["trace"]
    assert {**summary, "trace": entries} == whole


def test_stream_reports_divergence_in_the_summary(client, diverging_body):
    body = diverging_body
    with client.stream("POST", "/v1/train", json=body, headers={"Accept": "application/x-ndjson"}) as r:
        *entries, summary = ndjson(r.read().decode())
    assert summary["status"] == "diverged" and entries[-1]["iteration"] == summary["diverged_at"] - 1


def test_stream_errors_come_before_the_stream(client, seed_body):
    seed_body["network"]["layers"][1]["weights"] = [[1e308, 1e308]]
    seed_body["inputs"] = [[1e10, 1e10]]
    r = client.post("/v1/train", json=seed_body, headers={"Accept": "application/x-ndjson"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][:3] == ["body", "network", "layers"]

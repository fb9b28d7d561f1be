"""NDJSON streaming of /v1/train, response shapes against the models, and where work runs."""

from __future__ import annotations

import json

import anyio.to_thread
import pytest

from app.schemas.responses import ForwardResponse, GradientsResponse, LossResponse, TraceEntry, TrainResponse
from tests.conftest import SEED_LOSSES, SEED_W11


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


@pytest.mark.parametrize(
    "path, model",
    [("/v1/forward", ForwardResponse), ("/v1/loss", LossResponse), ("/v1/gradients", GradientsResponse), ("/v1/train", TrainResponse)],
)
def test_responses_match_their_models(client, seed_body, path, model):
    fields = {"/v1/forward": ("network", "inputs"), "/v1/train": tuple(seed_body)}.get(
        path, ("network", "inputs", "targets", "loss", "reduction")
    )
    r = client.post(path, json={k: seed_body[k] for k in fields})
    assert r.status_code == 200
    model.model_validate(r.json())


@pytest.fixture
def thread_calls(monkeypatch):
    calls = []
    real = anyio.to_thread.run_sync

    async def spy(fn, *args, **kwargs):
        result = await real(fn, *args, **kwargs)
        calls.append(type(result).__name__)
        return result

    monkeypatch.setattr(anyio.to_thread, "run_sync", spy)
    return calls


def test_small_requests_run_on_the_event_loop(client, seed_body, thread_calls):
    assert client.post("/v1/train", json=seed_body).status_code == 200
    assert "JSONBody" not in thread_calls


def test_large_requests_run_in_a_thread(client, seed_body, thread_calls):
    seed_body.update(iterations=5000, record=[])
    assert client.post("/v1/train", json=seed_body).status_code == 200
    assert "JSONBody" in thread_calls


def test_the_threshold_is_a_setting(make_client, seed_body, thread_calls):
    assert make_client(inline_work=0).post("/v1/train", json=seed_body).status_code == 200
    assert "JSONBody" in thread_calls

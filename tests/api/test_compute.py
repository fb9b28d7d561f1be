"""Where a compute route's work runs (app.api.compute): small requests on the event loop, larger
ones in a worker thread, the threshold a setting (``BACKPROP_INLINE_WORK``)."""

from __future__ import annotations

import anyio.to_thread
import pytest


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

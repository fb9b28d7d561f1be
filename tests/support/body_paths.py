"""A JSON body posted through both of app.api.body's paths: pydantic's one pass, and app.api.large_body."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from app.api import body as body_module

JSON = {"content-type": "application/json"}


def posted_both_ways(client: TestClient, monkeypatch: pytest.MonkeyPatch, path: str, raw: bytes) -> tuple[Response, Response]:
    """The answers to ``raw`` read as a small body (pydantic, one Python float at a time) and as a large one
    (app.api.large_body), whatever its size."""
    monkeypatch.setattr(body_module, "THREAD_BODY_BYTES", 1 << 40)
    small = client.post(path, content=raw, headers=JSON)
    monkeypatch.setattr(body_module, "THREAD_BODY_BYTES", 0)
    large = client.post(path, content=raw, headers=JSON)
    return small, large

"""Settings (app/config.py): defaults no lower than the contract, read from the environment."""

from __future__ import annotations

from app.config import Settings


def test_defaults_are_no_lower_than_the_contract():
    s = Settings()
    assert s.max_body_bytes >= 32 * 1024 * 1024
    assert s.max_parameters >= 2_000_000
    assert s.max_iterations >= 100_000
    assert s.max_work >= 1e10


def test_settings_read_the_environment(monkeypatch):
    monkeypatch.setenv("BACKPROP_MAX_ITERATIONS", "7")
    assert Settings().max_iterations == 7

"""The service's limits (work estimates) against the default settings."""

from __future__ import annotations

from app.config import Settings
from app.service.limits import LAYER_WORK_FLOOR


def test_the_seed_at_the_default_iteration_limit_fits_the_default_work():
    s = Settings()
    assert s.max_iterations * max(1 * 9, LAYER_WORK_FLOOR * 2) <= s.max_work

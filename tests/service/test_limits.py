"""The service's limits (work estimates) against the default settings."""

from __future__ import annotations

import numpy as np
import pytest

from app.config import Settings
from app.nn.check import _shape
from app.schemas.requests import CheckRequest
from app.service.conversion import to_problem, to_problem_shape
from app.service.limits import LAYER_WORK_FLOOR
from tests.support.random_bodies import check_body


def test_the_seed_at_the_default_iteration_limit_fits_the_default_work():
    s = Settings()
    assert s.max_iterations * max(1 * 9, LAYER_WORK_FLOOR * 2) <= s.max_work


def test_a_check_counts_its_two_runs_and_every_variant_of_its_search():
    """Admission and the choice to compute inline read passes(): a check that may search for mistakes
    must not look as small as its two runs (a 0.3 s search on the event loop would stall it)."""
    from app.examples import example_body
    from app.nn.check import check_work
    from app.service.conversion import to_problem
    from app.service.limits import CHECK_RUNS, check_passes, passes

    req = CheckRequest.model_validate(example_body("blog", "check"))
    _, variants = check_work(to_problem(req), ())
    assert variants > 0 and req.last_iteration == 3
    assert passes(req) == check_passes(req, variants) == (CHECK_RUNS + variants) * 3


@pytest.mark.parametrize("case", range(30))
def test_a_checks_shape_from_its_sizes_is_its_problems(case):
    # Admission reads the check's search size before any array is made: from the request's sizes alone.
    req = CheckRequest.model_validate(check_body(np.random.default_rng((7, case))))
    assert to_problem_shape(req) == _shape(to_problem(req))

"""Schemathesis against the committed spec: no 5xx, and every answer conforms to the spec.

`positive_data_acceptance` is excluded: JSON Schema cannot state the cross-field shape
rules (layer k's inputs = layer k-1's outputs, targets fit the output), so schema-valid
bodies are often rightly answered 422.
"""

from __future__ import annotations

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

from app.config import Settings
from app.main import create_app
from scripts.export_openapi import SPEC_PATH

# Schemathesis takes most of the suite's time: left out by `pytest -m "not slow"`.
pytestmark = pytest.mark.slow

EXAMPLES_PER_OPERATION = 300


@schemathesis.serializer("application/x-safetensors")
def _safetensors_bytes(ctx: object, value: object) -> bytes:
    """A binary body as generated (bytes for ``format: binary``; anything else as its text): mostly not
    a safetensors file, so every such case must be a located 4xx."""
    if isinstance(value, bytes):
        return value
    return str(value).encode()


schema = schemathesis.openapi.from_path(SPEC_PATH)
schema.app = create_app(Settings())
# Valid-by-schema bodies and deliberately invalid ones (which must get a 4xx).
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])


@schema.parametrize()
@hypothesis.settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_conforms_to_its_spec(case):
    case.call_and_validate(excluded_checks=[positive_data_acceptance])

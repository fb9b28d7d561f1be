"""The committed spec is the reviewed contract: it must match what the code serves."""

import json

from scripts.export_openapi import SPEC_PATH, render_spec


def test_committed_spec_matches_the_app():
    committed = SPEC_PATH.read_text(encoding="utf-8")
    assert committed == render_spec(), "openapi/openapi.json is stale: run `python scripts/export_openapi.py`"


def test_operation_ids_are_stable():
    spec = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    ids = {op["operationId"] for path in spec["paths"].values() for op in path.values()}
    assert ids == {
        "forward",
        "loss",
        "gradients",
        "gradcheck",
        "explain",
        "train",
        "trainPlot",
        "diagram",
        "check",
        "graph",
        "listExamples",
        "getExample",
        "health",
        "metrics",
    }


def test_every_operation_has_a_summary():
    spec = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    assert all(op.get("summary") for path in spec["paths"].values() for op in path.values())

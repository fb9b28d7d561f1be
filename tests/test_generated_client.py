"""The spec serves other ecosystems: it validates, and a client generated from it trains the seed."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest
from openapi_spec_validator import validate
from openapi_spec_validator.readers import read_from_filename

from scripts.export_openapi import SPEC_PATH
from tests.support.live_server import running_server
from tests.support.seed_trace import SEED_LOSSES, SEED_W11

# Live servers, subprocesses or a browser: left out by `pytest -m "not slow"`.
pytestmark = pytest.mark.slow


def test_the_spec_is_valid_openapi():
    spec, _ = read_from_filename(str(SPEC_PATH))
    validate(spec)


def test_operation_and_schema_names_read_well():
    import json

    spec = json.loads(SPEC_PATH.read_text())
    names = list(spec["components"]["schemas"]) + [op["operationId"] for p in spec["paths"].values() for op in p.values()]
    assert not [n for n in names if n.startswith("Body_") or "_v1_" in n or n.endswith("_post")]


def test_generated_client_trains_the_seed(tmp_path, seed_body):
    # The generator's script sits beside this interpreter (the venv's bin), which need not be on PATH.
    generator = str(Path(sys.executable).parent / "openapi-python-client")
    out = tmp_path / "backprop_generated"
    done = subprocess.run(
        [generator, "generate", "--path", str(SPEC_PATH), "--output-path", str(out), "--meta", "none"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    sys.path.insert(0, str(tmp_path))
    try:
        generated = importlib.import_module("backprop_generated")
        train = importlib.import_module("backprop_generated.api.backprop.train")
        models = importlib.import_module("backprop_generated.models")
        with running_server(tmp_path / "server.log") as (url, _):
            with generated.Client(base_url=url, raise_on_unexpected_status=True) as client:
                result = train.sync(client=client, body=models.TrainRequest.from_dict(seed_body))
        assert isinstance(result, models.TrainResponse), result
        assert [e.loss for e in result.trace] == pytest.approx(SEED_LOSSES, abs=1e-12)
        assert [e.network.layers[1].weights[0][0] for e in result.trace] == pytest.approx(SEED_W11, abs=1e-12)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.startswith("backprop_generated")]:
            del sys.modules[name]

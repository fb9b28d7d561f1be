"""docs/pytorch_snippet.py (the README's): a /v1/train answer's state_dict network rebuilt in torch has the
service's final_loss, for every activation and loss."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.nn.activations import ACTIVATIONS, LAST_LAYER_ONLY
from app.nn.losses import LOSSES

torch = pytest.importorskip("torch")

SNIPPET = Path(__file__).resolve().parents[1] / "docs" / "pytorch_snippet.py"
HIDDEN = sorted(set(ACTIVATIONS) - LAST_LAYER_ONLY)


def snippet() -> Any:
    spec = importlib.util.spec_from_file_location("pytorch_snippet", SNIPPET)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def train_body(rng: np.random.Generator, loss: str, hidden: str, last: str) -> dict[str, Any]:
    n_in, width, n_out, batch = 3, 5, 3, 7
    targets: Any = LOSSES[loss].sample_targets(rng, (batch, n_out)).tolist()
    body: dict[str, Any] = {
        "network": {
            "state_dict": {
                "0.weight": rng.normal(0, 0.5, (width, n_in)).tolist(),
                "0.bias": rng.normal(0, 0.1, width).tolist(),
                "2.weight": rng.normal(0, 0.5, (n_out, width)).tolist(),
                "2.bias": rng.normal(0, 0.1, n_out).tolist(),
            },
            "activations": [hidden, last],
        },
        "inputs": rng.normal(0, 1, (batch, n_in)).tolist(),
        "targets": targets,
        "loss": loss,
        "reduction": "mean" if rng.random() < 0.5 else "sum",
        "optimizer": {"name": "adam", "learning_rate": 0.05},
        "iterations": 3,
    }
    if loss == "cross_entropy":
        body["targets"] = rng.integers(0, n_out, batch).tolist()
        body["class_weights"] = rng.uniform(0.5, 2, n_out).tolist()
        body["label_smoothing"] = 0.1
    return body


CASES = [("mse", hidden, last) for hidden in HIDDEN for last in ("identity", "tanh")] + [
    ("binary_cross_entropy", "leaky_relu", "sigmoid"),
    ("cross_entropy", "elu", "softmax"),
]


@pytest.mark.parametrize(("loss", "hidden", "last"), CASES)
def test_the_rebuilt_model_has_the_services_final_loss(client, loss, hidden, last):
    module = snippet()
    body = train_body(np.random.default_rng(len(hidden) * 7 + len(last)), loss, hidden, last)
    response = client.post("/v1/train", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    model = module.rebuild(answer["network"])
    assert set(model.state_dict()) == set(body["network"]["state_dict"])
    assert module.loss(model, body) == pytest.approx(answer["final_loss"], rel=1e-12, abs=1e-12)


def test_class_probability_rows_and_a_linear_without_bias(client):
    module = snippet()
    body = train_body(np.random.default_rng(5), "cross_entropy", "relu", "softmax")
    body["targets"] = np.random.default_rng(6).dirichlet(np.ones(3), size=7).tolist()
    del body["network"]["state_dict"]["0.bias"]
    answer = client.post("/v1/train", json=body).json()
    model = module.rebuild(answer["network"])
    assert model[0].bias is None
    assert module.loss(model, body) == pytest.approx(answer["final_loss"], rel=1e-12, abs=1e-12)


def test_run_as_a_script_it_prints_the_loss(client, tmp_path):
    body = train_body(np.random.default_rng(1), "mse", "sigmoid", "identity")
    answer = client.post("/v1/train", json=body).json()
    (tmp_path / "request.json").write_text(json.dumps(body))
    (tmp_path / "answer.json").write_text(json.dumps(answer))
    done = subprocess.run(
        [sys.executable, str(SNIPPET), str(tmp_path / "request.json"), str(tmp_path / "answer.json")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    last = done.stdout.strip().splitlines()[-1]
    printed = float(last.split()[1].rstrip(","))
    assert printed == pytest.approx(answer["final_loss"], rel=1e-12, abs=1e-12)
    assert last.endswith(repr(answer["final_loss"]))

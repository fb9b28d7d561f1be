"""The command line, run for real as subprocesses."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.support.live_server import free_port, running_server
from tests.support.seed_trace import SEED_LOSSES, SEED_W11

# Live servers, subprocesses or a browser: left out by `pytest -m "not slow"`.
pytestmark = pytest.mark.slow


def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], input=stdin, capture_output=True, text=True, timeout=120)


@pytest.fixture
def seed_file(tmp_path):
    out = cli("example", "seed", "--local")
    assert out.returncode == 0, out.stderr
    path = tmp_path / "seed.json"
    path.write_text(out.stdout)
    return path


def test_example_prints_a_postable_body(seed_file):
    body = json.loads(seed_file.read_text())
    assert body["network"]["layers"][1]["weights"] == [[0.026, 1.0]] and body["iterations"] == 3


def test_train_local_json(seed_file):
    out = cli("train", str(seed_file), "--local", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert [e["loss"] for e in result["trace"]] == pytest.approx(SEED_LOSSES, abs=1e-12)
    assert [e["network"]["layers"][1]["weights"][0][0] for e in result["trace"]] == pytest.approx(SEED_W11, abs=1e-12)
    assert result["status"] == "completed"


def test_train_table_and_progress_against_a_server(seed_file, tmp_path):
    with running_server(tmp_path / "server.log") as (url, _):
        out = cli("train", str(seed_file), "--url", url, "--progress")
        assert out.returncode == 0, out.stderr
        assert "100.0%" in out.stderr and "iteration 3" in out.stderr
        lines = out.stdout.splitlines()
        assert lines[0].split() == ["iteration", "loss", "output"]
        assert [float(line.split()[1]) for line in lines[2:5]] == pytest.approx(SEED_LOSSES, abs=1e-12)
        assert "completed; final loss" in out.stdout
        remote = cli("gradients", str(seed_file), "--url", url, "--json")
    local = cli("gradients", str(seed_file), "--local", "--json")
    assert remote.returncode == local.returncode == 0
    assert json.loads(remote.stdout) == json.loads(local.stdout)


def test_gradients_table_from_stdin():
    body = {"network": {"layers": [{"weights": [[2.0]]}]}, "inputs": [[3.0]], "targets": [[1.0]], "loss": "mse"}
    out = cli("gradients", "-", "--local", stdin=json.dumps(body))
    assert out.returncode == 0, out.stderr
    # d/dw (3w - 1)^2 = 2 * (6 - 1) * 3 = 30; d/db = 10
    assert out.stdout.splitlines()[0] == "loss 25.0"
    assert "30.0" in out.stdout and "10.0" in out.stdout


def test_errors_exit_1_with_the_contract_message():
    bad = {"network": {"layers": [{"weights": [[2.0]]}]}, "inputs": [[3.0, 1.0]], "targets": [[1.0]], "loss": "mse"}
    out = cli("gradients", "-", "--local", stdin=json.dumps(bad))
    # In-process there is no HTTP: the message, without a status line.
    assert out.returncode == 1 and "body.inputs: each input row must have 1 value" in out.stderr and "HTTP" not in out.stderr
    typed = {**bad, "inputs": [["3.0"]]}
    out = cli("gradients", "-", "--local", stdin=json.dumps(typed))
    # The service's own wording, describing what was found.
    assert out.returncode == 1 and "body.inputs.0.0: Input should be a valid number; found the string '3.0'" in out.stderr
    missing = cli("example", "nope", "--local")
    assert missing.returncode == 1 and "no example named 'nope'; expected one of: seed, xor" in missing.stderr
    assert cli("train", "/nonexistent.json", "--local").returncode == 1


def test_check_summarises_and_exits_1_when_a_claimed_number_is_wrong(tmp_path):
    blog = tmp_path / "blog.json"
    blog.write_text(cli("example", "blog", "--for", "check", "--local").stdout)
    out = cli("check", str(blog), "--local")
    assert out.returncode == 1, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "first wrong: iterations[0].output[0][0] (claimed 0.7010307863243558)"
    assert lines[1] == "score 3 of 9"
    assert lines[3].split()[:4] == ["quantity", "correct", "consistent", "points"]
    assert "- parameter_substituted: layer 0's weights[0][1]" in out.stdout
    seed = cli("example", "seed", "--for", "check", "--local").stdout
    out = cli("check", "-", "--local", stdin=seed)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[:2] == ["every claimed number is correct", "score 6 of 6"]
    with running_server(tmp_path / "server.log") as (url, _):
        remote = cli("check", str(blog), "--url", url, "--json")
    local = cli("check", str(blog), "--local", "--json")
    assert remote.returncode == local.returncode == 1
    assert json.loads(remote.stdout) == json.loads(local.stdout)
    assert json.loads(local.stdout)["first_wrong"] == ["iterations", 0, "output", 0, 0]


def test_check_errors_exit_2_as_one_wrong_number_is_1():
    bad = json.loads(cli("example", "seed", "--for", "check", "--local").stdout)
    bad["claimed"]["gradients"] = [None]
    out = cli("check", "-", "--local", stdin=json.dumps(bad))
    assert out.returncode == 2 and "body.claimed.gradients: claimed.gradients must have one entry per layer (2)" in out.stderr
    assert cli("check", "/nonexistent.json", "--local").returncode == 2
    out = cli("check", "-", "--url", f"http://127.0.0.1:{free_port()}", stdin=json.dumps(bad))
    assert out.returncode == 2 and "cannot reach the service" in out.stderr
    assert cli("check", "-", "--local", "--progress", stdin="{}").returncode == 2  # argparse's usage error


def test_a_server_that_is_not_there_is_named_with_what_to_do(seed_file):
    url = f"http://127.0.0.1:{free_port()}"
    out = cli("train", str(seed_file), "--url", url)
    assert out.returncode == 1
    assert f"cannot reach the service at {url}" in out.stderr
    assert "backprop-api serve" in out.stderr and "--local" in out.stderr
    assert "Traceback" not in out.stderr


def test_local_limits_and_overflow_are_said_as_the_service_says_them():
    deep = {"network": {"layers": [{"weights": [[1.0]]}] * 1001}, "inputs": [[1.0]], "targets": [[1.0]], "loss": "mse"}
    out = cli("gradients", "-", "--local", stdin=json.dumps(deep))
    assert out.returncode == 1 and "BACKPROP_MAX_LAYERS" in out.stderr and "Traceback" not in out.stderr
    huge = {"network": {"layers": [{"weights": [[1e308]]}, {"weights": [[1e308]]}]}, "inputs": [[10.0]], "targets": [[1.0]], "loss": "mse"}
    out = cli("gradients", "-", "--local", stdin=json.dumps(huge))
    assert out.returncode == 1 and "overflowed" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize(
    "args",
    [("example", "seed", "--json"), ("example", "seed", "--progress"), ("gradients", "-", "--progress")],
)
def test_options_that_do_nothing_for_a_subcommand_are_refused(args):
    out = cli(*args, "--local", stdin="{}")
    assert out.returncode == 2 and "unrecognized arguments" in out.stderr


def test_graph_prints_json_dot_or_svg_locally_and_from_a_server(tmp_path):
    seed = tmp_path / "seed-graph.json"
    seed.write_text(cli("example", "seed", "--for", "graph", "--local").stdout)
    local = cli("graph", str(seed), "--local")
    assert local.returncode == 0, local.stderr
    graph = json.loads(local.stdout)
    assert graph["value"] == SEED_LOSSES[0] and {"x1", "z_hat", "CE"} <= {n["label"] for n in graph["nodes"]}
    assert set(graph["edges"][0]) == {"from", "to", "local_derivative"}
    dot = cli("graph", str(seed), "--local", "--format", "dot")
    assert dot.returncode == 0 and dot.stdout.startswith("digraph computation {") and dot.stdout.endswith("}\n")
    with running_server(tmp_path / "server.log") as (url, _):
        remote = cli("graph", str(seed), "--url", url)
        remote_dot = cli("graph", str(seed), "--url", url, "--format", "dot")
        remote_svg = cli("graph", "-", "--url", url, "--format", "svg", stdin=seed.read_text())
    assert remote.returncode == remote_dot.returncode == 0
    assert json.loads(remote.stdout) == graph and remote_dot.stdout == dot.stdout
    if shutil.which("dot"):
        assert remote_svg.returncode == 0 and remote_svg.stdout.startswith("<?xml") and "z_hat" in remote_svg.stdout
    else:
        assert remote_svg.returncode == 1 and "Graphviz's dot program is not installed" in remote_svg.stderr
    bad = cli("graph", "-", "--local", stdin=json.dumps({**graph_body(seed), "sample": 3}))
    assert bad.returncode == 1 and "body.sample: sample must be a row of inputs" in bad.stderr


def test_graph_without_graphviz_says_so_locally(tmp_path):
    seed = cli("example", "seed", "--for", "graph", "--local").stdout
    env = {**os.environ, "PATH": str(tmp_path)}  # no dot on it
    out = subprocess.run(
        [sys.executable, "-m", "app.cli", "graph", "-", "--local", "--format", "svg"], input=seed, capture_output=True, text=True, env=env
    )
    assert out.returncode == 1 and "Graphviz's dot program is not installed" in out.stderr and "Traceback" not in out.stderr


def graph_body(path):
    return json.loads(path.read_text())

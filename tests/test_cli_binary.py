"""The command line's binary encoding: safetensors FILEs, ``--encoding binary`` and ``--out FILE.safetensors``.

Most run ``main`` in this process against the in-process app (the client's transport swapped); the
last ones run the command for real, as tests/test_cli.py does, against a live server (slow)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

import app.client
from app.cli import main
from app.config import Settings
from app.examples import example_body
from app.main import create_app
from app.schemas.safetensors import MEDIA_TYPE, decode, encode
from tests.support.live_server import running_server
from tests.support.seed_trace import SEED_LOSSES

LOSS_FIELDS = ("network", "inputs", "targets", "loss")


@pytest.fixture
def sent(monkeypatch) -> Iterator[list[httpx.Request]]:
    """The requests the CLI's client sends, answered by the in-process app (any --url)."""
    requests: list[httpx.Request] = []
    with TestClient(create_app(Settings())) as service:

        def answer(request: httpx.Request) -> httpx.Response:
            requests.append(request)
            r = service.post(request.url.path, content=request.content, headers=dict(request.headers))
            return httpx.Response(r.status_code, content=r.content, headers=r.headers)

        client = app.client.BackpropClient
        monkeypatch.setattr(app.client, "BackpropClient", lambda url, **kw: client(url, transport=httpx.MockTransport(answer), **kw))
        yield requests


def run(capsys, *args: str, stdin: bytes | None = None, monkeypatch=None) -> tuple[int, str, str]:
    if stdin is not None:
        assert monkeypatch is not None
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def binary_body(body: dict[str, Any], path) -> None:
    """``body`` written as a binary body, as a PyTorch user would: its arrays with safetensors' own writer,
    the rest as ``__metadata__["request"]``."""
    save_file = pytest.importorskip("safetensors.numpy").save_file
    tensors = {"inputs": np.array(body["inputs"]), "targets": np.array(body["targets"])}
    for k, layer in enumerate(body["network"]["layers"]):
        tensors[f"network.layers.{k}.weights"] = np.array(layer["weights"])
        if "biases" in layer:
            tensors[f"network.layers.{k}.biases"] = np.array(layer["biases"])
    rest = {k: v for k, v in body.items() if k not in ("inputs", "targets", "network")}
    rest["network"] = {"layers": [{"activation": layer["activation"]} for layer in body["network"]["layers"]]}
    save_file(tensors, str(path), metadata={"request": json.dumps(rest)})


@pytest.fixture
def seed_files(tmp_path) -> tuple[Any, Any]:
    body = {k: example_body("seed", "gradients")[k] for k in LOSS_FIELDS}
    as_json, as_binary = tmp_path / "seed.json", tmp_path / "seed.safetensors"
    as_json.write_text(json.dumps(body))
    binary_body(body, as_binary)
    return as_json, as_binary


@pytest.mark.parametrize("table", [True, False], ids=["table", "json"])
def test_gradients_print_the_same_in_either_encoding_from_either_file(capsys, sent, seed_files, table):
    as_json, as_binary = seed_files
    shown = [] if table else ["--json"]
    expected = run(capsys, "gradients", str(as_json), *shown)
    assert expected[0] == 0 and sent[-1].headers["content-type"] == "application/json"
    assert run(capsys, "gradients", str(as_json), "--encoding", "binary", *shown) == expected
    assert sent[-1].headers["content-type"] == MEDIA_TYPE and "x-safetensors" in sent[-1].headers["accept"]
    assert run(capsys, "gradients", str(as_binary), *shown) == expected
    assert sent[-1].content == as_binary.read_bytes()  # sent as it is
    assert run(capsys, "gradients", str(as_binary), "--local", *shown) == expected
    assert run(capsys, "gradients", str(as_json), "--local", "--encoding", "binary", *shown) == expected
    if table:
        assert expected[1].splitlines()[0] == f"loss {SEED_LOSSES[0]!r}"


def test_a_binary_body_from_standard_input_with_any_name(capsys, sent, seed_files, monkeypatch, tmp_path):
    as_json, as_binary = seed_files
    expected = run(capsys, "gradients", str(as_json), "--json")
    assert run(capsys, "gradients", "-", "--json", stdin=as_binary.read_bytes(), monkeypatch=monkeypatch) == expected
    unnamed = tmp_path / "body.bin"
    unnamed.write_bytes(as_binary.read_bytes())
    assert run(capsys, "gradients", str(unnamed), "--json") == expected


def test_out_writes_the_binary_answer_as_it_is(capsys, sent, seed_files, tmp_path):
    as_json, _ = seed_files
    expected = run(capsys, "gradients", str(as_json), "--json")
    remote, local = tmp_path / "remote.safetensors", tmp_path / "local.safetensors"
    assert run(capsys, "gradients", str(as_json), "--json", "--out", str(remote)) == expected
    assert "x-safetensors" in sent[-1].headers["accept"]
    assert run(capsys, "gradients", str(as_json), "--json", "--local", "--out", str(local)) == expected
    assert local.read_bytes() == remote.read_bytes()  # --local writes what the service answers
    answer = json.loads(expected[1])
    decoded = decode(remote.read_bytes())
    assert decoded.tensors["output"].tolist() == answer["output"]
    for k, g in enumerate(answer["gradients"]):
        assert decoded.tensors[f"gradients.{k}.weights"].tolist() == g["weights"]
        assert decoded.tensors[f"gradients.{k}.biases"].tolist() == g["biases"]
    assert json.loads(decoded.metadata["response"]) == {"loss": answer["loss"], "gradients": [{}, {}]}


def test_train_out_is_a_state_dict_torch_loads(capsys, sent, tmp_path):
    torch = pytest.importorskip("torch")
    safetensors_torch = pytest.importorskip("safetensors.torch")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1)).double()
    fields = {"network": {"activations": ["tanh", "sigmoid"]}, "loss": "binary_cross_entropy", "iterations": 4, "record": []}
    fields["optimizer"] = {"name": "adam", "learning_rate": 0.05}
    body = tmp_path / "net.safetensors"
    x, y = torch.tensor([[0.5, -1.0], [1.0, 2.0]], dtype=torch.float64), torch.tensor([[1.0], [0.0]], dtype=torch.float64)
    safetensors_torch.save_file(model.state_dict() | {"inputs": x, "targets": y}, str(body), metadata={"request": json.dumps(fields)})
    streamed = run(capsys, "train", str(body), "--json")
    assert streamed[0] == 0, streamed[2]
    trained = tmp_path / "trained.safetensors"
    assert run(capsys, "train", str(body), "--json", "--out", str(trained)) == streamed
    model.load_state_dict(safetensors_torch.load_file(str(trained)))
    network = json.loads(streamed[1])["network"]
    assert {k: v.tolist() for k, v in model.state_dict().items()} == network["state_dict"]
    local = tmp_path / "local.safetensors"
    assert run(capsys, "train", str(body), "--local", "--json", "--out", str(local)) == streamed
    assert local.read_bytes() == trained.read_bytes()
    table = run(capsys, "train", str(body), "--out", str(trained))
    assert table[0] == 0 and table[1].splitlines()[0].split() == ["iteration", "loss", "output"] and "completed; final loss" in table[1]


def test_check_and_graph_take_binary_bodies_and_answer_as_json_does(capsys, sent, tmp_path):
    for endpoint, command in (("check", "check"), ("graph", "graph")):
        body = example_body("seed", endpoint)
        path = tmp_path / f"{endpoint}.json"
        path.write_text(json.dumps(body))
        expected = run(capsys, command, str(path))
        assert run(capsys, command, str(path), "--encoding", "binary") == expected
        assert sent[-1].headers["content-type"] == MEDIA_TYPE


def test_binary_errors_say_what_json_errors_say(capsys, sent, tmp_path):
    bad = {**{k: example_body("seed", "gradients")[k] for k in LOSS_FIELDS}, "inputs": [[1.0, 2.0, 3.0]]}
    as_json, as_binary = tmp_path / "bad.json", tmp_path / "bad.safetensors"
    as_json.write_text(json.dumps(bad))
    binary_body(bad, as_binary)
    code, _, said = run(capsys, "gradients", str(as_json))
    assert code == 1 and "body.inputs:" in said
    assert run(capsys, "gradients", str(as_binary)) == (1, "", said)
    assert run(capsys, "gradients", str(as_json), "--encoding", "binary") == (1, "", said)
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}")
    posted = len(sent)
    code, _, said = run(capsys, "gradients", str(broken))
    assert code == 1 and said.startswith(f"backprop-api: {broken} is not a binary body: ") and len(sent) == posted
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"\xff\xfe not json")
    assert (
        run(capsys, "gradients", str(garbage), "--local")[2]
        == f"backprop-api: {garbage} is neither a JSON body nor a safetensors file (not a safetensors file: the header says it is "
        "7,647,240,189,212,950,271 bytes, but only 3 follow its length)\n"
    )
    misplaced = tmp_path / "misplaced.safetensors"
    misplaced.write_bytes(encode({"inputs": np.ones((1, 2))}, {"request": json.dumps({"inputs": [[1.0, 2.0]]})}))
    code, _, said = run(capsys, "gradients", str(misplaced))
    assert code == 1 and "inputs is given twice" in said  # read as the service reads it, before anything is sent


def test_encoding_and_out_belong_to_the_commands_that_send_bodies(capsys):
    with pytest.raises(SystemExit) as usage:
        main(["example", "seed", "--local", "--encoding", "binary"])
    assert usage.value.code == 2
    with pytest.raises(SystemExit):
        main(["check", "-", "--local", "--out", "x.safetensors"])
    capsys.readouterr()


# -- for real: subprocesses and a live server (slow) -------------------------------------------------


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_binary_against_a_live_server(tmp_path, seed_files):
    as_json, as_binary = seed_files
    train = tmp_path / "train.json"
    train.write_text(cli("example", "seed", "--local").stdout)
    local = cli("gradients", str(as_json), "--local", "--json")
    local_train = cli("train", str(train), "--local", "--json")
    assert local.returncode == local_train.returncode == 0, local.stderr + local_train.stderr
    out, trained = tmp_path / "answer.safetensors", tmp_path / "trained.safetensors"
    with running_server(tmp_path / "server.log") as (url, _):
        binary = cli("gradients", str(as_json), "--url", url, "--encoding", "binary", "--json")
        from_file = cli("gradients", str(as_binary), "--url", url, "--json", "--out", str(out))
        streamed = cli("train", str(train), "--url", url, "--encoding", "binary", "--json")
        whole = cli("train", str(train), "--url", url, "--json", "--out", str(trained))
    assert binary.returncode == from_file.returncode == streamed.returncode == whole.returncode == 0, binary.stderr + whole.stderr
    assert binary.stdout == from_file.stdout == local.stdout
    assert streamed.stdout == whole.stdout == local_train.stdout
    assert decode(out.read_bytes()).tensors["output"].tolist() == json.loads(local.stdout)["output"]
    assert (
        decode(trained.read_bytes()).tensors["network.layers.1.weights"].tolist()
        == json.loads(whole.stdout)["network"]["layers"][1]["weights"]
    )


@pytest.mark.parametrize("endpoint", ["gradients", "train", "check"])
def test_example_binary_writes_the_body_as_safetensors(capsysbinary, sent, endpoint):
    """``example NAME --binary`` writes the same body as a safetensors file, which the service answers
    as it answers the JSON one."""
    assert main(["example", "seed", "--for", endpoint, "--local", "--binary"]) == 0
    raw = capsysbinary.readouterr().out
    decoded = decode(raw)
    assert decoded.tensors and "request" in decoded.metadata
    with TestClient(create_app(Settings())) as service:
        as_json = service.post(f"/v1/{endpoint}", json=example_body("seed", endpoint))
        as_binary = service.post(f"/v1/{endpoint}", content=raw, headers={"content-type": MEDIA_TYPE})
    assert as_binary.status_code == as_json.status_code == 200
    assert as_binary.json() == as_json.json()


def test_gradients_takes_the_binary_train_example(capsysbinary, sent, tmp_path):
    """``example seed --binary`` is a /v1/train body; ``gradients`` leaves its training fields out, as it
    does for the JSON one."""
    assert main(["example", "seed", "--local", "--binary"]) == 0
    path = tmp_path / "seed.safetensors"
    path.write_bytes(capsysbinary.readouterr().out)
    assert main(["gradients", str(path), "--json"]) == 0
    as_binary = capsysbinary.readouterr().out
    (tmp_path / "seed.json").write_text(json.dumps(example_body("seed", "train")))
    assert main(["gradients", str(tmp_path / "seed.json"), "--json"]) == 0
    assert as_binary == capsysbinary.readouterr().out


def test_example_binary_refuses_a_terminal(monkeypatch, capsys):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert main(["example", "seed", "--local", "--binary"]) == 1
    assert "not the terminal" in capsys.readouterr().err

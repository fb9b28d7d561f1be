"""The README's two commands are the ones that work: CI runs the test command verbatim."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def sh_blocks(text: str) -> list[str]:
    return [b.strip() for b in re.findall(r"```sh\n(.*?)```", text, flags=re.S)]


def test_ci_runs_the_readme_test_command():
    readme = sh_blocks((ROOT / "README.md").read_text())
    test_command = next(b for b in readme if "pytest" in b)
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in ci


def test_readme_serve_command_uses_the_console_script():
    readme = sh_blocks((ROOT / "README.md").read_text())
    serve = next(b for b in readme if "serve" in b)
    assert serve == "python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/backprop-api serve"


def test_readme_documents_every_setting():
    from app.config import Settings

    readme = (ROOT / "README.md").read_text()
    for name in Settings.model_fields:
        assert f"BACKPROP_{name.upper()}" in readme, name


def test_readme_names_only_settings_that_exist():
    """Every BACKPROP_ variable the README names is a setting (or one of the tools' own variables)."""
    from app.config import Settings

    named = set(re.findall(r"BACKPROP_(\w+)", (ROOT / "README.md").read_text()))
    known = {name.upper() for name in Settings.model_fields} | {"URL", "README_SCREENSHOT"}
    assert named <= known, named - known


@pytest.mark.slow
def test_readme_python_example_runs(tmp_path, capsys):
    from tests.support.live_server import running_server

    block = re.search(r"## Use from Python.*?```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S).group(1)
    with running_server(tmp_path / "server.log") as (url, _):
        exec(compile(block.replace("http://127.0.0.1:8000", url), "README", "exec"), {})
    printed = capsys.readouterr().out
    assert "0.35520347518814194" in printed
    assert "['body', 'inputs'] each input row must have 2 values" in printed
    assert "status='completed'" in printed


@pytest.mark.slow
def test_readme_cli_output_is_real(tmp_path):
    import subprocess
    import sys

    seed = subprocess.run(
        [sys.executable, "-m", "app.cli", "example", "seed", "--local"], capture_output=True, text=True, check=True
    ).stdout
    (tmp_path / "seed.json").write_text(seed)
    printed = subprocess.run(
        [sys.executable, "-m", "app.cli", "train", str(tmp_path / "seed.json"), "--local"], capture_output=True, text=True, check=True
    ).stdout
    shown = re.search(r"`train` on the seed prints:\n\n```\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S).group(1)
    assert printed == shown


def _curl_answers_as_shown(client, path: str, body_end: str, shown: str) -> None:
    """The README's ``curl -X POST`` of ``path`` (its ``-d`` body up to ``body_end``), posted here, answers
    exactly the block that ``shown`` (a pattern with one group) finds."""
    text = (ROOT / "README.md").read_text()
    body = re.search(rf"curl -s -X POST localhost:8000{path} -H 'Content-Type: application/json' -d '(.*?)'{body_end}", text, flags=re.S)
    expected = re.search(shown, text, flags=re.S)
    assert body is not None and expected is not None
    r = client.post(path, content=body.group(1), headers={"content-type": "application/json"})
    assert r.text == expected.group(1)


def test_readme_curl_output_is_real(client):
    _curl_answers_as_shown(client, "/v1/train", r"\n```", r"```json\n(\{\"status\".*?)\n```")


def _fences(text: str) -> list[tuple[int, str]]:
    return [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.lstrip().startswith("```")]


def test_every_fenced_block_is_well_formed():
    for doc in (ROOT / "README.md", ROOT / "docs" / "contract.md", ROOT / "bench" / "README.md"):
        fences = _fences(doc.read_text())
        assert len(fences) % 2 == 0, (doc.name, fences)
        for (n_open, opening), (n_close, closing) in zip(fences[::2], fences[1::2]):
            # An opening fence names at most a language; a closing one is the bare fence, alone on its line.
            assert re.fullmatch(r"\s*```[a-z]*", opening), (doc.name, n_open, opening)
            assert re.fullmatch(r"\s*```", closing), (doc.name, n_close, closing)
            assert len(opening) - len(opening.lstrip()) == len(closing) - len(closing.lstrip()), (doc.name, n_open)


def test_the_streaming_example_shows_the_real_first_line(client):
    text = (ROOT / "README.md").read_text()
    shown = re.search(r"prints (\d+) lines, from `(\{.*?\})`", text)
    xor = client.get("/v1/examples/xor").json()
    with client.stream("POST", "/v1/train", json=xor, headers={"Accept": "application/x-ndjson"}) as r:
        lines = list(r.iter_lines())
    assert int(shown.group(1)) == len(lines) and shown.group(2) == lines[0]


def test_the_readme_links_only_to_files_that_exist():
    for target in re.findall(r"\]\(((?!https?:)[^)#]+)\)", (ROOT / "README.md").read_text()):
        assert (ROOT / target).exists(), target


def test_readme_example_pipe_output_is_real(client):
    text = (ROOT / "README.md").read_text()
    url = re.search(r"curl -s '(localhost:8000/v1/examples/seed\?for=gradients)'", text).group(1)
    shown = re.search(r"```json\n(\{\"loss\".*?)\n```", text, flags=re.S).group(1)
    body = client.get(url.removeprefix("localhost:8000")).content
    assert client.post("/v1/gradients", content=body, headers={"content-type": "application/json"}).text == shown


def test_readme_class_index_example_is_real(client):
    _curl_answers_as_shown(client, "/v1/gradients", r"\n", r"```json\n\s*(\{\"loss\":1\.49.*?)\n\s*```")


def test_readme_check_of_the_blog_post_is_real(tmp_path):
    import subprocess
    import sys

    body = subprocess.run(
        [sys.executable, "-m", "app.cli", "example", "blog", "--for", "check", "--local"], capture_output=True, text=True, check=True
    ).stdout
    (tmp_path / "blog.json").write_text(body)
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "check", str(tmp_path / "blog.json"), "--local"], capture_output=True, text=True
    )
    assert done.returncode == 1, done.stderr
    shown = re.search(
        r"prints the same answer as a summary \(and exits 1: a number is wrong\):\n\n```\n(.*?)```",
        (ROOT / "README.md").read_text(),
        flags=re.S,
    )
    assert shown is not None and done.stdout == shown.group(1)


def _section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    return text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_readme_binary_curl_examples_are_real(client):
    """The binary section's curl commands, done here: the example as safetensors, posted as it is; its
    JSON answer and its binary answer's header as shown."""
    section = _section("Binary tensors and PyTorch models")
    shown = re.findall(r"```json\n(.*?)\n```", section, flags=re.S)
    assert "-o seed.safetensors" in section and "--data-binary @seed.safetensors" in section
    raw = client.get("/v1/examples/seed?for=gradients", headers={"accept": "application/x-safetensors"}).content
    answer = client.post("/v1/gradients", content=raw, headers={"content-type": "application/x-safetensors"})
    assert answer.text == shown[0]
    binary = client.post(
        "/v1/gradients", content=raw, headers={"content-type": "application/x-safetensors", "accept": "application/x-safetensors"}
    ).content
    assert binary[8 : 8 + int.from_bytes(binary[:8], "little")].decode().rstrip() == shown[1]


@pytest.mark.slow
def test_readme_pytorch_round_trip_runs(tmp_path, capsys):
    pytest.importorskip("torch")
    pytest.importorskip("safetensors")
    from tests.support.live_server import running_server

    section = _section("Binary tensors and PyTorch models")
    block = re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)
    printed_shown = re.search(r"prints\n\n```\n(.*?)```", section, flags=re.S).group(1)
    with running_server(tmp_path / "server.log") as (url, _):
        exec(compile(block.replace("http://127.0.0.1:8000", url), "README", "exec"), {})
    printed = capsys.readouterr().out
    assert printed == printed_shown
    ours, torchs = (float(line) for line in printed.split())
    assert abs(ours - torchs) <= 1e-15

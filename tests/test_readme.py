"""The README's two commands are the ones that work: CI runs the test command verbatim."""

import re
from pathlib import Path

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

"""A newcomer on a fresh clone, following the README verbatim (standard library only).

    python3 .ci/newcomer.py

Clones the repository into a temporary folder, runs the README's install-and-serve command
there exactly as written (so the venv has the package without any extras), waits for the
server, then runs every line of the README's "Command line" block and its Python example
with that venv, and checks the printed output the README shows. CI runs it (`.ci/run`):
the test suite's own venv has the test extras, which would hide a missing dependency.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def blocks(text: str, lang: str) -> list[str]:
    return [b for b in re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)]


def wait_for(url: str, seconds: float, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"newcomer: the serve command exited with {server.returncode} before serving")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(1)
    sys.exit(f"newcomer: nothing answered {url} within {seconds:.0f} s")


def run(command: str, cwd: Path, expected: int = 0) -> str:
    done = subprocess.run(["bash", "-c", command], cwd=cwd, capture_output=True, text=True, timeout=300)
    if done.returncode != expected:
        sys.exit(f"newcomer: `{command}` exited {done.returncode}, not {expected}:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def main() -> int:
    readme = (ROOT / "README.md").read_text()
    serve = next(b.strip() for b in blocks(readme, "sh") if "backprop-api serve" in b)
    cli = next(b for b in re.findall(r"## Command line\n\n```sh\n(.*?)```", readme, flags=re.S))
    shown_train = re.search(r"`train` on the seed prints:\n\n```\n(.*?)```", readme, flags=re.S).group(1)
    python = re.search(r"## Use from Python.*?```python\n(.*?)```", readme, flags=re.S).group(1)

    with tempfile.TemporaryDirectory(prefix="newcomer-") as tmp:
        clone = Path(tmp) / "backprop-api"
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH"))}
        print(f"newcomer: {serve}", flush=True)
        log = (Path(tmp) / "serve.log").open("wb")
        server = subprocess.Popen(["bash", "-c", serve], cwd=clone, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_for("http://127.0.0.1:8000/healthz", 900, server)
            for line in cli.splitlines():
                command, _, comment = (part.strip() for part in line.partition("#"))
                if not command:
                    continue
                # A command the README says exits non-zero ("exits 1: ...") must exit so.
                exits = re.search(r"\bexits (\d+)", comment)
                print(f"newcomer: {command}", flush=True)
                out = run(command, clone, int(exits.group(1)) if exits else 0)
                if command.endswith("train seed.json") and out != shown_train:
                    sys.exit(f"newcomer: `{command}` printed\n{out}\nbut the README shows\n{shown_train}")
            print("newcomer: the README's Python example", flush=True)
            out = run(f".venv/bin/python - <<'EOF'\n{python}EOF", clone)
            for expected in ("0.35520347518814194", "status='completed'"):
                if expected not in out:
                    sys.exit(f"newcomer: the Python example printed\n{out}\nwithout {expected}")
        except SystemExit:
            log.flush()
            print((Path(tmp) / "serve.log").read_text()[-5000:], file=sys.stderr)
            raise
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
            log.close()
    print("newcomer: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())

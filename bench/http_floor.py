"""HTTP: /v1/gradients on the seed network vs a validation-only hello-world POST of the same body.

    .venv/bin/python bench/http_floor.py [--duration 10]

Both are served by the same uvicorn configuration (one worker) and loaded by wrk on
loopback (2 threads, 16 connections) in the same run, alternating, best of 3 rounds.
Also shows both sides of where work runs: /v1/gradients with the default
BACKPROP_INLINE_WORK (computed on the event loop) and with 0 (always in a thread).
Needs wrk.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from app.api.examples import example_body  # noqa: E402
from bench.server import serve  # noqa: E402

SEED = {k: example_body("seed")[k] for k in ("network", "inputs", "targets", "loss", "reduction")}

LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = io.open(os.getenv("BODY_FILE")):read("*a")
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %.3f %d\\n", summary.requests, summary.duration / 1e6,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


def wrk(url: str, seconds: int, body_file: str, script: str) -> float:
    out = subprocess.run(
        ["wrk", "-t2", "-c16", f"-d{seconds}s", "-s", script, url],
        capture_output=True, text=True, check=True, env={"BODY_FILE": body_file, "PATH": "/usr/bin:/bin"},
    ).stdout
    requests, duration, errors = re.search(r"RESULT (\d+) ([\d.]+) (\d+)", out).groups()  # type: ignore[union-attr]
    assert int(errors) == 0, out
    return int(requests) / float(duration)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        body_file, script = Path(tmp) / "body.json", Path(tmp) / "post.lua"
        body_file.write_text(json.dumps(SEED))
        script.write_text(LUA)
        best = {"hello": 0.0, "gradients": 0.0, "gradients_threaded": 0.0}
        with serve("bench.hello_app:app") as (hello, _, _), serve() as (ours, _, _), serve(env={"BACKPROP_INLINE_WORK": "0"}) as (threaded, _, _):
            for _ in range(args.rounds):
                best["hello"] = max(best["hello"], wrk(f"{hello}/hello", args.duration, str(body_file), str(script)))
                best["gradients"] = max(best["gradients"], wrk(f"{ours}/v1/gradients", args.duration, str(body_file), str(script)))
                best["gradients_threaded"] = max(
                    best["gradients_threaded"], wrk(f"{threaded}/v1/gradients", args.duration, str(body_file), str(script))
                )
    figures = {
        "body_bytes": len(json.dumps(SEED)),
        **{f"{k}_rps": round(v) for k, v in best.items()},
        "gradients_over_hello": round(best["gradients"] / best["hello"], 2),
        "threaded_over_hello": round(best["gradients_threaded"] / best["hello"], 2),
    }
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()

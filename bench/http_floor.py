"""HTTP: /v1/gradients on the seed network vs a validation-only hello-world POST of the same body.

    .venv/bin/python bench/http_floor.py [--duration 4] [--rounds 7]

Both are served by the same uvicorn configuration (one worker) and loaded by wrk on
loopback (one thread, 16 connections) in the same run. This machine's speed drifts by
tens of percent within minutes, so each measurement of ours is divided by the mean of
the hello measurements taken just before and just after it, and the median of those
ratios is reported (best-of-rounds ratios swing with the drift). Also shows both sides
of where work runs: /v1/gradients with the default BACKPROP_INLINE_WORK (computed on the
event loop) and with 0 (always in a thread). Needs wrk.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from app.examples import example_body  # noqa: E402
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
        ["wrk", "-t1", "-c16", f"-d{seconds}s", "-s", script, url],
        capture_output=True,
        text=True,
        check=True,
        env={"BODY_FILE": body_file, "PATH": "/usr/bin:/bin"},
    ).stdout
    requests, duration, errors = re.search(r"RESULT (\d+) ([\d.]+) (\d+)", out).groups()  # type: ignore[union-attr]
    assert int(errors) == 0, out
    return int(requests) / float(duration)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=4, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        body_file, script = Path(tmp) / "body.json", Path(tmp) / "post.lua"
        body_file.write_text(json.dumps(SEED))
        script.write_text(LUA)
        with (
            serve("bench.hello_app:app") as (hello, _, _),
            serve() as (ours, _, _),
            serve(env={"BACKPROP_INLINE_WORK": "0"}) as (threaded, _, _),
        ):
            urls = {"gradients": f"{ours}/v1/gradients", "gradients_threaded": f"{threaded}/v1/gradients"}

            def hello_rps() -> float:
                return wrk(f"{hello}/hello", args.duration, str(body_file), str(script))

            rps: dict[str, list[float]] = {"hello": [hello_rps()], **{k: [] for k in urls}}
            ratios: dict[str, list[float]] = {k: [] for k in urls}
            for _ in range(args.rounds):
                for key, url in urls.items():
                    rps[key].append(wrk(url, args.duration, str(body_file), str(script)))
                    rps["hello"].append(hello_rps())
                    ratios[key].append(rps[key][-1] / statistics.mean(rps["hello"][-2:]))
    figures = {
        "body_bytes": len(json.dumps(SEED)),
        **{f"{k}_rps_median": round(statistics.median(v)) for k, v in rps.items()},
        "gradients_over_hello": round(statistics.median(ratios["gradients"]), 2),
        "threaded_over_hello": round(statistics.median(ratios["gradients_threaded"]), 2),
        "gradients_over_hello_range": [round(min(ratios["gradients"]), 2), round(max(ratios["gradients"]), 2)],
    }
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()

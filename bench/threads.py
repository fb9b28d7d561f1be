"""Worker and BLAS-thread defaults: one training step of the largest case with 1 or 2 BLAS threads,
with the other core idle or busy (as it is under load, with a second worker or request).

    .venv/bin/python bench/threads.py

Each configuration runs in its own process (thread counts are fixed when numpy loads).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STEP = """
import sys, time
sys.path.insert(0, {root!r})
from bench.engine import make_case
from app.nn.optimizers import SGD
from app.nn.training import train
layers, x, y = make_case([256, 512, 512, 10], "relu", "softmax", "cross_entropy", 256)
train(layers, x, y, "cross_entropy", "mean", SGD(0.01), 3)
best = min((lambda t: (train(layers, x, y, "cross_entropy", "mean", SGD(0.01), 10), time.perf_counter() - t)[1])(time.perf_counter()) for _ in range(3))
print(best / 10 * 1e6)
"""


def step_us(threads: int, busy: bool) -> float:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        out = subprocess.run([sys.executable, "-c", STEP.format(root=str(ROOT))], env=env, capture_output=True, text=True, check=True)
    finally:
        if hog:
            hog.kill()
            hog.wait()
    return float(out.stdout.strip())


def main() -> None:
    rows = {}
    for busy in (False, True):
        for threads in (1, 2):
            rows[f"{threads}_thread{'s' if threads > 1 else ''}_{'busy' if busy else 'idle'}_us"] = round(step_us(threads, busy))
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()

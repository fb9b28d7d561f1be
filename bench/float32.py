"""float32 against float64 in the engine: one pass with gradients, and a training step.

    .venv/bin/python bench/float32.py [--quick] [--json PATH]

The 256-512-512-10 relu/softmax network of bench/engine.py (cross_entropy, batch 256):
``evaluate`` (forward, loss and every gradient, as /v1/gradients computes) and ``train``
(forward, backward and an SGD or Adam step per iteration, as /v1/train computes), each in
float64 (the default) and in float32 (``dtype=np.float32``), on one BLAS thread, measured in
this process, interleaved, best of several rounds. Prints milliseconds per pass or per
iteration and the ratio float64 / float32 (> 1: float32 is faster). Nothing is asserted.
"""

from __future__ import annotations

import os

# One BLAS thread, fixed before numpy is imported (as bench/engine.py).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from app.nn.network import Layer, evaluate  # noqa: E402
from app.nn.optimizers import SGD, Adam  # noqa: E402
from app.nn.training import train  # noqa: E402

SIZES = [256, 512, 512, 10]
BATCH = 256
DTYPES = {"float64": np.float64, "float32": np.float32}


def make_case(seed: int = 0) -> tuple[list[Layer], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    acts = ["relu"] * (len(SIZES) - 2) + ["softmax"]
    layers = [Layer(rng.normal(0, 1 / np.sqrt(i), (o, i)), np.zeros(o), a) for i, o, a in zip(SIZES, SIZES[1:], acts)]
    x = rng.normal(size=(BATCH, SIZES[0]))
    y = np.eye(SIZES[-1])[rng.integers(0, SIZES[-1], BATCH)]
    return layers, x, y


def gradients(layers: list[Layer], x: np.ndarray, y: np.ndarray, dtype: type, n: int) -> None:
    for _ in range(n):
        evaluate(layers, x, y, "cross_entropy", "mean", dtype=dtype)


def train_with(optimizer: SGD | Adam) -> Callable[[list[Layer], np.ndarray, np.ndarray, type, int], None]:
    def run(layers: list[Layer], x: np.ndarray, y: np.ndarray, dtype: type, n: int) -> None:
        train(layers, x, y, "cross_entropy", "mean", optimizer, n, dtype=dtype)

    return run


CASES: list[tuple[str, Callable[[list[Layer], np.ndarray, np.ndarray, type, int], None], int, str]] = [
    # name, what runs n times, n, per what
    ("gradients (evaluate)", gradients, 20, "pass"),
    ("train step, sgd", train_with(SGD(0.01)), 20, "iteration"),
    ("train step, adam", train_with(Adam(0.001)), 20, "iteration"),
]


def timed(fn: Callable[..., None], args: tuple[object, ...], n: int) -> float:
    """Milliseconds per unit of one run of ``n`` units."""
    t = time.perf_counter()
    fn(*args, n)
    return (time.perf_counter() - t) / n * 1e3


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer iterations and rounds")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    layers, x, y = make_case()
    rounds = 2 if args.quick else 5
    rows = []
    for name, fn, n, unit in CASES:
        if args.quick:
            n = max(3, n // 4)
        for dtype in DTYPES.values():  # warm-up: buffers, BLAS
            fn(layers, x, y, dtype, 2)
        best = {key: float("inf") for key in DTYPES}
        for _ in range(rounds):  # interleaved rounds, best of all
            for key, dtype in DTYPES.items():
                best[key] = min(best[key], timed(fn, (layers, x, y, dtype), n))
        row = {
            "case": f"{'-'.join(map(str, SIZES))} relu/softmax, batch {BATCH}: {name}",
            "unit": unit,
            **{f"{key}_ms": round(v, 3) for key, v in best.items()},
            "float64_over_float32": round(best["float64"] / best["float32"], 2),
        }
        rows.append(row)
        print(json.dumps(row))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()

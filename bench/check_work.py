"""/v1/check's work estimate against its real cost: is a check bounded by BACKPROP_MAX_WORK like the rest?

    .venv/bin/python bench/check_work.py

The check runs a plain program (app/nn/steps.py) once for the truth, once from the learner's
numbers and once per variant of its search; app.nn.check.program_work estimates one run in
the engine's unit (one multiply-add, about 0.5 ns: BACKPROP_MAX_WORK 1e10 is a few seconds).
This measures a run on networks from tiny to wide and prints the nanoseconds each estimated
unit took, beside the same ratio for the engine's own /v1/gradients pass (app.nn.network.evaluate
and the service's batch x parameters estimate): the check's ratio should be no higher.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import sys  # noqa: E402
from functools import partial  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import best  # noqa: E402

from app.nn.check import program_work  # noqa: E402
from app.nn.losses import LOSSES  # noqa: E402
from app.nn.network import Layer, evaluate  # noqa: E402
from app.nn.steps import Steps, run  # noqa: E402

CASES = [(1, [2, 2, 1]), (100, [2, 2, 1]), (100_000, [3, 4, 1]), (10_000, [8, 8, 2]), (1_000, [20, 30, 10]), (256, [256, 512, 512, 10])]


def main() -> None:
    rng = np.random.default_rng(0)
    print(f"{'batch':>7} {'sizes':<20} {'run ms':>8} {'est units':>12} {'ns/unit':>8} {'engine ns/unit':>15}")
    for batch, sizes in CASES:
        layers = tuple(Layer(rng.normal(size=(o, i)) / np.sqrt(i), rng.normal(size=o), "tanh") for i, o in zip(sizes, sizes[1:]))
        x, y = rng.normal(size=(batch, sizes[0])), rng.normal(size=(batch, sizes[-1]))
        repeats = 3 if batch * sum(sizes) > 1e6 else 20
        t_run = best(partial(run, layers, x, y, LOSSES["mse"], "mean", Steps(), {}, 1), repeats)
        t_engine = best(partial(evaluate, layers, x, y, "mse", "mean"), repeats)
        estimate = program_work([layer.shape for layer in layers], batch)
        params = sum(o * (i + 1) for i, o in zip(sizes, sizes[1:]))
        engine_estimate = max(batch * params, 10_000 * len(layers))
        print(
            f"{batch:>7} {str(sizes):<20} {t_run * 1e3:>8.2f} {estimate:>12,} {t_run * 1e9 / estimate:>8.3f} "
            f"{t_engine * 1e9 / engine_estimate:>15.3f}"
        )


if __name__ == "__main__":
    main()

"""Engine vs PyTorch eager (and a straightforward numpy loop, and JAX where installed).

    .venv/bin/python bench/engine.py [--quick]

Float64 training step (forward + backward + SGD, loss kept every iteration), one BLAS
thread for everyone, all measured in this process, interleaved, best of several
repeats. Prints microseconds per iteration and the ratio torch / ours (> 1: we are
faster). Needs torch (`pip install torch==2.13.0`); JAX is optional.
"""

from __future__ import annotations

import os

# One BLAS thread for numpy and torch alike, fixed before either is imported.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from app.nn.network import Layer  # noqa: E402
from app.nn.optimizers import SGD  # noqa: E402
from app.nn.training import train  # noqa: E402

CASES = [
    # name, sizes, hidden activation, last activation, loss, batch, iterations
    ("2-2-1 relu/sigmoid, batch 1", [2, 2, 1], "relu", "sigmoid", "binary_cross_entropy", 1, 20000),
    ("2-16-16-1 tanh, batch 4", [2, 16, 16, 1], "tanh", "sigmoid", "binary_cross_entropy", 4, 10000),
    ("784-128-10 relu/softmax, batch 64", [784, 128, 10], "relu", "softmax", "cross_entropy", 64, 300),
    ("256-512-512-10 relu/softmax, batch 256", [256, 512, 512, 10], "relu", "softmax", "cross_entropy", 256, 30),
]


def make_case(sizes, hidden, last, loss, batch, seed=0):
    rng = np.random.default_rng(seed)
    acts = [hidden] * (len(sizes) - 2) + [last]
    layers = [Layer(rng.normal(0, 1 / np.sqrt(i), (o, i)), np.zeros(o), a) for i, o, a in zip(sizes, sizes[1:], acts)]
    x = rng.normal(size=(batch, sizes[0]))
    if loss == "cross_entropy":
        y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], batch)]
    else:
        y = rng.integers(0, 2, (batch, sizes[-1])).astype(float)
    return layers, x, y


def ours(layers, x, y, loss, iterations):
    train(layers, x, y, loss, "mean", SGD(0.01), iterations)


def straightforward_numpy(layers, x, y, loss, iterations):
    """What a person writes first: a list of arrays, allocation on every operation."""
    ws = [l.weights.copy() for l in layers]
    bs = [l.biases.copy() for l in layers]
    losses = []
    for _ in range(iterations):
        acts, pres = [x], []
        for k, (w, b) in enumerate(zip(ws, bs)):
            z = acts[-1] @ w.T + b
            pres.append(z)
            name = layers[k].activation
            if k < len(ws) - 1:
                acts.append(np.maximum(z, 0) if name == "relu" else np.tanh(z))
        z = pres[-1]
        if loss == "cross_entropy":
            s = z - z.max(axis=1, keepdims=True)
            logp = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
            losses.append(-(y * logp).sum() / len(z))
            delta = (np.exp(logp) - y) / len(z)
        else:
            losses.append(np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))))
            delta = (1 / (1 + np.exp(-z)) - y) / z.size
        for k in range(len(ws) - 1, -1, -1):
            gw, gb = delta.T @ acts[k], delta.sum(axis=0)
            if k > 0:
                da = delta @ ws[k]
                delta = da * (pres[k - 1] > 0) if layers[k - 1].activation == "relu" else da * (1 - acts[k] ** 2)
            ws[k] -= 0.01 * gw
            bs[k] -= 0.01 * gb


def torch_eager(layers, x, y, loss, iterations):
    import torch

    F = torch.nn.functional
    params = []
    for l in layers:
        params += [torch.tensor(l.weights, requires_grad=True), torch.tensor(l.biases, requires_grad=True)]
    opt = torch.optim.SGD(params, lr=0.01)
    xt, yt = torch.tensor(x), torch.tensor(y)
    losses = []
    for _ in range(iterations):
        opt.zero_grad()
        a = xt
        for k, l in enumerate(layers):
            z = a @ params[2 * k].T + params[2 * k + 1]
            if k < len(layers) - 1:
                a = torch.relu(z) if l.activation == "relu" else torch.tanh(z)
        if loss == "cross_entropy":
            value = F.cross_entropy(z, yt)
        else:
            value = F.binary_cross_entropy_with_logits(z, yt)
        value.backward()
        opt.step()
        losses.append(value.detach())


def best_of(fn, args, iterations, repeats):
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn(*args, iterations)
        best = min(best, time.perf_counter() - t)
    return best / iterations * 1e6


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer iterations and repeats")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    rows = []
    for name, sizes, hidden, last, loss, batch, iterations in CASES:
        if args.quick:
            iterations = max(3, iterations // 10)
        layers, x, y = make_case(sizes, hidden, last, loss, batch)
        contenders = {"ours": ours, "numpy": straightforward_numpy, "torch": torch_eager}
        times = {k: float("inf") for k in contenders}
        for _ in range(2 if args.quick else 3):  # interleaved rounds, best of all
            for key, fn in contenders.items():
                times[key] = min(times[key], best_of(fn, (layers, x, y, loss), iterations, 1))
        row = {"case": name, **{f"{k}_us": round(v, 2) for k, v in times.items()}}
        row["torch_over_ours"] = round(times["torch"] / times["ours"], 2)
        row["numpy_over_ours"] = round(times["numpy"] / times["ours"], 2)
        rows.append(row)
        print(json.dumps(row))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()

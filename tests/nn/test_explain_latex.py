"""Every LaTeX string /v1/explain's engine writes (app/nn/explain.py, each loss's explain_output)
renders with KaTeX's own parser, strict: random explanations of random small networks with every
activation and loss, both reductions, every layer and kind of parameter, cross_entropy's options,
and numbers that overflow, underflow or have no finite value.

KaTeX runs in node from ``tests/support/katex`` (``npm ci --prefix tests/support/katex``, which
.ci/run does): this test is skipped, saying so, only when node or that install is missing."""

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from app.nn.activations import ACTIVATIONS
from app.nn.explain import explain
from app.nn.losses import LOSSES, class_index_targets
from app.nn.network import Layer
from tests.support.random_networks import random_layers

KATEX = Path(__file__).resolve().parents[1] / "support" / "katex"
ELEMENTWISE = sorted(name for name, act in ACTIVATIONS.items() if act.elementwise)

pytestmark = pytest.mark.slow


def katex_errors(strings: list[str]) -> list[str | None]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the KaTeX check runs KaTeX in node")
    installed = KATEX / "node_modules" / "katex" / "package.json"
    if not installed.exists():
        pytest.skip(f"KaTeX is not installed: run `npm ci --prefix {KATEX.relative_to(KATEX.parents[2])}`")
    pinned = json.loads((KATEX / "package.json").read_text())["dependencies"]["katex"]
    version = json.loads(installed.read_text())["version"]
    assert version == pinned, f"KaTeX {version} is installed, {pinned} pinned: run npm ci again"
    done = subprocess.run([node, str(KATEX / "parse.js")], input=json.dumps(strings), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    errors = json.loads(done.stdout)
    assert len(errors) == len(strings)
    return errors


def every_latex(e):
    return [st.latex for s in e.samples for st in s.steps] + [e.reduction_latex]


def explanations(rng):
    """Explanations of random networks: every loss with each last activation it takes, every
    elementwise activation in a hidden layer, both reductions, every layer and kind."""
    for loss in LOSSES.values():
        lasts = [loss.requires_activation] if loss.requires_activation else sorted(ACTIVATIONS)
        for last in lasts:
            for reduction in ("mean", "sum"):
                depth = int(rng.integers(1, 4))
                sizes = [int(n) for n in rng.integers(1, 4, size=depth + 1)]
                if last == "softmax" or loss.per_row:
                    sizes[-1] = max(sizes[-1], 2)
                hidden = [ELEMENTWISE[int(i)] for i in rng.integers(0, len(ELEMENTWISE), size=depth - 1)]
                layers = random_layers(rng, sizes, [*hidden, last])
                batch = int(rng.integers(1, 4))
                x = rng.normal(size=(batch, sizes[0]))
                y = loss.sample_targets(rng, (batch, sizes[-1]))
                for k, layer in enumerate(layers):
                    j, i = int(rng.integers(layer.shape[0])), int(rng.integers(layer.shape[1]))
                    yield explain(layers, x, y, loss, reduction, k, "weights", (j, i))
                    yield explain(layers, x, y, loss, reduction, k, "biases", (j,))


def cross_entropy_options(rng):
    w = [0.5, 2.0, 1.25]
    layers = random_layers(rng, [2, 3, 3], ["leaky_relu", "softmax"])
    x = rng.normal(size=(3, 2))
    for options in (
        {"class_weights": w},
        {"label_smoothing": 0.1},
        {"index_targets": True},
        {"class_weights": w, "label_smoothing": 2e-5, "index_targets": True},
    ):
        loss = LOSSES["cross_entropy"].bind(**options)
        y = class_index_targets([2, 0, 1], 3) if options.get("index_targets") else rng.dirichlet(np.ones(3), size=3)
        for reduction in ("mean", "sum"):
            yield explain(layers, x, y, loss, reduction, 1, "weights", (1, 2))
            yield explain(layers, x, y, loss, reduction, 0, "biases", (0,))


def extreme_numbers():
    """A saturated sigmoid (no finite dl/dz_hat: n/a), huge and tiny numbers (written with powers of ten)."""
    layers = [Layer(np.array([[1e3, -2e-7]]), np.array([5e-9]), "sigmoid")]
    yield explain(layers, np.array([[50.0, 3e10]]), np.array([[0.0]]), "binary_cross_entropy", "mean", 0, "weights", (0, 1))
    layers = [Layer(np.array([[1e150]]), np.zeros(1), "identity"), Layer(np.array([[1e-160]]), np.zeros(1), "tanh")]
    yield explain(layers, np.array([[2.0]]), np.array([[0.5]]), "mse", "sum", 0, "weights", (0, 0))


def test_every_step_renders_with_katex(rng):
    strings = []
    for e in [*explanations(rng), *cross_entropy_options(rng), *extreme_numbers()]:
        strings.extend(every_latex(e))
    assert any(r"\text{n/a}" in s for s in strings) and any(r"\times 10^{" in s for s in strings)
    assert any(r"\operatorname{leaky\_relu}" in s for s in strings)
    strings = sorted(set(strings))
    errors = katex_errors(strings)
    failed = [(s, err) for s, err in zip(strings, errors) if err is not None]
    assert not failed, "\n".join(f"{s}\n  -> {err}" for s, err in failed[:10])


def test_katex_does_refuse_broken_latex():
    """The check has teeth: KaTeX (strict) refuses what is not valid."""
    errors = katex_errors([r"\frac{1}{2}", r"\frac{1}{", r"\notacommand{x}", "a^b^c"])
    assert errors[0] is None and all(errors[1:]), errors

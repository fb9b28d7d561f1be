"""The computation graph as DOT (app/render/graph_dot.py): every node and edge, numbers to 4
significant figures, the same bytes for the same graph, and text Graphviz parses."""

import json
import shutil
import subprocess

import numpy as np
import pytest

from app.nn.graph import build_graph
from app.nn.network import Layer
from app.render.graph_dot import graph_dot, number
from tests.support.random_networks import random_layers
from tests.support.seed_network import seed_graph


def test_every_node_and_edge_is_drawn_with_its_numbers():
    g = seed_graph()
    dot = graph_dot(g)
    assert dot.startswith("digraph computation {\n") and dot.endswith("}\n")
    assert "rankdir=LR" in dot
    node_lines = [line for line in dot.splitlines() if "[label=<" in line]
    edge_lines = [line for line in dot.splitlines() if " -> " in line]
    assert len(node_lines) == len(g.nodes) and len(edge_lines) == len(g.edges)
    z_hat = next(line for line in node_lines if line.startswith('  "layers[1].activation[0][0]"'))
    assert "<B>z_hat</B>" in z_hat and "sigmoid" in z_hat and "value 0.701<" in z_hat and "grad -1.426>" in z_hat
    ce = next(line for line in node_lines if line.startswith('  "loss"'))
    assert "<B>CE</B>" in ce and "value 0.3552" in ce and "grad 1>" in ce and "penwidth=2" in ce
    target = next(line for line in node_lines if line.startswith('  "targets[0][0]"'))
    assert "grad" not in target and "dashed" in target  # a constant: no grad
    # Each edge is labelled with d(child)/d(parent): z_hat -> l is -1/z_hat, f -> z_hat sigmoid's slope.
    assert '  "layers[1].activation[0][0]" -> "loss.terms[0][0]" [label="-1.426"];' in edge_lines
    assert '  "layers[1].pre_activation[0][0]" -> "layers[1].activation[0][0]" [label="0.2096"];' in edge_lines
    assert '  "targets[0][0]" -> "loss.terms[0][0]" [style=dashed];' in edge_lines


def test_the_same_graph_gives_the_same_text():
    assert graph_dot(seed_graph()) == graph_dot(seed_graph())
    assert graph_dot(seed_graph(), title="seed") != graph_dot(seed_graph())


def test_numbers_have_four_significant_figures():
    assert [number(x) for x in (0.35520347518814194, -0.0077731995, 1234567.0, 1e-20, 0.0, None)] == [
        "0.3552",
        "-0.007773",
        "1.235e+06",
        "1e-20",
        "0",
        "n/a",
    ]
    assert [number(x) for x in (float("inf"), float("-inf"), float("nan"))] == ["inf", "-inf", "nan"]


def test_labels_and_titles_are_escaped():
    g = build_graph(
        [Layer(np.array([[1.0]]), np.zeros(1), "identity")],
        np.array([[1.0]]),
        np.array([[0.0]]),
        "mse",
        "sum",
        naming={"inputs[0][0]": '<x & "y">', "loss": "L\\n"},
    )
    dot = graph_dot(g, title='a "title"')
    assert "<B>&lt;x &amp; &quot;y&quot;&gt;</B>" in dot and 'label="a \\"title\\""' in dot


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed (apt-get install graphviz)")
@pytest.mark.parametrize("loss, last", [("binary_cross_entropy", "sigmoid"), ("cross_entropy", "softmax"), ("mse", "tanh")])
def test_graphviz_parses_it(loss, last, rng):
    layers = random_layers(rng, [2, 3, 2], ["elu", last])
    x = rng.normal(size=(2, 2))
    y = rng.dirichlet(np.ones(2), size=2)
    for graph in (seed_graph(), build_graph(layers, x, y, loss, "mean"), build_graph(layers, x, y, loss, "sum", sample=1)):
        # json0: the graph as Graphviz read it (its nodes and edges), without drawing instructions.
        done = subprocess.run(["dot", "-Tjson0"], input=graph_dot(graph, title="t"), capture_output=True, text=True, timeout=30)
        assert done.returncode == 0 and not done.stderr.strip(), done.stderr
        read = json.loads(done.stdout)
        assert [o["name"] for o in read["objects"]] == [n.name for n in graph.nodes]
        edges = sorted((e["tail"], e["head"], e.get("label") or None) for e in read["edges"])  # in Graphviz's own order
        assert edges == sorted((e.parent, e.child, None if e.local is None else number(e.local)) for e in graph.edges)

"""A computation graph (``app.nn.graph``) as Graphviz DOT text: one box per scalar, left to right.

Each node shows its label (bold), its op, its value and its grad (dL/dnode) to 4 significant
figures; each edge, from the node that feeds to the node fed, is labelled with the local
derivative d(child)/d(parent). A node's DOT id is its name (``layers[0].weights[1][0]``), so a
picture's SVG names every node in its ``<title>``. The text is a function of the graph alone:
the same graph gives the same bytes (``graphviz.render_svg`` lays it out).
"""

from __future__ import annotations

import math
from html import escape

from app.nn.graph import CONSTANT_OPS, Graph, Node

FONT = "Helvetica,Arial,sans-serif"
# Fill colours by op: the network's inputs, its parameters, constants, the loss; others white.
FILLS = {"input": "#e5e7eb", "weight": "#dbeafe", "bias": "#dbeafe", "target": "#ffffff", "const": "#ffffff"}
LOSS_FILL = "#fde68a"


def number(x: float | None) -> str:
    """``x`` to 4 significant figures, as the pictures write it (``n/a`` for None)."""
    if x is None:
        return "n/a"
    if math.isnan(x):
        return "nan"
    return f"{x:.4g}"


def _id(name: str) -> str:
    """``name`` as a quoted DOT id."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _label(node: Node) -> str:
    """An HTML-like label: the node's label in bold and its op, then its value and grad."""
    lines = [f'<B>{escape(node.label)}</B> <FONT COLOR="#6b7280">{escape(node.op)}</FONT>', f"value {escape(number(node.value))}"]
    if node.op not in CONSTANT_OPS:
        lines.append(f"grad {escape(number(node.grad))}")
    return "<" + "<BR/>".join(lines) + ">"


def graph_dot(graph: Graph, *, title: str | None = None) -> str:
    """``graph`` as DOT: ``rankdir=LR`` (inputs and parameters on the left, the loss on the right),
    a box per node, an edge per input labelled with its local derivative (dashed and unlabelled from
    a constant, which is not differentiated). ``title``: a caption above the picture."""
    root = len(graph.nodes) - 1
    out = [
        "digraph computation {",
        f'  graph [rankdir=LR, fontname="{FONT}", fontsize=12, nodesep=0.15, ranksep=0.5'
        + (f", labelloc=t, label={_id(title)}" if title else "")
        + "];",
        f'  node [shape=box, style="rounded,filled", fillcolor="#ffffff", fontname="{FONT}", fontsize=10];',
        f'  edge [fontname="{FONT}", fontsize=9, color="#6b7280", arrowsize=0.6];',
    ]
    for i, node in enumerate(graph.nodes):
        attrs = [f"label={_label(node)}", f"tooltip={_id(node.name)}"]
        if i == root:
            attrs += [f'fillcolor="{LOSS_FILL}"', "penwidth=2"]
        elif node.op in FILLS:
            attrs.append(f'fillcolor="{FILLS[node.op]}"')
        if node.op in CONSTANT_OPS:
            attrs.append('style="rounded,dashed"')
        out.append(f"  {_id(node.name)} [{', '.join(attrs)}];")
    for edge in graph.edges:
        parent, child = graph.nodes[edge.parent], graph.nodes[edge.child]
        attrs = ["style=dashed"] if edge.local is None else [f"label={_id(number(edge.local))}"]
        out.append(f"  {_id(parent.name)} -> {_id(child.name)} [{', '.join(attrs)}];")
    out.append("}")
    return "\n".join(out) + "\n"

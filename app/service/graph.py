"""``POST /v1/graph``: the scalar computation graph of the loss (app.nn.graph) as data, as Graphviz
DOT, or as SVG laid out by Graphviz's ``dot``."""

from __future__ import annotations

import math

from app.config import Settings
from app.nn.graph import Graph, build_graph
from app.render.graph_dot import graph_dot, number
from app.render.graphviz import GraphvizMissing, GraphvizTimeout, dot_binary, render_svg
from app.schemas.requests import GraphRequest
from app.service.conversion import loss_arguments, loss_words
from app.service.limits import OverLimit, check, check_limits, check_output, graph_size_of
from app.service.payloads import GraphPayload
from app.service.stop import should_stop


def check_graph(req: GraphRequest, settings: Settings, svg: bool = False) -> None:
    """The limits of any request, then the graph's own, from its shapes alone (before anything is built):
    its nodes, the numbers of its answer, and for SVG the edges Graphviz lays out."""
    check_limits(req, settings)
    size = graph_size_of(req)
    # One sample's graph is the smaller one to ask for; past that, a smaller network.
    loc = ("sample",) if req.sample is None and len(req.inputs) > 1 else ("network",)
    check(size.nodes, settings.max_graph_nodes, loc, "the number of nodes in the computation graph", "max_graph_nodes")
    check(size.edges, settings.max_graph_edges, loc, "the number of edges in the computation graph", "max_graph_edges")
    if svg:
        what = "the number of edges in the computation graph to lay out as SVG (JSON and DOT take more)"
        check(size.edges, settings.max_graph_svg_edges, loc, what, "max_graph_svg_edges")
    check_output(2 * size.nodes + size.edges, settings, loc, "a value and a grad per node and a local derivative per edge")


def graph_of(req: GraphRequest, settings: Settings) -> Graph:
    """The graph ``req`` asks for (its limits checked first)."""
    return build_graph(
        *loss_arguments(req),
        sample=req.sample,
        naming=req.labels,
        max_nodes=settings.max_graph_nodes,
    )


def _finite(x: float | None) -> float | None:
    """JSON carries no NaN or Infinity: a value that is not finite is null."""
    return x if x is not None and math.isfinite(x) else None


def run_graph(req: GraphRequest, settings: Settings) -> GraphPayload:
    """The GraphResponse payload."""
    check_graph(req, settings)
    g = graph_of(req, settings)
    return {
        "loss": g.loss,
        "reduction": g.reduction,
        "samples": list(g.samples),
        "divisor": float(g.divisor),
        "value": g.root.value,
        "nodes": [{"name": n.name, "label": n.label, "op": n.op, "value": _finite(n.value), "grad": _finite(n.grad)} for n in g.nodes],
        "edges": [{"from": e.parent, "to": e.child, "local_derivative": _finite(e.local)} for e in g.edges],
    }


def caption(req: GraphRequest, g: Graph) -> str:
    """The picture's title: the loss, which samples, the loss's value, and how to read the labels."""
    batch = len(req.inputs)
    if len(g.samples) == 1:
        drawn = f"sample {g.samples[0]}" + ("" if batch == 1 else f" of {batch} (the others' terms as one constant)")
    else:
        drawn = f"all {batch} samples"
    return (
        f"{loss_words(req)} ({g.reduction}) of {drawn}: L = {number(g.root.value)}; "
        "each node: value and grad = dL/dnode; each edge: its local derivative"
    )


def run_graph_dot(req: GraphRequest, settings: Settings) -> str:
    """The graph as Graphviz DOT text."""
    check_graph(req, settings)
    g = graph_of(req, settings)
    return graph_dot(g, title=caption(req, g))


def run_graph_svg(req: GraphRequest, settings: Settings) -> str:
    """The graph as SVG, laid out by Graphviz's ``dot``: GraphvizMissing when it is not installed; stopped
    (Stopped) when the client goes away, and past BACKPROP_GRAPH_SVG_TIMEOUT a 413 naming that setting."""
    check_graph(req, settings, svg=True)
    program = dot_binary()
    if program is None:
        raise GraphvizMissing()
    g = graph_of(req, settings)
    try:
        return render_svg(graph_dot(g, title=caption(req, g)), timeout=settings.graph_svg_timeout, binary=program, should_stop=should_stop)
    except GraphvizTimeout:
        message = (
            f"laying out the graph's {len(g.nodes):,} nodes and {len(g.edges):,} edges took Graphviz longer than "
            f"{settings.graph_svg_timeout:g} s, the limit; the server's setting BACKPROP_GRAPH_SVG_TIMEOUT raises it "
            "(or ask for fewer: one sample, a smaller network; JSON and DOT need no layout)"
        )
        raise OverLimit((), "", 0, 0, "graph_svg_timeout", message) from None

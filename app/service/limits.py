"""Every configured limit, checked from a validated request's sizes before any numpy work,
and the work and memory estimates that the limits and admission control use.

A request over a limit raises ``OverLimit`` naming the field (``loc``) and the setting
that raises it; the HTTP layer answers it as 413.
"""

from __future__ import annotations

from app.config import Settings
from app.nn.check import program_work, variant_count
from app.nn.graph import GraphSize, graph_size
from app.nn.training import recorded_count
from app.schemas.requests import CheckRequest, ComputeRequest, ForwardRequest, GradcheckRequest, GraphRequest, TrainRequest
from app.service.conversion import to_problem_shape

Loc = tuple[str | int, ...]

# Each layer costs a fixed amount of Python and numpy call overhead per iteration however
# small it is; counting it as this many multiply-adds keeps deep, tiny networks from
# slipping under the work limit (10,000 ~ a few microseconds of overhead).
LAYER_WORK_FLOOR = 10_000

# Bytes per value held while computing: a forward pass keeps pre-activations, activations and
# deltas in the workspace (and one more copy per answer); parameters live as the network,
# the gradient, two optimizer states and two history rows while training.
# A check runs the computation twice before any search for mistakes: for the true values, and for
# what follows from the learner's own (app.nn.check).
CHECK_RUNS = 2

BYTES_PER_ACTIVATION = 8 * 4
BYTES_PER_PARAMETER = 8 * 8

# /v1/graph: building the graph and writing it out as JSON or DOT costs 7-16 us a node (its edges
# included), about 20,000 work units at the rate of tiny networks (1.5e9 a second). Graphviz's layout,
# a subprocess, costs about 20 ms to start and then grows with the square of the edges (1.3 s at 2,000
# edges here); its time counts in admission although another process spends it.
GRAPH_WORK_PER_NODE = 20_000
# An edge is a local derivative and a line of JSON or DOT: measured about 2 us each (a softmax of
# 1,600 classes, 2.56 million edges, took 5.8 s).
GRAPH_WORK_PER_EDGE = 5_000
GRAPHVIZ_START_WORK = 30_000_000
GRAPHVIZ_WORK_PER_SQUARED_EDGE = 500
# A node is a few Python objects and its JSON or DOT text; an SVG edge a kilobyte or so of picture,
# held as bytes and as text.
BYTES_PER_GRAPH_NODE = 2048
BYTES_PER_GRAPH_EDGE = 512
BYTES_PER_SVG_EDGE = 4096


class OverLimit(Exception):
    """A request over a configured limit: ``loc`` is the field, ``setting`` the variable that raises it."""

    def __init__(self, loc: Loc, what: str, found: float, limit: float, setting: str, message: str | None = None) -> None:
        self.loc = loc
        self.setting = setting
        self.message = message or (
            f"{what} is {_amount(found)}, over the limit of {_amount(limit)}; the server's setting BACKPROP_{setting.upper()} raises it"
        )
        super().__init__(self.message)


def _amount(n: float) -> str:
    """``n`` with thousands separators; client-sent integers can be too large for a float."""
    if isinstance(n, int):
        digits = len(str(abs(n)))
        return f"{n:,}" if digits <= 30 else f"an integer of {digits} digits"
    return f"{n:,.0f}" if abs(n) < 1e30 else f"{n:.3g}"


def check(found: float, limit: float, loc: Loc, what: str, setting: str) -> None:
    """Raise ``OverLimit`` when ``found`` is over ``limit``."""
    if found > limit:
        raise OverLimit(loc, what, found, limit, setting)


def check_limits(req: ForwardRequest, settings: Settings, iterations: int = 1, runs: int = 1) -> None:
    """Raise OverLimit when ``req`` is over any configured limit, its computation of ``iterations`` run ``runs`` times."""
    s = req.size
    check(s.layers, settings.max_layers, ("network", *req.network.where()), "the number of layers", "max_layers")
    if req.binary_body:
        check(s.parameters, settings.max_binary_parameters, ("network",), "the number of parameters", "max_binary_parameters")
    else:
        check(s.parameters, settings.max_parameters, ("network",), "the number of parameters", "max_parameters")
    check(s.batch, settings.max_batch, ("inputs",), "the batch size (input rows)", "max_batch")
    check(
        s.activations,
        settings.max_activations,
        ("inputs",),
        "batch x the sum of layer widths (values held by a forward pass)",
        "max_activations",
    )
    check(iterations, settings.max_iterations, ("iterations",), "iterations", "max_iterations")
    work = "the work (iterations x batch x parameters)" if runs == 1 else f"the work ({runs} runs x iterations x batch x parameters)"
    check(estimated_work(req, runs * iterations), settings.max_work, (), work, "max_work")


def check_output(values: int, settings: Settings, loc: Loc, what: str) -> None:
    """The answer's size is a limit like the others, checked before the work that would produce it:
    a small body can ask for a very large answer (a forward pass over 100,000 rows of a wide layer)."""
    check(values, settings.max_output_values, loc, f"the number of values in the answer, {what},", "max_output_values")


def check_trace(req: TrainRequest, settings: Settings) -> None:
    """The trace's size: recorded iterations x the values each records."""
    s = req.size
    per_entry = 1
    per_entry += s.batch * req.network.n_out if "output" in req.record else 0
    per_entry += s.parameters if "gradients" in req.record else 0
    per_entry += s.parameters if "network" in req.record else 0
    entries = recorded_count(req.iterations, req.record_every)
    check_output(entries * per_entry, settings, ("record",), "the trace (recorded iterations x values recorded each)")


def gradcheck_passes(req: ForwardRequest) -> int:
    """Forward passes a gradient check makes: two per parameter, and one with backprop."""
    return 2 * req.size.parameters + 1


def check_passes(req: CheckRequest, variants: int) -> int:
    """Passes a check makes: its two runs and one per variant of the search for mistakes it tries, each
    up to the last claimed iteration."""
    return (CHECK_RUNS + variants) * req.last_iteration


def passes(req: ComputeRequest) -> int:
    """How many forward/backward passes ``req`` asks for: its iterations, a gradient check's, or 1; for a
    check, at most: every variant of its search counted (it runs them only when a number is wrong, and
    within what BACKPROP_MAX_WORK leaves), so that a long search is never run inline."""
    if isinstance(req, TrainRequest):
        return req.iterations
    if isinstance(req, CheckRequest):
        return check_passes(req, variant_count(to_problem_shape(req)))
    if isinstance(req, GradcheckRequest):
        return gradcheck_passes(req)
    return 1


def graph_size_of(req: GraphRequest) -> GraphSize:
    """The nodes and edges of the computation graph ``req`` asks for, from its shapes alone."""
    shapes = [(layer.n_out, layer.n_in) for layer in req.network.layers]
    return graph_size(shapes, [layer.activation for layer in req.network.layers], req.size.batch, req.loss, req.sample)


def graph_cost(req: GraphRequest, svg: bool) -> tuple[float, int]:
    """The estimated work and memory of ``req``'s graph (its forward pass, the graph, its JSON or DOT; with
    ``svg``, Graphviz's layout and its picture): for admission control, as ``estimated_work`` and
    ``estimated_memory`` are for the other requests."""
    size = graph_size_of(req)
    work = estimated_work(req) + GRAPH_WORK_PER_NODE * size.nodes + GRAPH_WORK_PER_EDGE * size.edges
    memory = estimated_memory(req) + BYTES_PER_GRAPH_NODE * size.nodes + BYTES_PER_GRAPH_EDGE * size.edges
    if svg:
        work += GRAPHVIZ_START_WORK + GRAPHVIZ_WORK_PER_SQUARED_EDGE * size.edges**2
        memory += BYTES_PER_SVG_EDGE * size.edges
    return work, memory


def estimated_memory(req: ComputeRequest) -> int:
    """Bytes ``req``'s computation holds at its peak, roughly (admission control's estimate; the
    answer's own size is bounded separately by BACKPROP_MAX_OUTPUT_VALUES)."""
    s = req.size
    return s.activations * BYTES_PER_ACTIVATION + s.parameters * BYTES_PER_PARAMETER


def estimated_work(req: ComputeRequest, iterations: int = 1) -> int:
    """The work estimate the limits use: iterations x max(batch x parameters, floor x layers); for a check,
    ``iterations`` runs of its plain program (app.nn.check.program_work), which costs more per sample."""
    s = req.size
    if isinstance(req, CheckRequest):
        return iterations * program_work([(layer.n_out, layer.n_in) for layer in req.network.layers], s.batch)
    return iterations * max(s.batch * s.parameters, LAYER_WORK_FLOOR * s.layers)

"""The scalar computation graph of a network's loss: every number of the forward pass as a node,
with its value, its gradient dLoss/dnode, and on each edge the local derivative.

This is micrograd's idea (``Value`` objects that each keep their inputs and a local
``_backward``; ``backward()`` walks a topological order in reverse and applies the chain rule),
kept as data rather than as one Python object and closure per scalar: each op appends its node
and, beside its forward value, the local derivative d(node)/d(input) of each edge into it. Nodes
are appended after their inputs, so their order is topological; backprop is one sweep over the
edges in reverse,

    grad[loss] = 1,    grad[parent] += grad[child] * d(child)/d(parent)    (child by child, last first)

For one sample ``s`` (or every sample of a small batch), the nodes are

    inputs[s][i]                            x_i, the network's input                          op "input"
    layers[k].weights[j][i], .biases[j]     the parameters, shared by every sample            op "weight", "bias"
    layers[k].products[s][j][i]             w_ji * a_i (a = x for k = 0)                      op "*"
    layers[k].pre_activation[s][j]          z_j = sum_i w_ji a_i + b_j                        op "+"
    layers[k].activation[s][j]              a_j = f(z_j); the last layer's is the output      op: the activation's name
    targets[s][j]                           y_j, a constant (torch's targets need no grad)    op "target"
    loss.terms[s][j] (or loss.terms[s])     the unreduced loss, per element (or per sample)  op: the loss's name
    loss.other_samples                      the other samples' terms summed, a constant       op "const"
    loss                                    L, their sum, divided by the count for "mean"     op "mean" or "sum"

(``loss.other_samples`` only when one sample of a larger batch is drawn: ``loss`` is then the
batch's loss, and the leaves' grads are that sample's share of its gradient, which summed over
the samples' graphs is the gradient.)

Where each local derivative comes from: ``*`` and ``+`` here; an activation's from its entry in
``ACTIVATIONS`` (``backward`` with a unit vector: torch's derivative, 0 for relu at 0; softmax,
which mixes a row, as one node per output ``p_j`` with an edge from every ``z_i`` carrying the
Jacobian entry ``dp_j/dz_i = p_j ([i = j] - p_i)``); a loss's terms from the loss itself
(``Loss.graph_terms``); the reduction's, ``1 / count`` or 1. A loss fused with its activation
(``binary_cross_entropy`` with its sigmoid, ``cross_entropy`` with its softmax) is drawn as the
textbook chain through the output ``a`` (``dl/da`` times the activation's derivative), as the blog
post writes it; that product agrees with torch's fused ``a - y`` to rounding, and is not finite
where the output saturates to exactly 0 or 1 (``1 / (1 - a)``): such a local derivative or grad
is ``inf`` or ``nan`` (a constant's is ``None``).

``cross_entropy``'s options are all drawn: class weights and label smoothing enter each term's
local derivatives ``-e_j / p_j`` through the effective targets ``e``, and a ``mean`` over class
indices with class weights divides by the summed weights (the ``loss`` node's ``1 / count``);
class-index targets are drawn as the one-hot rows the engine takes (``targets[s][j]`` 0 or 1).

Values are the engine's own (``network.evaluate``: pre-activations, activations, the loss), so
they equal ``/v1/forward`` and ``/v1/loss`` exactly; a product is ``w * a`` in float64, and the
graph's grads agree with backprop's to rounding (they are summed in another order).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from app.nn.activations import ACTIVATIONS
from app.nn.errors import GraphTooLarge
from app.nn.losses import Loss, Reduction, get_loss
from app.nn.network import Evaluation, Layer, evaluate

Array = NDArray[np.float64]

__all__ = ["Edge", "Graph", "GraphSize", "GraphTooLarge", "Node", "build_graph", "default_label", "graph_size", "has_node"]

#: The ops of leaves: what the graph is a function of (constants have no grad).
LEAF_OPS = ("input", "weight", "bias", "target", "const")
CONSTANT_OPS = ("target", "const")


@dataclass(frozen=True)
class Node:
    """One scalar: ``name`` (where it sits in the network, e.g. ``layers[0].weights[1][0]``), ``label``
    (short, for pictures), ``op`` (``LEAF_OPS`` for a leaf, else what computed it), its forward
    ``value`` and ``grad`` = dL/d(this node), L the ``loss`` node; ``None`` for a constant."""

    name: str
    label: str
    op: str
    value: float
    grad: float | None

    @property
    def leaf(self) -> bool:
        return self.op in LEAF_OPS


@dataclass(frozen=True)
class Edge:
    """``parent`` feeds ``child`` (indices into ``Graph.nodes``); ``local`` = d(child)/d(parent) at the
    forward pass's values, ``None`` from a constant (a target)."""

    parent: int
    child: int
    local: float | None


@dataclass(frozen=True)
class Graph:
    """The nodes in topological order (inputs before what they feed; the ``loss`` node last) and the
    edges grouped by child in the same order. ``loss``: the loss's name; ``reduction``; ``samples``:
    the samples drawn (all of the batch, or one); ``divisor``: what ``mean`` divides by (1 for sum)."""

    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    loss: str
    reduction: Reduction
    samples: tuple[int, ...]
    divisor: int | float

    @property
    def root(self) -> Node:
        """The ``loss`` node, L."""
        return self.nodes[-1]

    @cached_property
    def _index(self) -> dict[str, int]:
        return {node.name: i for i, node in enumerate(self.nodes)}

    def index(self, name: str) -> int:
        """The position of the node ``name`` (KeyError if there is none)."""
        return self._index[name]

    def node(self, name: str) -> Node:
        """The node ``name`` (KeyError if there is none)."""
        return self.nodes[self._index[name]]

    def inputs_of(self, name: str) -> tuple[tuple[Node, float | None], ...]:
        """The nodes feeding ``name``, each with the local derivative d(name)/d(it)."""
        i = self._index[name]
        return tuple((self.nodes[e.parent], e.local) for e in self.edges if e.child == i)


@dataclass(frozen=True)
class GraphSize:
    """How many ``nodes`` and ``edges`` ``build_graph`` makes."""

    nodes: int
    edges: int


def graph_size(
    shapes: Sequence[tuple[int, int]], activations: Sequence[str], batch: int, loss: str | Loss, sample: int | None = None
) -> GraphSize:
    """The size of the graph of layers of ``shapes`` (``(out, in)`` each) and ``activations`` on ``batch``
    samples, drawing one ``sample`` or (``None``) all: what a limit checks before ``build_graph``."""
    spec = get_loss(loss)
    drawn = batch if sample is None else 1
    units = shapes[-1][0]
    params = sum(o * i + o for o, i in shapes)
    per_sample_nodes = shapes[0][1] + units + sum(o * i + 2 * o for o, i in shapes)  # inputs, targets, products, sums, activations
    per_sample_edges = sum(2 * o * i + o * (i + 1) + (o if ACTIVATIONS[a].elementwise else o * o) for (o, i), a in zip(shapes, activations))
    terms, term_edges = (1, 2 * units) if spec.per_row else (units, 2 * units)
    rest = int(sample is not None and batch > 1)
    nodes = params + drawn * (per_sample_nodes + terms) + rest + 1
    edges = drawn * (per_sample_edges + term_edges + terms) + rest
    return GraphSize(nodes, edges)


_NAME = re.compile(r"(?:layers\[(\d+)\]\.)?([a-z_.]+)((?:\[\d+\])*)")
# Names whose first index is the sample's, and each name's letter in labels.
_PER_SAMPLE = frozenset(("inputs", "targets", "loss.terms", "products", "pre_activation", "activation"))
_LETTERS = {
    "inputs": "x",
    "weights": "W",
    "biases": "b",
    "products": "p",
    "pre_activation": "pre",
    "activation": "a",
    "targets": "y",
    "loss.terms": "l",
    "loss.other_samples": "rest",
    "loss": "L",
}


def default_label(name: str, samples: int = 1) -> str:
    """The short label of node ``name`` when no naming gives one: ``x[i]``, ``W0[j][i]``, ``b0[j]``,
    ``pre0[j]``, ``a0[j]``, ``y[j]``, ``l[j]`` (``l`` for a per-sample term), ``rest``, ``L`` (the
    notation of /v1/explain's lines), with the sample's index first (``x[s][i]``) when the graph
    draws more than one sample. ``build_graph`` labels a product by its inputs' labels, ``a*w``."""
    match = _NAME.fullmatch(name)
    if match is None or match[2] not in _LETTERS:
        raise ValueError(f"not a node name: {name!r}")
    layer, kind, indices = match[1] or "", match[2], re.findall(r"\[\d+\]", match[3])
    if samples == 1 and kind in _PER_SAMPLE:
        indices = indices[1:]
    return _LETTERS[kind] + layer + "".join(indices)


def has_node(name: str, shapes: Sequence[tuple[int, int]], batch: int, loss: str | Loss, sample: int | None = None) -> bool:
    """Whether the graph ``graph_size`` sizes (same arguments) has a node named ``name``: a naming's keys
    checked from the shapes alone, before anything is built."""
    match = _NAME.fullmatch(name)
    if match is None or match[2] not in _LETTERS:
        return False
    layer, kind = match[1], match[2]
    written = [layer or "0", *re.findall(r"\[(\d+)\]", match[3])]
    if (layer is None) == (kind in _LAYER_KINDS) or any(str(int(d)) != d for d in written):
        return False  # a layer where none belongs (or none where one does), or a number written 01
    indices = [int(d) for d in written[1:]]
    if kind in _PER_SAMPLE:
        if not indices or indices[0] not in (range(batch) if sample is None else (sample,)):
            return False
        indices = indices[1:]
    units = shapes[-1][0]
    bounds: tuple[int, ...]
    if kind == "loss.other_samples":
        if sample is None or batch == 1:
            return False
        bounds = ()
    elif kind in ("loss", "inputs", "targets", "loss.terms"):
        bounds = {"loss": (), "inputs": (shapes[0][1],), "targets": (units,)}.get(kind, () if get_loss(loss).per_row else (units,))
    else:
        if int(written[0]) >= len(shapes):
            return False
        out, fan_in = shapes[int(written[0])]
        bounds = (out, fan_in) if kind in ("weights", "products") else (out,)
    return len(indices) == len(bounds) and all(i < n for i, n in zip(indices, bounds))


# The names that belong to a layer (``layers[k].weights[j][i]``); the others do not (``inputs[s][i]``).
_LAYER_KINDS = frozenset(("weights", "biases", "products", "pre_activation", "activation"))


class _Tape:
    """The graph being recorded: parallel lists, one entry per node and per edge (no object per scalar)."""

    def __init__(self, naming: Mapping[str, str], samples: int) -> None:
        self.naming, self.samples = naming, samples
        self.names: list[str] = []
        self.labels: list[str] = []
        self.ops: list[str] = []
        self.values: list[float] = []
        self.parents: list[int] = []
        self.children: list[int] = []
        self.locals: list[float | None] = []

    def add(self, name: str, op: str, value: float, inputs: Sequence[tuple[int, float | None]] = (), label: str | None = None) -> int:
        """Append node ``name`` = ``op``(inputs) with its ``value``, and an edge from each input with its
        local derivative d(name)/d(input); returns the node's index."""
        i = len(self.names)
        self.names.append(name)
        self.labels.append(self.naming.get(name) or label or default_label(name, self.samples))
        self.ops.append(op)
        self.values.append(value)
        for parent, local in inputs:
            self.parents.append(parent)
            self.children.append(i)
            self.locals.append(local)
        return i

    def backward(self) -> list[float | None]:
        """Every node's dL/dnode, L the last node: one sweep over the edges, last child first."""
        grads = [0.0] * len(self.names)
        grads[-1] = 1.0
        for parent, child, local in zip(reversed(self.parents), reversed(self.children), reversed(self.locals)):
            if local is not None:
                grads[parent] += grads[child] * local
        return [None if op in CONSTANT_OPS else g for op, g in zip(self.ops, grads)]


def build_graph(
    layers: Sequence[Layer],
    inputs: Array,
    targets: Array,
    loss: str | Loss,
    reduction: Reduction,
    *,
    sample: int | None = None,
    naming: Mapping[str, str] | None = None,
    max_nodes: int | None = None,
) -> Graph:
    """The scalar computation graph of ``loss`` (a name of ``LOSSES`` or a bound loss) reduced by
    ``reduction``, for ``layers`` on ``inputs`` ``[batch][in]`` against ``targets`` ``[batch][out]``:
    of one ``sample`` (its index in the batch) or, with ``None``, of every sample.

    ``naming`` maps node names to labels (the seed example's ``x1``, ``f1``, ``z_hat``, ``CE``);
    other nodes get ``default_label``'s. ``max_nodes``: the most nodes allowed (GraphTooLarge, before
    anything is computed, when ``graph_size`` is over it). Raises NonFiniteError as ``evaluate`` does
    (with gradients: where /v1/gradients would refuse the network), ValueError for a sample out of
    range or a naming of a node the graph does not have.
    """
    spec = get_loss(loss)
    batch = inputs.shape[0]
    if sample is not None and not 0 <= sample < batch:
        raise ValueError(f"sample {sample} is not in the batch of {batch}")
    if max_nodes is not None:
        count = graph_size([layer.shape for layer in layers], [layer.activation for layer in layers], batch, spec, sample).nodes
        if count > max_nodes:
            raise GraphTooLarge(count, max_nodes)
    drawn = tuple(range(batch)) if sample is None else (sample,)
    # Backprop's own pass as well: a network whose gradient overflows is refused as /v1/gradients refuses it.
    fwd = evaluate(layers, inputs, targets, spec, reduction)
    with np.errstate(all="ignore"):  # a saturated output's local derivatives are inf or nan, and said to be
        return _build(layers, inputs, targets, spec, reduction, sample, drawn, fwd, naming or {})


def _build(
    layers: Sequence[Layer],
    inputs: Array,
    targets: Array,
    spec: Loss,
    reduction: Reduction,
    sample: int | None,
    drawn: tuple[int, ...],
    fwd: Evaluation,
    naming: Mapping[str, str],
) -> Graph:
    tape = _Tape(naming, len(drawn))
    params = [_parameters(tape, k, layer) for k, layer in enumerate(layers)]
    loss_input = fwd.forward.pre[-1] if spec.from_logits else fwd.forward.output
    terms: list[int] = []
    for s in drawn:
        a = [tape.add(f"inputs[{s}][{i}]", "input", float(x)) for i, x in enumerate(inputs[s])]
        for k, layer in enumerate(layers):
            a = _dense(tape, k, s, layer, params[k], a, fwd.forward.pre[k][s : s + 1], fwd.forward.post[k][s : s + 1])
        y = [tape.add(f"targets[{s}][{j}]", "target", float(t)) for j, t in enumerate(targets[s])]
        for term in spec.graph_terms(loss_input[s : s + 1], fwd.forward.output[s : s + 1], targets[s : s + 1]):
            name = f"loss.terms[{s}]" + ("" if term.unit is None else f"[{term.unit}]")
            edges = [(a[j], d) for j, d in term.d_output] + [(y[j], None) for j in term.targets]
            terms.append(tape.add(name, spec.name, term.value, edges))
    # L = (sum of the terms) / count: d L / d term = 1 / count (1 for sum).
    divisor = spec.count(targets, reduction)
    reduced: list[tuple[int, float | None]] = [(t, 1.0 / divisor) for t in terms]
    if sample is not None and inputs.shape[0] > 1:
        others = np.delete(spec.terms(loss_input, targets), sample, axis=0)
        reduced.append((tape.add("loss.other_samples", "const", float(others.sum())), None))
    tape.add("loss", reduction, fwd.loss, reduced)

    unknown = sorted(set(naming) - set(tape.names))
    if unknown:
        raise ValueError(f"the naming names nodes this graph does not have: {', '.join(unknown)}")
    grads = tape.backward()
    return Graph(
        tuple(Node(*fields) for fields in zip(tape.names, tape.labels, tape.ops, tape.values, grads)),
        tuple(Edge(*fields) for fields in zip(tape.parents, tape.children, tape.locals)),
        spec.name,
        reduction,
        drawn,
        divisor,
    )


def _parameters(tape: _Tape, k: int, layer: Layer) -> tuple[list[list[int]], list[int]]:
    """Layer ``k``'s weights ``[out][in]`` and biases ``[out]`` as leaves: their node indices."""
    weights = [
        [tape.add(f"layers[{k}].weights[{j}][{i}]", "weight", float(w)) for i, w in enumerate(row)] for j, row in enumerate(layer.weights)
    ]
    return weights, [tape.add(f"layers[{k}].biases[{j}]", "bias", float(b)) for j, b in enumerate(layer.biases)]


def _dense(
    tape: _Tape, k: int, s: int, layer: Layer, params: tuple[list[list[int]], list[int]], a_in: list[int], z_row: Array, a_row: Array
) -> list[int]:
    """Layer ``k`` on sample ``s``'s nodes ``a_in``: for each unit ``j`` the products ``w_ji a_i``, their sum
    with ``b_j`` (``z_row``'s value, the engine's) and ``f`` of it (``a_row``'s); the activations' nodes."""
    w_nodes, b_nodes = params
    z = []
    for j, (row, w_row) in enumerate(zip(layer.weights, w_nodes)):
        products = []
        for i, (w, w_node, a_node) in enumerate(zip(row, w_row, a_in)):
            a = tape.values[a_node]
            # p = w a: dp/dw = a, dp/da = w
            edges = ((w_node, a), (a_node, float(w)))
            products.append(
                tape.add(f"layers[{k}].products[{s}][{j}][{i}]", "*", float(w) * a, edges, f"{tape.labels[a_node]}*{tape.labels[w_node]}")
            )
        # z = sum of the products + b: dz/d(each) = 1
        z.append(tape.add(f"layers[{k}].pre_activation[{s}][{j}]", "+", float(z_row[0, j]), [(p, 1.0) for p in (*products, b_nodes[j])]))
    return [
        tape.add(f"layers[{k}].activation[{s}][{j}]", layer.activation, float(a_row[0, j]), edges)
        for j, edges in enumerate(_jacobian(layer.activation, z_row, a_row, z))
    ]


def _jacobian(activation: str, z_row: Array, a_row: Array, z_nodes: Sequence[int]) -> list[list[tuple[int, float]]]:
    """For each unit ``j`` of a layer, the edges into ``a_j = f(z)_j``: ``(z_i's node, da_j/dz_i)`` from
    the activation's own backward (with a unit vector), for ``z_j`` alone when ``f`` is elementwise."""
    act = ACTIVATIONS[activation]
    if act.elementwise:
        slopes = act.backward(z_row, a_row, np.ones_like(a_row))[0]
        return [[(node, float(slope))] for node, slope in zip(z_nodes, slopes)]
    eye = np.eye(a_row.shape[1])
    # backward(z, a, e_j) = e_j @ J: row j of the Jacobian, d a_j / d z_i for every i.
    rows = [act.backward(z_row, a_row, eye[j : j + 1])[0] for j in range(a_row.shape[1])]
    return [[(node, float(d)) for node, d in zip(z_nodes, row)] for row in rows]

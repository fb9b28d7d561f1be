"""``POST /v1/diagram``: the network drawn as SVG."""

from __future__ import annotations

from app.config import Settings
from app.nn.network import evaluate, forward
from app.render.svg import network_diagram
from app.schemas.requests import DiagramRequest, ForwardRequest
from app.service.conversion import dtype_of, loss_words, matrix, to_layers, to_loss, to_targets
from app.service.limits import check, check_limits


def run_diagram(req: DiagramRequest, settings: Settings) -> str:
    """The network as SVG, labelled with activations (inputs given) and gradients (targets given)."""
    widths = [req.network.n_in] + [layer.n_out for layer in req.network.layers]
    check(max(widths), settings.max_diagram_units, ("network",), "the widest column of neurons", "max_diagram_units")
    edges = sum(layer.n_out * layer.n_in for layer in req.network.layers)
    check(edges, settings.max_diagram_edges, ("network",), "the number of weights to draw", "max_diagram_edges")
    dtype = dtype_of(req)
    layers = to_layers(req.network, dtype)
    values = gradients = None
    caption = "edge width: |weight|; blue positive, red negative"
    if req.inputs is not None:
        check_limits(ForwardRequest.model_construct(network=req.network, inputs=req.inputs), settings)
        x = matrix(req.inputs, dtype)
        if req.targets is not None:
            ev = evaluate(layers, x, to_targets(req), to_loss(req), req.reduction, dtype=dtype)
            fwd = ev.forward
            assert ev.gradient is not None
            gradients = [w.tolist() for w, _ in ev.layout.views(ev.gradient)]
            caption += f"; edge labels: dL/dw ({loss_words(req)}, {req.reduction}, loss {ev.loss:.6g})"
        else:
            fwd = forward(layers, x, dtype=dtype)
        values = [x[0].tolist()] + [a[0].tolist() for a in fwd.post]
        caption += f"; neuron labels: activations of sample 0 of {len(x)}"
    return network_diagram([layer.weights.tolist() for layer in layers], [layer.activation for layer in layers], values, gradients, caption)

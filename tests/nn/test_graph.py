"""The scalar computation graph (app/nn/graph.py) against the engine: every value is the forward
pass's, every parameter's grad is backprop's gradient, grads agree with central differences, and
the seed's graph reads like the blog post."""

import re

import numpy as np
import pytest

from app.examples import BLOG_LABELS
from app.nn.activations import ACTIVATIONS
from app.nn.errors import GraphTooLarge
from app.nn.graph import CONSTANT_OPS, LEAF_OPS, build_graph, default_label, graph_size, has_node
from app.nn.layout import Layout
from app.nn.losses import LOSSES, class_index_targets, get_loss
from app.nn.network import Layer, evaluate
from tests.support.random_networks import random_layers
from tests.support.seed_network import seed_example, seed_graph
from tests.support.seed_trace import SEED_LOSSES, SEED_OUTPUTS, SEED_W11

ELEMENTWISE = sorted(name for name, act in ACTIVATIONS.items() if act.elementwise)
# Every loss with every last activation it takes: a fused loss with its own, mse with any.
CASES = [(loss, LOSSES[loss].requires_activation) for loss in sorted(LOSSES) if LOSSES[loss].requires_activation] + [
    ("mse", act) for act in sorted(ACTIVATIONS) if not LOSSES["mse"].requires_activation
]
REL, ABS = 1e-9, 1e-13  # the graph sums the same products in another order than backprop


def problem(rng, loss, last, hidden=("tanh", "relu"), batch=3, sizes=(3, 4, 3, 3)):
    layers = random_layers(rng, list(sizes), [*hidden, last])
    x = rng.normal(size=(batch, sizes[0]))
    y = get_loss(loss).sample_targets(rng, (batch, sizes[-1]))
    return layers, x, y


def check_against_engine(graph, layers, x, y, loss, reduction, samples):
    """Every value is the engine's (exactly), every parameter's grad is backprop's (to rounding)."""
    spec = get_loss(loss)
    ev = evaluate(layers, x, y, spec, reduction)
    layout = Layout.of(layers)
    assert graph.root.name == "loss" and graph.root.op == reduction and graph.root.value == ev.loss and graph.root.grad == 1.0
    for k, layer in enumerate(layers):
        for j in range(layer.shape[0]):
            for i in range(layer.shape[1]):
                w = graph.node(f"layers[{k}].weights[{j}][{i}]")
                assert w.op == "weight" and w.value == layer.weights[j, i]
                if samples == "all":
                    assert w.grad == pytest.approx(ev.gradient[layout.flat_index(k, "weights", (j, i))], rel=REL, abs=ABS), w.name
            b = graph.node(f"layers[{k}].biases[{j}]")
            assert b.op == "bias" and b.value == layer.biases[j]
            if samples == "all":
                assert b.grad == pytest.approx(ev.gradient[layout.flat_index(k, "biases", (j,))], rel=REL, abs=ABS), b.name
    x_loss = ev.forward.pre[-1] if spec.from_logits else ev.forward.output
    terms = spec.terms(x_loss, y)
    for s in graph.samples:
        for i, v in enumerate(x[s]):
            assert graph.node(f"inputs[{s}][{i}]").value == v
        for j, t in enumerate(y[s]):
            target = graph.node(f"targets[{s}][{j}]")
            assert (target.op, target.value, target.grad) == ("target", t, None)
        a_prev = x[s]
        for k, layer in enumerate(layers):
            for j in range(layer.shape[0]):
                z = graph.node(f"layers[{k}].pre_activation[{s}][{j}]")
                a = graph.node(f"layers[{k}].activation[{s}][{j}]")
                assert (z.op, a.op) == ("+", layer.activation)
                assert z.value == ev.forward.pre[k][s, j] and a.value == ev.forward.post[k][s, j]
                products = [graph.node(f"layers[{k}].products[{s}][{j}][{i}]") for i in range(layer.shape[1])]
                assert [p.value for p in products] == [layer.weights[j, i] * a_prev[i] for i in range(layer.shape[1])]
                assert z.value == pytest.approx(sum(p.value for p in products) + layer.biases[j], rel=1e-12, abs=1e-14)
            a_prev = ev.forward.post[k][s]
        if spec.per_row:
            assert graph.node(f"loss.terms[{s}]").value == terms[s]
        else:
            assert [graph.node(f"loss.terms[{s}][{j}]").value for j in range(y.shape[1])] == list(terms[s])
    assert graph.divisor == spec.count(y, reduction)


def check_chain_rule(graph):
    """Each node's grad is the sum over the edges out of it of grad(child) * local (one sweep, as written)."""
    out = [[] for _ in graph.nodes]
    for e in graph.edges:
        out[e.parent].append(e)
    for i, node in enumerate(graph.nodes[:-1]):
        if node.op in CONSTANT_OPS:
            assert node.grad is None and all(e.local is None for e in out[i])
        else:
            assert out[i], f"{node.name} feeds nothing"
            assert node.grad == pytest.approx(sum(graph.nodes[e.child].grad * e.local for e in out[i]), rel=1e-12, abs=1e-15), node.name
    for e in graph.edges:
        assert e.parent < e.child  # topological order
        assert graph.nodes[e.child].op not in LEAF_OPS


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("loss, last", CASES)
def test_whole_batch_graph_matches_backprop(loss, last, reduction, rng):
    layers, x, y = problem(rng, loss, last)
    g = build_graph(layers, x, y, loss, reduction)
    assert g.samples == (0, 1, 2) and g.loss == loss and g.reduction == reduction
    check_against_engine(g, layers, x, y, loss, reduction, "all")
    check_chain_rule(g)
    size = graph_size([l.shape for l in layers], [l.activation for l in layers], 3, loss)
    assert (size.nodes, size.edges) == (len(g.nodes), len(g.edges))


@pytest.mark.parametrize("hidden", ELEMENTWISE)
def test_every_hidden_activation_matches_backprop(hidden, rng):
    layers, x, y = problem(rng, "mse", "identity", hidden=(hidden, hidden))
    g = build_graph(layers, x, y, "mse", "mean")
    check_against_engine(g, layers, x, y, "mse", "mean", "all")
    check_chain_rule(g)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize(
    "options",
    [
        {"class_weights": [0.5, 2.0, 1.25]},
        {"label_smoothing": 0.1},
        {"index_targets": True},
        {"class_weights": [0.5, 2.0, 1.25], "label_smoothing": 0.2, "index_targets": True},
        {"class_weights": [0.5, 2.0, 1.25], "index_targets": True},
    ],
    ids=["weights", "smoothing", "indices", "all", "weighted-mean"],
)
def test_cross_entropy_options_match_backprop(options, reduction, rng):
    loss = LOSSES["cross_entropy"].bind(**options)
    layers, x, _ = problem(rng, "cross_entropy", "softmax", batch=4)
    y = class_index_targets([2, 0, 1, 2], 3) if options.get("index_targets") else rng.dirichlet(np.ones(3), size=4)
    g = build_graph(layers, x, y, loss, reduction)
    check_against_engine(g, layers, x, y, loss, reduction, "all")
    check_chain_rule(g)
    if options == {"class_weights": [0.5, 2.0, 1.25], "index_targets": True} and reduction == "mean":
        assert g.divisor == 1.25 + 0.5 + 2.0 + 1.25  # torch's weighted mean: the target classes' weights


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("loss, last", CASES)
def test_one_samples_graphs_add_up_to_the_batch_gradient(loss, last, reduction, rng):
    layers, x, y = problem(rng, loss, last)
    ev = evaluate(layers, x, y, loss, reduction)
    layout = Layout.of(layers)
    total = np.zeros(layout.size)
    for s in range(3):
        g = build_graph(layers, x, y, loss, reduction, sample=s)
        assert g.samples == (s,)
        check_against_engine(g, layers, x, y, loss, reduction, "one")
        check_chain_rule(g)
        rest = g.node("loss.other_samples")
        assert rest.op == "const" and rest.grad is None
        assert not any(n.name.startswith(f"inputs[{t}]") for t in range(3) if t != s for n in g.nodes)
        size = graph_size([l.shape for l in layers], [l.activation for l in layers], 3, loss, sample=s)
        assert (size.nodes, size.edges) == (len(g.nodes), len(g.edges))
        for flat in range(layout.size):
            k, kind, index = layout.locate(flat)
            name = f"layers[{k}].{kind}" + "".join(f"[{i}]" for i in index)
            total[flat] += g.node(name).grad
    np.testing.assert_allclose(total, ev.gradient, rtol=REL, atol=ABS)


def test_a_batch_of_one_has_no_other_samples(rng):
    layers, x, y = problem(rng, "mse", "tanh", batch=1)
    g = build_graph(layers, x, y, "mse", "mean", sample=0)
    assert "loss.other_samples" not in {n.name for n in g.nodes}
    assert [n.name for n in g.nodes] == [n.name for n in build_graph(layers, x, y, "mse", "mean").nodes]


def loss_with(layers, x, y, loss, reduction, edit):
    layers = [Layer(l.weights.copy(), l.biases.copy(), l.activation) for l in layers]
    x = x.copy()
    edit(layers, x)
    return evaluate(layers, x, y, loss, reduction, gradients=False).loss


H = 1e-6


@pytest.mark.parametrize("loss, last", CASES)
def test_grads_match_central_differences(loss, last, rng):
    """Leaves by perturbing them; a sample's pre-activation z_j by its bias (dz_j/db_j = 1, and b_j
    feeds nothing else in a one-sample batch); a hidden activation a_j by the next layer's biases
    (moving a_j by h moves each next z_m by h W[m][j])."""
    layers, x, y = problem(rng, loss, last, batch=1)
    g = build_graph(layers, x, y, loss, "mean")

    def central(edit):
        def shifted(h):
            return lambda ls, xs: edit(ls, xs, h)

        return (loss_with(layers, x, y, loss, "mean", shifted(H)) - loss_with(layers, x, y, loss, "mean", shifted(-H))) / (2 * H)

    def weight(k, j, i):
        def edit(ls, xs, h):
            ls[k].weights[j, i] += h

        return edit

    def pre_activation(k, j):
        def edit(ls, xs, h):
            ls[k].biases[j] += h

        return edit

    def activation(k, j):
        def edit(ls, xs, h):
            ls[k + 1].biases[:] += h * ls[k + 1].weights[:, j]

        return edit

    def input_(i):
        def edit(ls, xs, h):
            xs[0, i] += h

        return edit

    checks = {
        "layers[0].weights[1][2]": weight(0, 1, 2),
        "layers[2].weights[2][0]": weight(2, 2, 0),
        "layers[0].pre_activation[0][3]": pre_activation(0, 3),
        "layers[1].pre_activation[0][2]": pre_activation(1, 2),
        "layers[2].pre_activation[0][1]": pre_activation(2, 1),
        "layers[0].activation[0][2]": activation(0, 2),
        "layers[1].activation[0][1]": activation(1, 1),
        "inputs[0][1]": input_(1),
    }
    for name, edit in checks.items():
        assert g.node(name).grad == pytest.approx(central(edit), rel=1e-6, abs=1e-9), name


# -- the seed example: the blog post's picture --------------------------------------------------


def test_the_seeds_graph_reads_like_the_post():
    layers, x, y = seed_example()
    g = seed_graph()
    labels = {n.label: n for n in g.nodes}
    assert {"x1", "x2", "f1", "f2", "z1", "z2", "f", "z_hat", "CE"} <= set(labels)
    # The post's code: f1 = x1*w1 + x2*w2, f2 = x1*w12 + x2*w2, z = relu(f), f = z1*w11 + z2 + w22.
    assert (labels["x1"].value, labels["x2"].value) == (0.7, 0.3)
    assert labels["f1"].value == pytest.approx(0.7 * 0.436 + 0.3 * 0.420, rel=1e-15)
    assert labels["f2"].value == pytest.approx(0.7 * 0.550 + 0.3 * 0.420, rel=1e-15)
    assert (labels["z1"].value, labels["z2"].value) == (labels["f1"].value, labels["f2"].value)  # relu of positives
    assert labels["f"].value == pytest.approx(labels["z1"].value * 0.026 + labels["z2"].value + 0.330, rel=1e-15)
    # The post's printed numbers, iteration 1.
    assert labels["z_hat"].value == pytest.approx(SEED_OUTPUTS[0], abs=1e-12)
    assert labels["CE"].value == pytest.approx(SEED_LOSSES[0], abs=1e-12)
    assert labels["CE"].op == "mean" and labels["CE"].grad == 1.0
    # The chain rule the post writes for w11: dCE/dz_hat * sigmoid'(f) * z1, with dCE/dz_hat = -1/z_hat.
    z_hat, z1 = labels["z_hat"].value, labels["z1"].value
    assert labels["z_hat"].grad == pytest.approx(-1 / z_hat, rel=1e-12)
    assert labels["f"].grad == pytest.approx(z_hat - 1.0, rel=1e-12)
    w11 = g.node("layers[1].weights[0][0]")
    assert w11.grad == pytest.approx((z_hat - 1.0) * z1, rel=1e-12)
    assert w11.value - 0.5 * w11.grad == pytest.approx(SEED_W11[0], abs=1e-12)  # the post's update, learning rate 0.5
    assert dict(g.inputs_of("layers[1].activation[0][0]")) == {labels["f"]: pytest.approx(z_hat * (1 - z_hat), rel=1e-15)}
    assert g.node("layers[1].products[0][0][0]").label == "z1*W1[0][0]"  # a product is labelled by its inputs
    check_against_engine(g, layers, x, y, "binary_cross_entropy", "mean", "all")


def test_default_labels_follow_the_explanations_notation():
    assert [default_label(n) for n in ("inputs[2][1]", "layers[1].weights[0][3]", "layers[0].biases[2]", "loss")] == [
        "x[1]",
        "W1[0][3]",
        "b0[2]",
        "L",
    ]
    assert [default_label(n) for n in ("layers[1].pre_activation[2][0]", "layers[1].activation[2][0]", "targets[2][1]")] == [
        "pre1[0]",
        "a1[0]",
        "y[1]",
    ]
    assert [default_label(n, samples=3) for n in ("inputs[2][1]", "layers[1].activation[2][0]", "loss.terms[2]", "loss.terms[2][1]")] == [
        "x[2][1]",
        "a1[2][0]",
        "l[2]",
        "l[2][1]",
    ]
    assert default_label("loss.terms[0]") == "l" and default_label("loss.other_samples") == "rest"
    with pytest.raises(ValueError, match="not a node name"):
        default_label("layers[0].gradients[1]")


def test_a_naming_of_a_node_that_does_not_exist_is_refused():
    layers, x, y = seed_example()
    with pytest.raises(ValueError, match=r"inputs\[0\]\[7\]"):
        build_graph(layers, x, y, "binary_cross_entropy", "mean", naming={**BLOG_LABELS, "inputs[0][7]": "x8"})


def test_a_sample_out_of_the_batch_is_refused():
    layers, x, y = seed_example()
    with pytest.raises(ValueError, match="sample 1 is not in the batch of 1"):
        build_graph(layers, x, y, "binary_cross_entropy", "mean", sample=1)


def test_the_node_limit_names_the_count_and_the_limit(rng):
    layers, x, y = seed_example()
    assert len(build_graph(layers, x, y, "binary_cross_entropy", "mean", max_nodes=26).nodes) == 26
    with pytest.raises(GraphTooLarge, match="the computation graph would have 26 nodes, more than the limit of 25") as e:
        build_graph(layers, x, y, "binary_cross_entropy", "mean", max_nodes=25)
    assert (e.value.count, e.value.limit) == (26, 25)
    # The count is checked before anything is computed: a large batch fails at once.
    big = rng.normal(size=(100_000, 2))
    with pytest.raises(GraphTooLarge) as e:
        build_graph(layers, big, np.ones((100_000, 1)), "binary_cross_entropy", "mean", max_nodes=1000)
    assert e.value.count == graph_size([(2, 2), (1, 2)], ["relu", "sigmoid"], 100_000, "binary_cross_entropy").nodes


def test_a_saturated_sigmoid_with_target_one_keeps_finite_grads():
    # a = sigmoid(40) rounds to 1: dl/da = -y/a + (1 - y)/(1 - a) would be 0/0 without leaving out the
    # part whose target weight 1 - y is 0.
    layers = [Layer(np.array([[40.0]]), np.zeros(1), "sigmoid")]
    g = build_graph(layers, np.array([[1.0]]), np.array([[1.0]]), "binary_cross_entropy", "sum")
    assert g.node("layers[0].activation[0][0]").value == 1.0
    assert all(np.isfinite(n.grad) for n in g.nodes if n.grad is not None)
    assert g.node("layers[0].activation[0][0]").grad == -1.0


def test_a_saturated_sigmoid_shows_why_the_loss_is_fused():
    # a = sigmoid(40) rounds to 1 and the target is 0: the textbook dl/da = 1 / (1 - a) is inf and
    # sigmoid'(40) = a (1 - a) is 0, so the chain through a gives nan below it, where torch's fused
    # derivative a - y = 1 is exact. The graph says so rather than hide it; /v1/gradients is exact.
    layers = [Layer(np.array([[40.0]]), np.zeros(1), "sigmoid")]
    x, y = np.array([[1.0]]), np.array([[0.0]])
    g = build_graph(layers, x, y, "binary_cross_entropy", "sum")
    assert g.root.value == evaluate(layers, x, y, "binary_cross_entropy", "sum").loss == 40.0
    assert g.inputs_of("loss.terms[0][0]")[0][1] == np.inf and g.node("layers[0].activation[0][0]").grad == np.inf
    assert np.isnan(g.node("layers[0].pre_activation[0][0]").grad) and np.isnan(g.node("layers[0].weights[0][0]").grad)
    assert evaluate(layers, x, y, "binary_cross_entropy", "sum").gradient.tolist() == [1.0, 1.0]


def test_softmax_is_one_node_per_output_with_its_jacobian_on_the_edges(rng):
    layers, x, y = problem(rng, "cross_entropy", "softmax", batch=1)
    g = build_graph(layers, x, y, "cross_entropy", "sum")
    p = [g.node(f"layers[2].activation[0][{j}]").value for j in range(3)]
    for j in range(3):
        edges = g.inputs_of(f"layers[2].activation[0][{j}]")
        assert [n.name for n, _ in edges] == [f"layers[2].pre_activation[0][{i}]" for i in range(3)]
        assert [d for _, d in edges] == pytest.approx([p[j] * ((i == j) - p[i]) for i in range(3)], rel=1e-12, abs=1e-16)
    term = g.inputs_of("loss.terms[0]")
    assert [d for _, d in term[:3]] == pytest.approx([-y[0, j] / p[j] for j in range(3)], rel=1e-15)
    assert [d for _, d in term[3:]] == [None, None, None]  # from the targets


@pytest.mark.parametrize("sample", [None, 0, 2])
@pytest.mark.parametrize("loss, last", [("mse", "tanh"), ("cross_entropy", "softmax"), ("binary_cross_entropy", "sigmoid")])
def test_has_node_knows_every_name_from_the_shapes_alone(loss, last, sample, rng):
    """Each name the graph has, and every name one number away from one (another index, sample or layer,
    or a number written 01), is recognised exactly when the graph has it."""
    layers, x, y = problem(rng, loss, last, batch=3, sizes=(3, 4, 2))
    g = build_graph(layers, x, y, loss, "mean", sample=sample)
    shapes = [layer.shape for layer in layers]
    names = {node.name for node in g.nodes}
    near = {
        name[: m.start()] + digits + name[m.end() :]
        for name in names
        for m in re.finditer(r"\d+", name)
        for digits in ("0", "1", "2", "3", "4", "01")
    }
    others = {"loss[0]", "layers[0].inputs[0][0]", "weights[0][0]", "layers[2].biases[0]", "loss.other_samples", "loss.terms", "x", ""}
    for name in names | near | others:
        assert has_node(name, shapes, 3, loss, sample) == (name in names), name

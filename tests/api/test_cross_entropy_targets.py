"""cross_entropy's class-index targets, label_smoothing and class_weights over HTTP.

Every loss-taking endpoint answers both forms of targets with both options; bad bodies are 422s
located at the element or field; bodies without the new forms answer exactly as before.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.schemas.responses import ExplainResponse

LOSS_PATHS = ["/v1/loss", "/v1/gradients", "/v1/gradcheck", "/v1/explain", "/v1/train", "/v1/train/plot", "/v1/diagram", "/v1/graph"]
INDICES = [2, 0, 1, 1, 0]
ROWS = np.eye(3)[INDICES].tolist()  # the same classes as one-hot probability rows
WEIGHTS = [0.5, 2.0, 1.25]
TRAINING = {"optimizer": {"name": "adam", "learning_rate": 0.05}, "iterations": 30, "record_every": 4, "record": ["output", "gradients"]}
PARAMETER = {"parameter": {"layer": 0, "kind": "weights", "index": [1, 2]}}
NDJSON = {"Accept": "application/x-ndjson"}


def base(**changes):
    """A 3-4-3 tanh/softmax network, 5 samples, class indices; ``changes`` replace or add fields."""
    body = {
        "network": {
            "layers": [
                {
                    "weights": [[0.3, -0.7, 0.5], [0.9, 0.1, -0.4], [-0.6, 0.8, 0.2], [0.4, 0.4, -0.9]],
                    "biases": [0.1, -0.2, 0.0, 0.3],
                    "activation": "tanh",
                },
                {
                    "weights": [[0.7, -0.5, 0.3, 0.2], [-0.4, 0.6, 0.9, -0.1], [0.2, 0.3, -0.8, 0.5]],
                    "biases": [0.05, -0.1, 0.2],
                    "activation": "softmax",
                },
            ]
        },
        "inputs": [[0.5, -1.0, 2.0], [1.5, 0.2, -0.3], [-0.7, 0.9, 0.4], [0.0, -0.5, 1.1], [1.2, 1.3, -1.4]],
        "targets": INDICES,
        "loss": "cross_entropy",
    }
    body.update(changes)
    return body


def for_path(path, body):
    """``body`` with the fields ``path`` needs on top of a loss request."""
    if path == "/v1/explain":
        return {**body, **PARAMETER}
    if path in ("/v1/train", "/v1/train/plot"):
        return {**body, **TRAINING}
    return body


def post(client, path, body, **kwargs):
    r = client.post(path, json=for_path(path, body), **kwargs)
    assert r.status_code == 200, r.text
    return r


# -- 200s ------------------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("path", ["/v1/loss", "/v1/gradients", "/v1/gradcheck", "/v1/train", "/v1/train/plot"])
def test_class_indices_answer_exactly_as_their_one_hot_rows(client, path, reduction):
    # Without class weights torch's two forms are the same numbers; here they are the same bytes.
    by_index = post(client, path, base(reduction=reduction))
    by_rows = post(client, path, base(targets=ROWS, reduction=reduction))
    assert by_index.content == by_rows.content
    if path == "/v1/train":
        streamed = post(client, path, base(reduction=reduction), headers=NDJSON)
        *entries, summary = [json.loads(line) for line in streamed.text.splitlines()]
        assert entries == by_index.json()["trace"] and summary["final_loss"] == by_index.json()["final_loss"]


def test_class_indices_explain_and_diagram(client):
    by_index = post(client, "/v1/explain", base()).json()
    by_rows = post(client, "/v1/explain", base(targets=ROWS)).json()
    assert by_index["gradient"] == by_rows["gradient"]
    assert by_index["reduction"] == by_rows["reduction"]
    first = by_index["samples"][0]["steps"][0]
    assert "class 2" in first["factors"][1]["meaning"]  # sample 0's class, named in its effective target
    svg_index = post(client, "/v1/diagram", base()).text
    svg_rows = post(client, "/v1/diagram", base(targets=ROWS)).text
    assert svg_index == svg_rows.replace("(cross_entropy, mean,", "(cross_entropy, class indices, mean,")
    assert "(cross_entropy, class indices, mean," in svg_index


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_label_smoothing_is_sending_the_smoothed_rows(client, reduction):
    eps, probabilities = 0.1, [[0.2, 0.5, 0.3], [1.0, 0.0, 0.0], [0.1, 0.1, 0.8], [0.0, 1.0, 0.0], [0.6, 0.4, 0.0]]
    smoothed = [[y * (1 - eps) + eps / 3 for y in row] for row in probabilities]
    for path in ("/v1/loss", "/v1/gradients", "/v1/train"):
        with_option = post(client, path, base(targets=probabilities, label_smoothing=eps, reduction=reduction))
        by_hand = post(client, path, base(targets=smoothed, reduction=reduction))
        assert with_option.content == by_hand.content
    plain = post(client, "/v1/loss", base(targets=probabilities, reduction=reduction)).json()["loss"]
    assert plain != with_option.json()["final_loss"]  # the option did something


def test_weighted_mean_divides_by_the_target_weights_for_indices_and_by_the_batch_for_rows(client):
    weights = {"class_weights": WEIGHTS, "label_smoothing": 0.2}
    total = sum(WEIGHTS[t] for t in INDICES)  # 1.25 + 0.5 + 2 + 2 + 0.5 = 6.25
    index_sum = post(client, "/v1/gradients", base(reduction="sum", **weights))
    rows_sum = post(client, "/v1/gradients", base(targets=ROWS, reduction="sum", **weights))
    assert index_sum.content == rows_sum.content  # sum: the same numbers for both forms
    index_mean = post(client, "/v1/gradients", base(**weights)).json()
    rows_mean = post(client, "/v1/gradients", base(targets=ROWS, **weights)).json()
    assert index_mean["loss"] == pytest.approx(index_sum.json()["loss"] / total, rel=1e-14)
    assert rows_mean["loss"] == pytest.approx(rows_sum.json()["loss"] / len(INDICES), rel=1e-14)
    g_sum = np.array(index_sum.json()["gradients"][0]["weights"])
    np.testing.assert_allclose(index_mean["gradients"][0]["weights"], g_sum / total, rtol=1e-13)
    np.testing.assert_allclose(rows_mean["gradients"][0]["weights"], g_sum / len(INDICES), rtol=1e-13)


@pytest.mark.parametrize("form", ["indices", "rows"])
def test_every_endpoint_takes_both_options(client, form):
    body = base(targets=INDICES if form == "indices" else ROWS, class_weights=WEIGHTS, label_smoothing=0.1)
    loss = post(client, "/v1/loss", body).json()
    grads = post(client, "/v1/gradients", body).json()
    assert loss["loss"] == grads["loss"] and loss["output"] == grads["output"]
    assert loss["loss"] != post(client, "/v1/loss", base(targets=body["targets"])).json()["loss"]
    check = post(client, "/v1/gradcheck", body).json()
    assert check["passed"] and check["max_abs_error"] < 1e-8
    np.testing.assert_allclose([g["weights"] for g in check["analytical"]][0], grads["gradients"][0]["weights"], rtol=0, atol=0)
    trained = post(client, "/v1/train", body).json()
    assert trained["status"] == "completed" and trained["trace"][0]["loss"] == loss["loss"]
    assert trained["final_loss"] < loss["loss"]
    streamed = post(client, "/v1/train", body, headers=NDJSON)
    *entries, summary = [json.loads(line) for line in streamed.text.splitlines()]
    assert entries == trained["trace"] and summary["network"] == trained["network"]
    plot = post(client, "/v1/train/plot", body)
    assert plot.headers["content-type"].startswith("image/svg+xml") and "completed" in plot.text
    diagram = post(client, "/v1/diagram", body)
    assert "label_smoothing 0.1, class_weights" in diagram.text
    assert ("class indices" in diagram.text) == (form == "indices")


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("form", ["indices", "rows"])
def test_explain_shows_the_effective_targets(client, form, reduction):
    eps = 0.1
    body = base(targets=INDICES if form == "indices" else ROWS, class_weights=WEIGHTS, label_smoothing=eps, reduction=reduction)
    for parameter in ({"layer": 1, "kind": "biases", "index": [1]}, {"layer": 0, "kind": "weights", "index": [3, 0]}):
        e = client.post("/v1/explain", json={**body, "parameter": parameter}).json()
        ExplainResponse.model_validate(e)  # a divisor that is a sum of weights fits the documented answer
        grads = post(client, "/v1/gradients", body).json()["gradients"]
        layer, kind, index = parameter["layer"], parameter["kind"], parameter["index"]
        expected = grads[layer][kind][index[0]] if kind == "biases" else grads[layer][kind][index[0]][index[1]]
        assert e["gradient"] == expected
        divisor = e["reduction"]["divisor"]
        if reduction == "sum":
            assert divisor == 1
        elif form == "indices":
            assert divisor == pytest.approx(sum(WEIGHTS[t] for t in INDICES), rel=1e-15)
            assert "target classes" in e["reduction"]["line"]
        else:
            assert divisor == len(INDICES)
        assert e["reduction"]["total"] / divisor == pytest.approx(e["gradient"], rel=1e-12)
        for s, sample in enumerate(e["samples"]):
            for step in sample["steps"]:
                if not step["symbol"].startswith("delta1["):
                    continue
                m = int(step["symbol"][len("delta1[") : -1])
                p, effective, weight = (f["value"] for f in step["factors"])
                y = ROWS[s][m]
                assert effective == pytest.approx(WEIGHTS[m] * ((1 - eps) * y + eps / 3), rel=1e-15)
                assert weight == pytest.approx(sum(WEIGHTS[j] * ((1 - eps) * ROWS[s][j] + eps / 3) for j in range(3)), rel=1e-15)
                assert step["value"] == pytest.approx(p * weight - effective, rel=1e-12, abs=1e-15)
                assert "p * sum_j e[j] - e" in step["line"]


def test_http_answers_match_torch(client):
    torch = pytest.importorskip("torch")
    body = base(class_weights=WEIGHTS, label_smoothing=0.3)
    answer = post(client, "/v1/gradients", body).json()
    params = []
    x = torch.tensor(body["inputs"], dtype=torch.float64)
    for layer in body["network"]["layers"]:
        w = torch.tensor(layer["weights"], dtype=torch.float64, requires_grad=True)
        b = torch.tensor(layer["biases"], dtype=torch.float64, requires_grad=True)
        params.append((w, b))
    hidden = torch.tanh(x @ params[0][0].T + params[0][1])
    logits = hidden @ params[1][0].T + params[1][1]
    value = torch.nn.functional.cross_entropy(
        logits, torch.tensor(INDICES), weight=torch.tensor(WEIGHTS, dtype=torch.float64), label_smoothing=0.3
    )
    value.backward()
    assert answer["loss"] == pytest.approx(value.item(), rel=1e-13)
    for ours, (w, b) in zip(answer["gradients"], params):
        np.testing.assert_allclose(ours["weights"], w.grad.numpy(), rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(ours["biases"], b.grad.numpy(), rtol=1e-13, atol=1e-15)


# -- 422s --------------------------------------------------------------------------------------

# (id, body changes, loc after "body", words the msg must contain, type)
BAD = [
    ("float-index", {"targets": [2, 0, 1.0, 1, 0]}, ("targets", 2), ["JSON integer", "found 1.0"], "class_index_type"),
    ("bool-index", {"targets": [2, 0, True, 1, 0]}, ("targets", 2), ["JSON integer", "found true"], "class_index_type"),
    ("string-index", {"targets": [2, 0, "1", 1, 0]}, ("targets", 2), ["JSON integer", "the string '1'"], "class_index_type"),
    ("null-index", {"targets": [2, 0, None, 1, 0]}, ("targets", 2), ["JSON integer", "null"], "class_index_type"),
    ("index-too-large", {"targets": [2, 0, 3, 1, 0]}, ("targets", 2), ["[0, 2]", "3 classes", "found 3"], "target_range"),
    ("negative-index", {"targets": [2, 0, -1, 1, 0]}, ("targets", 2), ["[0, 2]", "found -1"], "target_range"),
    ("huge-index", {"targets": [2, 0, 10**40, 1, 0]}, ("targets", 2), ["[0, 2]", "41 digits"], "target_range"),
    ("too-few-indices", {"targets": [2, 0, 1]}, ("targets",), ["one class index per input row (5)", "have 3"], "shape_mismatch"),
    ("too-many-indices", {"targets": [2, 0, 1, 1, 0, 2]}, ("targets",), ["(5)", "have 6"], "shape_mismatch"),
    (
        "row-among-indices",
        {"targets": [2, 0, [0.0, 1.0, 0.0], 1, 0]},
        ("targets", 2),
        ["not a mix", "element 0 is a class index", "element 2"],
        "mixed_targets",
    ),
    (
        "index-among-rows",
        {"targets": [[0.0, 0.0, 1.0], 1, [0.0, 1.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]},
        ("targets", 1),
        ["not a mix", "element 0 is a row", "found 1"],
        "mixed_targets",
    ),
    (
        "indices-for-mse",
        {"loss": "mse", "network": None},
        ("targets",),
        ["cross_entropy only", "mse needs rows of shape [5][3]"],
        "shape_mismatch",
    ),
    (
        "smoothing-for-mse",
        {"loss": "mse", "targets": ROWS, "label_smoothing": 0.1, "network": None},
        ("label_smoothing",),
        ["cross_entropy loss only", "loss is mse", "found 0.1"],
        "loss_option",
    ),
    (
        "weights-for-mse",
        {"loss": "mse", "targets": ROWS, "class_weights": WEIGHTS, "network": None},
        ("class_weights",),
        ["cross_entropy loss only", "loss is mse"],
        "loss_option",
    ),
    ("smoothing-one", {"label_smoothing": 1.0}, ("label_smoothing",), ["less than 1"], "less_than"),
    ("smoothing-negative", {"label_smoothing": -0.1}, ("label_smoothing",), ["greater than or equal to 0"], "greater_than_equal"),
    ("smoothing-string", {"label_smoothing": "0.1"}, ("label_smoothing",), ["number", "string"], "float_type"),
    ("weights-length", {"class_weights": [1.0, 2.0]}, ("class_weights",), ["one weight per class (3", "has 2"], "shape_mismatch"),
    (
        "weights-negative",
        {"class_weights": [1.0, -2.0, 1.0]},
        ("class_weights", 1),
        ["greater than or equal to 0", "-2.0"],
        "greater_than_equal",
    ),
    ("weights-nan", {"class_weights": [1.0, float("nan"), 1.0]}, ("class_weights", 1), ["finite"], "finite_number"),
    ("weights-empty", {"class_weights": []}, ("class_weights",), ["at least 1"], "too_short"),
    (
        "weights-of-targets-zero",
        {"class_weights": [0.0, 0.0, 1.0], "targets": [0, 1, 0, 1, 0]},
        ("class_weights",),
        ["all 0", "reduction sum"],
        "zero_weight_sum",
    ),
]


def bad_body(changes):
    body = base(**{k: v for k, v in changes.items() if k != "network"})
    if "network" in changes:  # a tanh last layer, so that mse is otherwise fine
        body["network"]["layers"][1]["activation"] = "tanh"
    return body


@pytest.mark.parametrize("case_id, changes, loc, words, kind", BAD, ids=[c[0] for c in BAD])
def test_bad_bodies_are_422_at_the_element(client, case_id, changes, loc, words, kind):
    r = client.post("/v1/gradients", content=json.dumps(bad_body(changes), allow_nan=True), headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    (entry,) = r.json()["detail"]
    assert entry["loc"] == ["body", *loc]
    assert entry["type"] == kind
    for word in words:
        assert word in entry["msg"], (word, entry["msg"])
    assert "list[" not in json.dumps(entry) and "rows" not in entry["loc"] and "class_indices" not in entry["loc"]


@pytest.mark.parametrize("path", LOSS_PATHS)
def test_every_endpoint_validates_the_new_fields(client, path):
    r = client.post(path, json=for_path(path, base(targets=[2, 0, 3, 1, 0])))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "targets", 2]
    r = client.post(path, json=for_path(path, base(class_weights=[1.0])))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "class_weights"]
    r = client.post(path, json=for_path(path, base(label_smoothing=2)))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "label_smoothing"]


def test_a_weight_sum_of_zero_is_fine_for_sum_and_for_rows(client):
    # Only a mean over class indices divides by the target classes' weights.
    zero = {"class_weights": [0.0, 0.0, 1.0], "targets": [0, 1, 0, 1, 0]}
    assert post(client, "/v1/loss", base(reduction="sum", **zero)).json()["loss"] == 0.0
    rows = np.eye(3)[zero["targets"]].tolist()
    assert post(client, "/v1/loss", base(class_weights=zero["class_weights"], targets=rows)).json()["loss"] == 0.0


# -- existing bodies -------------------------------------------------------------------------


@pytest.mark.parametrize("path", LOSS_PATHS)
def test_the_defaults_written_out_change_no_byte(client, seed_body, path):
    """The seed, and cross_entropy probability rows, answer byte for byte the same with the new
    fields at their defaults as without them."""
    fields = {"/v1/train": tuple(seed_body), "/v1/train/plot": tuple(seed_body)}.get(
        path, ("network", "inputs", "targets", "loss", "reduction")
    )
    seed = {k: seed_body[k] for k in fields} | (
        {"parameter": {"layer": 1, "kind": "weights", "index": [0, 0]}} if path == "/v1/explain" else {}
    )
    rows = for_path(path, base(targets=[[0.2, 0.5, 0.3], [1.0, 0.0, 0.0], [0.1, 0.1, 0.8], [0.0, 1.0, 0.0], [0.6, 0.4, 0.0]]))
    for body in (seed, rows):
        plain = client.post(path, json=body)
        assert plain.status_code == 200
        for defaults in ({"label_smoothing": 0.0}, {"class_weights": None}, {"label_smoothing": 0, "class_weights": None}):
            assert client.post(path, json=body | defaults).content == plain.content


def test_seed_answers_and_examples_are_as_before(client, seed_loss_body):
    assert b'"loss":0.35520347518814194' in client.post("/v1/loss", json=seed_loss_body).content
    for name in ("seed", "xor"):
        example = client.get(f"/v1/examples/{name}").json()
        assert "label_smoothing" not in example and "class_weights" not in example
    # cross_entropy with probability rows and no option keeps its explanation, p - y
    e = client.post("/v1/explain", json=base(targets=ROWS) | PARAMETER).json()
    assert "p - y (softmax and cross-entropy together)" in e["lines"][0]
    assert [f["symbol"] for f in e["samples"][0]["steps"][0]["factors"]] == ["p[0]", "y[0]"]

"""POST /v1/check: a learner's numbers checked against the problem, scored, and the wrong ones diagnosed (issue 14)."""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import pytest

from app.examples import EXAMPLES, example_body
from app.nn.check import KINDS, program_work
from app.schemas.requests import Points
from app.schemas.responses import CheckResponse
from tests.support.seed_trace import SEED_LOSSES, SEED_OUTPUTS, SEED_W11

TRAINING = {"optimizer": {"name": "sgd", "learning_rate": 0.5}, "iterations": 3}


def post(client: Any, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
    r = client.post("/v1/check", json=body)
    assert r.status_code == status, r.text
    answer = r.json()
    if status == 200:
        CheckResponse.model_validate(answer, strict=True)
    return answer


@pytest.fixture
def seed_problem(seed_loss_body: dict[str, Any]) -> dict[str, Any]:
    """The seed's /v1/gradients body: the problem a check without training is about."""
    return seed_loss_body


@pytest.fixture
def seed_answer(client: Any, seed_problem: dict[str, Any]) -> dict[str, Any]:
    """The service's own /v1/gradients and /v1/forward answers on the seed, in claim shape."""
    grads = client.post("/v1/gradients", json=seed_problem).json()
    forward = client.post("/v1/forward", json={k: seed_problem[k] for k in ("network", "inputs")}).json()
    return {"layers": forward["layers"], "output": grads["output"], "loss": grads["loss"], "gradients": grads["gradients"]}


# -- what is correct ---------------------------------------------------------------------------


def test_the_seed_example_claims_correct_numbers(client):
    out = post(client, example_body("seed", "check"))
    assert out["first_wrong"] is None
    assert out["diagnoses"] == [] and out["search"]["complete"] and out["search"]["message"] is None
    assert all(q["correct"] and q["consistent"] for q in out["quantities"])
    assert out["score"] == out["max_score"] == len(out["quantities"]) == 6
    # In computation order: forward, loss, then backward.
    assert [q["path"] for q in out["quantities"]] == [
        ["layers", 0, "activation"],
        ["output"],
        ["loss"],
        ["layers", 1, "delta"],
        ["gradients", 1, "weights"],
        ["gradients", 1, "biases"],
    ]
    w11 = out["quantities"][4]
    assert (w11["kind"], w11["layer"], w11["part"], w11["iteration"]) == ("gradients", 1, "weights", 1)
    assert w11["worst"]["index"] == [0, 0] and w11["worst"]["claimed"] == -0.12891552493693778  # the one weight claimed


def test_the_services_own_answer_claimed_whole_is_correct(client, seed_problem, seed_answer):
    out = post(client, {**seed_problem, "claimed": seed_answer})
    assert out["first_wrong"] is None
    assert all(q["correct"] for q in out["quantities"])
    # Every array of the answer: 2 layers x (pre_activation, activation), output, loss, 2 layers x (weights, biases).
    assert len(out["quantities"]) == 4 + 1 + 1 + 4


@pytest.mark.parametrize(("layer", "index"), [(1, (0, 1)), (0, (1, 0))])
def test_one_gradient_element_changed_is_the_first_wrong(client, seed_problem, seed_answer, layer, index):
    claimed = copy.deepcopy(seed_answer)
    j, i = index
    claimed["gradients"][layer]["weights"][j][i] *= 1.5
    out = post(client, {**seed_problem, "claimed": claimed})
    assert out["first_wrong"] == ["gradients", layer, "weights", j, i]
    (wrong,) = [q for q in out["quantities"] if not q["correct"]]
    assert wrong["path"] == ["gradients", layer, "weights"] and not wrong["consistent"]
    assert wrong["worst"]["index"] == [j, i] and not wrong["worst"]["ok"]
    assert wrong["worst"]["rel_error"] == pytest.approx(1 / 3, rel=1e-9)
    assert out["score"] == out["max_score"] - 1


def test_a_number_rounded_to_five_figures_is_correct_by_default(client, seed_problem):
    claimed = {"loss": float(f"{SEED_LOSSES[0]:.5g}")}
    assert post(client, {**seed_problem, "claimed": claimed})["first_wrong"] is None
    strict = post(client, {**seed_problem, "claimed": claimed, "tolerance": {"rtol": 1e-9, "atol": 0.0}})
    assert strict["first_wrong"] == ["loss"]


# -- error carried forward, and the score ------------------------------------------------------


def test_a_loss_that_follows_from_a_wrong_output_is_consistent_and_scores_with_carry_forward(client, seed_problem):
    # Output 0.6 is wrong; the binary cross-entropy of 0.6 against 1, -log 0.6, follows from it.
    claimed = {"output": [[0.6]], "loss": -math.log(0.6)}
    points = {"output": 3, "loss": 2}
    out = post(client, {**seed_problem, "claimed": claimed, "points": points})
    output, loss = out["quantities"]
    assert (output["correct"], output["consistent"]) == (False, False)
    assert (loss["correct"], loss["consistent"]) == (False, True)
    assert out["first_wrong"] == ["output", 0, 0]
    assert loss["worst_given_claims"]["ok"] and loss["worst_given_claims"]["expected"] == pytest.approx(-math.log(0.6), rel=1e-12)
    assert (out["score"], out["max_score"]) == (2.0, 5.0)
    strict = post(client, {**seed_problem, "claimed": claimed, "points": points, "carry_forward": False})
    assert (strict["score"], strict["max_score"]) == (0.0, 5.0)
    assert [q["points"] for q in strict["quantities"]] == [0.0, 0.0] and [q["max_points"] for q in strict["quantities"]] == [3.0, 2.0]


def test_points_are_given_per_kind_of_quantity_the_engine_knows():
    assert tuple(Points.model_fields) == KINDS


def test_arrays_of_only_nulls_claim_nothing(client, seed_problem):
    claimed = {"output": [[None]], "gradients": [{"weights": [[None, None], [None, None]]}, None], "loss": SEED_LOSSES[0]}
    out = post(client, {**seed_problem, "claimed": claimed})
    assert [q["path"] for q in out["quantities"]] == [["loss"]] and out["max_score"] == 1.0


def test_nothing_claimed_is_an_empty_check(client, seed_problem):
    out = post(client, {**seed_problem, "claimed": {}})
    assert (out["quantities"], out["first_wrong"], out["score"], out["max_score"]) == ([], None, 0.0, 0.0)


# -- trainings ---------------------------------------------------------------------------------


def test_the_seed_training_claimed_as_the_post_printed_it_is_correct(client, seed_problem):
    seed = example_body("seed")
    iterations = [
        {"iteration": i, "output": [[z]], "loss": loss, "network": {"layers": [None, {"weights": [[w11, None]]}]}}
        for i, (z, loss, w11) in enumerate(zip(SEED_OUTPUTS, SEED_LOSSES, SEED_W11), start=1)
    ]
    body = {**seed_problem, **{k: seed[k] for k in ("optimizer", "iterations", "trainable")}, "claimed": {"iterations": iterations[::-1]}}
    out = post(client, body)
    assert out["first_wrong"] is None and out["score"] == out["max_score"] == 9
    # In computation order, whatever order they were claimed in; each path in the claim's own shape.
    assert [(q["iteration"], q["path"][:2]) for q in out["quantities"][:3]] == [(1, ["iterations", 2])] * 3
    assert out["quantities"][2]["path"] == ["iterations", 2, "network", "layers", 1, "weights"]


def test_the_blog_example_is_wrong_from_its_first_output_and_diagnosed(client):
    out = post(client, example_body("blog", "check"))
    assert out["first_wrong"] == ["iterations", 0, "output", 0, 0]
    by_path = {tuple(q["path"]): q for q in out["quantities"]}
    for i in range(3):
        assert not by_path[("iterations", i, "output")]["consistent"]
        # Each printed loss is the cross-entropy of the printed output: error carried forward.
        assert by_path[("iterations", i, "loss")]["consistent"] and not by_path[("iterations", i, "loss")]["correct"]
    # The w11 updates: the post's f1 uses w2 (layer 0's weights[1][1]) where w21 (weights[0][1]) belongs.
    updates = [["iterations", i, "network", "layers", 1, "weights"] for i in range(3)]
    substituted = [
        d
        for d in out["diagnoses"]
        if d["name"] == "parameter_substituted"
        and d["detail"].get("layer") == 0
        and d["detail"].get("index") == [0, 1]
        and d["detail"].get("used_index") == [1, 1]
    ]
    assert substituted, out["diagnoses"]
    assert all(path in substituted[0]["explains"] for path in updates)
    index = out["diagnoses"].index(substituted[0])
    assert all(index in by_path[tuple(path)]["mistakes"] for path in updates)
    assert out["search"]["complete"] and out["search"]["variants_tried"] == out["search"]["variants_total"] > 0


def test_the_xor_example_claims_adams_first_step_rounded_and_correct(client):
    out = post(client, example_body("xor", "check"))
    assert out["first_wrong"] is None and all(q["correct"] for q in out["quantities"])


def test_the_search_for_mistakes_stops_at_the_work_limit_and_says_so(make_client):
    body = example_body("blog", "check")
    # Enough for the check's two runs (3 iterations of the blog's 2-2-1 network) and five variants, not all.
    run = 3 * program_work([(2, 2), (1, 2)], 1)
    out = post(make_client(max_work=7 * run), body)
    assert out["first_wrong"] == ["iterations", 0, "output", 0, 0]
    search = out["search"]
    assert not search["complete"] and search["variants_tried"] < search["variants_total"]
    assert "BACKPROP_MAX_WORK" in search["message"] and search["variants_tried"] == 5


# -- invalid claims: 422 at the field -----------------------------------------------------------

OPTIMIZER = {"name": "sgd", "learning_rate": 0.5}


def _train(claimed: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"optimizer": OPTIMIZER, "iterations": 3, "claimed": claimed, **more}


# (id, fields replacing the seed's /v1/gradients body's, expected loc after "body", words the msg must contain, type)
INVALID = [
    (
        "gradient-shape",
        {"claimed": {"gradients": [None, {"weights": [[1.0, 2.0], [3.0, 4.0]]}]}},
        ("claimed", "gradients", 1, "weights"),
        ["claimed.gradients[1].weights must be [1][2]", "layer 1's weights", "found [2][2]"],
        "shape_mismatch",
    ),
    (
        "bias-gradient-length",
        {"claimed": {"gradients": [{"biases": [1.0]}, None]}},
        ("claimed", "gradients", 0, "biases"),
        ["must be [2]", "found [1]"],
        "shape_mismatch",
    ),
    (
        "ragged-activation",
        {"claimed": {"layers": [{"activation": [[1.0, 2.0], [3.0]]}, None]}},
        ("claimed", "layers", 0, "activation"),
        ["must be [1][2]", "rows of different lengths"],
        "shape_mismatch",
    ),
    (
        "delta-shape",
        {"claimed": {"layers": [None, {"delta": [[1.0, 2.0]]}]}},
        ("claimed", "layers", 1, "delta"),
        ["claimed.layers[1].delta must be [1][1]", "found [1][2]"],
        "shape_mismatch",
    ),
    (
        "layers-count",
        {"claimed": {"layers": [None]}},
        ("claimed", "layers"),
        ["one entry per layer (2)", "has 1 entry"],
        "shape_mismatch",
    ),
    (
        "gradients-count",
        {"claimed": {"gradients": [None, None, None]}},
        ("claimed", "gradients"),
        ["one entry per layer (2)", "3 entries"],
        "shape_mismatch",
    ),
    ("output-flat", {"claimed": {"output": [0.7]}}, ("claimed", "output"), ["2-D"], "not_2d"),
    ("output-string", {"claimed": {"output": [["0.7"]]}}, ("claimed", "output", 0, 0), ["number", "string"], "float_type"),
    ("loss-infinite", {"claimed": {"loss": float("inf")}}, ("claimed", "loss"), ["finite", "Infinity"], "finite_number"),
    (
        "weight-nan",
        {"claimed": {"gradients": [None, {"weights": [[float("nan"), None]]}]}},
        ("claimed", "gradients", 1, "weights", 0, 0),
        ["finite"],
        "finite_number",
    ),
    ("unknown-key", {"claimed": {"gradient": []}}, ("claimed", "gradient"), ["did you mean 'gradients'"], "unknown_field"),
    (
        "unknown-layer-key",
        {"claimed": {"layers": [{"deltas": [[1.0, 2.0]]}, None]}},
        ("claimed", "layers", 0, "deltas"),
        ["'delta'"],
        "unknown_field",
    ),
    ("unknown-tolerance", {"claimed": {}, "tolerance": {"rel": 0.1}}, ("tolerance", "rel"), ["rtol"], "unknown_field"),
    ("negative-points", {"claimed": {}, "points": {"loss": -1}}, ("points", "loss"), ["greater than or equal to 0"], "greater_than_equal"),
    ("no-claimed", {}, ("claimed",), ["required"], "missing"),
    (
        "iterations-without-optimizer",
        {"claimed": {"iterations": [{"iteration": 1, "loss": 0.3}]}},
        ("claimed", "iterations"),
        ["training", "optimizer is missing"],
        "missing_dependency",
    ),
    (
        "iterations-field-without-optimizer",
        {"claimed": {}, "iterations": 3},
        ("optimizer",),
        ["optimizer is missing"],
        "missing_dependency",
    ),
    (
        "optimizer-without-iterations",
        {"claimed": {}, "optimizer": OPTIMIZER},
        ("iterations",),
        ["iterations is missing"],
        "missing_dependency",
    ),
    ("pass-keys-with-optimizer", _train({"loss": 0.3}), ("claimed", "loss"), ["claimed.iterations[i]"], "claim_form"),
    (
        "iteration-out-of-range",
        _train({"iterations": [{"iteration": 4, "loss": 0.3}]}),
        ("claimed", "iterations", 0, "iteration"),
        ["at most 3", "is 4"],
        "iteration_range",
    ),
    (
        "iteration-zero",
        _train({"iterations": [{"iteration": 0, "loss": 0.3}]}),
        ("claimed", "iterations", 0, "iteration"),
        ["greater than or equal to 1"],
        "greater_than_equal",
    ),
    (
        "iteration-repeated",
        _train({"iterations": [{"iteration": 2, "loss": 0.3}, {"iteration": 1}, {"iteration": 2, "output": [[0.5]]}]}),
        ("claimed", "iterations", 2, "iteration"),
        ["iteration 2", "claimed.iterations[0]"],
        "repeated_iteration",
    ),
    (
        "iteration-without-number",
        _train({"iterations": [{"loss": 0.3}]}),
        ("claimed", "iterations", 0, "iteration"),
        ["required"],
        "missing",
    ),
    (
        "network-shape",
        _train({"iterations": [{"iteration": 1, "network": {"layers": [None, {"weights": [[1.0, None, 2.0]]}]}}]}),
        ("claimed", "iterations", 0, "network", "layers", 1, "weights"),
        ["claimed.iterations[0].network.layers[1].weights must be [1][2]", "found [1][3]"],
        "shape_mismatch",
    ),
    (
        "network-without-training",
        {"claimed": {"network": {"layers": [None, None]}}},
        ("claimed", "network"),
        ["not a field here"],
        "unknown_field",
    ),
    (
        "trainable-shape",
        _train({}, trainable=[{"weights": [[True]]}, {}]),
        ("trainable", 0, "weights"),
        ["[2][2]"],
        "shape_mismatch",
    ),
]


@pytest.mark.parametrize(("changes", "loc", "words", "kind"), [case[1:] for case in INVALID], ids=[case[0] for case in INVALID])
def test_invalid_claims_are_422_at_the_field(client, seed_problem, changes, loc, words, kind):
    body = {**seed_problem, **changes}
    # Python's json writes NaN and Infinity, as a careless client would.
    r = client.post("/v1/check", content=json.dumps(body), headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    error = r.json()["detail"][0]
    assert error["loc"] == ["body", *loc], error
    assert error["type"] == kind, error
    assert all(word in error["msg"] for word in words), error


def test_a_large_body_is_validated_as_a_small_one(client):
    """Over 64 KiB, bodies take app.api.large_body's path: claims with nulls validate there too."""
    width = 5000
    problem = {
        "network": {"layers": [{"weights": [[0.001 * (i % 7) for i in range(width)]], "activation": "sigmoid"}]},
        "inputs": [[1.0] * width],
        "targets": [[1.0]],
        "loss": "binary_cross_entropy",
    }
    grads = client.post("/v1/gradients", json=problem).json()["gradients"][0]["weights"][0]
    claimed_row: list[float | None] = [None] * width
    claimed_row[5] = grads[5]
    claimed_row[width - 1] = grads[width - 1] * 2
    body = {**problem, "claimed": {"gradients": [{"weights": [claimed_row]}]}}
    assert len(json.dumps(body)) > 64 * 1024
    out = post(client, body)
    assert out["first_wrong"] == ["gradients", 0, "weights", 0, width - 1]
    body["claimed"]["gradients"][0]["weights"] = [claimed_row[:-1]]
    r = client.post("/v1/check", json=body)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "claimed", "gradients", 0, "weights"]
    assert f"must be [1][{width}]" in r.json()["detail"][0]["msg"]


# -- limits: 413 -------------------------------------------------------------------------------


def test_a_claim_past_the_iteration_limit_is_413(make_client, seed_problem):
    body = {**seed_problem, "optimizer": OPTIMIZER, "iterations": 10, "claimed": {"iterations": [{"iteration": 3, "loss": 0.3}]}}
    r = make_client(max_iterations=2).post("/v1/check", json=body)
    assert r.status_code == 413
    assert r.json()["detail"][0]["loc"] == ["body", "iterations"] and "BACKPROP_MAX_ITERATIONS" in r.json()["detail"][0]["msg"]
    # Only the iterations up to the last claimed one are computed: a longer training claimed early is within it.
    body["claimed"] = {"iterations": [{"iteration": 2, "loss": 0.3}]}
    assert make_client(max_iterations=2).post("/v1/check", json=body).status_code == 200


def test_the_check_runs_twice_within_the_work_limit(make_client, seed_problem):
    # The seed (2-2-1, one sample): one iteration of the check's plain program, run twice.
    body = {**seed_problem, "claimed": {"loss": SEED_LOSSES[0]}}
    twice = 2 * program_work([(2, 2), (1, 2)], 1)
    assert make_client(max_work=twice).post("/v1/check", json=body).status_code == 200
    r = make_client(max_work=twice - 1).post("/v1/check", json=body)
    assert r.status_code == 413 and "BACKPROP_MAX_WORK" in r.json()["detail"][0]["msg"] and "2 runs" in r.json()["detail"][0]["msg"]


def test_the_answers_size_is_limited(make_client, seed_problem, seed_answer):
    r = make_client(max_output_values=100).post("/v1/check", json={**seed_problem, "claimed": seed_answer})
    assert r.status_code == 413
    error = r.json()["detail"][0]
    assert error["loc"] == ["body", "claimed"] and "BACKPROP_MAX_OUTPUT_VALUES" in error["msg"]


# -- examples and the spec ---------------------------------------------------------------------


def test_every_example_has_a_check_body(client):
    for name in EXAMPLES:
        r = client.get(f"/v1/examples/{name}", params={"for": "check"})
        assert r.status_code == 200 and "claimed" in r.json()
    blog = client.get("/v1/examples/blog", params={"for": "check"}).json()
    assert blog["network"]["layers"][0]["weights"] == [[0.436, 0.435], [0.55, 0.42]]
    assert blog["network"]["layers"][1]["weights"] == [[0.026, 0.33]]
    assert [c["iteration"] for c in blog["claimed"]["iterations"]] == [1, 2, 3]
    assert blog["claimed"]["iterations"][2]["network"] == {"layers": [None, {"weights": [[0.21566472402149306, None]]}]}
    # A check without training carries none of the training's fields.
    assert not {"optimizer", "iterations", "trainable"} & set(client.get("/v1/examples/seed", params={"for": "check"}).json())


def test_the_spec_shows_a_correct_and_a_wrong_claim(client):
    examples = client.get("/openapi.json").json()["paths"]["/v1/check"]["post"]["responses"]["200"]["content"]["application/json"][
        "examples"
    ]
    assert examples["seed"]["value"]["first_wrong"] is None
    assert examples["blog"]["value"]["first_wrong"] == ["iterations", 0, "output", 0, 0]


def test_points_are_bounded_so_the_score_stays_finite(client, seed_problem):
    claimed = {"gradients": [{"weights": [[1.0, 1.0], [1.0, 1.0]]}, {"weights": [[1.0, 1.0]]}]}
    r = client.post("/v1/check", json={**seed_problem, "claimed": claimed, "points": {"gradients": 1e308}})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "points", "gradients"]
    top = client.post("/v1/check", json={**seed_problem, "claimed": claimed, "points": {"gradients": 1_000_000}}).json()
    assert top["max_score"] == 2_000_000

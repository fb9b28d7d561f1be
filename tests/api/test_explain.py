import pytest

W11 = {"layer": 1, "kind": "weights", "index": [0, 0]}


def test_explain_seed_w11(client, seed_loss_body):
    r = client.post("/v1/explain", json={**seed_loss_body, "parameter": W11})
    assert r.status_code == 200
    out = r.json()
    grads = client.post("/v1/gradients", json=seed_loss_body).json()["gradients"]
    assert out["gradient"] == grads[1]["weights"][0][0]
    factors = out["samples"][0]["steps"][0]["factors"]
    assert [f["symbol"] for f in factors] == ["dl/dz_hat[0]", "sigmoid'(pre1[0])", "z_hat - z"]
    assert out["lines"][-1].startswith("mean: dL/dW1[0][0]")
    assert len(out["lines"]) == 3


@pytest.mark.parametrize(
    "parameter, loc",
    [
        ({"layer": 2, "kind": "weights", "index": [0, 0]}, ["body", "parameter", "layer"]),
        ({"layer": 1, "kind": "weights", "index": [0]}, ["body", "parameter", "index"]),
        ({"layer": 1, "kind": "biases", "index": [1]}, ["body", "parameter", "index", 0]),
        ({"layer": 0, "kind": "weights", "index": [0, -1]}, ["body", "parameter", "index", 1]),
        ({"layer": 0, "kind": "gradient", "index": [0]}, ["body", "parameter", "kind"]),
        ({"layer": 0, "kind": "biases"}, ["body", "parameter", "index"]),
    ],
)
def test_explain_bad_parameter(client, seed_loss_body, parameter, loc):
    r = client.post("/v1/explain", json={**seed_loss_body, "parameter": parameter})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == loc


def test_explain_size_is_limited(make_client, seed_loss_body):
    r = make_client(max_explain_steps=2).post(
        "/v1/explain", json={**seed_loss_body, "parameter": {"layer": 0, "kind": "biases", "index": [0]}}
    )
    assert r.status_code == 413 and "BACKPROP_MAX_EXPLAIN_STEPS" in r.json()["detail"][0]["msg"]


def test_every_step_and_the_reduction_have_their_latex(client, seed_loss_body):
    import numpy as np

    from tests.support.random_bodies import explain_body

    out = client.post("/v1/explain", json={**seed_loss_body, "parameter": W11}).json()
    steps = [st for d in out["samples"] for st in d["steps"]]
    assert len(steps) == 2 and all(st["latex"].strip() for st in steps) and out["reduction"]["latex"].strip()
    assert r"\frac{\partial" in steps[0]["latex"] and "a^{(1)}_{0} - y_{0} = 0.701031 - 1" in steps[0]["latex"]
    for case in range(30):
        body = explain_body(np.random.default_rng((20261130, 15, case)))
        r = client.post("/v1/explain", json=body)
        assert r.status_code == 200, r.text
        answer = r.json()
        assert all(st["latex"].strip() for d in answer["samples"] for st in d["steps"]), body
        assert answer["reduction"]["latex"].strip()

import pytest


def test_gradcheck_seed(client, seed_loss_body):
    r = client.post("/v1/gradcheck", json=seed_loss_body)
    assert r.status_code == 200
    out = r.json()
    assert out["passed"] is True and out["max_abs_error"] < 1e-8
    grads = client.post("/v1/gradients", json=seed_loss_body).json()["gradients"]
    assert out["analytical"] == grads
    for num, ana in zip(out["numerical"], out["analytical"]):
        assert num["weights"] == [pytest.approx(row, abs=1e-8) for row in ana["weights"]]
    worst = out["worst"]
    assert set(worst) == {"layer", "kind", "index", "analytical", "numerical"}


def test_gradcheck_tolerances_decide(client, seed_loss_body):
    r = client.post("/v1/gradcheck", json={**seed_loss_body, "atol": 0, "rtol": 0})
    assert r.status_code == 200 and r.json()["passed"] is False


@pytest.mark.parametrize(
    "field, value, words",
    [("epsilon", 0, "greater than 0"), ("atol", -1, "greater than or equal"), ("rtol", "x", "number")],
)
def test_gradcheck_bad_options(client, seed_loss_body, field, value, words):
    r = client.post("/v1/gradcheck", json={**seed_loss_body, field: value})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", field] and words in r.json()["detail"][0]["msg"]


def test_gradcheck_work_is_limited(make_client, seed_loss_body):
    # 9 parameters: 19 passes x max(1 x 9, 2 layers x 10,000) = 380,000 units.
    assert make_client(max_work=380_000).post("/v1/gradcheck", json=seed_loss_body).status_code == 200
    assert make_client(max_work=379_999).post("/v1/gradcheck", json=seed_loss_body).status_code == 413

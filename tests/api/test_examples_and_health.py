import pytest

from app.examples import ENDPOINTS, EXAMPLES
from app.schemas.requests import TrainRequest


def test_list_examples(client):
    r = client.get("/v1/examples")
    assert r.status_code == 200
    listed = r.json()["examples"]
    assert [e["name"] for e in listed][:2] == ["seed", "xor"]
    assert all(e["description"] and "\n" not in e["description"] for e in listed)
    assert all(e["endpoints"] == list(ENDPOINTS) for e in listed)  # seed and xor fit every endpoint


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_each_example_is_a_valid_train_body(client, name):
    r = client.get(f"/v1/examples/{name}")
    assert r.status_code == 200
    TrainRequest.model_validate(r.json())
    assert client.post("/v1/train", json=r.json()).status_code == 200


def test_unknown_example_is_404(client):
    r = client.get("/v1/examples/mnist")
    assert r.status_code == 404
    (err,) = r.json()["detail"]
    assert err["loc"] == ["path", "name"] and "seed" in err["msg"]


def test_examples_are_fresh_copies(client):
    first = client.get("/v1/examples/seed").json()
    first["iterations"] = 999
    assert client.get("/v1/examples/seed").json()["iterations"] == 3


def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


@pytest.mark.parametrize("path", [e.path for e in ENDPOINTS.values()])
def test_swagger_prefills_every_endpoint_with_the_seed(client, path):
    spec = client.get("/openapi.json").json()
    content = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]
    names = list(content["examples"])
    assert names[0] == "seed"
    seed = content["examples"]["seed"]["value"]
    assert seed["network"]["layers"][1]["weights"] == [[0.026, 1.0]]
    assert seed["inputs"] == [[0.7, 0.3]]


@pytest.mark.parametrize("name", sorted(EXAMPLES))
@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_each_example_has_a_postable_body_for_each_endpoint(client, name, endpoint):
    r = client.get(f"/v1/examples/{name}", params={"for": endpoint})
    assert r.status_code == 200
    ENDPOINTS[endpoint].model.model_validate(r.json())
    assert client.post(ENDPOINTS[endpoint].path, json=r.json()).status_code == 200


def test_gradients_body_is_not_the_train_body(client):
    # Issue 12: the train body posted to /v1/gradients was 5 extra_forbidden errors.
    train = client.get("/v1/examples/seed").json()
    assert client.post("/v1/gradients", json=train).status_code == 422
    assert client.post("/v1/gradients", json=client.get("/v1/examples/seed?for=gradients").json()).status_code == 200


def test_docs_page_is_served(client):
    r = client.get("/docs")
    assert r.status_code == 200 and "swagger" in r.text.lower()

"""The Python client's binary encoding: safetensors bodies and answers (numpy arrays in and out)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.client import (
    BINARY_ACCEPT,
    ENDPOINTS,
    NULL,
    REQUEST_MODELS,
    AsyncBackpropClient,
    BackpropClient,
    LimitExceeded,
    ValidationFailed,
    as_lists,
    decode_answer,
    decode_request,
    encode_request,
)
from app.config import Settings
from app.main import create_app
from app.schemas.requests import ExplainRequest, LossRequest, TrainRequest
from app.schemas.responses import ForwardResponse, GradientsResponse, TraceEntry, TrainResponse, TrainSummary
from app.schemas.safetensors import MEDIA_TYPE, decode, encode
from tests.support import random_bodies
from tests.support.seed_trace import SEED_LOSSES, SEED_W11

LOSS_FIELDS = ("network", "inputs", "targets", "loss")


def tensors_of(content: bytes) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """A binary body's tensors and its ``__metadata__["request"]`` JSON, read by the service's reader."""
    decoded = decode(content)
    return decoded.tensors, json.loads(decoded.metadata["request"])


def recording(answer: Callable[[httpx.Request], httpx.Response]) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return answer(request)

    return httpx.MockTransport(handler), sent


def answered(tensors: dict[str, np.ndarray], response: dict[str, Any]) -> Callable[[httpx.Request], httpx.Response]:
    """A fake service that answers every request with this safetensors file."""
    content = encode(tensors, {"response": json.dumps(response)})
    return lambda request: httpx.Response(200, content=content, headers={"Content-Type": MEDIA_TYPE})


# -- the request: encoded per the wire format --------------------------------------------------------


def test_a_binary_request_carries_every_array_as_a_tensor_and_the_rest_as_json(seed_body):
    transport, sent = recording(answered({"output": np.ones((1, 1))}, {"loss": 0.5}))
    fields = {k: seed_body[k] for k in LOSS_FIELDS}
    with BackpropClient("http://test", transport=transport, encoding="binary") as client:
        client.loss(**fields, reduction="sum")
    request = sent[0]
    assert request.headers["content-type"] == MEDIA_TYPE and request.headers["accept"] == BINARY_ACCEPT
    tensors, rest = tensors_of(request.content)
    layers = seed_body["network"]["layers"]
    expected = {"inputs": seed_body["inputs"], "targets": seed_body["targets"]}
    for k, layer in enumerate(layers):
        expected |= {f"network.layers.{k}.weights": layer["weights"], f"network.layers.{k}.biases": layer["biases"]}
    assert set(tensors) == set(expected)
    for name, value in expected.items():
        assert tensors[name].dtype == np.float64 and tensors[name].tolist() == value, name
    assert rest == {
        "network": {"layers": [{"activation": layer["activation"]} for layer in layers]},
        "loss": "binary_cross_entropy",
        "reduction": "sum",
    }
    # The service's own reading of the body is the JSON body.
    assert LossRequest.model_validate(decode_request(request.content) | {"reduction": "sum"}).model_dump(mode="json") == (
        LossRequest.model_validate({**fields, "reduction": "sum"}).model_dump(mode="json")
    )


def test_arrays_keep_float32_and_go_c_contiguous_little_endian():
    weights = np.arange(12, dtype=np.float32).reshape(3, 4).T  # Fortran order: not C-contiguous
    inputs = np.array([[1.5, -2.0, 0.25]], dtype=">f8")  # big-endian
    body = {"network": {"layers": [{"weights": weights, "biases": np.array([1, 2, 3, 4])}]}, "inputs": inputs, "targets": [[0, 1, 2, 3]]}
    tensors, rest = tensors_of(encode_request({**body, "loss": "mse"}, LossRequest))
    assert tensors["network.layers.0.weights"].dtype == np.dtype("<f4")
    np.testing.assert_array_equal(tensors["network.layers.0.weights"], weights)
    assert tensors["network.layers.0.biases"].dtype == np.dtype("<f8") and tensors["network.layers.0.biases"].tolist() == [1, 2, 3, 4]
    assert tensors["inputs"].dtype == np.dtype("<f8") and tensors["inputs"].tolist() == [[1.5, -2.0, 0.25]]
    assert tensors["targets"].tolist() == [[0.0, 1.0, 2.0, 3.0]]  # a matrix of ints is numbers
    assert rest == {"network": {"layers": [{}]}, "loss": "mse"}


@pytest.mark.parametrize("targets", [[2, 0, 1], np.array([2, 0, 1])], ids=["list", "numpy"])
def test_class_indices_and_other_integers_stay_json(targets):
    body = {
        "network": {"layers": [{"weights": [[1.0, 2.0]] * 3, "activation": "identity"}]},
        "inputs": [[0.5, 1.0]] * 3,
        "targets": targets,
        "loss": "cross_entropy",
        "class_weights": [1.0, 2.0, 0.5],
        "parameter": {"layer": 0, "kind": "weights", "index": [1, 0]},
    }
    tensors, rest = tensors_of(encode_request(body, ExplainRequest))
    assert set(tensors) == {"network.layers.0.weights", "inputs"}
    assert rest["targets"] == [2, 0, 1] and rest["parameter"]["index"] == [1, 0]
    assert rest["class_weights"] == [1.0, 2.0, 0.5]  # not an array the service parses as one: JSON


def test_what_is_not_an_array_of_numbers_stays_json(seed_body):
    layers = seed_body["network"]["layers"]
    ragged = [[0.5, 0.25], [1.0]]
    body = {
        **seed_body,
        "network": {"layers": [{**layers[0], "weights": [[0.1, True], [0.2, 0.3]]}, {**layers[1], "biases": NULL}]},
        "inputs": ragged,
        "targets": [],
        "optimizer": {"name": "adam", "learning_rate": 0.1, "betas": (0.9, 0.99)},
        "label_smoothing": None,
    }
    tensors, rest = tensors_of(encode_request(body, TrainRequest))
    assert set(tensors) == {"network.layers.0.biases", "network.layers.1.weights"}
    assert rest["network"]["layers"][0]["weights"] == [[0.1, True], [0.2, 0.3]]  # a boolean is no number
    assert rest["network"]["layers"][1]["biases"] is None  # NULL is sent as null, None left out
    assert "label_smoothing" not in rest
    assert rest["inputs"] == ragged and rest["targets"] == []
    assert rest["optimizer"]["betas"] == [0.9, 0.99]
    assert rest["trainable"] == seed_body["trainable"]  # masks of booleans


def test_a_state_dict_goes_under_torchs_own_names():
    state_dict = {"0.weight": np.ones((3, 2)), "0.bias": np.zeros(3), "2.weight": np.ones((1, 3)), "2.bias": np.zeros(1)}
    network = {"state_dict": state_dict, "activations": ["tanh", "sigmoid"]}
    tensors, rest = tensors_of(encode_request({"network": network, "inputs": [[1.0, 2.0]], "targets": [[1.0]], "loss": "mse"}, LossRequest))
    assert list(tensors) == ["0.weight", "0.bias", "2.weight", "2.bias", "inputs", "targets"]
    assert rest == {"network": {"activations": ["tanh", "sigmoid"]}, "loss": "mse"}
    back = decode_request(encode_request({"network": network, "inputs": [[1.0, 2.0]], "targets": [[1.0]], "loss": "mse"}, LossRequest))
    assert set(back["network"]["state_dict"]) == set(state_dict)


def test_pydantic_models_and_numpy_arrays_are_encoded_alike(seed_body):
    fields = {k: seed_body[k] for k in LOSS_FIELDS}
    from_model = encode_request({**fields, "network": LossRequest.model_validate(fields).network}, LossRequest)
    as_arrays = {**fields, "inputs": np.array(fields["inputs"]), "targets": np.array(fields["targets"])}
    assert from_model == encode_request(fields, LossRequest) == encode_request(as_arrays, LossRequest)


def test_per_call_encoding_overrides_the_clients(seed_body):
    def answer(request: httpx.Request) -> httpx.Response:
        if request.headers.get("accept") == BINARY_ACCEPT:
            return answered({"output": np.array([[0.5]])}, {"loss": 0.25})(request)
        return httpx.Response(200, json={"loss": 0.25, "output": [[0.5]]})

    transport, sent = recording(answer)
    fields = {k: seed_body[k] for k in LOSS_FIELDS}
    with BackpropClient("http://test", transport=transport) as client:
        as_json = client.loss(**fields)
        binary = client.loss(**fields, encoding="binary")
        with pytest.raises(ValueError, match="encoding must be"):
            client.loss(**fields, encoding="bson")  # type: ignore[arg-type]
    with BackpropClient("http://test", transport=transport, encoding="binary") as client:
        overridden = client.loss(**fields, encoding="json")
    assert [r.headers["content-type"] for r in sent] == ["application/json", MEDIA_TYPE, "application/json"]
    assert isinstance(binary.output, np.ndarray) and isinstance(as_json.output, list) and isinstance(overridden.output, list)
    assert as_lists(binary) == as_json
    with pytest.raises(ValueError, match="encoding must be"):
        BackpropClient("http://test", encoding="xml")  # type: ignore[arg-type]


def test_a_picture_is_asked_for_as_a_picture_even_when_the_body_is_binary(seed_body):
    transport, sent = recording(lambda request: httpx.Response(200, text="<svg/>", headers={"Content-Type": "image/svg+xml"}))
    with BackpropClient("http://test", transport=transport, encoding="binary") as client:
        assert client.diagram(network=seed_body["network"]) == "<svg/>"
        client.graph(**{k: seed_body[k] for k in LOSS_FIELDS}, format="svg")
    assert [r.headers["content-type"] for r in sent] == [MEDIA_TYPE, MEDIA_TYPE]
    assert sent[0].headers["accept"] != BINARY_ACCEPT and sent[1].headers["accept"] == "image/svg+xml"


def test_send_posts_safetensors_bytes_as_they_are():
    content = encode({"inputs": np.ones((1, 2))}, {"request": json.dumps({"loss": "mse"})})
    transport, sent = recording(lambda request: httpx.Response(200, json={"loss": 0.5, "output": [[1.0]]}))
    with BackpropClient("http://test", transport=transport) as client:
        assert client.send("loss", content).loss == 0.5
        assert client.send("loss", content, raw=True) == b'{"loss":0.5,"output":[[1.0]]}'
    assert sent[0].content == content and sent[0].headers["content-type"] == MEDIA_TYPE
    assert sent[0].headers["accept"] != BINARY_ACCEPT and sent[1].headers["accept"] == "application/json"


def test_the_request_models_are_the_services():
    from app.examples import ENDPOINTS as EXAMPLE_ENDPOINTS

    assert set(REQUEST_MODELS) == set(ENDPOINTS) == set(EXAMPLE_ENDPOINTS)
    assert all(REQUEST_MODELS[name] is EXAMPLE_ENDPOINTS[name].model for name in REQUEST_MODELS)


# -- the answer: decoded into the response models, holding numpy arrays -----------------------------


def test_a_binary_answer_becomes_the_response_model_holding_arrays(seed_body):
    rng = np.random.default_rng(0)
    arrays = {
        "output": rng.normal(size=(3, 2)),
        "gradients.0.weights": rng.normal(size=(4, 5)),
        "gradients.0.biases": rng.normal(size=4),
        "gradients.1.weights": rng.normal(size=(2, 4)),
        "gradients.1.biases": rng.normal(size=2),
    }
    transport, _ = recording(answered(arrays, {"loss": 1.25, "gradients": [{}, {}]}))
    with BackpropClient("http://test", transport=transport, encoding="binary") as client:
        result = client.gradients(**{k: seed_body[k] for k in LOSS_FIELDS})
    assert isinstance(result, GradientsResponse) and result.loss == 1.25
    assert isinstance(result.output, np.ndarray) and np.array_equal(result.output, arrays["output"])
    for k, g in enumerate(result.gradients):
        assert np.array_equal(g.weights, arrays[f"gradients.{k}.weights"]) and np.array_equal(g.biases, arrays[f"gradients.{k}.biases"])
        assert g.weights.flags.writeable and np.array_equal(g.weights_array, g.weights)
    listed = as_lists(result)
    assert listed.gradients[1].weights == arrays["gradients.1.weights"].tolist()
    assert GradientsResponse.model_validate_json(listed.model_dump_json()) == listed


def test_arrays_in_lists_float32_and_a_trained_state_dict_are_put_back():
    rng = np.random.default_rng(1)
    w0, b0, out = rng.normal(size=(3, 2)), rng.normal(size=3), rng.normal(size=(2, 3)).astype(np.float32)
    forward = encode(
        {"output": out, "layers.0.pre_activation": out, "layers.0.activation": out},
        {"response": json.dumps({"layers": [{}]})},
    )
    result = decode_answer(forward, ForwardResponse)
    assert result.output.dtype == np.float32 and np.array_equal(result.layers[0].activation, out)
    # A trained network sent as a state_dict: its tensors under their short names; a trace entry's by its path.
    trained = encode(
        {"0.weight": w0, "0.bias": b0, "trace.0.network.state_dict.0.weight": w0 * 2, "trace.0.output": out.astype(np.float64)},
        {
            "response": json.dumps(
                {
                    "status": "completed",
                    "trace": [{"iteration": 1, "loss": 0.5, "network": {"activations": ["sigmoid"]}}, {"iteration": 2, "loss": 0.25}],
                    "network": {"activations": ["sigmoid"]},
                    "final_loss": 0.125,
                }
            )
        },
    )
    result = decode_answer(trained, TrainResponse)
    assert np.array_equal(result.network.state_dict["0.weight"], w0) and np.array_equal(result.network.layers[0].biases, b0)
    assert np.array_equal(result.trace[0].network.state_dict["0.weight"], w0 * 2) and result.trace[1].output is None
    assert isinstance(result.trace[0], TraceEntry) and result.final_loss == 0.125
    assert as_lists(result).network.model_dump(mode="json") == {
        "state_dict": {"0.weight": w0.tolist(), "0.bias": b0.tolist()},
        "activations": ["sigmoid"],
    }
    # A tensor in a list's place (left null by the service), as orjson writes the rest.
    rows = encode({"gradients.1": np.ones(2)}, {"response": json.dumps({"gradients": [{"weights": [[1.0]], "biases": [2.0]}, None]})})
    with pytest.raises(ValueError):
        decode_answer(rows, GradientsResponse)  # a row where an object is wanted: the JSON encoding's error


def test_a_malformed_binary_answer_is_an_error():
    with pytest.raises(ValueError, match="cannot go inside it"):
        decode_answer(encode({"loss.x": np.ones(1)}, {"response": json.dumps({"loss": 1.0})}), GradientsResponse)
    with pytest.raises(ValueError):
        decode_answer(b"\x00" * 4, GradientsResponse)
    with pytest.raises(ValueError):  # a field the model does not have, as JSON would be refused
        decode_answer(encode({"extra": np.ones(1)}, {"response": json.dumps({"loss": 1.0, "output": [[1.0]]})}), GradientsResponse)


def test_errors_stay_json_and_raise_as_ever(seed_body):
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/train":
            return httpx.Response(413, json={"detail": [{"loc": ["body", "iterations"], "msg": "too many", "type": "limit_exceeded"}]})
        return httpx.Response(422, json={"detail": [{"loc": ["body", "inputs"], "msg": "bad", "type": "shape_mismatch"}]})

    transport, _ = recording(answer)
    with BackpropClient("http://test", transport=transport, encoding="binary") as client:
        with pytest.raises(ValidationFailed) as failed:
            client.gradients(**{k: seed_body[k] for k in LOSS_FIELDS})
        assert failed.value.detail[0].loc == ["body", "inputs"]
        with pytest.raises(LimitExceeded):
            client.train(**seed_body)


# -- against the service ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def service() -> Iterator[TestClient]:
    with TestClient(create_app(Settings())) as served:
        yield served


def through(service: TestClient) -> httpx.MockTransport:
    """A transport to the in-process service (headers both ways)."""

    def answer(request: httpx.Request) -> httpx.Response:
        r = service.post(request.url.path, content=request.content, headers=dict(request.headers))
        return httpx.Response(r.status_code, content=r.content, headers=r.headers)

    return httpx.MockTransport(answer)


def same(binary: Any, as_json: Any) -> None:
    """The binary answer, as lists, is the JSON answer to the last bit (``repr`` tells -0.0 from 0.0)."""
    assert as_lists(binary).model_dump_json() == as_json.model_dump_json()


def as_numpy(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with its inputs and each layer's weights as numpy arrays (a client's own arrays)."""
    layers = [{**layer, "weights": np.array(layer["weights"])} for layer in body["network"]["layers"]]
    return {**body, "network": {"layers": layers}, "inputs": np.array(body["inputs"])}


def test_the_seed_example_answers_the_same_in_both_encodings(service, seed_body):
    fields = {k: seed_body[k] for k in LOSS_FIELDS}
    with BackpropClient("http://test", transport=through(service), encoding="binary") as client:
        grads = client.gradients(**fields)
        assert isinstance(grads.gradients[1].weights, np.ndarray) and grads.gradients[1].weights.dtype == np.float64
        same(grads, client.gradients(**fields, encoding="json"))
        trained = client.train(**seed_body)
        same(trained, client.train(**seed_body, encoding="json"))
        assert [e.loss for e in trained.trace] == pytest.approx(SEED_LOSSES, abs=1e-12)
        streamed = list(client.train(**seed_body, stream=True))  # the stream is JSON lines in either encoding
        assert isinstance(streamed[-1], TrainSummary)
        assert [i.network.layers[1].weights[0][0] for i in streamed[:-1]] == pytest.approx(SEED_W11, abs=1e-12)
        forward = {"network": seed_body["network"], "inputs": seed_body["inputs"]}
        same(client.forward(**forward), client.forward(**forward, encoding="json"))


BODIES = {
    "forward": random_bodies.network_body,
    "loss": random_bodies.loss_body,
    "gradients": random_bodies.loss_body,
    "gradcheck": random_bodies.gradcheck_body,
    "explain": random_bodies.explain_body,
    "train": random_bodies.train_body,
    "check": random_bodies.check_body,
    "graph": random_bodies.graph_body,
}


@pytest.mark.parametrize("endpoint", list(BODIES))
def test_random_bodies_answer_the_same_in_both_encodings(service, rng, endpoint):
    with BackpropClient("http://test", transport=through(service)) as client:
        for _ in range(6):
            body = BODIES[endpoint](rng)
            as_json = client.send(endpoint, body)
            same(client.send(endpoint, body, encoding="binary"), as_json)
            same(client.send(endpoint, as_numpy(body), encoding="binary"), as_json)


def test_random_networks_gradients_bit_for_bit_sync_and_async(service, rng):
    bodies = [random_bodies.loss_body(rng) for _ in range(10)]
    with BackpropClient("http://test", transport=through(service)) as client:
        expected = [client.gradients(**body) for body in bodies]
        with BackpropClient("http://test", transport=through(service), encoding="binary") as binary:
            for body, answer in zip(bodies, expected):
                result = binary.gradients(**as_numpy(body))
                assert all(isinstance(g.weights, np.ndarray) for g in result.gradients)
                same(result, answer)

    async def scenario() -> list[GradientsResponse]:
        transport = httpx.ASGITransport(app=create_app(Settings()))
        async with AsyncBackpropClient("http://test", transport=transport, encoding="binary") as client:
            results = [await client.gradients(**body) for body in bodies]
            items = [item async for item in await client.train(**random_bodies.train_body(rng), stream=True)]
            assert isinstance(items[-1], TrainSummary)
            raw = await client.send("gradients", bodies[0], raw=True)
            assert decode(raw).tensors and as_lists(decode_answer(raw, GradientsResponse)) == expected[0]
            return results

    for result, answer in zip(asyncio.run(scenario()), expected):
        same(result, answer)


def test_float32_answers_come_as_float32_arrays(service, rng):
    body = random_bodies.loss_body(rng)
    with BackpropClient("http://test", transport=through(service), encoding="binary") as client:
        result = client.gradients(**body, dtype="float32")
        as_json = client.gradients(**body, dtype="float32", encoding="json")
    assert result.output.dtype == np.float32 and all(g.weights.dtype == np.float32 for g in result.gradients)
    assert result.gradients[0].weights.tolist() == np.array(as_json.gradients[0].weights, dtype=np.float32).tolist()


def test_binary_errors_are_the_json_errors(service, seed_body):
    bad = {k: seed_body[k] for k in LOSS_FIELDS} | {"inputs": [[1.0, 2.0, 3.0]]}
    with BackpropClient("http://test", transport=through(service)) as client:
        with pytest.raises(ValidationFailed) as as_json:
            client.gradients(**bad)
        with pytest.raises(ValidationFailed) as binary:
            client.gradients(**bad, encoding="binary")
    assert binary.value.detail == as_json.value.detail and binary.value.detail[0].loc == ["body", "inputs"]


def test_a_torch_state_dict_trains_and_loads_back_into_torch(service):
    torch = pytest.importorskip("torch")
    safetensors_torch = pytest.importorskip("safetensors.torch")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)).double()
    x, y = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)
    fields = {"network": {"activations": ["tanh", "identity"]}, "loss": "mse", "optimizer": {"name": "sgd", "learning_rate": 0.1}}
    fields |= {"iterations": 3, "record": []}
    content = safetensors_torch.save(model.state_dict() | {"inputs": x, "targets": y}, metadata={"request": json.dumps(fields)})
    with BackpropClient("http://test", transport=through(service), encoding="binary") as client:
        raw = client.send("train", content, raw=True)
        trained = decode_answer(raw, TrainResponse)
    model.load_state_dict(safetensors_torch.load(raw))  # the answer's file is the trained state_dict as it is
    torch.manual_seed(0)
    reference = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)).double()
    optimizer = torch.optim.SGD(reference.parameters(), lr=0.1)
    for _ in range(3):
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(reference(x), y).backward()
        optimizer.step()
    for key, tensor in reference.state_dict().items():
        np.testing.assert_allclose(model.state_dict()[key].numpy(), tensor.numpy(), rtol=1e-12, atol=1e-15)
        assert np.array_equal(trained.network.state_dict[key], model.state_dict()[key].numpy()), key
    # torch's tensors as arguments, in either encoding.
    network = {"state_dict": model.state_dict(), "activations": ["tanh", "identity"]}
    with BackpropClient("http://test", transport=through(service)) as client:
        grads = client.gradients(network=network, inputs=x, targets=y, loss="mse", encoding="binary")
        same(grads, client.gradients(network=network, inputs=x, targets=y, loss="mse"))
    model.zero_grad()
    torch.nn.functional.mse_loss(model(x), y).backward()
    np.testing.assert_allclose(grads.gradients[0].weights, model[0].weight.grad.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(
    "network",
    [
        {"layers": [{"weight": np.array([[0.1, 0.2]]), "activation": "sigmoid"}]},  # a misspelt field holding an array
        {"layers": [{"weight": np.array([[0.1]]), "activation": "sigmoid"}]},
        {"state_dict": {"fc1.weight": np.ones((2, 2)), "fc2.weight": np.ones((1, 2))}, "activations": ["tanh", "identity"]},
    ],
)
def test_a_wrong_body_holding_arrays_is_the_same_422_in_both_encodings(service, network):
    with BackpropClient("http://test", transport=through(service)) as client:
        with pytest.raises(ValidationFailed) as as_json:
            client.forward(network=network, inputs=np.ones((1, 2)))
        with pytest.raises(ValidationFailed) as binary:
            client.forward(network=network, inputs=np.ones((1, 2)), encoding="binary")
    assert binary.value.detail == as_json.value.detail

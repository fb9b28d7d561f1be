"""Published, hand-worked backprop examples reproduced through the API."""

import pytest

# Matt Mazur, "A Step by Step Backpropagation Example" (2015): a 2-2-2 sigmoid network,
# E = sum 1/2 (target - out)^2, which is mse with mean over the 2 outputs; one SGD step
# at learning rate 0.5 with the (shared) biases held fixed.
MAZUR = {
    "network": {
        "layers": [
            {"weights": [[0.15, 0.20], [0.25, 0.30]], "biases": [0.35, 0.35], "activation": "sigmoid"},
            {"weights": [[0.40, 0.45], [0.50, 0.55]], "biases": [0.60, 0.60], "activation": "sigmoid"},
        ]
    },
    "inputs": [[0.05, 0.10]],
    "targets": [[0.01, 0.99]],
    "loss": "mse",
}


def test_mazur_forward_and_loss(client):
    r = client.post("/v1/loss", json=MAZUR)
    assert r.status_code == 200
    assert r.json()["loss"] == pytest.approx(0.298371109, abs=1e-9)
    assert r.json()["output"][0] == pytest.approx([0.75136507, 0.772928465], abs=1e-8)
    hidden = client.post("/v1/forward", json={k: MAZUR[k] for k in ("network", "inputs")}).json()["layers"][0]
    assert hidden["pre_activation"][0][0] == pytest.approx(0.3775, abs=1e-12)
    assert hidden["activation"][0] == pytest.approx([0.593269992, 0.596884378], abs=1e-9)


def test_mazur_gradients(client):
    grads = client.post("/v1/gradients", json=MAZUR).json()["gradients"]
    assert grads[1]["weights"][0][0] == pytest.approx(0.082167041, abs=1e-9)
    assert grads[0]["weights"][0][0] == pytest.approx(0.000438568, abs=1e-9)


def test_mazur_one_update(client):
    body = {
        **MAZUR,
        "optimizer": {"name": "sgd", "learning_rate": 0.5},
        "iterations": 1,
        "trainable": [{"biases": [False, False]}, {"biases": [False, False]}],
    }
    r = client.post("/v1/train", json=body)
    assert r.status_code == 200
    w1, w2 = (layer["weights"] for layer in r.json()["network"]["layers"])
    assert w2 == [pytest.approx([0.35891648, 0.408666186], abs=1e-8), pytest.approx([0.511301270, 0.561370121], abs=1e-8)]
    assert w1 == [pytest.approx([0.149780716, 0.19956143], abs=1e-8), pytest.approx([0.24975114, 0.29950229], abs=1e-8)]
    assert r.json()["network"]["layers"][0]["biases"] == [0.35, 0.35]
    assert r.json()["final_loss"] == pytest.approx(0.291027924, abs=1e-6)

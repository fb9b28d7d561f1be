"""SVG pictures: well-formed XML with what they promise, and the README's copies up to date."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET

import pytest

from scripts.export_pictures import DOCS, GRAPH_PICTURE, render_pictures

SVG = "{http://www.w3.org/2000/svg}"


def parse(text: str) -> ET.Element:
    root = ET.fromstring(text)
    assert root.tag == f"{SVG}svg"
    return root


def texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG}text")]


def test_diagram_of_a_bare_network(client, seed_body):
    r = client.post("/v1/diagram", json={"network": seed_body["network"]})
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
    root = parse(r.text)
    assert len(list(root.iter(f"{SVG}circle"))) == 2 + 2 + 1
    assert len(list(root.iter(f"{SVG}line"))) == 4 + 2
    assert "layer 0: relu" in texts(root) and "layer 1: sigmoid" in texts(root)


def test_diagram_labels_activations_and_gradients(client, seed_loss_body):
    root = parse(client.post("/v1/diagram", json=seed_loss_body).text)
    labels = texts(root)
    assert "0.701" in labels  # z_hat, the output neuron
    assert "0.4312" in labels  # z1
    assert "-0.1289" in labels  # dL/dw11
    edges = list(root.iter(f"{SVG}line"))
    widths = sorted(float(e.get("stroke-width")) for e in edges)
    assert widths[0] < widths[-1]  # |0.026| draws thinner than |1.0|


def test_diagram_weight_colours(client):
    body = {"network": {"layers": [{"weights": [[1.0, -1.0]]}]}}
    colours = [e.get("stroke") for e in parse(client.post("/v1/diagram", json=body).text).iter(f"{SVG}line")]
    assert colours == ["#2563eb", "#dc2626"]


@pytest.mark.parametrize(
    "change, loc",
    [
        ({"targets": [[1.0]]}, ["body", "inputs"]),
        ({"inputs": [[1.0]]}, ["body", "inputs"]),
        ({"inputs": [[0.7, 0.3]], "targets": [[1.0]]}, ["body", "loss"]),
    ],
)
def test_diagram_bad_bodies(client, seed_body, change, loc):
    r = client.post("/v1/diagram", json={"network": seed_body["network"], **change})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == loc


def test_diagram_size_is_limited(make_client):
    body = {"network": {"layers": [{"weights": [[0.1] * 65]}]}}
    r = make_client().post("/v1/diagram", json=body)
    assert r.status_code == 413 and "BACKPROP_MAX_DIAGRAM_UNITS" in r.json()["detail"][0]["msg"]


def test_train_plot(client):
    body = client.get("/v1/examples/xor").json()
    r = client.post("/v1/train/plot", json=body)
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
    root = parse(r.text)
    (line,) = root.iter(f"{SVG}polyline")
    assert len(line.get("points").split()) == 11  # iterations 1, 21, ..., 181 and 200
    assert any(t.startswith("completed; final loss 0.00") for t in texts(root))


def test_train_plot_of_a_divergence(client, diverging_body):
    body = diverging_body
    root = parse(client.post("/v1/train/plot", json=body).text)
    assert any("diverged at iteration" in t for t in texts(root))


def test_readme_pictures_are_current():
    has_dot = shutil.which("dot") is not None
    pictures = render_pictures(with_graphviz=has_dot)
    for name, svg in pictures.items():
        assert (DOCS / name).read_text(encoding="utf-8") == svg + "\n", f"docs/{name} is stale: run `python scripts/export_pictures.py`"
    if not has_dot:
        pytest.skip(f"docs/{GRAPH_PICTURE} not checked: Graphviz's dot is not installed (apt-get install graphviz)")


def test_the_readme_shows_the_seeds_graph_as_the_post_names_it():
    text = (DOCS / GRAPH_PICTURE).read_text(encoding="utf-8")
    root = parse(text)
    labels = {"".join(t.itertext()).strip() for t in root.iter(f"{SVG}text")}
    assert {"x1", "x2", "f1", "f2", "z1", "z2", "f", "z_hat", "z", "CE", "w11"} <= labels
    assert "![" in (DOCS.parent / "README.md").read_text() and f"docs/{GRAPH_PICTURE}" in (DOCS.parent / "README.md").read_text()

"""Write the README's pictures, drawn by the service itself: ``python scripts/export_pictures.py``.

The computation graph's picture is laid out by Graphviz's ``dot`` (Debian's ``graphviz`` package):
without it, that one is left out (``render_pictures(with_graphviz=False)``) and this script fails.
"""

from __future__ import annotations

import sys
from pathlib import Path

from fastapi.testclient import TestClient

from app.examples import LOSS_FIELDS, example_body
from app.main import create_app

DOCS = Path(__file__).resolve().parent.parent / "docs"
GRAPH_PICTURE = "seed-graph.svg"


def render_pictures(with_graphviz: bool = True) -> dict[str, str]:
    """``docs/`` file name -> SVG, from /v1/diagram on the seed, /v1/train/plot on xor and (``with_graphviz``)
    /v1/graph on the seed's graph body (the blog post's names) as Graphviz lays it out."""
    with TestClient(create_app()) as client:
        seed = example_body("seed")
        diagram = client.post("/v1/diagram", json={k: seed[k] for k in LOSS_FIELDS})
        curve = client.post("/v1/train/plot", json=example_body("xor"))
        assert diagram.status_code == curve.status_code == 200
        pictures = {"seed-diagram.svg": diagram.text, "xor-loss.svg": curve.text}
        if with_graphviz:
            graph = client.post("/v1/graph", json=example_body("seed", "graph"), headers={"Accept": "image/svg+xml"})
            assert graph.status_code == 200, graph.text
            pictures[GRAPH_PICTURE] = graph.text
    return pictures


def main() -> int:
    DOCS.mkdir(exist_ok=True)
    for name, svg in render_pictures().items():
        (DOCS / name).write_text(svg + "\n", encoding="utf-8")
        print(f"wrote {DOCS / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

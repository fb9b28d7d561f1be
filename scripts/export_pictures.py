"""Write the README's pictures, drawn by the service itself: ``python scripts/export_pictures.py``."""

from __future__ import annotations

import sys
from pathlib import Path

from fastapi.testclient import TestClient

from app.examples import LOSS_FIELDS, example_body
from app.main import create_app

DOCS = Path(__file__).resolve().parent.parent / "docs"


def render_pictures() -> dict[str, str]:
    """``docs/`` file name -> SVG, from /v1/diagram on the seed and /v1/train/plot on xor."""
    with TestClient(create_app()) as client:
        seed = example_body("seed")
        diagram = client.post("/v1/diagram", json={k: seed[k] for k in LOSS_FIELDS})
        curve = client.post("/v1/train/plot", json=example_body("xor"))
    assert diagram.status_code == curve.status_code == 200
    return {"seed-diagram.svg": diagram.text, "xor-loss.svg": curve.text}


def main() -> int:
    DOCS.mkdir(exist_ok=True)
    for name, svg in render_pictures().items():
        (DOCS / name).write_text(svg + "\n", encoding="utf-8")
        print(f"wrote {DOCS / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

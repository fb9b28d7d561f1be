"""Write the app's OpenAPI spec to ``openapi/openapi.json``: ``python scripts/export_openapi.py``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from app.main import create_app

SPEC_PATH = Path(__file__).resolve().parent.parent / "openapi" / "openapi.json"


def render_spec() -> str:
    """The spec as committed: sorted keys, two-space indent, trailing newline."""
    return json.dumps(create_app().openapi(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    path = Path(argv[0]) if argv else SPEC_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_spec(), encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

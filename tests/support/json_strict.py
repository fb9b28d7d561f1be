"""JSON parsed strictly: NaN, Infinity and -Infinity, which Python's json accepts, fail the test."""

from __future__ import annotations

import json
from typing import Any


def strict_json(text: str) -> Any:
    def reject(token: str) -> None:
        raise AssertionError(f"error body carries {token}")

    return json.loads(text, parse_constant=reject)

"""The security headers of the service's own HTML pages (the playground, /docs, /redoc and /).

Each page has a Content-Security-Policy of its own (what it may load and run); all of them
refuse to be framed (clickjacking) and send no referrer. ``nosniff`` and the default
``Cache-Control`` come with every answer (app.api.request_context).
"""

from __future__ import annotations

import base64
import hashlib


def inline_source(block: str) -> str:
    """The CSP source expression that allows exactly this inline ``<script>`` or ``<style>`` text."""
    return f"'sha256-{base64.b64encode(hashlib.sha256(block.encode()).digest()).decode()}'"


def page_headers(csp: str, cache: str | None = "no-cache") -> dict[str, str]:
    """The headers of a page whose policy is ``csp``; ``cache`` its Cache-Control (None: the default no-store)."""
    headers = {"Content-Security-Policy": csp, "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"}
    if cache is not None:
        headers["Cache-Control"] = cache
    return headers

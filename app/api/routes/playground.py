import base64
import hashlib
import re
from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(tags=["learning"])

PAGE = files("app.api").joinpath("static/playground.html").read_text(encoding="utf-8")


def _hashes(tag: str) -> str:
    """CSP source expressions allowing exactly the page's own inline ``<tag>`` blocks."""
    blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", PAGE, flags=re.S)
    return " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(b.encode()).digest()).decode()}'" for b in blocks)


# The page runs only its own inline script and style (by hash), talks only to this origin,
# loads nothing from anywhere else and cannot be framed (clickjacking).
CSP = (
    f"default-src 'none'; script-src {_hashes('script')}; style-src {_hashes('style')}; "
    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {"Content-Security-Policy": CSP, "X-Frame-Options": "DENY", "Cache-Control": "no-cache", "Referrer-Policy": "no-referrer"}


@router.get("/playground", include_in_schema=False)
async def playground() -> HTMLResponse:
    """A single page that loads an example, lets the user edit it and shows every number (public API only)."""
    return HTMLResponse(PAGE, headers=HEADERS)

import re
from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from app.api.page_security import inline_source, page_headers

router = APIRouter(tags=["learning"])

PAGE = files("app.api").joinpath("static/playground.html").read_text(encoding="utf-8")


def _hashes(tag: str) -> str:
    """CSP source expressions allowing exactly the page's own inline ``<tag>`` blocks."""
    blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", PAGE, flags=re.S)
    return " ".join(inline_source(b) for b in blocks)


# The page runs only its own inline script and style (by hash), talks only to this origin,
# loads nothing from anywhere else and cannot be framed (clickjacking).
CSP = (
    f"default-src 'none'; script-src {_hashes('script')}; style-src {_hashes('style')}; "
    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = page_headers(CSP)


@router.get("/playground", include_in_schema=False)
async def playground() -> HTMLResponse:
    """A single page that loads an example, lets the user edit it and shows every number (public API only)."""
    return HTMLResponse(PAGE, headers=HEADERS)

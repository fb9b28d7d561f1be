"""``GET /playground``: a page that teaches, and the files it loads (``/playground/assets/...``).

The page is plain HTML, CSS and ES modules (``app/api/static/playground/``), with no build step,
talking only to the public API (``/v1/...``) of the service that serves it. Its one library is
KaTeX, which renders ``/v1/explain``'s LaTeX: the npm package ``katex`` 0.19.1, its dist files
vendored unchanged in ``app/api/static/vendor/katex-0.19.1/`` with its license (see README.md
there). Nothing is loaded from another host, and the page's Content-Security-Policy says so.

Every file is read once, at import, into ``ASSETS``; a name not in it is a 404, so nothing else
of the package is reachable here. The page refers to its files by relative URLs
(``playground/assets/...``), so it works under a mount prefix (``--root-path``) too.
"""

from __future__ import annotations

import re
from importlib.resources import files
from importlib.resources.abc import Traversable

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse, Response

from app.api.page_security import inline_source, page_headers

router = APIRouter(tags=["learning"])

STATIC = files("app.api").joinpath("static")
PAGE = STATIC.joinpath("playground.html").read_text(encoding="utf-8")
ASSETS_PATH = "/playground/assets"
KATEX = "katex-0.19.1"

# By suffix: what each served file is. A module script needs a JavaScript type (browsers refuse
# a module served as anything else), a stylesheet text/css (nosniff), a font its font/ type.
MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".woff2": "font/woff2",
    ".woff": "font/woff",
    ".ttf": "font/ttf",
}
OWN = "no-cache"  # the page's own files follow the service's deployments
VERSIONED = "public, max-age=86400"  # the vendored files have their version in the path


def _walk(root: Traversable, prefix: str = "") -> dict[str, Traversable]:
    """Every file under ``root`` by its path relative to it (``a/b.js``)."""
    found: dict[str, Traversable] = {}
    for entry in root.iterdir():
        if entry.is_dir():
            found.update(_walk(entry, f"{prefix}{entry.name}/"))
        elif entry.is_file():
            found[prefix + entry.name] = entry
    return found


def _assets() -> dict[str, tuple[bytes, str, str]]:
    """name under ASSETS_PATH -> (body, media type, Cache-Control)."""
    served: dict[str, tuple[Traversable, str]] = {}
    for name, entry in _walk(STATIC.joinpath("playground")).items():
        served[name] = (entry, OWN)
    for name, entry in _walk(STATIC.joinpath("vendor", KATEX)).items():
        if name != "LICENSE":  # shipped beside the files, not loaded by the page
            served[f"vendor/{KATEX}/{name}"] = (entry, VERSIONED)
    assets = {}
    for name, (entry, cache) in sorted(served.items()):
        suffix = "." + name.rsplit(".", 1)[-1]
        if suffix not in MEDIA_TYPES:
            raise RuntimeError(f"playground asset {name}: no media type for {suffix!r}")
        assets[name] = (entry.read_bytes(), MEDIA_TYPES[suffix], cache)
    return assets


ASSETS = _assets()


def _hashes(tag: str) -> str:
    """CSP source expressions allowing exactly the page's own inline ``<tag>`` blocks (it has none today)."""
    blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", PAGE, flags=re.S)
    return "".join(" " + inline_source(b) for b in blocks)


# The page runs only scripts served from here (its modules and KaTeX; inline blocks by hash, and
# no inline event handlers), styles and fonts only from here, talks only to this origin, and
# cannot be framed (clickjacking). img-src data: for its (empty) icon.
CSP = (
    f"default-src 'none'; script-src 'self'{_hashes('script')}; style-src 'self'{_hashes('style')}; font-src 'self'; "
    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = page_headers(CSP)


@router.get("/playground", include_in_schema=False)
async def playground() -> HTMLResponse:
    """A page that teaches: train, watch the decision boundary move, click any number for its chain rule."""
    return HTMLResponse(PAGE, headers=HEADERS)


@router.get(ASSETS_PATH + "/{name:path}", include_in_schema=False)
async def asset(name: str) -> Response:
    """One of the files the page loads; nothing else is reachable here."""
    if name not in ASSETS:
        raise HTTPException(status_code=404)
    body, media_type, cache = ASSETS[name]
    return Response(body, media_type=media_type, headers={"Cache-Control": cache})

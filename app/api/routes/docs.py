"""Swagger UI at ``/docs`` and ReDoc at ``/redoc``, served whole by this service: no CDN, no fonts.

FastAPI's own pages load their JavaScript and CSS from a CDN (and ReDoc's Google Fonts), so
without internet they are blank. Here both pages and every file they load come from this
service (``/docs/assets/...``), and each page's Content-Security-Policy lets the browser load
or connect to nothing else.

Where the files come from: the npm packages ``swagger-ui-dist`` 5.35.0 and ``redoc`` 2.5.4,
vendored unchanged in ``app/api/static/vendor/<package>-<version>/`` with their licenses
(``README.md`` there gives each file's sha256 and the refresh command, ``refresh.sh``).
Why these rather than a Python package:

- ``swagger-ui-dist`` is Swagger UI's own distribution (SmartBear), released every few weeks,
  the very files FastAPI's default page loads (``swagger-ui-dist@5``); ``redoc`` 2.x is
  Redocly's, the line FastAPI's default page loads (``redoc@2``). Pinned to exact versions,
  and only the four files served are kept (3.0 MB with the licenses).
- ``swagger-ui-bundle`` (PyPI, 1.1.0 of 2023) ships Swagger UI 4.15.5, which does not render
  the OpenAPI 3.1 this service publishes.
- ``fastapi-offline`` (PyPI, 1.7.7) ships the same two bundles, but without saying which
  versions (copied from ``@5``/``@2`` at its build time) nor their licenses, and as a
  replacement of the ``FastAPI`` constructor: neither the pages' CSP nor the link to the
  playground could be added without redoing what this module does.
- ``redoc`` 3.x (3.0.1, a month old) is a different product: twice the size, and it talks to
  Redocly's telemetry and font hosts.

ReDoc 2.5.4 draws its "API docs by Redocly" footer with a logo from ``cdn.redoc.ly``, with no
option to turn it off; that one URL is blanked when the bundle is read (the image then hides
itself, as it does offline), so the file stays byte-identical on disk and the browser never
tries the request. Swagger UI's validator badge (``validator.swagger.io``) is turned off by
``validatorUrl: null``.
"""

from __future__ import annotations

import html
from importlib.resources import files

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from app.api.page_security import page_headers

router = APIRouter(include_in_schema=False)

SWAGGER_UI = "swagger-ui-dist-5.35.0"
REDOC = "redoc-2.5.4"
ASSETS_PATH = "/docs/assets"
VENDOR = files("app.api").joinpath("static/vendor")

JS = "text/javascript; charset=utf-8"
CSS = "text/css; charset=utf-8"

# The only URL in ReDoc 2.5.4's bundle that it fetches by itself (see the module docstring).
REDOC_LOGO = b'"https://cdn.redoc.ly/redoc/logo-mini.svg"'


def _redoc_bundle() -> bytes:
    bundle = VENDOR.joinpath(f"{REDOC}/redoc.standalone.js").read_bytes()
    if bundle.count(REDOC_LOGO) != 1:
        raise RuntimeError(f"{REDOC}: its logo URL moved; review what the new bundle fetches")
    return bundle.replace(REDOC_LOGO, b'""')


# Swagger UI's configuration, served as a file so the page needs no inline script. The same
# settings as FastAPI's page, less the validator badge (it would load from validator.swagger.io).
SWAGGER_INIT = """\
"use strict";
window.ui = SwaggerUIBundle({
  url: document.getElementById("swagger-ui").dataset.openapiUrl,
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
});
"""

# The top bar above Swagger UI (links to the playground, ReDoc and the spec).
DOCS_CSS = """\
body { margin: 0; }
.docs-nav { display: flex; gap: 1.5em; align-items: baseline; padding: 10px 20px;
  background: #1b1b1b; color: #fff; font-family: sans-serif; font-size: 14px; }
.docs-nav strong { font-size: 16px; }
.docs-nav a { color: #89bf04; text-decoration: none; }
.docs-nav a:hover { text-decoration: underline; }
"""

# name under ASSETS_PATH -> (body, media type, Cache-Control). Vendored files have their
# version in the path; the module's own two files follow its deployments.
VERSIONED = "public, max-age=86400"


def _vendored(path: str, media_type: str) -> tuple[bytes, str, str]:
    return VENDOR.joinpath(path).read_bytes(), media_type, VERSIONED


ASSETS: dict[str, tuple[bytes, str, str]] = {
    f"{SWAGGER_UI}/swagger-ui-bundle.js": _vendored(f"{SWAGGER_UI}/swagger-ui-bundle.js", JS),
    f"{SWAGGER_UI}/swagger-ui.css": _vendored(f"{SWAGGER_UI}/swagger-ui.css", CSS),
    f"{SWAGGER_UI}/favicon-32x32.png": _vendored(f"{SWAGGER_UI}/favicon-32x32.png", "image/png"),
    f"{REDOC}/redoc.standalone.js": (_redoc_bundle(), JS, VERSIONED),
    "swagger-init.js": (SWAGGER_INIT.encode(), JS, "no-cache"),
    "docs.css": (DOCS_CSS.encode(), CSS, "no-cache"),
}

# Each page runs only scripts served from here, loads and fetches only from here (images also
# from data: URLs, which the CSS uses) and cannot be framed. Swagger UI needs nothing more.
# ReDoc needs two things more: inline styles (it is styled with styled-components, which
# writes <style> elements) and a Worker made from a blob: of its own code (its search index).
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
DOCS_HEADERS = page_headers(_CSP)
REDOC_HEADERS = page_headers(_CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'") + "; worker-src blob:")


def _root(request: Request) -> str:
    """The path prefix the service is mounted under (``--root-path``), HTML-escaped."""
    return html.escape(request.scope.get("root_path", "").rstrip("/"))


def _page(request: Request, name: str, head: str, body: str) -> str:
    """One of the two pages: its title, the shared stylesheet and icon, then ``head`` and ``body``
    with ``{root}`` (the mount prefix), ``{assets}`` and ``{spec}`` (the spec's URL) filled in."""
    root = _root(request)
    fill = {"root": root, "assets": root + ASSETS_PATH, "spec": root + html.escape(request.app.openapi_url)}
    title = html.escape(request.app.title)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} - {name}</title>
{head.format(**fill)}<link rel="stylesheet" href="{fill["assets"]}/docs.css">
<link rel="icon" type="image/png" href="{fill["assets"]}/{SWAGGER_UI}/favicon-32x32.png">
</head>
<body>
{body.format(title=title, **fill)}</body>
</html>
"""


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    head = f'<link rel="stylesheet" href="{{assets}}/{SWAGGER_UI}/swagger-ui.css">\n'
    body = (
        '<nav class="docs-nav"><strong>{title}</strong><a href="{root}/playground">Playground</a>'
        '<a href="{root}/redoc">ReDoc</a><a href="{spec}">openapi.json</a></nav>\n'
        '<div id="swagger-ui" data-openapi-url="{spec}"></div>\n'
        f'<script src="{{assets}}/{SWAGGER_UI}/swagger-ui-bundle.js"></script>\n'
        '<script src="{assets}/swagger-init.js"></script>\n'
    )
    return HTMLResponse(_page(request, "Swagger UI", head, body), headers=DOCS_HEADERS)


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    body = (
        '<noscript>ReDoc needs JavaScript; the spec itself is at <a href="{spec}">openapi.json</a>.</noscript>\n'
        '<redoc spec-url="{spec}"></redoc>\n'
        f'<script src="{{assets}}/{REDOC}/redoc.standalone.js"></script>\n'
    )
    return HTMLResponse(_page(request, "ReDoc", "", body), headers=REDOC_HEADERS)


@router.get(ASSETS_PATH + "/{name:path}")
async def asset(name: str) -> Response:
    """One of the files the two pages load; nothing else is reachable here."""
    if name not in ASSETS:
        raise HTTPException(status_code=404)
    body, media_type, cache = ASSETS[name]
    return Response(body, media_type=media_type, headers={"Cache-Control": cache})

"""``GET /``: where to go from here, as a page for a browser and as JSON for everything else.

Not in the OpenAPI spec, like /docs, /redoc and /playground: it is a signpost to the documented
API, not part of it, and its answer depends on ``Accept`` (a generated client gains nothing
from a method that fetches links). The page runs no script and loads nothing, so its CSP
allows only its own inline style.
"""

from html import escape
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from app import __version__
from app.api.page_security import inline_source, page_headers
from app.examples import DEFAULT_ENDPOINT, ENDPOINTS, EXAMPLES
from app.schemas.responses import ExampleLinks, Root

router = APIRouter(tags=["about"])

NAME = "backprop-api"
DESCRIPTION = "Backpropagation for fully connected networks, over HTTP: every activation, the loss, every gradient, a training trace."
# Where each link goes, and what the page says about it.
LINKS = {
    "docs": ("/docs", "Swagger UI: every operation, with the seed example ready to try"),
    "redoc": ("/redoc", "the same reference, as one long page"),
    "playground": ("/playground", "load an example, edit it and see every number change"),
    "openapi": ("/openapi.json", "the OpenAPI spec"),
    "examples": ("/v1/examples", "the named examples, as JSON"),
    "health": ("/healthz", "liveness"),
}

STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#222}"
    "h1 small{font-weight:normal;color:#666;font-size:60%}code,a.b{font-family:ui-monospace,monospace}"
    "ul{padding-left:1.2rem}li{margin:.2rem 0}a.b{margin-right:.8rem;white-space:nowrap}"
)
# No script at all; the page's one inline style by hash; nothing from anywhere; no framing.
CSP = f"default-src 'none'; style-src {inline_source(STYLE)}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
HTML_HEADERS = {**page_headers(CSP, cache=None), "Vary": "Accept"}
HTML_TYPES = ("text/html", "application/xhtml+xml")


def _quality(accept: str, media_types: tuple[str, ...]) -> float:
    """The q ``accept`` gives the best of ``media_types``, by the most specific range matching each."""
    best = 0.0
    for media in media_types:
        kind = media.split("/")[0]
        found: tuple[int, float] | None = None  # (specificity, q)
        for part in accept.split(","):
            pieces = [p.strip() for p in part.split(";")]
            rng, q = pieces[0].lower(), 1.0
            for param in pieces[1:]:
                if param.lower().startswith("q="):
                    try:
                        q = float(param[2:])
                    except ValueError:
                        q = 0.0
            specificity = 2 if rng == media else 1 if rng == f"{kind}/*" else 0 if rng == "*/*" else -1
            if specificity >= 0 and (found is None or specificity > found[0]):
                found = (specificity, q)
        best = max(best, found[1] if found else 0.0)
    return best


def prefers_html(accept: str | None) -> bool:
    """Whether ``Accept`` ranks HTML above JSON (a browser's does; none, ``*/*`` and JSON's do not)."""
    if not accept:
        return False
    return _quality(accept, HTML_TYPES) > _quality(accept, ("application/json",))


def example_url(prefix: str, name: str, endpoint: str) -> str:
    url = f"{prefix}/v1/examples/{quote(name, safe='')}"
    return url if endpoint == DEFAULT_ENDPOINT else f"{url}?{urlencode({'for': endpoint})}"


def root_answer(prefix: str = "") -> Root:
    """The JSON answer; every URL is under ``prefix`` (the app's root path)."""
    return Root(
        name=NAME,
        version=__version__,
        description=DESCRIPTION,
        links={key: prefix + path for key, (path, _) in LINKS.items()},
        examples=[
            ExampleLinks(
                name=e.name, description=e.description, bodies={endpoint: example_url(prefix, e.name, endpoint) for endpoint in e.endpoints}
            )
            for e in EXAMPLES.values()
        ],
    )


def root_page(answer: Root) -> str:
    links = "".join(
        f'<li><a href="{escape(answer.links[key])}">{escape(LINKS[key][0])}</a>: {escape(text)}</li>' for key, (_, text) in LINKS.items()
    )
    examples = "".join(
        f"<li><strong>{escape(e.name)}</strong>: {escape(e.description)}<br>"
        + "".join(
            f'<a class="b" href="{escape(url)}" title="{escape(ENDPOINTS[endpoint].path)}">{escape(endpoint)}</a>'
            for endpoint, url in e.bodies.items()
        )
        + "</li>"
        for e in answer.examples
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{NAME}</title><style>{STYLE}</style></head><body>"
        f"<h1>{NAME} <small>{escape(answer.version)}</small></h1><p>{escape(answer.description)}</p>"
        f"<ul>{links}</ul>"
        "<h2>Examples</h2><p>Each link is a ready-to-post body for that endpoint, for example "
        "<code>curl -s 'localhost:8000/v1/examples/seed?for=gradients' | "
        "curl -s -H 'Content-Type: application/json' -d @- localhost:8000/v1/gradients</code>.</p>"
        f"<ul>{examples}</ul></body></html>"
    )


@router.get("/", include_in_schema=False)
async def root(request: Request) -> Response:
    """Links to the docs, the playground and every example: HTML when ``Accept`` prefers it, else JSON."""
    answer = root_answer(request.scope.get("root_path", "").rstrip("/"))
    if prefers_html(request.headers.get("accept")):
        return HTMLResponse(root_page(answer), headers=HTML_HEADERS)
    return JSONResponse(answer.model_dump(mode="json"), headers={"Vary": "Accept"})

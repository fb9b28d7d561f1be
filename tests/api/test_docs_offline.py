"""/docs (Swagger UI) and /redoc work without internet: every file they load is served here.

In process: the pages refer only to this service's paths, each answers with its type, the
vendored files are those README.md in app/api/static/vendor lists, and no served file holds a
URL of another host that the browser would load. In headless Chromium (skips where Chromium
or Playwright is absent; CI installs both, .ci/run): with every request to another host
aborted and recorded, "Try it out" runs the seed on /docs and ReDoc draws /redoc, and no
request left the machine.
"""

from __future__ import annotations

import hashlib
import os
import re
import tomllib
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from app.api.routes.docs import ASSETS, REDOC, REDOC_LOGO, SWAGGER_UI
from app.api.routes.playground import KATEX
from app.config import Settings
from app.main import create_app
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.live_server import running_server
from tests.support.seed_trace import SEED_LOSSES

ROOT = Path(__file__).resolve().parents[2]
VENDOR = ROOT / "app/api/static/vendor"
PAGES = ("/docs", "/redoc")
CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}

# Hosts nothing here may name at all: CDNs and font services.
NEVER = (
    "fonts.googleapis.com",
    "fonts.gstatic.com",
    "cdn.jsdelivr.net",
    "unpkg.com",
    "cdnjs.cloudflare.com",
    "cdn.redoc.ly",
    "cdn.redocly.com",
)

# Every host an absolute URL in a served bundle names, and why the page never fetches it.
# A refreshed bundle with a new one fails here until someone has looked at what it is for.
NOT_FETCHED = {
    "www.w3.org": "XML and SVG namespaces",
    "json-schema.org": "JSON Schema dialect ids, compared, not fetched",
    "spec.openapis.org": "OpenAPI dialect ids, compared, not fetched",
    "raw.githubusercontent.com": "ajv's $data meta-schema id, compiled in memory",
    "datatracker.ietf.org": "links to RFCs in format descriptions",
    "www.rfc-editor.org": "links to RFCs in format descriptions",
    "example.com": "example values for format: uri",
    "실례.com": "example values for format: iri",
    "github.com": "links in error and deprecation messages",
    "git.io": "links in error messages",
    "fb.me": "links in React's error messages",
    "reactjs.org": "links in React's error messages",
    "redux.js.org": "links in Redux's error messages",
    "stackoverflow.com": "links in error messages",
    "marked.js.org": "links in marked's messages",
    "spdx.org": "a link to the license a spec names (this one names none)",
    "swagger.io": "swagger-client's base for resolving a spec without a URL (ours has /openapi.json)",
    "vladimirgorej.com": "a base for new URL() when checking a server URL's syntax",
    "twitter.com": "the autolinker's hashtag and mention links",
    "www.facebook.com": "the autolinker's hashtag links",
    "instagram.com": "the autolinker's hashtag and mention links",
    "soundcloud.com": "the autolinker's mention links",
    "www.tiktok.com": "the autolinker's hashtag and mention links",
    "redocly.com": "ReDoc's 'API docs by Redocly' link, an SSO setting's default",
    "validator.swagger.io": "Swagger UI's validator badge, off: swagger-init.js sets validatorUrl: null",
}
LICENSE_COMMENT = re.compile(r"/\*!.*?\*/", re.DOTALL)
URL_HOST = re.compile(r"https?://([^/\s\"'`)<>\\:?#]*)")


class Refs(HTMLParser):
    """The URLs an HTML page loads: scripts, stylesheets, icons, images, frames."""

    def __init__(self) -> None:
        super().__init__()
        self.loaded: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "a":
            self.links.append(a["href"] or "")
        elif tag == "link" or tag in ("script", "img", "iframe", "source"):
            url = a.get("href") if tag == "link" else a.get("src")
            if url is not None:
                self.loaded.append(url)


def _refs(html: str) -> Refs:
    refs = Refs()
    refs.feed(html)
    return refs


def _hosts(js: str) -> set[str]:
    """Hosts of the absolute URLs in ``js`` outside license comments (less those a variable completes)."""
    return {h for h in URL_HOST.findall(LICENSE_COMMENT.sub("", js)) if h and "${" not in h}


@pytest.mark.parametrize("path", PAGES)
def test_pages_load_only_this_service(client, path):
    r = client.get(path)
    assert r.status_code == 200 and r.headers["content-type"] == "text/html; charset=utf-8"
    assert "http://" not in r.text and "https://" not in r.text and "//" not in r.text.replace("://", "")
    refs = _refs(r.text)
    assert any(u.endswith(".js") for u in refs.loaded) and any(u.endswith(".css") for u in refs.loaded)
    for url in refs.loaded:
        assert url.startswith("/docs/assets/"), url
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert asset.headers["content-type"].startswith(CONTENT_TYPES[Path(url).suffix]), url
        assert asset.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    ("path", "style", "worker"),
    [("/docs", "'self'", None), ("/redoc", "'self' 'unsafe-inline'", "blob:")],  # ReDoc: styled-components, search worker
)
def test_pages_csp_allows_only_this_service(client, path, style, worker):
    r = client.get(path)
    csp = dict(d.strip().split(" ", 1) for d in r.headers["content-security-policy"].split(";"))
    assert csp["default-src"] == "'none'" and csp["script-src"] == "'self'" and csp["frame-ancestors"] == "'none'"
    assert csp["connect-src"] == "'self'" and csp["img-src"] == "'self' data:"
    assert csp["style-src"] == style and csp.get("worker-src") == worker
    assert all(s in ("'self'", "'unsafe-inline'", "data:", "blob:", "'none'") for v in csp.values() for s in v.split())
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["x-frame-options"] == "DENY"


def test_docs_links_to_the_playground_and_redoc(client):
    links = _refs(client.get("/docs").text).links
    assert "/playground" in links and "/redoc" in links and "/openapi.json" in links


def test_pages_follow_the_root_path():
    # Behind a proxy that serves the app under /api (``--root-path /api``).
    with TestClient(create_app(Settings()), root_path="/api") as client:
        refs = _refs(client.get("/docs").text)
        assert all(u.startswith("/api/docs/assets/") for u in refs.loaded) and "/api/playground" in refs.links
        assert 'spec-url="/api/openapi.json"' in client.get("/redoc").text


def test_only_the_pages_files_are_served(client):
    assert client.get("/docs/assets/../main.py").status_code == 404
    assert client.get(f"/docs/assets/{SWAGGER_UI}/LICENSE").status_code == 404
    assert client.get("/docs/oauth2-redirect").status_code == 404
    spec = client.get("/openapi.json").json()
    assert not [p for p in spec["paths"] if p.startswith(("/docs", "/redoc"))]


def test_no_served_file_loads_from_another_host(client):
    for name, (body, _media_type, _) in ASSETS.items():
        text = body.decode("utf-8", errors="replace")
        for host in NEVER:
            assert host not in text, (name, host)
        if name.endswith(".css"):
            # Every url() is inline data, nothing is imported; what remains names no host.
            assert "@import" not in text, name
            urls = re.findall(r"url\(\s*([\"']?)(.*?)\1\s*\)", text)
            assert all(u.startswith("data:") for _, u in urls), name
            rest = re.sub(r"url\(\s*([\"']?)(.*?)\1\s*\)", "", text)
            assert "http://" not in rest and "https://" not in rest, name
        elif name.endswith(".js"):
            unknown = _hosts(text) - set(NOT_FETCHED)
            assert not unknown, f"{name} names {sorted(unknown)}: what does it fetch from there?"
    assert not _hosts(ASSETS["swagger-init.js"][0].decode())
    assert "validatorUrl: null" in ASSETS["swagger-init.js"][0].decode()
    # The one URL ReDoc 2.5.4 would load by itself is blanked as served (and only that).
    vendored = (VENDOR / REDOC / "redoc.standalone.js").read_bytes()
    assert b"cdn.redoc.ly" in vendored and vendored.replace(REDOC_LOGO, b'""') == ASSETS[f"{REDOC}/redoc.standalone.js"][0]


def test_vendored_files_are_those_readme_lists():
    readme = (VENDOR / "README.md").read_text(encoding="utf-8")
    listed = dict(re.findall(r"^\| `([^`]+)` \| [^|]+ \| `([0-9a-f]{64})` \|$", readme, flags=re.MULTILINE))
    # Every file in a package's folder, KaTeX's fonts/ included (README.md and refresh.sh sit beside them).
    on_disk = {str(p.relative_to(VENDOR)): p for p in VENDOR.glob("*/**/*") if p.is_file()}
    assert set(listed) == set(on_disk)
    for name, path in on_disk.items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == listed[name], name
    assert {p.parent.name for p in VENDOR.glob("*/LICENSE")} == {SWAGGER_UI, REDOC, KATEX}
    # A non-editable install ships them: pyproject's package-data covers every one.
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["app.api"]
    # setuptools' globs: * does not cross a /.
    shipped = {p for pattern in patterns for p in (ROOT / "app/api").glob(pattern)}
    for name, path in on_disk.items():
        assert path in shipped, name


# --- In headless Chromium ---------------------------------------------------------------

browser_only = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")


@pytest.fixture(scope="module")
def browser_and_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, str]]:
    sync_api = pytest.importorskip("playwright.sync_api")
    log = tmp_path_factory.mktemp("docs-server") / "server.log"
    with running_server(log) as (url, _), sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser, url
        finally:
            browser.close()


def _offline_page(browser, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A page that may reach only loopback: anything else is aborted and recorded, as is
    every error the page logs (a request the CSP refused among them)."""
    page = browser.new_page(viewport={"width": 1400, "height": 1800})
    elsewhere: list[str] = []
    errors: list[str] = []

    def route(route):  # type: ignore[no-untyped-def]
        url = urlsplit(route.request.url)
        if url.scheme in ("data", "blob") or url.hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", route)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("requestfailed", lambda r: errors.append(f"{r.url}: {r.failure}"))
    return page, elsewhere, errors


def _screenshot(page, tmp_path: Path, name: str) -> None:  # type: ignore[no-untyped-def]
    shot = Path(os.environ.get("BACKPROP_TEST_OUTPUT", tmp_path)) / name
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")


@pytest.mark.slow
@browser_only
def test_swagger_ui_runs_the_seed_offline(browser_and_server, tmp_path):
    browser, url = browser_and_server
    page, elsewhere, errors = _offline_page(browser, tmp_path)
    try:
        page.goto(f"{url}/docs")
        train = page.locator(".opblock").filter(has=page.locator('.opblock-summary-path[data-path="/v1/train"]'))
        train.locator(".opblock-summary").click(timeout=20_000)
        train.get_by_role("button", name="Try it out").click()
        assert '"learning_rate": 0.5' in train.locator("textarea.body-param__text").input_value()  # the seed
        train.get_by_role("button", name="Execute").click()
        body = train.locator(".live-responses-table .response-col_description pre")
        body.first.wait_for(timeout=20_000)
        assert repr(SEED_LOSSES[0]) == "0.35520347518814194" and repr(SEED_LOSSES[0]) in body.first.inner_text()
        assert page.get_by_role("link", name="Playground").get_attribute("href") == "/playground"
        _screenshot(page, tmp_path, "docs.png")
        assert elsewhere == [] and errors == []
    finally:
        page.close()


@pytest.mark.slow
@browser_only
def test_redoc_renders_offline(browser_and_server, tmp_path):
    browser, url = browser_and_server
    page, elsewhere, errors = _offline_page(browser, tmp_path)
    try:
        page.goto(f"{url}/redoc")
        page.get_by_role("heading", name="Train with SGD or Adam and return the trace").wait_for(timeout=20_000)
        # The search runs in ReDoc's worker (a blob: the CSP allows).
        page.get_by_placeholder("Search...").fill("gradcheck")
        page.locator("[data-role='search:results'] li", has_text="torch.autograd.gradcheck").wait_for(timeout=10_000)
        _screenshot(page, tmp_path, "redoc.png")
        assert elsewhere == [] and errors == []
    finally:
        page.close()

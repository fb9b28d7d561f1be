"""The playground's page and files, in process (no browser): what is served, with which media type
and policy, and that the vendored KaTeX is there, byte for byte what its README lists, and shipped.

The page is plain HTML and ES modules served by the service (no build step, nothing from another
host); tests/api/test_playground_browser.py runs it in Chromium.
"""

from __future__ import annotations

import hashlib
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

import pytest
from fastapi.testclient import TestClient

from app.api.routes.playground import ASSETS, ASSETS_PATH, KATEX
from app.config import Settings
from app.main import create_app

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "app/api/static"
MODULES = STATIC / "playground"
KATEX_DIR = STATIC / "vendor" / KATEX
JS = "text/javascript; charset=utf-8"
CSS = "text/css; charset=utf-8"
FONT_TYPES = {".woff2": "font/woff2", ".woff": "font/woff", ".ttf": "font/ttf"}
# Absolute URLs the served scripts may contain: XML namespaces, never fetched.
NAMESPACES = {"http://www.w3.org/1998/Math/MathML", "http://www.w3.org/2000/svg"}


class Page(HTMLParser):
    """What the page loads (scripts, stylesheets, icons), its inline blocks and its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.loaded: list[tuple[str, str, dict[str, str | None]]] = []
        self.inline: list[str] = []
        self.attributes: list[tuple[str, str]] = []
        self.ids: list[str] = []
        self._tag: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.attributes.extend((name, value or "") for name, value in attrs)
        if "id" in a:
            self.ids.append(a["id"] or "")
        if tag == "script":
            if a.get("src"):
                self.loaded.append((tag, a["src"] or "", a))
            else:
                self._tag = tag
        elif tag == "style":
            self._tag = tag
        elif tag == "link" and a.get("href"):
            self.loaded.append((tag, a["href"] or "", a))

    def handle_data(self, data: str) -> None:
        if self._tag:
            self.inline.append(data)

    def handle_endtag(self, tag: str) -> None:
        self._tag = None


def _page(client: TestClient) -> tuple[object, Page]:
    r = client.get("/playground")
    parsed = Page()
    parsed.feed(r.text)
    return r, parsed


def _csp(header: str) -> dict[str, str]:
    return dict(part.strip().split(" ", 1) for part in header.split(";"))


def test_the_page_is_html_with_a_strict_policy(client):
    r, page = _page(client)
    assert r.status_code == 200 and r.headers["content-type"] == "text/html; charset=utf-8"
    csp = _csp(r.headers["content-security-policy"])
    # Scripts, styles and fonts only from this service (inline blocks only by hash: there are none).
    assert page.inline == []
    assert csp["script-src"] == "'self'" and csp["style-src"] == "'self'" and csp["font-src"] == "'self'"
    assert csp["default-src"] == "'none'" and csp["connect-src"] == "'self'" and csp["frame-ancestors"] == "'none'"
    assert csp["img-src"] == "'self' data:" and csp["base-uri"] == "'none'" and csp["form-action"] == "'none'"
    assert "unsafe" not in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY" and r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-cache"


def test_the_page_has_no_inline_handlers_or_styles_and_unique_ids(client):
    _, page = _page(client)
    assert not [name for name, _ in page.attributes if name.startswith("on")]
    assert not [name for name, _ in page.attributes if name == "style"]
    assert len(page.ids) == len(set(page.ids)), sorted(i for i in page.ids if page.ids.count(i) > 1)


def test_everything_the_page_loads_is_served_here_with_its_type(client):
    _, page = _page(client)
    base = "http://testserver/playground"
    loaded = {urljoin(base, url).removeprefix("http://testserver"): (tag, attrs) for tag, url, attrs in page.loaded}
    assert "/playground/assets/main.js" in loaded and loaded["/playground/assets/main.js"][1]["type"] == "module"
    assert f"/playground/assets/vendor/{KATEX}/katex.min.js" in loaded
    assert f"/playground/assets/vendor/{KATEX}/katex.min.css" in loaded
    for _tag, url, attrs in page.loaded:
        assert "//" not in url and not url.startswith("/"), url  # relative: works under a mount prefix too
        if attrs.get("rel") == "icon":
            assert url.startswith("data:")
            continue
        r = client.get(urljoin(base, url))
        assert r.status_code == 200, url
        assert r.headers["content-type"] == (JS if url.endswith(".js") else CSS), url
        assert r.headers["x-content-type-options"] == "nosniff"


def test_every_module_and_what_it_imports_is_served_as_javascript(client):
    on_disk = sorted(p.name for p in MODULES.glob("*.js"))
    assert "main.js" in on_disk and len(on_disk) >= 10
    for name in on_disk:
        r = client.get(f"{ASSETS_PATH}/{name}")
        assert r.status_code == 200 and r.headers["content-type"] == JS, name
        assert r.content == (MODULES / name).read_bytes()
        source = r.text
        for imported in re.findall(r'^import .*? from "(.*?)";$', source, flags=re.M):
            assert imported.startswith("./") and imported[2:] in on_disk, (name, imported)
        # No eval, no inline handlers or style attributes written into the page (the CSP refuses them).
        assert "eval(" not in source and "new Function" not in source, name
        assert not re.search(r"""\son[a-z]+=["']""", source), name
        assert "style=" not in source, name
        assert not [u for u in re.findall(r"https?://[^\s\"'`)]+", source) if u not in NAMESPACES], name
    css = client.get(f"{ASSETS_PATH}/playground.css")
    assert css.status_code == 200 and css.headers["content-type"] == CSS
    assert "url(" not in css.text and "@import" not in css.text


def test_only_the_pages_files_are_served(client):
    assert client.get(f"{ASSETS_PATH}/../../main.py").status_code == 404
    assert client.get(f"{ASSETS_PATH}/vendor/{KATEX}/LICENSE").status_code == 404
    assert client.get(f"{ASSETS_PATH}/nowhere.js").status_code == 404
    assert client.get(f"{ASSETS_PATH}/vendor/swagger-ui-dist-5.35.0/swagger-ui.css").status_code == 404
    spec = client.get("/openapi.json").json()
    assert not [p for p in spec["paths"] if p.startswith("/playground")]
    served = {name.split("/")[0] for name in ASSETS}
    assert served == {p.name for p in MODULES.iterdir()} | {"vendor"}


def test_katex_is_vendored_with_its_license_and_fonts(client):
    assert (KATEX_DIR / "LICENSE").read_text().startswith("The MIT License")
    js = client.get(f"{ASSETS_PATH}/vendor/{KATEX}/katex.min.js")
    assert js.status_code == 200 and js.headers["content-type"] == JS and js.content == (KATEX_DIR / "katex.min.js").read_bytes()
    assert js.headers["cache-control"] == "public, max-age=86400"
    assert 'version:"0.19.1"' in js.text
    # Every absolute URL in the script is an XML namespace (it loads nothing by itself).
    assert set(re.findall(r"https?://[^\s\"'`)]+", js.text)) <= NAMESPACES
    css = client.get(f"{ASSETS_PATH}/vendor/{KATEX}/katex.min.css")
    assert css.status_code == 200 and css.headers["content-type"] == CSS and "@import" not in css.text
    fonts = re.findall(r"url\((.*?)\)", css.text)
    assert len(fonts) == 60 and all(f.startswith("fonts/KaTeX_") for f in fonts)
    for font in fonts:
        r = client.get(f"{ASSETS_PATH}/vendor/{KATEX}/{font}")
        assert r.status_code == 200, font
        assert r.headers["content-type"] == FONT_TYPES[Path(font).suffix], font
        assert r.content == (KATEX_DIR / font).read_bytes()


def test_the_vendored_katex_is_what_the_readme_lists():
    readme = (STATIC / "vendor/README.md").read_text(encoding="utf-8")
    listed = dict(re.findall(r"^\| `(katex-[^`]+)` \| [^|]+ \| `([0-9a-f]{64})` \|$", readme, flags=re.M))
    on_disk = {str(p.relative_to(STATIC / "vendor")): p for p in KATEX_DIR.rglob("*") if p.is_file()}
    assert set(listed) == set(on_disk) and len(on_disk) == 63
    for name, path in on_disk.items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == listed[name], name
    # The version tests/support/katex checks the service's LaTeX with.
    assert '"katex": "0.19.1"' in (ROOT / "tests/support/katex/package.json").read_text()


def test_a_wheel_ships_every_file_the_page_serves():
    """pyproject's package-data globs (setuptools globs: * stops at /) cover every served file and the license."""
    import tomllib

    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["app.api"]
    package = ROOT / "app/api"
    shipped = {p for pattern in patterns for p in package.glob(pattern) if p.is_file()}
    needed = {*MODULES.iterdir(), *(p for p in KATEX_DIR.rglob("*") if p.is_file()), STATIC / "playground.html"}
    assert not needed - shipped, sorted(str(p.relative_to(package)) for p in needed - shipped)


def test_the_page_works_under_a_mount_prefix():
    with TestClient(create_app(Settings()), root_path="/api") as client:
        r = client.get("/playground")
        assert r.status_code == 200
        # Relative URLs resolve under the prefix: /api/playground -> /api/playground/assets/...
        assert client.get("/playground/assets/main.js").headers["content-type"] == JS
        assert 'href="docs"' in r.text


@pytest.mark.parametrize("module", ["api.js", "main.js"])
def test_the_page_talks_to_the_api_by_relative_paths(module):
    source = (MODULES / module).read_text()
    assert not re.search(r"""call\(\s*["'`]/""", source) and not re.search(r"""fetch\(\s*["'`]/""", source)

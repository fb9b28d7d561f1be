"""The playground in real headless Chromium, offline: every request to another host is aborted and
recorded, and none may be attempted; no error may be logged (a request the CSP refused among them).

Load the seed and step three times: the blog post's w11 after each update, to 6 significant figures
on screen and exact on hover. Train a 2-D dataset with Play, pause once the loss has dropped: the
heatmap changed and the network shown is exactly POST /v1/train's for that many iterations; play on
to the end and it still is (the optimizer state is that of one uninterrupted training); the link
opens the same setup. Click w11: its derivation shows the post's factors as mathematics. A bad edit
marks its field. Screenshots go to BACKPROP_TEST_OUTPUT (CI's output); with
BACKPROP_README_SCREENSHOT=1 the dataset test also writes the README's docs/playground.png.

Skips where Chromium or Playwright is absent; CI installs both (.ci/run).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.live_server import running_server
from tests.support.seed_trace import SEED_W11

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")]

ROOT = Path(__file__).resolve().parents[2]
README_SCREENSHOT = ROOT / "docs" / "playground.png"
# The post's factors of w11's gradient at the seed: dl/dz_hat = -1/z_hat, sigmoid'(f) = z_hat (1 - z_hat), z1.
SEED_FACTORS = {"-1.42647": -1.426470876183911, "0.209587": 0.2095866229498112, "0.4312": 0.43119999999999997}
WAIT = 30_000


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, str]]:
    log = tmp_path_factory.mktemp("playground-server") / "server.log"
    with running_server(log) as (url, _), sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser, url
        finally:
            browser.close()


class Offline:
    """A page that may reach only loopback: anything else is aborted and recorded, as is every error
    the page logs; an error containing one of ``allowed`` (a 422 the test provokes) is allowed.
    Opened at ``url + path`` (a link holds the whole state) and ready; closed on leaving the
    ``with`` block, which fails if the page reached elsewhere or logged an error."""

    def __init__(self, browser, url: str, path: str = "/playground", allowed: tuple[str, ...] = ()) -> None:  # type: ignore[no-untyped-def]
        self.allowed = allowed
        self.page = browser.new_page(viewport={"width": 1400, "height": 1000})
        self.elsewhere: list[str] = []
        self.errors: list[str] = []
        self.page.route("**/*", self._route)
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(url + path)
        self.page.wait_for_selector("body[data-ready='true']", timeout=WAIT)
        self.idle()

    def _route(self, route) -> None:  # type: ignore[no-untyped-def]
        url = urlsplit(route.request.url)
        if url.scheme in ("data", "blob") or url.hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            self.elsewhere.append(route.request.url)
            route.abort()

    def idle(self) -> None:
        """Wait until the page has shown everything it computes for the network shown."""
        self.page.wait_for_selector("body[data-busy='false']", timeout=WAIT)

    def load(self, name: str) -> None:
        self.page.select_option("#example", name)
        self.page.click("#load")
        self.page.wait_for_selector(f"body[data-loaded='{name}']", timeout=WAIT)
        self.idle()

    def iteration(self) -> int:
        return int(self.page.get_attribute("body", "data-iteration") or "0")

    def shown_problem(self) -> dict:
        return json.loads(self.page.input_value("#body-json"))

    def close(self) -> None:
        errors = [e for e in self.errors if not any(a in e for a in self.allowed)]
        self.page.close()
        assert self.elsewhere == [] and errors == []

    def __enter__(self) -> Offline:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _screenshot(page, tmp_path: Path, name: str, full_page: bool = True) -> Path:  # type: ignore[no-untyped-def]
    shot = Path(os.environ.get("BACKPROP_TEST_OUTPUT", tmp_path)) / name
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot), full_page=full_page)
    assert shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")
    return shot


def test_the_seed_steps_to_the_posts_w11(served, tmp_path):
    browser, url = served
    with Offline(browser, url) as tab:
        page = tab.page
        assert page.input_value("#example") == "seed" and page.get_attribute("body", "data-loaded") == "seed"
        assert page.get_attribute("#post-link", "href") == "https://skkumin.github.io/deeplearning/dl5/"
        for step, w11 in enumerate(SEED_W11, start=1):
            page.click("#step")
            page.wait_for_selector(f"body[data-iteration='{step}']", timeout=WAIT)
            tab.idle()
            # The trace: w11 after this update, rounded on screen, exact on hover.
            cell = page.locator(f"#trace-table tr[data-iteration='{step}'] [data-param='1/weights/0/0']")
            assert cell.inner_text() == f"{w11:.6g}" and cell.get_attribute("title") == repr(w11)
            # The network drawn is the one after that update.
            drawn = page.locator("#diagram [data-value='1/weights/0/0']")
            assert drawn.inner_text() == f"{w11:.6g}" and drawn.get_attribute("title") == repr(w11)
            assert page.get_attribute("#diagram", "data-iteration") == str(step)
        assert [f"{w:.6g}" for w in SEED_W11] == ["0.0904578", "0.153667", "0.215665"]
        # final_loss is explained beside the last trace loss.
        explained = page.inner_text("#final-loss")
        assert "final_loss = 0.331446" in explained and "0.33906" in explained and "before" in explained
        assert page.get_attribute("#final-loss .num", "title") == "0.3314458816729604"
        # Frozen parameters are marked (the seed trains w11 alone).
        assert page.locator("#diagram .row-p.frozen").count() == 8
        assert "frozen" not in (page.get_attribute("#diagram [data-param='1/weights/0/0']", "class") or "")
        # The weights export as a /v1/train body: the network after the third update.
        page.click("#json-view summary")
        with page.expect_download() as download:
            page.click("#export-json")
        exported = json.loads(Path(download.value.path()).read_text())
        assert (
            exported["network"]["layers"][1]["weights"][0][0] == SEED_W11[-1]
            and download.value.suggested_filename == "seed-iteration-3.json"
        )
        _screenshot(page, tmp_path, "playground-seed.png")


def test_clicking_w11_shows_its_derivation_as_mathematics(served, tmp_path):
    browser, url = served
    with Offline(browser, url) as tab:
        page = tab.page
        page.click("#diagram [data-select='1/weights/0/0']")
        page.wait_for_selector("#explain[data-selection='1/weights/0/0']", timeout=WAIT)
        explained = page.locator("#explain")
        for shown, value in SEED_FACTORS.items():
            factor = explained.locator(f".factors .num[title='{value!r}']")
            assert factor.count() >= 1 and factor.first.inner_text() == shown, shown
        assert page.get_attribute("#explain [data-gradient]", "title") == "-0.12891552493693778"
        # Its place in the computation graph, where the service draws it.
        listed = httpx.get(f"{url}/v1/examples").json()["examples"]
        if "graph" in listed[0]["endpoints"]:
            page.wait_for_selector("#graph[data-node='layers[1].weights[0][0]'] svg", timeout=WAIT)
            assert page.locator("#graph .node.focus").count() == 1
        _screenshot(page, tmp_path, "playground-explain.png")
        steps = httpx.post(f"{url}/v1/explain", json=httpx.get(f"{url}/v1/examples/seed?for=explain").json()).json()
        if "latex" not in steps["samples"][0]["steps"][0]:
            pytest.xfail("this /v1/explain writes no LaTeX yet: the page shows its plain lines")
        # The post's factors, rendered by KaTeX (served by the service itself).
        assert int(page.get_attribute("#explain", "data-latex") or "0") == 3
        maths = " ".join(page.locator("#explain .math .katex").all_inner_texts())
        assert page.locator("#explain .math .katex").count() == 3
        for shown in SEED_FACTORS:
            assert shown.lstrip("-") in maths, (shown, maths)
        assert page.locator("#explain .katex-error").count() == 0


def test_a_dataset_trains_with_play_and_pause(served, tmp_path):
    browser, url = served
    with Offline(browser, url) as tab:
        page = tab.page
        tab.load("circle")
        origin = httpx.get(f"{url}/v1/examples/circle").json()
        heatmap = page.locator("#heatmap")
        assert heatmap.get_attribute("data-iteration") == "0"
        untrained = heatmap.get_attribute("data-checksum")
        assert float(untrained) == 0.5 * 25 * 25  # an output layer of zeros: 1/2 everywhere
        page.click("#play")
        deadline = time.monotonic() + 30
        while float(page.get_attribute("#curve", "data-last-loss") or "1") >= 0.6 and time.monotonic() < deadline:
            time.sleep(0.02)
        page.click("#pause")
        assert page.get_attribute("body", "data-playing") == "false"
        t = tab.iteration()
        assert 0 < t < origin["iterations"]
        page.wait_for_selector(f"#heatmap[data-iteration='{t}']", timeout=WAIT)
        tab.idle()
        assert float(page.get_attribute("#curve", "data-last-loss")) < 0.6
        assert heatmap.get_attribute("data-checksum") != untrained
        assert page.get_attribute("#diagram", "data-iteration") == str(t)
        # The network shown is exactly POST /v1/train's from the example for t iterations.
        trained = httpx.post(f"{url}/v1/train", json={**origin, "iterations": t}).json()
        assert tab.shown_problem()["network"] == trained["network"]
        w = trained["network"]["layers"][1]["weights"][0][2]
        assert page.get_attribute("#diagram [data-value='1/weights/0/2']", "title") == repr(w)
        # Each hidden neuron's own heatmap, on hover.
        output = heatmap.get_attribute("data-checksum")
        page.hover("#diagram .card.unit[data-layer='0'][data-unit='1']")
        page.wait_for_selector("#heatmap[data-showing='0/1']", timeout=WAIT)
        assert heatmap.get_attribute("data-checksum") != output
        page.click("#diagram [data-select='1/weights/0/0']")
        page.wait_for_selector("#explain[data-selection='1/weights/0/0']", timeout=WAIT)
        page.mouse.move(5, 5)
        page.wait_for_selector("#heatmap[data-showing='output']", timeout=WAIT)
        tab.idle()
        _screenshot(page, tmp_path, "playground-paused.png")
        # Play on to the end: still one uninterrupted Adam training, not one restarted at the pause.
        page.click("#play")
        page.wait_for_selector("#final-loss", timeout=90_000)
        assert tab.iteration() == origin["iterations"]
        tab.idle()
        whole = httpx.post(f"{url}/v1/train", json=origin).json()
        assert tab.shown_problem()["network"] == whole["network"]
        assert page.get_attribute("#final-loss .num", "title") == repr(whole["final_loss"])
        _screenshot(page, tmp_path, "playground.png")
        if os.environ.get("BACKPROP_README_SCREENSHOT") == "1":
            page.screenshot(path=str(README_SCREENSHOT), full_page=True, clip={"x": 0, "y": 0, "width": 1400, "height": 1500})
            print(f"screenshot: {README_SCREENSHOT}")
        restarted = httpx.post(
            f"{url}/v1/train", json={**origin, "network": trained["network"], "iterations": origin["iterations"] - t}
        ).json()
        assert restarted["network"] != whole["network"]  # what stepping from the network shown would have given
        # The link holds the setup: another tab opens it at the same iteration, with the same network.
        page.wait_for_selector(f"body[data-saved='{origin['iterations']}']", timeout=WAIT)
        link = page.url
        assert "#s=" in link
        with Offline(browser, "", link) as other:
            assert other.page.get_attribute("body", "data-loaded") == "link" and other.iteration() == origin["iterations"]
            assert other.shown_problem()["network"] == whole["network"]
            assert other.page.input_value("#learning-rate") == "0.1"


def test_a_bad_edit_marks_its_field_and_clears_stale_results(served, tmp_path):
    browser, url = served
    with Offline(browser, url, allowed=("status of 422",)) as tab:
        page = tab.page
        assert page.locator("#forward table").count() > 0
        target = page.locator("#data [data-loc='targets.0.0']")
        target.fill("2")
        target.press("Tab")
        page.wait_for_selector("#data .invalid", timeout=WAIT)
        tab.idle()
        assert page.locator(".invalid").count() == 1
        assert page.get_attribute(".invalid", "data-loc") == "targets.0.0"
        beside = page.locator("#data .invalid + .field-error")
        assert "[0, 1]" in beside.inner_text() and "2" in beside.inner_text()
        assert "422" in page.inner_text("#error")
        # Nothing stale stays on screen.
        assert page.inner_text("#forward") == "" and page.inner_text("#gradients") == "" and page.inner_text("#diagram") == ""
        assert page.get_attribute("#heatmap", "data-iteration") == ""
        _screenshot(page, tmp_path, "playground-error.png")
        # A weight left empty is named at its place in the network's grid.
        target.fill("1")
        target.press("Tab")
        page.wait_for_selector("#diagram .card", timeout=WAIT)
        tab.idle()
        assert page.locator(".invalid").count() == 0 and page.inner_text("#error") == ""
        weight = page.locator("#editor [data-loc='network.layers.0.weights.1.0']")
        weight.fill("")
        weight.press("Tab")
        page.wait_for_selector("#editor .invalid", timeout=WAIT)
        assert page.get_attribute("#editor .invalid", "data-loc") == "network.layers.0.weights.1.0"
        assert page.locator("#editor .invalid + .field-error").count() == 1


def test_playground_checks_the_blog_posts_numbers(served, tmp_path):
    browser, url = served
    with Offline(browser, url) as tab:
        page = tab.page
        page.set_viewport_size({"width": 1400, "height": 2400})
        tab.load("blog")
        page.click("#check")
        page.wait_for_selector("#diagnoses", timeout=30_000)
        assert page.inner_text("#check-error") == ""
        assert "iterations[0].output[0][0]" in page.inner_text("#first-wrong")
        assert "parameter_substituted" in page.inner_text("#diagnoses") and "weights[1][1]" in page.inner_text("#diagnoses")
        _screenshot(page, tmp_path, "playground-check.png")

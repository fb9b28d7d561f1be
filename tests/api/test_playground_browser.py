"""The playground in real headless Chromium: load the seed, run it, see the blog's numbers.

Skips where Chromium or Playwright is absent; CI installs both (.ci/run).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.live_server import running_server
from tests.support.seed_trace import SEED_LOSSES, SEED_OUTPUTS, SEED_W11

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")]


def test_playground_runs_the_seed(tmp_path):
    with running_server(tmp_path / "server.log") as (url, _), sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1800})
            page.goto(f"{url}/playground")
            page.wait_for_selector("body[data-ready='true']", timeout=30_000)
            assert page.input_value("#example") == "seed"
            page.click("#run")
            page.wait_for_selector("#trace table", timeout=30_000)
            text = page.inner_text("main")
            assert page.inner_text("#error") == ""
            for value in (*SEED_LOSSES[:1], SEED_OUTPUTS[0], *SEED_W11):
                assert repr(value)[:12] in text, value
            assert "0.3390604735219194" in text or "0.339060473521919" in text
            assert page.locator("#diagram svg").count() == 1 and page.locator("#curve svg").count() == 1
            shot = Path(os.environ.get("BACKPROP_TEST_OUTPUT", tmp_path)) / "playground.png"
            shot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            print(f"screenshot: {shot}")
        finally:
            browser.close()


def test_playground_shows_validation_errors(tmp_path):
    with running_server(tmp_path / "server.log") as (url, _), sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{url}/playground")
            page.wait_for_selector("body[data-ready='true']", timeout=30_000)
            page.fill("#inputs", "[[0.7, 0.3, 0.1]]")
            page.click("#run")
            # A selector, not wait_for_function: polling a string predicate is an eval the page's CSP refuses.
            page.wait_for_selector("#error:not(:empty)", timeout=30_000)
            assert "body.inputs" in page.inner_text("#error") and "422" in page.inner_text("#error")
        finally:
            browser.close()


def test_playground_checks_the_blog_posts_numbers(tmp_path):
    with running_server(tmp_path / "server.log") as (url, _), sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 2400})
            page.goto(f"{url}/playground")
            page.wait_for_selector("body[data-ready='true']", timeout=30_000)
            page.select_option("#example", "blog")
            page.click("#load")
            page.wait_for_selector("body[data-loaded='blog']", timeout=30_000)
            page.click("#check")
            page.wait_for_selector("#diagnoses", timeout=30_000)
            assert page.inner_text("#check-error") == ""
            assert "iterations[0].output[0][0]" in page.inner_text("#first-wrong")
            assert "parameter_substituted" in page.inner_text("#diagnoses") and "weights[1][1]" in page.inner_text("#diagnoses")
            shot = Path(os.environ.get("BACKPROP_TEST_OUTPUT", tmp_path)) / "playground-check.png"
            shot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()

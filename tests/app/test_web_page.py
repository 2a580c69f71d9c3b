"""The web page at /, in a real browser: Debian's Chromium driven by Playwright (which never downloads one).

A person drops a generated PDF, watches the job run, sees every region drawn over its page, toggles labels,
reads a region's text, and groups sentences; errors from the API are shown as the API words them.
``SERVE_APP_SCREENSHOTS=<dir>`` keeps the screenshots (the README's come from here).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from serve_app.core.auth import hash_key
from serve_app.training.synth import generate_document
from tests.app.helpers import api_keys_on

TIMEOUT_MS = 240_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Chromium is missing: `make browser` (apt-get install chromium) installs it"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield launched
        launched.close()


def screenshot(page: Page, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(path))  # what the window shows
    assert path.stat().st_size > 10_000
    keep = os.environ.get("SERVE_APP_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / name)


def open_page(browser: Browser, serve_url: str, width: int, height: int) -> Page:
    page = browser.new_page(viewport={"width": width, "height": height})
    page.goto(f"{serve_url}/")
    # The models are listed (the default one replaces the placeholder option).
    page.wait_for_function("document.querySelector('#model').options[0].textContent.includes('(default)')")
    return page


def test_a_person_drops_a_pdf_and_sees_its_layout(
    browser: Browser, serve_url: str, http: httpx.Client, tmp_path: Path
) -> None:
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(generate_document(seed=626_262, num_pages=2, dpi=72).pdf)
    page = open_page(browser, serve_url, 1280, 800)
    page.set_input_files("#file", str(pdf))
    assert "report.pdf" in page.inner_text("#drop-text")
    page.check("#cluster")
    page.click("#analyze-button")
    page.wait_for_selector("#results:not([hidden])", timeout=TIMEOUT_MS)
    assert page.inner_text("#progress-text").startswith("succeeded: 2 of 2 pages")
    assert page.is_hidden("#error")

    href = page.get_attribute("#downloads a", "href")
    assert href is not None and href.endswith("/result")
    result: dict[str, Any] = http.get(href).json()
    regions = [r for p in result["pages"] for r in p["regions"]]
    assert regions and page.locator("svg rect.region").count() == len(regions)  # one box per region
    page.wait_for_function(
        "[...document.querySelectorAll('.page img')].every(i => i.complete && i.naturalWidth > 0)",
        timeout=60_000,
    )  # every page image loaded under its boxes
    links = [page.get_attribute(a, "href") for a in ("#downloads a >> nth=0", "#downloads a >> nth=1")]
    assert links[1] is not None and http.get(links[1]).text.startswith("<!-- page 1 -->")  # Markdown

    # Toggling a label hides its boxes; focusing a box (keyboard) shows its label, score and text.
    shown = result["model"]["labels"]
    label = regions[0]["label"]
    assert label in shown
    page.uncheck(f"#legend input[data-label='{label}']")
    hidden = sum(r["label"] == label for r in regions)
    assert page.locator("svg rect.region:not(.hidden)").count() == len(regions) - hidden
    page.check(f"#legend input[data-label='{label}']")
    page.focus("svg rect.region >> nth=0")
    first = result["pages"][0]["regions"][0]
    details = page.inner_text("#details-text")
    assert f"Page 1, {first['label']}, score {first['score']:.3f}" in details
    assert " ".join(first["text"].split()[:3]) in " ".join(details.split())
    if result["clusters"] and result["clusters"]["clusters"]:
        assert page.locator("#cluster-list > li").count() == len(result["clusters"]["clusters"])
    screenshot(page, tmp_path, "web-page.png")


def test_the_page_fits_a_phone_and_shows_api_errors(browser: Browser, serve_url: str, tmp_path: Path) -> None:
    page = open_page(browser, serve_url, 390, 844)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0  # nothing wider than the screen
    fake = tmp_path / "fake.pdf"
    fake.write_text("this is not a PDF")
    page.set_input_files("#file", str(fake))
    page.click("#analyze-button")
    page.wait_for_selector("#error:not([hidden])", timeout=60_000)
    message = page.inner_text("#error")
    assert "invalid_input" in message and "HTTP 422" in message  # the API's own words
    page.click("#analyze-button")  # still usable after an error
    page.wait_for_selector("#error:not([hidden])", timeout=60_000)
    screenshot(page, tmp_path, "web-page-phone.png")


def test_the_sentence_playground_groups_the_example(browser: Browser, serve_url: str) -> None:
    page = open_page(browser, serve_url, 1280, 800)
    page.keyboard.press("Tab")  # the page is usable from the keyboard: focus goes to real controls
    page.focus("#cluster-button")
    page.keyboard.press("Enter")
    page.wait_for_selector("#groups > li", timeout=60_000)
    groups = page.locator("#groups > li")
    assert groups.count() == 2
    texts = [groups.nth(i).inner_text() for i in range(2)]
    assert any("Dog Walking" in t and "Public Speaking" not in t for t in texts)
    assert any("Public Speaking" in t and "Dog Walking" not in t for t in texts)


def test_with_api_keys_the_page_sends_the_key(
    browser: Browser, serve_url: str, http: httpx.Client, api_keys_file: Path, tmp_path: Path
) -> None:
    key = "sa_web-page-key-for-tests"
    with api_keys_on(http, api_keys_file, {"web": {"sha256": hash_key(key)}}):
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{serve_url}/")
        page.wait_for_selector("#error:not([hidden])", timeout=60_000)
        assert "unauthorized" in page.inner_text("#error")  # no key yet: the API's own answer is shown
        page.fill("#api-key", key)
        page.dispatch_event("#api-key", "change")
        page.wait_for_function(
            "document.querySelector('#model').options[0].textContent.includes('(default)')"
        )
        pdf = tmp_path / "keyed.pdf"
        pdf.write_bytes(generate_document(seed=7, num_pages=1, dpi=72).pdf)
        page.set_input_files("#file", str(pdf))
        page.click("#analyze-button")
        page.wait_for_selector("#results:not([hidden])", timeout=TIMEOUT_MS)
        page.wait_for_function(
            "[...document.querySelectorAll('.page img')].every(i => i.complete && i.naturalWidth > 0)",
            timeout=60_000,
        )  # page images fetched with the key (an <img> alone could not send it)
        assert page.is_hidden("#error")

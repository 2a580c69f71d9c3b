"""The README's pictures, from a running service (``make run``) and a real PDF:

    python -m tools.readme_pictures /usr/share/doc/shared-mime-info/shared-mime-info-spec.pdf

writes ``docs/images/web-page.png`` (the web page at 1280 x 800 after analysing the PDF, in Debian's
Chromium driven by Playwright) and ``docs/images/annotated-page.png`` (page ``--page`` of the job, as
``GET /v1/jobs/{id}/pages/{n}.png`` draws it).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "images"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("pdf", type=Path)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--page", type=int, default=2, help="the page shown annotated (from 1)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    IMAGES.mkdir(parents=True, exist_ok=True)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("Chromium is missing: make browser")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{args.url}/")
        page.wait_for_function(
            "document.querySelector('#model').options[0].textContent.includes('(default)')"
        )
        page.set_input_files("#file", str(args.pdf))
        page.click("#analyze-button")
        page.wait_for_selector("#results:not([hidden])", timeout=600_000)
        page.evaluate("document.querySelector('#results').scrollIntoView()")
        page.wait_for_function("(i => i.complete && i.naturalWidth > 0)(document.querySelector('.page img'))")
        page.dispatch_event("svg rect[data-page='1'][data-region='2']", "mouseenter")  # details of a region
        page.screenshot(path=str(IMAGES / "web-page.png"))
        result_url = page.get_attribute("#downloads a", "href")
        browser.close()
    assert result_url is not None
    annotated = httpx.get(f"{args.url}{result_url.removesuffix('/result')}/pages/{args.page}.png", timeout=60)
    annotated.raise_for_status()
    (IMAGES / "annotated-page.png").write_bytes(annotated.content)
    print(f"wrote {IMAGES / 'web-page.png'} and {IMAGES / 'annotated-page.png'}")


if __name__ == "__main__":
    main()

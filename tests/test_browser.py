"""The page in a real browser: Debian's headless chromium driven by Playwright, against a live server.

Skipped when /usr/bin/chromium is missing, except under CI (the env var CI set), where that is a failure:
`.ci/run` installs it. Playwright's own browser downloads are never used.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lookalike.server import create_app
from tests.photos import DATA
from tests.serving import indexed_collection, running

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
TOKEN = "browser-token"


def loaded(images: str) -> str:
    """JavaScript counting the images matching a selector that have really loaded (naturalWidth > 0)."""
    return f"[...document.querySelectorAll('{images}')].filter(img => img.naturalWidth > 0).length"


LOADED_THUMBNAILS = loaded("#results .card img")

if not CHROMIUM.exists():
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing: CI must install Debian's chromium (see .ci/run)", pytrace=False)
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


REQUESTED: list[str] = []
"""Every request target (path and query) the server received: the token must never be among them."""


def recording(app):
    async def recorded(scope, receive, send):
        if scope["type"] == "http":
            REQUESTED.append(scope["path"] + "?" + scope["query_string"].decode("latin-1"))
        await app(scope, receive, send)

    return recorded


@pytest.fixture(scope="module")
def live_url(tmp_path_factory, tf1_module):
    collection = indexed_collection(tmp_path_factory.mktemp("browser"), tf1_module, batching=True)
    with running(recording(create_app(collection, token=TOKEN))) as url:
        yield url
    collection.close()


@pytest.fixture
def page(browser, live_url):
    # bypass_csp: the page's policy forbids eval, which Playwright's wait_for_function needs.
    context = browser.new_context(viewport={"width": 1200, "height": 900}, bypass_csp=True)
    page = context.new_page()
    outside: list[str] = []
    page.on("request", lambda r: r.url.startswith(("blob:", "data:", live_url)) or outside.append(r.url))
    yield page
    context.close()
    assert not outside, f"the page reached beyond the server: {outside}"


def test_uploading_a_photo_shows_its_labels_and_loaded_thumbnails(page, live_url, tmp_path):
    page.goto(f"{live_url}/#token={TOKEN}")
    assert "token" not in page.url  # taken into localStorage, dropped from the address bar
    assert REQUESTED and not [target for target in REQUESTED if TOKEN in target]  # so never logged
    page.wait_for_function("document.querySelector('#info').textContent.includes('images')")
    page.set_input_files("#file", str(DATA / "cat.jpg"))
    page.wait_for_function(f"{LOADED_THUMBNAILS} >= 10")
    assert page.locator("#query-labels li").count() == 5
    assert "cat.jpg" in page.locator("#results .card .name").first.inner_text()
    assert page.locator("#results .card .score").first.inner_text().startswith("#1")
    page.screenshot(path=str(tmp_path / "search.png"), full_page=True)  # pytest --basetemp to look at it

    second = page.locator("#results .card").nth(1)
    name = second.locator(".name").inner_text()
    second.click()  # search from that result, by id
    page.wait_for_function(f"document.querySelector('#query-title').textContent === {name!r}")
    page.wait_for_function(f"{LOADED_THUMBNAILS} >= 10")
    names = page.locator("#results .card .name").all_inner_texts()
    assert name not in names  # the query itself is left out


def test_without_the_token_the_page_asks_for_it(page, live_url):
    page.goto(live_url)
    page.wait_for_selector("#token-form", state="visible")
    page.fill("#token-input", TOKEN)
    page.click("#token-form button")
    page.wait_for_selector("#token-form", state="hidden")
    page.fill("#find-text", "cat")
    page.click("#find-form button")
    page.wait_for_function(f"{LOADED_THUMBNAILS} >= 2")


def test_a_bad_file_shows_the_error(page, live_url, tmp_path):
    page.goto(f"{live_url}/#token={TOKEN}")
    bad = tmp_path / "notes.jpg"
    bad.write_text("not a picture")
    page.set_input_files("#file", str(bad))
    page.wait_for_selector("#error", state="visible")
    assert "not an image" in page.inner_text("#error")


def test_the_duplicates_view_shows_each_cluster_side_by_side(page, live_url, tmp_path):
    page.goto(f"{live_url}/#token={TOKEN}")
    page.click("#duplicates-tab")
    page.fill("#threshold", "0.99")
    page.click("#duplicates-form button")
    page.wait_for_function(f"{loaded('#clusters .member img')} >= 8")
    assert page.locator("#clusters .cluster").count() == 4
    first = page.locator("#clusters .cluster").first
    assert first.locator(".member").count() == 2 and first.locator(".member.keeper").count() == 1
    assert "-small" in first.locator(".member:not(.keeper) .name").inner_text()
    page.screenshot(path=str(tmp_path / "duplicates.png"), full_page=True)

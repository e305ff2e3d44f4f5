"""The page in a real browser: Debian's headless chromium driven by Playwright, against a live server.

Skipped when /usr/bin/chromium is missing, except under CI (the env var CI set), where that is a failure:
`.ci/run` installs it. Playwright's own browser downloads are never used.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import lookalike
from lookalike.server import create_app
from tests.duplicate_photos import THRESHOLD, grey_photos, tree_digest
from tests.photos import DATA
from tests.review_photos import review_folder
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


@contextmanager
def opened(browser, url: str) -> Iterator:
    """A fresh browser context's page for the server at ``url``; fails if it reached anywhere else."""
    # bypass_csp: the page's policy forbids eval, which Playwright's wait_for_function needs.
    context = browser.new_context(viewport={"width": 1200, "height": 900}, bypass_csp=True)
    page = context.new_page()
    outside: list[str] = []
    page.on("request", lambda r: r.url.startswith(("blob:", "data:", url)) or outside.append(r.url))
    yield page
    context.close()
    assert not outside, f"the page reached beyond the server: {outside}"


@pytest.fixture
def page(browser, live_url):
    with opened(browser, live_url) as page:
        yield page


def framing(url: str):
    """Another site's page (another port of 127.0.0.1) that shows ``url`` in a frame, as clickjacking does."""
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    html = f'<!doctype html><iframe src="{url}/" width="800" height="600"></iframe>'
    return Starlette(routes=[Route("/", lambda _: HTMLResponse(html))])


def test_another_site_cannot_show_the_page_in_a_frame(browser, live_url):
    """Framed (say invisibly, under a decoy), the page's requests would be its own and pass the Origin
    check: a click through the frame could move files. The browser must refuse to show it at all."""
    context = browser.new_context()  # the page's policy enforced as a visitor's browser does
    with running(framing(live_url)) as other:
        seen = len(REQUESTED)
        page = context.new_page()
        page.goto(other, wait_until="load")  # the frame's load included
        (frame,) = [f for f in page.frames if f != page.main_frame]
        assert REQUESTED[seen:] == ["/?"]  # the browser asked for the page, then refused to show it
        assert not frame.url.startswith(live_url)
        assert frame.evaluate("document.querySelector('#info')") is None
    context.close()


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


@pytest.fixture
def reviewing(tmp_path, tf1_module):
    """A server with a quarantine over review_folder's files: (url, collection, files, quarantine)."""
    files = review_folder(tmp_path / "photos")
    with lookalike.open(tmp_path / "index", model=str(tf1_module)) as collection:
        collection.add([tmp_path / "photos"])
    collection = lookalike.open(tmp_path / "index")
    quarantine = tmp_path / "quarantine"
    with running(create_app(collection, token=TOKEN, quarantine=quarantine)) as url:
        yield url, collection, files, quarantine
    collection.close()


def test_review_change_the_keeper_untick_move_and_undo(browser, reviewing, tmp_path):
    url, collection, files, quarantine = reviewing
    photos = files["rocket"].parent
    before = tree_digest(photos)
    ids = {name: collection.get_by_path(path).id for name, path in files.items()}

    def card(name: str):
        return page.locator(f'#clusters .member[data-id="{ids[name]}"]')

    with opened(browser, url) as page:
        page.goto(f"{url}/#token={TOKEN}")
        page.click("#duplicates-tab")
        page.fill("#threshold", str(THRESHOLD))
        page.click("#duplicates-form button")
        page.wait_for_function(f"{loaded('#clusters .member img')} >= 12")
        rocket = page.locator(f'#clusters .cluster:has(.member[data-id="{ids["rocket-left"]}"])')
        assert rocket.locator(".member.keeper .name").inner_text() == "rocket.jpg"
        assert rocket.locator(".member").count() == 5 and rocket.locator(".pick-box:checked").count() == 4
        # the hard link (whichever of its two names is the copy) is the same file: never movable
        link = page.locator(f'#clusters .member:not(.keeper):is([data-id="{ids["espresso"]}"], '
                            f'[data-id="{ids["espresso-link"]}"])')
        assert "link" in link.get_attribute("class") and "hard link" in link.locator(".score").inner_text()
        assert link.locator(".pick-box").is_disabled() and not link.locator(".pick-box").is_checked()

        card("rocket-left").locator(".thumb").click()  # keep the left crop instead
        page.wait_for_selector(f'#clusters .member.keeper[data-id="{ids["rocket-left"]}"]')
        right = card("rocket-right")  # a copy of rocket, but not of the left crop
        assert "below" in right.get_attribute("class")
        assert right.locator(".score").inner_text().startswith(f"below {THRESHOLD}: 0.98")
        assert right.locator(".pick-box").is_disabled() and not right.locator(".pick-box").is_checked()
        old_keeper = card("rocket")  # now a copy, with its similarity to the new keeper
        similarity = float(old_keeper.locator(".score").inner_text().removeprefix("similarity "))
        rows = collection.store.get_many([ids["rocket"], ids["rocket-left"]], vector=True)
        assert similarity == pytest.approx(float(rows[0].vector @ rows[1].vector), abs=1e-3)
        assert old_keeper.locator(".pick-box").is_checked()

        card("rocket-top").locator(".pick-box").uncheck()
        move = rocket.locator(".move-button")
        assert move.inner_text() == "Move 2 to quarantine"
        move.click()
        page.wait_for_selector("#undo-bar", state="visible")
        assert "moved 2 copies" in rocket.locator(".note").inner_text()
        assert rocket.locator(".member").count() == 3  # the moved copies left the cluster
        page.screenshot(path=str(tmp_path / "moved.png"), full_page=True)

        for name in ("rocket", "rocket-crop"):  # on disk and in the index
            assert not files[name].exists() and collection.get_by_path(files[name]) is None
        assert sorted(p.name for p in quarantine.rglob("*.jpg")) == ["rocket-crop.jpg", "rocket.jpg"]
        for name in ("rocket-left", "rocket-right", "rocket-top"):
            assert files[name].exists() and collection.get_by_path(files[name]) is not None

        page.click("#undo-button")
        page.wait_for_selector("#undo-bar", state="hidden")
        page.wait_for_function("document.querySelector('#duplicates-status').textContent"
                               ".includes('put back 2 files')")
        assert tree_digest(photos) == before  # every file back, byte-identical
        for name in ("rocket", "rocket-crop"):
            assert collection.get_by_path(files[name]) is not None  # indexed again
        assert not list(quarantine.rglob("*.jpg"))
        page.wait_for_function(f"{loaded('#clusters .member img')} >= 12")  # the clusters, listed again


def test_keeping_a_greyscale_copy_never_offers_its_colour_original_for_the_quarantine(browser, tmp_path,
                                                                                   tf1_module):
    photos = grey_photos(tmp_path / "photos")
    with lookalike.open(tmp_path / "index", model=str(tf1_module)) as collection:
        collection.add([photos])
    collection = lookalike.open(tmp_path / "index")
    grey, colour = (collection.get_by_path(photos / name).id
                    for name in ("espresso-grey.jpg", "espresso.jpg"))
    with running(create_app(collection, token=TOKEN, quarantine=tmp_path / "quarantine")) as url, \
            opened(browser, url) as page:
        page.goto(f"{url}/#token={TOKEN}")
        page.click("#duplicates-tab")
        page.fill("#threshold", str(THRESHOLD))
        page.click("#duplicates-form button")
        page.wait_for_selector(f'#clusters .member.keeper[data-id="{colour}"]')  # the colour one is kept
        page.locator(f'#clusters .member[data-id="{grey}"] .thumb').click()  # a person keeps the grey one
        page.wait_for_selector(f'#clusters .member.keeper[data-id="{grey}"]')
        original = page.locator(f'#clusters .member[data-id="{colour}"]')
        assert "below" in original.get_attribute("class")
        assert original.locator(".score").inner_text() == "not a copy: colours or details differ"
        assert original.locator(".pick-box").is_disabled() and not original.locator(".pick-box").is_checked()
    collection.close()
    assert (photos / "espresso.jpg").is_file()

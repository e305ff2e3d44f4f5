"""What the service reads from disk and when it writes: only the very files indexed, never waiting.

`/images/{id}/file` and thumbnails serve a regular file that is still the one indexed (a path swapped
for a symlink, replaced or gone is a 410); an upload while another process holds the writer lock is
answered at once with 503 and Retry-After, and reads go on meanwhile. A real server on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import httpx
import pytest

import lookalike
from lookalike.index.store import WriterLock
from lookalike.server import create_app
from tests.photos import DATA
from tests.serving import indexed_collection, running


@pytest.fixture
def served(tmp_path, tf1_module):
    collection = indexed_collection(tmp_path, tf1_module)
    app = create_app(collection, upload_dir=tmp_path / "uploads")
    with running(app) as url, httpx.Client(base_url=url, timeout=60) as http:
        hits = http.get("/find", params={"q": "photos", "limit": 100}).json()
        ids = {Path(hit["image"]["path"]).stem: hit["image"]["id"] for hit in hits}
        yield http, ids, collection
    collection.close()


def path_of(http: httpx.Client, image_id: int) -> Path:
    return Path(http.get(f"/images/{image_id}").json()["path"])


def assert_error(response: httpx.Response, status: int, text: str = "") -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert text in response.json()["error"]


def test_the_indexed_file_is_served_whole(served):
    http, ids, _ = served
    response = http.get(f"/images/{ids['cat']}/file")
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    assert response.content == (DATA / "cat.jpg").read_bytes()
    assert int(response.headers["content-length"]) == len(response.content)


@pytest.mark.parametrize("target", ["/etc/passwd", "sibling"])
def test_a_file_swapped_for_a_symlink_is_not_followed(served, target):
    http, ids, _ = served
    path = path_of(http, ids["cat"])
    if target == "sibling":  # even a link to another indexed photo is not this image's file
        target = str(path_of(http, ids["rocket"]))
    path.unlink()
    path.symlink_to(target)
    for endpoint in ("file", "thumbnail"):
        response = http.get(f"/images/{ids['cat']}/{endpoint}")
        assert_error(response, 410)
        assert b"root:" not in response.content


def test_a_file_replaced_in_place_is_gone_not_served(served):
    http, ids, _ = served
    path = path_of(http, ids["rocket"])
    stat = path.stat()
    path.write_bytes(b"x" * stat.st_size)  # same size, new content and mtime
    assert_error(http.get(f"/images/{ids['rocket']}/file"), 410)
    replacement = path.with_name("elsewhere.jpg")
    shutil.copy(DATA / "rocket.jpg", replacement)
    os.utime(replacement, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same bytes, size and mtime...
    os.replace(replacement, path)  # ...but another inode
    assert_error(http.get(f"/images/{ids['rocket']}/file"), 410)
    assert_error(http.get(f"/images/{ids['rocket']}/thumbnail"), 410)


def test_a_fifo_in_place_of_a_file_does_not_hang(served):
    http, ids, _ = served
    path = path_of(http, ids["espresso"])
    path.unlink()
    os.mkfifo(path)
    started = time.monotonic()
    assert_error(http.get(f"/images/{ids['espresso']}/file", timeout=10), 410)
    assert_error(http.get(f"/images/{ids['espresso']}/thumbnail", timeout=10), 410)
    assert time.monotonic() - started < 5


def test_a_file_gone_from_disk_is_410(served):
    http, ids, _ = served
    path_of(http, ids["cameraman"]).unlink()
    assert_error(http.get(f"/images/{ids['cameraman']}/file"), 410)
    assert_error(http.get(f"/images/{ids['cameraman']}/thumbnail"), 410)
    assert http.get(f"/images/{ids['cameraman']}").status_code == 200  # its record is still there


def test_an_upload_while_another_writer_holds_the_index_answers_at_once(served):
    http, _, collection = served
    lock = WriterLock(collection.directory)
    lock.acquire()  # what a running `lookalike index` holds
    try:
        started = time.monotonic()
        response = http.post("/images", files={"file": ("cat.jpg", (DATA / "cat.jpg").read_bytes())})
        assert time.monotonic() - started < 3
        assert_error(response, 503)
        assert int(response.headers["retry-after"]) > 0
        started = time.monotonic()
        assert http.get("/info").json()["images"] == 14  # reads never wait for the writer
        assert http.get("/images/1/similar", params={"k": 3}).status_code == 200
        assert time.monotonic() - started < 3
        uploads = collection.directory.parent / "uploads"
        assert not uploads.exists() or not list(uploads.iterdir())  # nothing left behind
    finally:
        lock.release()
    response = http.post("/images", files={"file": ("cat.jpg", (DATA / "cat.jpg").read_bytes())})
    assert response.status_code == 201, response.text


def test_a_name_with_invalid_utf8_is_listed_exactly_and_served(tmp_path, tf1_module):
    """JSON carries the undecodable byte as an escape that Python's json turns back into the very name."""
    folder = tmp_path / "odd"
    folder.mkdir()
    raw = os.fsencode(folder) + b"/bad\xffname\n.jpg"
    with open(raw, "wb") as out:
        out.write((DATA / "cat.jpg").read_bytes())
    with lookalike.open(tmp_path / "index", model=str(tf1_module)) as collection:
        collection.add([folder])
        app = create_app(collection)
        with running(app) as url, httpx.Client(base_url=url, timeout=60) as http:
            response = http.get("/find", params={"q": "odd"})
            assert response.status_code == 200, response.text
            [hit] = json.loads(response.content)
            assert os.fsencode(hit["image"]["path"]) == raw
            served = http.get(f"/images/{hit['image']['id']}/file")
            assert served.status_code == 200 and served.content == (DATA / "cat.jpg").read_bytes()

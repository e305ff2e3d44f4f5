"""Reviewing duplicates over HTTP: another keeper, the picked copies moved to the quarantine, undone.

A real index of real image files (``tests/review_photos.py``) served by uvicorn on 127.0.0.1 with a
quarantine folder; files on disk and rows in the index are checked after every step.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import numpy as np
import pytest

import lookalike
from lookalike.index.store import WriterLock
from lookalike.server import app as server_app
from lookalike.server import create_app
from tests.cli import run
from tests.duplicate_photos import THRESHOLD, tree_digest
from tests.review_photos import review_folder
from tests.serving import running

TOKEN = "review-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def served(tmp_path_factory, tf1_module):
    """(client, collection, files, photos root, quarantine, base url); every test leaves it as it found it."""
    root = tmp_path_factory.mktemp("review")
    files = review_folder(root / "photos")
    with lookalike.open(root / "index", model=str(tf1_module)) as collection:
        collection.add([root / "photos"])
    collection = lookalike.open(root / "index")
    quarantine = root / "quarantine"
    app = create_app(collection, token=TOKEN, quarantine=quarantine)
    with running(app) as url, httpx.Client(base_url=url, headers=AUTH, timeout=120) as client:
        yield client, collection, files, root / "photos", quarantine, url
    collection.close()


def id_of(collection, path: Path) -> int:
    found = collection.get_by_path(path)
    assert found is not None, f"{path} is not in the index"
    return found.id


def assert_error(response: httpx.Response, status: int, text: str = "") -> None:
    assert response.status_code == status, response.text
    assert text in response.json()["error"], response.json()


def test_quarantine_is_on_and_tells_no_path(served):
    client, *_ = served
    assert client.get("/quarantine").json() == {"enabled": True}


def test_another_keeper_gets_similarities_to_itself_and_a_non_copy_is_below(served):
    client, collection, files, *_ = served
    names = ["rocket", "rocket-crop", "rocket-left", "rocket-right", "rocket-top"]
    ids = {name: id_of(collection, files[name]) for name in names}
    clusters = client.get("/duplicates", params={"threshold": THRESHOLD}).json()
    rocket = next(c for c in clusters if c["keeper"]["id"] == ids["rocket"])
    assert {c["id"] for c in rocket["copies"]} == {ids[n] for n in names if n != "rocket"}

    others = [ids[n] for n in names if n != "rocket-left"]
    review = client.get("/duplicates/cluster", params={
        "keeper": ids["rocket-left"], "member": others, "threshold": THRESHOLD}).json()
    assert review["cluster"]["keeper"]["id"] == ids["rocket-left"]
    assert review["threshold"] == THRESHOLD
    assert review["below"] == [ids["rocket-right"]]
    vectors = {row.id: row.vector for row in collection.store.get_many(list(ids.values()), vector=True)}
    keeper = vectors[ids["rocket-left"]]
    for copy in review["cluster"]["copies"]:  # computed from the stored vectors, to the new keeper
        vector = vectors[copy["id"]]
        expected = float(vector @ keeper / np.linalg.norm(vector) / np.linalg.norm(keeper))
        assert copy["similarity"] == pytest.approx(expected, abs=1e-5)
        assert (copy["similarity"] < THRESHOLD) == (copy["id"] == ids["rocket-right"])
    assert {c["id"] for c in review["cluster"]["copies"]} == set(others)  # the old keeper is a copy now


def test_a_hard_link_is_shown_as_the_same_file(served):
    client, collection, files, *_ = served
    link, espresso = id_of(collection, files["espresso-link"]), id_of(collection, files["espresso"])
    review = client.get("/duplicates/cluster", params={"keeper": espresso, "member": [link]}).json()
    (copy,) = review["cluster"]["copies"]
    assert copy["same_file"] is True and copy["exact"] is True and review["below"] == []


def test_move_then_undo_puts_every_byte_and_row_back(served):
    client, collection, files, photos, quarantine, url = served
    before = tree_digest(photos)
    names = ["rocket", "rocket-crop", "rocket-left", "rocket-right", "rocket-top", "espresso",
             "espresso-link"]
    ids = {name: id_of(collection, files[name]) for name in names}
    body = {"keeper": ids["rocket-left"], "threshold": THRESHOLD,
            "copies": [ids["rocket"], ids["rocket-crop"], ids["rocket-right"]]}
    moved = client.post("/duplicates/move", json=body, headers={"Origin": url})  # as the page sends it
    assert moved.status_code == 200, moved.text
    report = moved.json()
    assert sorted(m["id"] for m in report["moved"]) == sorted([ids["rocket"], ids["rocket-crop"]])
    assert [Path(p["path"]).name for p in report["problems"]] == ["rocket-right.jpg"]
    assert "below 0.99" in report["problems"][0]["reason"]
    manifest = quarantine / report["manifest"]
    assert manifest.parent == quarantine and manifest.is_file()
    for name in ("rocket", "rocket-crop"):
        assert not files[name].exists()
        assert collection.get_by_path(files[name]) is None
        assert client.get(f"/images/{ids[name]}").status_code == 404
    for m in report["moved"]:
        assert Path(m["moved_to"]).is_relative_to(quarantine) and Path(m["moved_to"]).is_file()
    for name in ("rocket-left", "rocket-right", "rocket-top"):
        assert files[name].exists() and collection.get_by_path(files[name]) is not None
    assert client.get("/duplicates", params={"threshold": THRESHOLD}).status_code == 200

    # the hard link of the keeper is reported, never moved
    link = client.post("/duplicates/move", json={"keeper": ids["espresso"], "copies": [ids["espresso-link"]]})
    assert link.json()["moved"] == [] and "hard link" in link.json()["problems"][0]["reason"]
    assert files["espresso-link"].exists()

    undone = client.post("/duplicates/undo", json={"manifest": report["manifest"]}, headers={"Origin": url})
    assert undone.status_code == 200, undone.text
    assert sorted(undone.json()["restored"]) == sorted(str(files[n]) for n in ("rocket", "rocket-crop"))
    assert undone.json()["problems"] == []
    assert tree_digest(photos) == before  # byte-identical, nothing left out or added
    for name in ("rocket", "rocket-crop"):
        assert collection.get_by_path(files[name]) is not None  # indexed again (a new id)
    again = client.post("/duplicates/undo", json={"manifest": report["manifest"]})  # twice is harmless
    assert again.status_code == 200 and again.json()["restored"] == []


def test_the_cli_undoes_a_move_made_from_the_page(served):
    client, collection, files, photos, quarantine, _ = served
    before = tree_digest(photos)
    keeper, copy = id_of(collection, files["cat"]), id_of(collection, files["cat-copy"])
    report = client.post("/duplicates/move", json={"keeper": keeper, "copies": [copy]}).json()
    assert [m["id"] for m in report["moved"]] == [copy] and not files["cat-copy"].exists()
    undone = run("undo", quarantine / report["manifest"], "--index", collection.directory)
    assert undone.exit_code == 0, undone.stderr
    assert tree_digest(photos) == before
    assert collection.get_by_path(files["cat-copy"]) is not None


def test_a_keeper_is_never_moved(served):
    client, collection, files, photos, *_ = served
    before = tree_digest(photos)
    keeper, copy = id_of(collection, files["rocket"]), id_of(collection, files["rocket-crop"])
    assert_error(client.post("/duplicates/move", json={"keeper": keeper, "copies": [copy, keeper]}), 422,
                 "keeper")
    assert_error(client.get("/duplicates/cluster", params={"keeper": keeper, "member": [keeper]}), 422)
    assert tree_digest(photos) == before and collection.get_by_path(files["rocket"]) is not None


def test_a_cross_site_move_or_undo_is_refused(served):
    client, collection, files, photos, quarantine, _ = served
    before, manifests = tree_digest(photos), sorted(quarantine.glob("manifest-*"))
    keeper, copy = id_of(collection, files["rocket"]), id_of(collection, files["rocket-crop"])
    for headers in ({"Origin": "http://evil.example"}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"}):
        refused = client.post("/duplicates/move", json={"keeper": keeper, "copies": [copy]}, headers=headers)
        assert_error(refused, 403, "cross-site")
        refused = client.post("/duplicates/undo", json={"manifest": "manifest-20261130T081500.jsonl"},
                              headers=headers)
        assert_error(refused, 403, "cross-site")
    assert tree_digest(photos) == before and sorted(quarantine.glob("manifest-*")) == manifests


def test_a_move_while_another_writer_holds_the_index_moves_nothing(served):
    client, collection, files, photos, quarantine, _ = served
    before, manifests = tree_digest(photos), sorted(quarantine.glob("manifest-*"))
    keeper, copy = id_of(collection, files["rocket"]), id_of(collection, files["rocket-crop"])
    lock = WriterLock(collection.directory)
    lock.acquire()  # what a running `lookalike index` holds
    try:
        refused = client.post("/duplicates/move", json={"keeper": keeper, "copies": [copy]})
        assert_error(refused, 503)
        assert int(refused.headers["retry-after"]) > 0
    finally:
        lock.release()
    assert tree_digest(photos) == before and sorted(quarantine.glob("manifest-*")) == manifests
    assert collection.get_by_path(files["rocket-crop"]) is not None


def test_an_undo_while_another_writer_holds_the_index_says_what_is_back_and_a_retry_indexes_it(
    served, monkeypatch
):
    """The files go back before the index is written: a busy index is no reason to say "try again"
    (a retry used to find nothing left to undo, and the files stayed out of the index)."""
    client, collection, files, photos, _, _ = served
    before = tree_digest(photos)
    keeper, copy = id_of(collection, files["cat"]), id_of(collection, files["cat-copy"])
    report = client.post("/duplicates/move", json={"keeper": keeper, "copies": [copy]}).json()
    monkeypatch.setattr(server_app, "UNDO_WAIT_S", 0.1)
    back = str(files["cat-copy"])
    lock = WriterLock(collection.directory)
    lock.acquire()  # what a running `lookalike index` holds
    try:
        busy = client.post("/duplicates/undo", json={"manifest": report["manifest"]})
    finally:
        lock.release()
    assert busy.status_code == 200, busy.text
    assert busy.json() == {"restored": [back], "problems": [], "unindexed": [back], "caught_up": []}
    assert tree_digest(photos) == before and collection.get_by_path(files["cat-copy"]) is None

    again = client.post("/duplicates/undo", json={"manifest": report["manifest"]})
    assert again.json() == {"restored": [], "problems": [], "unindexed": [], "caught_up": [back]}
    assert collection.get_by_path(files["cat-copy"]) is not None


def test_a_copy_changed_since_indexing_is_left_alone(served):
    client, collection, files, *_ = served
    keeper, copy = id_of(collection, files["rocket"]), id_of(collection, files["rocket-crop"])
    indexed = files["rocket-crop"].stat().st_mtime
    os.utime(files["rocket-crop"], (indexed + 3600, indexed + 3600))  # edited after indexing
    try:
        report = client.post("/duplicates/move", json={"keeper": keeper, "copies": [copy]}).json()
    finally:
        os.utime(files["rocket-crop"], (indexed, indexed))
    assert report["moved"] == [] and report["problems"][0]["reason"] == "changed since it was indexed"
    assert files["rocket-crop"].exists()


@pytest.mark.parametrize("name", [
    "../index/images.db", "/etc/passwd", "manifest-20261130T081500.jsonl/../../x",
    "sub/manifest-20261130T081500.jsonl", "manifest-20261130T081500.jsonl\n", "..", "",
    "manifest-*.jsonl", "manifest-20261130T081500.json", "./manifest-20261130T081500.jsonl",
])
def test_undo_takes_only_a_manifest_name(served, name):
    client, *_ = served
    assert_error(client.post("/duplicates/undo", json={"manifest": name}), 422, "manifest")


def test_undo_of_a_manifest_not_in_the_quarantine_is_404(served, tmp_path):
    client, _, _, _, quarantine, _ = served
    assert_error(client.post("/duplicates/undo", json={"manifest": "manifest-19990101T000000.jsonl"}), 404)
    elsewhere = tmp_path / "manifest-19990101T000001.jsonl"
    elsewhere.write_text('{"kind": "lookalike-quarantine", "version": 1}\n')
    quarantine.mkdir(exist_ok=True)
    (quarantine / elsewhere.name).symlink_to(elsewhere)  # a link in the quarantine is never followed
    try:
        assert_error(client.post("/duplicates/undo", json={"manifest": elsewhere.name}), 404)
    finally:
        (quarantine / elsewhere.name).unlink()


def test_unknown_ids_and_bad_bodies_are_4xx(served):
    client, collection, files, *_ = served
    keeper = id_of(collection, files["rocket"])
    assert_error(client.post("/duplicates/move", json={"keeper": keeper, "copies": [999_999]}), 404)
    assert_error(client.post("/duplicates/move", json={"keeper": 999_999, "copies": [keeper]}), 404)
    assert_error(client.post("/duplicates/move", json={"keeper": keeper, "copies": []}), 422)
    assert_error(client.post("/duplicates/move", json={"keeper": keeper, "copies": [1], "path": "/"}), 422)
    assert_error(client.post("/duplicates/move", json={"keeper": keeper, "copies": [1], "threshold": 2}), 422)
    assert_error(client.get("/duplicates/cluster", params={"keeper": keeper}), 422)


@pytest.mark.parametrize("body", [
    lambda keeper, copy: {"keeper": True, "copies": [copy]},
    lambda keeper, copy: {"keeper": keeper, "copies": [True]},
    lambda keeper, copy: {"keeper": 1.0, "copies": [copy]},
    lambda keeper, copy: {"keeper": keeper, "copies": [copy], "threshold": "0.5"},
    lambda keeper, copy: {"keeper": keeper, "copies": [copy], "threshold": True},
], ids=["true-keeper", "true-copy", "float-keeper", "string-threshold", "true-threshold"])
def test_a_move_takes_ids_and_thresholds_only_as_json_numbers(served, body):
    """In lax mode `true` was image 1 and "0.5" a threshold: a move must do only what was meant."""
    client, collection, files, photos, *_ = served
    before = tree_digest(photos)
    keeper, copy = id_of(collection, files["rocket"]), id_of(collection, files["rocket-crop"])
    assert_error(client.post("/duplicates/move", json=body(keeper, copy)), 422)
    assert tree_digest(photos) == before
    assert_error(client.post("/duplicates/undo", json={"manifest": 20261130}), 422, "manifest")


def test_every_review_endpoint_needs_the_token(served):
    client, collection, files, _, _, url = served
    keeper = id_of(collection, files["rocket"])
    with httpx.Client(base_url=url) as anonymous:
        assert_error(anonymous.get("/quarantine"), 401)
        assert_error(anonymous.get("/duplicates/cluster", params={"keeper": keeper, "member": [1]}), 401)
        assert_error(anonymous.post("/duplicates/move", json={"keeper": keeper, "copies": [1]}), 401)
        assert_error(anonymous.post("/duplicates/undo", json={"manifest": "manifest-20261130T081500.jsonl"}),
                     401)


def test_a_quarantine_link_leading_nowhere_is_refused_when_the_app_is_made(served, tmp_path):
    """Resolved once at the start, the link's missing target would have been made by the first move."""
    _, collection, *_ = served
    link = tmp_path / "quarantine"
    link.symlink_to(tmp_path / "usb" / "quarantine")
    with pytest.raises(lookalike.QuarantineError, match=f"{link} is a link to .*, which does not exist"):
        create_app(collection, token=TOKEN, quarantine=link)
    assert not (tmp_path / "usb").exists()


def test_without_a_quarantine_moving_is_off(tmp_path, tf1_module):
    files = review_folder(tmp_path / "photos")
    with lookalike.open(tmp_path / "index", model=str(tf1_module)) as collection:
        collection.add([files["rocket"], files["rocket-crop"]])
        keeper, copy = id_of(collection, files["rocket"]), id_of(collection, files["rocket-crop"])
        with running(create_app(collection)) as url, httpx.Client(base_url=url) as client:
            assert client.get("/quarantine").json() == {"enabled": False}
            assert_error(client.post("/duplicates/move", json={"keeper": keeper, "copies": [copy]}), 403,
                         "--quarantine")
            assert_error(client.post("/duplicates/undo", json={"manifest": "manifest-20261130T081500.jsonl"}),
                         403, "--quarantine")
            review = client.get("/duplicates/cluster", params={"keeper": copy, "member": [keeper]})
            assert review.status_code == 200  # looking stays possible
    assert files["rocket-crop"].exists()

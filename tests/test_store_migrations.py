"""Schema upgrades in place, exact file names, and a full disk: what the SQLite store guarantees."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from lookalike.errors import NoSpace
from lookalike.index.store import DB_NAME, MIGRATIONS, SCHEMA_VERSION, NewImage, Store

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def v1_index(directory: Path, rows: list[tuple[str, np.ndarray]], failures: list[str] = ()) -> Path:
    """An index as release 0.1.0 left it: its own empty database file, filled the way 0.1.0 wrote rows."""
    directory.mkdir(parents=True)
    shutil.copy(FIXTURES / "index-v1.db", directory / DB_NAME)
    conn = sqlite3.connect(directory / DB_NAME)
    for path, vector in rows:
        conn.execute(
            "INSERT INTO images (path, size, mtime, digest, width, height, format, indexed_at, labels, "
            "label_text, top_label, top_probability, vector) VALUES (?, 1, 1.0, ?, 8, 8, 'JPEG', 'then', ?, "
            "'tabby, tabby cat', 'tabby, tabby cat', 0.9, ?)",
            (path, f"digest-of-{os.path.realpath(path)}",
             json.dumps([{"name": "tabby, tabby cat", "index": 281, "probability": 0.9}]),
             vector.astype("<f4").tobytes()),
        )
    for path in failures:
        conn.execute("INSERT INTO failures VALUES (?, 'not an image', 'then')", (path,))
    conn.execute("UPDATE meta SET value = '3' WHERE key = 'generation'")
    conn.commit()
    conn.close()
    return directory


def test_an_index_from_the_previous_release_upgrades_in_place_without_re_embedding(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("a.jpg", "b.jpg", "é accent.jpg"):
        (photos / name).write_bytes(name.encode())
    (photos / "b-link.jpg").symlink_to("b.jpg")
    os.symlink(photos, tmp_path / "alias")
    rng = np.random.default_rng(1)
    names = ("a", "b", "link", "alias-a", "é", "gone")
    vectors = {name: rng.normal(size=8).astype(np.float32) for name in names}
    index = v1_index(tmp_path / "index", [
        (str(photos / "a.jpg"), vectors["a"]),
        (str(photos / "b.jpg"), vectors["b"]),
        (str(photos / "b-link.jpg"), vectors["link"]),  # the same file as b.jpg, indexed twice by 0.1.0
        (str(tmp_path / "alias" / "a.jpg"), vectors["alias-a"]),  # and a.jpg again, through a linked folder
        (str(photos / "é accent.jpg"), vectors["é"]),
        (str(photos / "gone.jpg"), vectors["gone"]),
    ], failures=[str(photos / "broken.jpg")])

    with Store.open(index) as store:
        assert store.get_meta("schema_version") == SCHEMA_VERSION
        rows = {row.path: row for row in store.get_many(range(1, 7), vector=True)}
        # One row per real file: the link and the folder alias are gone, the first row of each file kept.
        assert sorted(rows) == sorted(str(p) for p in [
            photos / "a.jpg", photos / "b.jpg", photos / "é accent.jpg", photos / "gone.jpg"])
        np.testing.assert_array_equal(rows[str(photos / "a.jpg")].vector, vectors["a"])  # not re-embedded
        np.testing.assert_array_equal(rows[str(photos / "é accent.jpg")].vector, vectors["é"])
        st, b = os.stat(photos / "b.jpg"), rows[str(photos / "b.jpg")]
        assert (b.device, b.inode) == (st.st_dev, st.st_ino)
        assert rows[str(photos / "gone.jpg")].inode is None  # gone files keep their row until --prune
        assert store.generation == 4  # rows were dropped: the FAISS file must be rebuilt
        assert [f.path for f in store.failures()] == [str(photos / "broken.jpg")]
        assert [m.row.path for m in store.search_text("accent")] == [str(photos / "é accent.jpg")]

    with Store.open(index) as store:  # opening again changes nothing
        assert store.get_meta("schema_version") == SCHEMA_VERSION and store.count() == 4


def image(path: str, seed: int) -> NewImage:
    vector = np.random.default_rng(seed).normal(size=8).astype(np.float32)
    return NewImage(path, 10, 1.0, f"d{seed}", 8, 8, "PNG", [], vector)


def index_at(directory: Path, version: int, images: list[NewImage]) -> Path:
    """An index as the release with schema ``version`` left it: the first schema and the released steps
    up to ``version`` (never edited since), then ``images`` written."""
    directory.mkdir(parents=True)
    store = Store(directory, sqlite3.connect(directory / DB_NAME, isolation_level=None))
    store.db.enable_wal()
    store._create_schema()
    for step in range(1, version):
        with store._write() as conn:
            MIGRATIONS[step - 1](conn)
            store._set_meta("schema_version", step + 1)
    store.upsert(images)
    store.close()
    return directory


def test_an_index_of_schema_6_gains_the_edited_pictures_vectors_in_place_without_re_embedding(tmp_path):
    index = index_at(tmp_path / "index", 6, [image("/p/a.jpg", 1), image("/p/b.jpg", 2)])
    raw = sqlite3.connect(index / DB_NAME)
    assert raw.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("6",)
    assert raw.execute("SELECT count(*) FROM sqlite_master WHERE name = 'edited_vectors'").fetchone() == (0,)
    raw.close()
    with Store.open(index) as store:
        assert store.get_meta("schema_version") == SCHEMA_VERSION
        assert "edited_vectors" in store.db.table_names() and store.generation == 1
        a = store.get_by_path("/p/a.jpg")
        np.testing.assert_array_equal(a.vector, image("/p/a.jpg", 1).vector)  # not re-embedded
        assert store.edited_vectors([(a.id, "grey")]) == {}  # nothing remembered yet
        assert store.remember_edited_vectors({(a.id, "grey"): (a.digest, np.ones((1, 8), np.float32))})
        store.delete([a.id])  # and its entries go with its row
        assert store.db.conn.execute("SELECT count(*) FROM edited_vectors").fetchone() == (0,)


def test_an_index_of_schema_7_gains_the_keypoint_matches_in_place(tmp_path):
    index = index_at(tmp_path / "index", 7, [image("/p/a.jpg", 1), image("/p/b.jpg", 2)])
    with Store.open(index) as store:
        assert store.get_meta("schema_version") == SCHEMA_VERSION
        a, b = store.get_by_path("/p/a.jpg"), store.get_by_path("/p/b.jpg")
        np.testing.assert_array_equal(a.vector, image("/p/a.jpg", 1).vector)  # not re-embedded
        assert store.keypoint_matches("v1", [(a.id, b.id, False)]) == {}  # nothing remembered yet
        match = [40, 50, 300, 300]
        assert store.remember_keypoint_matches("v1", {(a.id, b.id, False): (a.digest, b.digest, match)})
        assert store.keypoint_matches("v1", [(a.id, b.id, False)]) == {(a.id, b.id, False): match}


def test_file_names_that_are_not_utf8_are_kept_byte_for_byte(tmp_path):
    odd = os.fsdecode(b"/photos/bad\xffname\nwith newline.jpg")
    twin = os.fsdecode(b"/photos/bad\xfename\nwith newline.jpg")  # shows differently, another file
    with Store.open(tmp_path / "index") as store:
        ids = store.upsert([image(odd, 1), image(twin, 2)])
        store.record_failures([(os.fsdecode(b"/photos/\xff.jpg"), "not an image")])
        assert len(set(ids)) == 2
        assert store.get_by_path(odd).id == ids[0]
        assert os.fsencode(store.get(ids[0]).path) == b"/photos/bad\xffname\nwith newline.jpg"
        assert set(store.file_states()) == {odd, twin}
        assert os.fsencode(store.failures()[0].path) == b"/photos/\xff.jpg"
        # What a person reads in an SQLite shell: printable text.
        shown = store.db.conn.execute("SELECT path FROM images WHERE id = ?", (ids[0],)).fetchone()[0]
        assert shown == "/photos/bad\\xffname\\nwith newline.jpg"
        assert store.clear_failures([os.fsdecode(b"/photos/\xff.jpg")]) == 1


def test_a_full_disk_is_one_clear_error_and_loses_nothing_committed(tmp_path):
    with Store.open(tmp_path / "index") as store:
        store.upsert([image("/p/first.jpg", 1)])
        pages = store.db.conn.execute("PRAGMA page_count").fetchone()[0]
        # SQLite's own size cap fails writes exactly as a full disk does (SQLITE_FULL).
        store.db.conn.execute(f"PRAGMA max_page_count = {pages}")
        big = [NewImage(f"/p/{n}.jpg", 1, 1.0, "d" * 64, 1, 1, "PNG", [], np.ones(8, np.float32) * n)
               for n in range(2000)]
        with pytest.raises(NoSpace, match="no space left"):
            store.upsert(big)
        assert store.count() == 1 and store.get_by_path("/p/first.jpg") is not None
        assert not store.db.conn.in_transaction


def test_an_index_of_schema_8_never_gives_a_deleted_file_s_id_to_a_new_one(tmp_path):
    """Ids name images in requests made earlier (the page's review moves copies by id): the newest files'
    ids, freed by a move, once came back to the next files indexed, and a late request moved those."""
    index = index_at(tmp_path / "index", 8, [image(f"/p/{name}.jpg", n) for n, name in enumerate("abc")])
    with sqlite3.connect(index / DB_NAME) as raw:  # as that release wrote it: no highest id kept
        raw.execute("DELETE FROM meta WHERE key = 'last_image_id'")
    with Store.open(index) as store:
        assert store.get_meta("schema_version") == SCHEMA_VERSION
        ids = {path: store.get_by_path(path).id for path in ("/p/a.jpg", "/p/b.jpg", "/p/c.jpg")}
        store.delete([ids["/p/b.jpg"], ids["/p/c.jpg"]])
    with Store.open(index) as store:  # and after opening again
        [d] = store.upsert([image("/p/d.jpg", 4)])
        [again] = store.upsert([image("/p/a.jpg", 5)])  # a file indexed again keeps its id
        store.delete([d])
        [e] = store.upsert([image("/p/e.jpg", 6)])
    assert d > ids["/p/c.jpg"] and e > d and again == ids["/p/a.jpg"]


@pytest.mark.parametrize("kept", ["null", str(1 << 70), '"seven"'])
def test_a_damaged_highest_id_falls_back_to_the_ids_there(tmp_path, kept):
    index = index_at(tmp_path / "index", SCHEMA_VERSION, [image("/p/a.jpg", 1)])
    with sqlite3.connect(index / DB_NAME) as raw:
        raw.execute("UPDATE meta SET value = ? WHERE key = 'last_image_id'", (kept,))
    with Store.open(index) as store:
        [b] = store.upsert([image("/p/b.jpg", 2)])
        assert b == store.get_by_path("/p/a.jpg").id + 1

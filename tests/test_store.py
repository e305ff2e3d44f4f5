"""The SQLite store: the source of truth of a collection, exercised on real database files."""

from __future__ import annotations

import fcntl
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from lookalike.embedder.keypoints import Match
from lookalike.errors import CollectionError, IndexTooNew, InvalidOption, NotAnIndex
from lookalike.index.store import DB_NAME, SCHEMA_VERSION, NewImage, Store, WriterLock, match_labels
from tests.cli import error_lines, run


def image(path: str, seed: int = 0, labels=(), size: int = 100, dim: int = 8) -> NewImage:
    vector = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return NewImage(path=path, size=size, mtime=1_700_000_000.5, digest=f"{seed:064x}", width=640,
                    height=480, format="JPEG", labels=list(labels), vector=vector / np.linalg.norm(vector))


def label(name: str, probability: float, index: int = 0) -> dict:
    return {"name": name, "index": index, "probability": probability}


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path / "index") as s:
        yield s


def test_a_new_store_is_a_wal_database_with_the_current_schema(tmp_path):
    with Store.open(tmp_path / "index") as store:
        assert (tmp_path / "index" / DB_NAME).is_file()
        assert store.db.journal_mode == "wal"
        assert store.get_meta("schema_version") == SCHEMA_VERSION
        assert store.generation == 0 and store.count() == 0 and store.vector_size is None
        assert {"images", "failures", "meta", "images_fts"} <= set(store.db.table_names())


def test_rows_and_meta_survive_closing_and_reopening(tmp_path):
    fingerprint = {"handle": "https://tfhub.dev/x", "digest": "abc", "preprocessing": "v1", "dim": 8}
    cat = image("/photos/cat.jpg", seed=1, labels=[label("tabby, tabby cat", 0.8, 281)])
    with Store.open(tmp_path) as store:
        (cat_id,) = store.upsert([cat])
        store.set_meta("model", fingerprint)

    with Store.open(tmp_path, create=False) as store:
        row = store.get(cat_id)
        assert store.get_meta("model") == fingerprint
        assert store.vector_size == 8
    assert (row.path, row.size, row.mtime, row.digest) == (cat.path, cat.size, cat.mtime, cat.digest)
    assert (row.width, row.height, row.format) == (640, 480, "JPEG")
    assert row.labels == [label("tabby, tabby cat", 0.8, 281)]
    assert (row.top_label, row.top_probability) == ("tabby, tabby cat", 0.8)
    np.testing.assert_array_equal(row.vector, cat.vector)


def test_opening_refuses_what_is_not_a_lookalike_index_or_is_newer_than_this_program(tmp_path):
    with pytest.raises(NotAnIndex, match="no lookalike index"):
        Store.open(tmp_path / "nowhere", create=False)

    (tmp_path / "garbage").mkdir()
    (tmp_path / "garbage" / DB_NAME).write_bytes(b"this is not SQLite" * 100)
    with pytest.raises(NotAnIndex, match="cannot be opened"):
        Store.open(tmp_path / "garbage")

    with Store.open(tmp_path / "newer") as store:
        store.set_meta("schema_version", SCHEMA_VERSION + 1)
    with pytest.raises(IndexTooNew, match=f"newer lookalike \\(index schema {SCHEMA_VERSION + 1}; .*upgrade"):
        Store.open(tmp_path / "newer")


def test_upserting_a_batch_returns_ids_and_clears_their_failures(store):
    store.record_failures([("/p/a.jpg", "truncated or corrupt image data"), ("/p/b.jpg", "not an image")])
    assert store.failure_count() == 2

    ids = store.upsert([image("/p/a.jpg", 1), image("/p/c.jpg", 2)])

    assert [store.get(i).path for i in ids] == ["/p/a.jpg", "/p/c.jpg"]
    assert [(f.path, f.reason) for f in store.failures()] == [("/p/b.jpg", "not an image")]
    assert store.count() == 2 and store.generation == 1


def test_reindexing_a_path_keeps_its_id_and_replaces_its_data(store):
    (first,) = store.upsert([image("/p/a.jpg", seed=1, labels=[label("tabby", 0.9)])])
    (again,) = store.upsert([image("/p/a.jpg", seed=2, labels=[label("golden retriever", 0.7)])])

    row = store.get(again)
    assert again == first and store.count() == 1
    assert row.top_label == "golden retriever" and row.digest == f"{2:064x}"
    assert store.search_text("tabby") == [] and len(store.search_text("golden")) == 1
    assert store.generation == 2


def test_a_batch_is_all_or_nothing(store):
    store.upsert([image("/p/a.jpg")])
    with pytest.raises(CollectionError, match="mixes vector sizes 4, 8"):
        store.upsert([image("/p/b.jpg", dim=8), image("/p/c.jpg", dim=4)])
    with pytest.raises(CollectionError, match="vectors of size 4 offered to an index of vector size 8"):
        store.upsert([image("/p/b.jpg", dim=4)])
    assert sorted(store.file_states()) == ["/p/a.jpg"] and store.generation == 1


def test_touching_stats_does_not_change_vectors_or_generation(store):
    store.upsert([image("/p/a.jpg")])
    store.update_stats([("/p/a.jpg", 123, 42.0, 5, 77)])
    state = store.file_states()["/p/a.jpg"]
    assert (state.size, state.mtime, state.device, state.inode) == (123, 42.0, 5, 77)
    assert store.generation == 1


def test_delete_removes_rows_and_their_text_entries(store):
    a, b = store.upsert([image("/p/a.jpg", labels=[label("tabby", 0.5)]), image("/p/b.jpg")])
    assert store.delete([a, 999]) == 1
    assert store.get(a) is None and store.get_by_path("/p/a.jpg") is None
    assert store.search_text("tabby") == []
    assert store.count() == 1 and store.generation == 2
    assert store.delete([999]) == 0 and store.generation == 2


def test_lookups_by_id_path_and_many_ids(store):
    ids = store.upsert([image(f"/p/{n}.jpg", n) for n in range(5)])
    assert store.get_by_path("/p/3.jpg").id == ids[3]
    rows = store.get_many([ids[4], 12345, ids[1]])
    assert [r.path for r in rows] == ["/p/4.jpg", "/p/1.jpg"] and rows[0].vector is None
    assert store.get(ids[0], vector=False).vector is None


def test_shapes_and_greyscale_traits_come_as_tables_indexed_by_id(store):
    """What the duplicates' second looks test over whole neighbour lists at once."""
    from dataclasses import replace

    from lookalike.embedder.traits import Traits

    def traits(grey: bool) -> Traits:
        return Traits(640, 480, grey, 90, b"" if grey else bytes(16), 0.0 if grey else 0.3)

    grey, colour, unknown = store.upsert([replace(image("/p/grey.jpg", 1), traits=traits(True)),
                                          replace(image("/p/colour.jpg", 2), traits=traits(False)),
                                          image("/p/old.jpg", 3)])
    flags = store.greyscale()
    assert (flags[grey], flags[colour], flags[unknown]) == (1, 0, -1)
    assert store.shapes()[colour].tolist() == [640, 480] and len(flags) == len(store.shapes())


def test_vectors_come_back_in_id_order_in_chunks(store):
    images = [image(f"/p/{n}.jpg", n) for n in range(7)]
    ids = store.upsert(images)
    chunks = list(store.iter_vectors(chunk=3))
    assert [len(c_ids) for c_ids, _ in chunks] == [3, 3, 1]
    all_ids = np.concatenate([c for c, _ in chunks])
    all_vectors = np.concatenate([v for _, v in chunks])
    assert all_ids.tolist() == ids
    np.testing.assert_array_equal(all_vectors, np.stack([i.vector for i in images]))
    assert store.id_checksum() == (7, sum(ids))


def test_text_search_ranks_by_the_probability_of_the_matching_label(store):
    store.upsert([
        image("/p/sofa.jpg", 1, [label("studio couch", 0.6), label("tabby, tabby cat", 0.3)]),
        image("/p/cat.jpg", 2, [label("tabby, tabby cat", 0.9)]),
        image("/p/tabby-stripes/pattern.png", 3, [label("velvet", 0.5)]),
        image("/p/tiger.jpg", 4, [label("tiger cat", 0.7)]),
    ])

    hits = store.search_text("tabby")
    assert [(h.row.path, h.label, h.probability) for h in hits] == [
        ("/p/cat.jpg", "tabby, tabby cat", 0.9),
        ("/p/sofa.jpg", "tabby, tabby cat", 0.3),
        ("/p/tabby-stripes/pattern.png", None, 0.0),  # matched by its path only
    ]
    assert [h.row.path for h in store.search_text("TAB CAT")] == ["/p/cat.jpg", "/p/sofa.jpg"]
    assert [h.row.path for h in store.search_text("cat", limit=2)] == ["/p/cat.jpg", "/p/tiger.jpg"]
    assert store.search_text("' OR 1=1 --") == []  # punctuation is never FTS syntax
    assert store.search_text("!!!") == []


def test_label_matching_uses_word_prefixes():
    labels = [label("tiger cat", 0.2), label("tabby, tabby cat", 0.7)]
    assert match_labels(labels, "cat") == ("tabby, tabby cat", 0.7)
    assert match_labels(labels, "tig") == ("tiger cat", 0.2)
    assert match_labels(labels, "abby") is None


def test_a_second_writer_gets_a_clear_error(tmp_path):
    Store.open(tmp_path).close()
    with WriterLock(tmp_path) as first:
        first.acquire()
        with pytest.raises(CollectionError, match=r"is being written by pid \d+.*try again"):
            WriterLock(tmp_path).acquire(wait=0.1)
    WriterLock(tmp_path).acquire()  # released on exit: free again


def test_a_writer_whose_pid_is_not_written_is_another_process(tmp_path):
    Store.open(tmp_path).close()
    with open(tmp_path / "write.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as flock(1) holds it, writing no pid
        with pytest.raises(CollectionError, match=r"is being written by another process \(lock"):
            WriterLock(tmp_path).acquire()


def test_a_writer_found_before_it_wrote_its_pid_is_named_by_its_pid(tmp_path):
    """Two runs at once: one finds the lock taken in the moment before its holder writes its pid."""
    Store.open(tmp_path).close()
    with open(tmp_path / "write.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        writing = threading.Timer(0.1, lambda: (held.write("4242"), held.flush()))
        writing.start()
        try:
            with pytest.raises(CollectionError, match=r"is being written by pid 4242 "):
                WriterLock(tmp_path).acquire()
        finally:
            writing.join()


def test_a_writer_in_another_process_blocks_us_until_it_exits(tmp_path):
    Store.open(tmp_path).close()
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import time\nfrom lookalike.index.store import Store\n"
         f"lock = Store.open({str(tmp_path)!r}).writer()\nprint('locked', flush=True)\ntime.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with Store.open(tmp_path) as store, pytest.raises(CollectionError, match=f"pid {holder.pid}"):
            store.writer(wait=0.2)
    finally:
        holder.kill()
        holder.wait()
    with Store.open(tmp_path) as store:  # the kernel released the dead process's lock
        store.writer().release()


def test_the_lock_names_its_live_holder_and_no_dead_one(tmp_path):
    """Readers ask without taking the lock: a released lock, or one a killed writer left its pid in, has
    no live holder."""
    Store.open(tmp_path).close()
    assert WriterLock.live_holder(tmp_path) is None
    with Store.open(tmp_path) as store, store.writer():
        assert WriterLock.live_holder(tmp_path) == os.getpid()
    assert WriterLock.live_holder(tmp_path) is None  # released: emptied
    with Store.open(tmp_path) as store, store.writer():  # a writer killed with SIGKILL leaves it as it is
        left = (tmp_path / "write.lock").read_text()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    dead_pid = gone.stdout.strip()
    (tmp_path / "write.lock").write_text(left.replace(str(os.getpid()), dead_pid, 1))
    assert WriterLock.live_holder(tmp_path) is None
    (tmp_path / "write.lock").write_text(dead_pid)  # as a lock from before pid spaces were written
    assert WriterLock.live_holder(tmp_path) is None
    (tmp_path / "write.lock").write_text(f"{dead_pid} another-host/pid:[4026531836]")
    assert WriterLock.live_holder(tmp_path) == int(dead_pid)  # another machine's pid: cannot tell, live
    killed = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    pid, space, _ = left.split(" ")
    (tmp_path / "write.lock").write_text(f"{killed.pid} {space} {process_start(killed.pid)}")
    assert WriterLock.live_holder(tmp_path) == killed.pid
    killed.kill()  # SIGKILL, and not reaped yet: a zombie answers kill(pid, 0) but is gone
    deadline = time.monotonic() + 10
    while WriterLock.live_holder(tmp_path) is not None:
        assert time.monotonic() < deadline, "a killed, unreaped writer still counts as live"
        time.sleep(0.05)
    killed.wait()


def process_start(pid: int) -> str:
    """``/proc/PID/stat``'s 22nd field: when the process started, in clock ticks after boot."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        return f.read().rpartition(b")")[2].split()[19].decode()


def test_a_dead_holders_pid_reused_by_another_live_process_is_no_live_holder(tmp_path):
    """A writer killed by SIGKILL leaves its pid in the lock; once the pid goes to an unrelated process
    (a long-lived box, a container's small pid range) it answered kill(pid, 0), and readers served a
    FAISS copy behind the store for STALE_AFTER_S on the word of a process that never wrote anything."""
    writer = subprocess.run(
        [sys.executable, "-c", "import sys, time\nfrom lookalike.index.store import Store\n"
         "store = Store.open(sys.argv[1])\nstore.writer()\nprint(open(sys.argv[1] + '/write.lock').read())\n"
         "import os; os.kill(os.getpid(), 9)", str(tmp_path)],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert writer.returncode == -9, writer.stderr
    left = (tmp_path / "write.lock").read_text()
    assert left == writer.stdout.strip()
    pid, space, started = left.split(" ")
    with Store.open(tmp_path) as store:  # the kernel released its lock: taken at once
        store.writer().release()
        (tmp_path / "write.lock").write_text(left)  # as the killed writer left it

    unrelated = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert process_start(unrelated.pid) != started
        (tmp_path / "write.lock").write_text(f"{unrelated.pid} {space} {started}")  # its pid, reused
        assert WriterLock.live_holder(tmp_path) is None
        (tmp_path / "write.lock").write_text(f"{unrelated.pid} {space}")  # written before start times
        assert WriterLock.live_holder(tmp_path) == unrelated.pid  # cannot tell: live, as before
    finally:
        unrelated.kill()
        unrelated.wait()


def test_waiting_for_the_writer_lock_succeeds_once_it_is_released(tmp_path):
    first = WriterLock(tmp_path)
    first.acquire()
    threading.Timer(0.2, first.release).start()
    started = time.monotonic()
    with WriterLock(tmp_path) as second:
        second.acquire(wait=5)
        assert second.held and 0.1 < time.monotonic() - started < 5


def test_readers_keep_reading_while_a_write_transaction_is_open(tmp_path):
    with Store.open(tmp_path) as writer, Store.open(tmp_path, create=False) as reader:
        writer.upsert([image("/p/a.jpg")])
        with writer._write() as conn:  # a batch in progress, not yet committed
            conn.execute("UPDATE images SET size = 1")
            assert reader.count() == 1
            assert reader.get_by_path("/p/a.jpg").size == 100  # the last committed state
        assert reader.get_by_path("/p/a.jpg").size == 1


def killed(index: Path, script: str) -> None:
    """Run ``script`` in a process of its own with ``s``, the store of ``index``, open; it must end by
    SIGKILL, as a crash does."""
    preamble = ("import os, numpy as np\nfrom lookalike.index.store import Store, NewImage\n"
                f"s = Store.open({str(index)!r})\n")
    assert subprocess.run([sys.executable, "-c", preamble + script]).returncode == -9


def test_a_killed_batch_leaves_nothing_behind(tmp_path):
    Store.open(tmp_path).close()
    killed(tmp_path, (
        "v = np.ones(8, np.float32)\n"
        "s.upsert([NewImage('/p/committed.jpg', 1, 1.0, 'd', 1, 1, 'PNG', [], v)])\n"
        "s.db.conn.execute('BEGIN IMMEDIATE')\n"
        "s.db.conn.execute(\"INSERT INTO failures VALUES (x'00', '/p/half.jpg', 'x', 'y')\")\n"
        "os.kill(os.getpid(), 9)\n"
    ))
    with Store.open(tmp_path) as store:
        assert list(store.file_states()) == ["/p/committed.jpg"] and store.failure_count() == 0
        assert store.db.conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_failures_are_listed_with_their_reason(store):
    store.record_failures([("/p/a.jpg", "first reason")])
    store.record_failures([("/p/a.jpg", "second reason"), ("/p/b.jpg", "other")])
    failures = {f.path: f for f in store.failures()}
    assert failures["/p/a.jpg"].reason == "second reason" and len(failures) == 2
    assert len(store.failures(limit=1)) == 1


def test_the_schema_itself_refuses_a_second_row_for_a_path(store):
    store.upsert([image("/p/a.jpg")])
    with pytest.raises(sqlite3.IntegrityError):
        store.db.conn.execute(
            "INSERT INTO images (path_bytes, path, size, mtime, digest, indexed_at, labels, vector) "
            "SELECT path_bytes, path, size, mtime, digest, indexed_at, labels, vector FROM images")


# -- the edited pictures' vectors the duplicates' second looks remember ------------------------------


def digest(seed: int) -> str:
    """The content digest ``image(path, seed)`` gives its row."""
    return f"{seed:064x}"


def test_edited_pictures_vectors_come_back_exactly_for_the_content_they_were_made_from(store):
    a, b = store.upsert([image("/p/a.jpg", 1), image("/p/b.jpg", 2)])
    rng = np.random.default_rng(0)
    turned, grey = (rng.standard_normal(shape).astype(np.float32) for shape in [(2, 8), (1, 8)])
    assert store.remember_edited_vectors({
        (a, "turned"): (digest(1), turned), (a, "grey"): (digest(1), grey),
        (b, "grey"): (digest(9), grey),  # made from content b no longer has: not written
    })
    found = store.edited_vectors([(a, "turned"), (a, "grey"), (b, "grey"), (a, "unframed")])
    assert set(found) == {(a, "turned"), (a, "grey")}
    np.testing.assert_array_equal(found[a, "turned"], turned)  # float32, bit for bit, as many as written
    np.testing.assert_array_equal(found[a, "grey"], grey)
    assert found[a, "turned"].dtype == np.float32 and store.generation == 1  # the images' vectors unchanged


def test_a_remembered_vector_of_other_content_is_ignored_and_replaced(store):
    (a,) = store.upsert([image("/p/a.jpg", 1)])
    # Whatever put it there (a copied index, a hand-made entry): the digest says another file's.
    store.db.conn.execute("INSERT INTO edited_vectors VALUES (?, 'grey', ?, ?)",
                          (a, digest(9), np.zeros(8, "<f4").tobytes()))
    assert store.edited_vectors([(a, "grey")]) == {}
    assert store.remember_edited_vectors({(a, "grey"): (digest(1), np.ones((1, 8), np.float32))})
    np.testing.assert_array_equal(store.edited_vectors([(a, "grey")])[a, "grey"], np.ones((1, 8)))


def test_an_image_indexed_again_with_other_content_or_removed_loses_its_remembered_vectors(store):
    a, b = store.upsert([image("/p/a.jpg", 1), image("/p/b.jpg", 2)])
    vector = np.ones((1, 8), np.float32)
    store.remember_edited_vectors({(a, "grey"): (digest(1), vector), (b, "grey"): (digest(2), vector)})
    store.upsert([image("/p/a.jpg", 1)])  # indexed again with the same content: still good
    assert set(store.edited_vectors([(a, "grey"), (b, "grey")])) == {(a, "grey"), (b, "grey")}
    store.upsert([image("/p/a.jpg", 3)])  # other content, the same row id
    store.delete([b])
    assert store.db.conn.execute("SELECT count(*) FROM edited_vectors").fetchone() == (0,)


def test_keypoint_matches_are_remembered_by_pair_side_and_code_version(store):
    """How two files' keypoints matched, read back only for the same images, the same side mirrored and
    the same matching code; an image indexed again with other content, or gone, takes its pairs along."""
    a, b, c = store.upsert([image("/p/a.jpg", 1), image("/p/b.jpg", 2), image("/p/c.jpg", 3)])
    fields = list(Match(120, 130, 500, 480, 0.02, 0.97, None, 0.1, 1.0, 0.01, 0.0, 0.004, 0.62))
    assert len(fields) == len(Match._fields)  # every field
    assert store.remember_keypoint_matches("v1", {
        (a, b, False): (digest(1), digest(2), fields),
        (a, b, True): (digest(1), digest(2), [3, 40, 500, 480]),
        (a, c, False): (digest(1), digest(9), fields),  # c holds other content by now: not written
    })
    assert store.keypoint_matches("v1", [(a, b, False), (a, b, True), (b, a, False), (a, c, False)]) == {
        (a, b, False): fields, (a, b, True): [3, 40, 500, 480]}
    assert store.keypoint_matches("v2", [(a, b, False)]) == {}  # matched by other code: measured again
    store.upsert([image("/p/a.jpg", 1)])  # indexed again with the same content: still good
    assert len(store.keypoint_matches("v1", [(a, b, False), (a, b, True)])) == 2
    store.upsert([image("/p/b.jpg", 4)])  # other content, the same row id
    assert store.keypoint_matches("v1", [(a, b, False), (a, b, True)]) == {}
    store.remember_keypoint_matches("v1", {(c, a, False): (digest(3), digest(1), fields)})
    store.delete([a])
    assert store.db.conn.execute("SELECT count(*) FROM keypoint_matches").fetchone() == (0,)


def test_forgetting_what_was_remembered_leaves_the_images_alone(store):
    """What a benchmark timing the second looks does first: the next run embeds and matches them all
    again."""
    a, b = store.upsert([image("/p/a.jpg", 1), image("/p/b.jpg", 2)])
    vector = np.ones((1, 8), np.float32)
    store.remember_edited_vectors({(a, "grey"): (digest(1), vector), (b, "turned"): (digest(2), vector)})
    store.remember_keypoint_matches("v1", {(a, b, False): (digest(1), digest(2), [40, 50, 300, 300])})
    generation = store.generation
    assert store.forget_remembered() == 3
    assert store.edited_vectors([(a, "grey"), (b, "turned")]) == {}
    assert store.keypoint_matches("v1", [(a, b, False)]) == {}
    assert store.count() == 2 and store.generation == generation


def test_remembering_never_waits_for_a_writer_and_gives_up_on_an_index_it_cannot_write(tmp_path):
    with Store.open(tmp_path) as store:
        (a,) = store.upsert([image("/p/a.jpg", 1)])
        entry = {(a, "grey"): (digest(1), np.ones((1, 8), np.float32))}
        with WriterLock(tmp_path) as other:  # another writer, as another process's would be
            other.acquire()
            started = time.monotonic()
            assert not store.remember_edited_vectors(entry)
            assert time.monotonic() - started < 1
        store.db.conn.execute("PRAGMA query_only = ON")  # SQLite refuses every write, as on a read-only file
        assert not store.remember_edited_vectors(entry)
        store.db.conn.execute("PRAGMA query_only = OFF")
        pages = store.db.conn.execute("PRAGMA page_count").fetchone()[0]
        store.db.conn.execute(f"PRAGMA max_page_count = {pages}")  # a full disk, as SQLite sees one
        many = {(a, f"scaled {n}x1"): (digest(1), np.ones((1, 8), np.float32)) for n in range(2000)}
        assert not store.remember_edited_vectors(many)
        assert not store.db.conn.in_transaction and store.edited_vectors(many) == {}
        matches = {(a, a, True): (digest(1), digest(1), [1] * 2000)}  # the same full disk for a match
        assert not store.remember_keypoint_matches("v1", matches)
        assert not store.db.conn.in_transaction and store.keypoint_matches("v1", matches) == {}
        assert store.remember_edited_vectors(entry)  # and the lock is free again
        assert set(store.edited_vectors(entry)) == set(entry)


def test_remembering_killed_half_way_leaves_nothing_of_it(tmp_path):
    Store.open(tmp_path).close()
    killed(tmp_path, (
        "(a,) = s.upsert([NewImage('/p/a.jpg', 1, 1.0, 'd', 1, 1, 'PNG', [], np.ones(8, np.float32))])\n"
        "s.remember_edited_vectors({(a, 'grey'): ('d', np.ones((1, 8), np.float32))})\n"
        "written = []\n"
        "def killed_at_the_second(sql):\n"
        "    written.append(sql.startswith('INSERT OR REPLACE INTO edited_vectors'))\n"
        "    if sum(written) == 2:\n"
        "        os.kill(os.getpid(), 9)\n"
        "s.db.conn.set_trace_callback(killed_at_the_second)\n"
        "s.remember_edited_vectors({(a, 'turned'): ('d', np.ones((2, 8), np.float32)),\n"
        "                           (a, 'unframed'): ('d', np.ones((1, 8), np.float32))})\n"
    ))
    with Store.open(tmp_path) as store:
        (a,) = store.file_states().values()
        keys = [(a.id, "grey"), (a.id, "turned"), (a.id, "unframed")]
        assert set(store.edited_vectors(keys)) == {(a.id, "grey")}
        assert store.db.conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_an_index_that_cannot_be_written_is_read_and_refuses_writers_and_upgrades_in_one_line(
        tmp_path, monkeypatch):
    """As root every folder can be written, so here the check says it cannot (a real read-only mount:
    tests/test_hostile_mounts.py); SQLite opens the index with ``mode=ro``."""
    with Store.open(tmp_path / "index") as store:
        (a,) = store.upsert([image("/p/a.jpg", 1)])
    with Store.open(tmp_path / "older") as store:
        store.set_meta("schema_version", SCHEMA_VERSION - 1)
    monkeypatch.setattr("lookalike.index.store._unwritable", lambda directory, path: "permission denied")

    with Store.open(tmp_path / "index", create=False) as store:
        assert store.read_only == "permission denied" and store.get(a).path == "/p/a.jpg"
        with pytest.raises(CollectionError, match=r"can be read but not written \(permission denied\)$"):
            store.writer()
        assert not store.remember_edited_vectors({(a, "grey"): (digest(1), np.ones((1, 8), np.float32))})
    older = re.escape(f"older lookalike (index schema {SCHEMA_VERSION - 1}) and cannot be written "
                      "(permission denied) to upgrade it: open it once where it can be written")
    with pytest.raises(CollectionError, match=f"{older}$"):
        Store.open(tmp_path / "older")
    with pytest.raises(CollectionError, match=r"cannot create an index in .*new: permission denied$"):
        Store.open(tmp_path / "new")


def test_an_id_beyond_what_sqlite_can_hold_is_no_image(store):
    store.upsert([image("/p/a.jpg", 1)])
    assert store.get(10**20) is None and store.get(-(10**20)) is None


@pytest.mark.parametrize("wait", [float("nan"), -1, -0.5, True, "5"])
def test_a_wait_that_is_no_number_of_seconds_is_refused_before_the_lock_is_tried(tmp_path, wait):
    """NaN never reaches a deadline: a writer waiting NaN seconds for a busy index spun at full CPU
    forever (``lookalike index --wait nan``); it is refused at once, as the other arguments are."""
    with Store.open(tmp_path) as store:
        with pytest.raises(InvalidOption, match="the wait must be a number of seconds, 0 or more"):
            store.writer(wait=wait)
        with store.writer(wait=float("inf")):  # as long as it takes: asked for, and free at once here
            pass


def test_index_with_a_nan_wait_is_a_usage_error(tmp_path, sample_photos):
    result = run("index", sample_photos[0].parent, "--index", tmp_path / "index", "--wait", "nan")
    assert result.exit_code == 2
    assert error_lines(result) == ["error: the wait must be a number of seconds, 0 or more, not nan"]

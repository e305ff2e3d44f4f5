"""Second looks remembered: the vectors of the edited pictures a duplicates run embeds (a picture turned,
shrunk, greyed, cropped to its content) and how the files' keypoints matched are kept in the index, so
the next run (after a review, with ``--move-to``; the review page reloading) embeds none of them again,
reads no file for its keypoints, and finds exactly the same clusters. Real SQLite files, real images,
the tiny test model (see test_collection_duplicates.py)."""

from __future__ import annotations

import errno
import os
import sqlite3  # noqa: F401  before TensorFlow, whose bundled SQLite lacks FTS5
import time
from pathlib import Path

import pytest
from PIL import Image

import lookalike
from lookalike.embedder import keypoints
from lookalike.embedder.traits import TRAITS_VERSION
from lookalike.index.review import recentre
from lookalike.index.store import BUSY_TIMEOUT_S, WriterLock
from tests.duplicate_photos import THRESHOLD, second_look_photos, tree_digest

FOUND = {  # keeper -> its copy, each found by one second look
    "cameraman.jpg": ["cameraman-turned.jpg"],
    "cat.jpg": ["cat-tiny.jpg"],
    "espresso.jpg": ["espresso-grey.jpg"],
    "rocket.jpg": ["rocket-bordered.jpg"],
}


@pytest.fixture
def photos(tmp_path) -> Path:
    return second_look_photos(tmp_path / "photos")


@pytest.fixture
def collection(tmp_path, tf1_module, photos):
    col = lookalike.open(tmp_path / "index", model=str(tf1_module))
    col.add([photos])
    yield col
    col.close()


def named(clusters) -> dict[str, list[str]]:
    return {Path(c.keeper.path).name: [Path(m.path).name for m in c.copies] for c in clusters}


def passes(col, monkeypatch) -> list[int]:
    """Every forward pass ``col``'s model makes from now on, by how many pictures it embeds."""
    calls: list[int] = []
    embed = col.embedder.embed_pixels

    def counted(pixels):
        calls.append(len(pixels))
        return embed(pixels)

    monkeypatch.setattr(col.embedder, "embed_pixels", counted)
    return calls


def scaled_to(path: Path) -> str:
    """The edit's name for a picture shrunk to ``path``'s size."""
    with Image.open(path) as image:
        return "scaled {}x{}".format(*image.size)


def remembered(col) -> set[tuple[str, str]]:
    """What the index remembers, as (file name, edit)."""
    return {(Path(path).name, edit) for path, edit in col.store.db.conn.execute(
        "SELECT i.path, e.edit FROM edited_vectors AS e JOIN images AS i ON i.id = e.image_id")}


def test_a_second_run_embeds_no_edited_picture_again_and_finds_the_same_clusters(
        collection, photos, tmp_path, monkeypatch):
    embedded = passes(collection, monkeypatch)
    first = collection.duplicates(THRESHOLD)
    assert named(first) == FOUND
    assert sum(embedded) == 5  # a cameraman turned both ways, the cat shrunk, the espresso greyed, a rocket
    assert remembered(collection) == {  # cropped
        ("cameraman-turned.jpg", "turned"), ("cat.jpg", scaled_to(photos / "cat-tiny.jpg")),
        ("espresso.jpg", "grey"), ("rocket-bordered.jpg", f"unframed {TRAITS_VERSION}")}
    embedded.clear()
    assert collection.duplicates(THRESHOLD) == first  # every similarity to the last bit
    assert embedded == []
    with lookalike.open(tmp_path / "index") as again:  # another process, the next day
        assert again.duplicates(THRESHOLD) == first
        assert again._embedder is None  # the model not even loaded


def test_the_review_page_reloading_embeds_nothing_again(collection, photos, monkeypatch):
    keeper, copy = (collection.get_by_path(photos / name).id
                    for name in ("cameraman.jpg", "cameraman-turned.jpg"))
    review = recentre(collection, keeper, [copy], THRESHOLD)
    assert review.below == () and review.unlike == ()  # the turned look brought the copy to the threshold
    embedded = passes(collection, monkeypatch)
    assert recentre(collection, keeper, [copy], THRESHOLD) == review
    assert embedded == []


def test_a_file_indexed_again_with_other_content_has_its_edit_embedded_again(collection, photos, monkeypatch):
    first = collection.duplicates(THRESHOLD)
    with Image.open(photos / "espresso.jpg") as image:
        image.load()
    image.save(photos / "espresso.jpg", quality=80)  # edited in place
    assert collection.add([photos]).updated == 1
    assert ("espresso.jpg", "grey") not in remembered(collection)  # gone with the content it was made from
    embedded = passes(collection, monkeypatch)
    assert named(collection.duplicates(THRESHOLD)) == named(first)
    assert embedded == [1]  # the new espresso greyed, and nothing else
    assert ("espresso.jpg", "grey") in remembered(collection)


def test_a_file_changed_or_gone_since_indexing_is_read_as_it_is_now(collection, photos, monkeypatch):
    """Not indexed again, the row still has the old digest: the file's size, mtime and inode say it
    changed (what ``index`` goes by), so the look reads it as it is now and remembers nothing from it."""
    first = collection.duplicates(THRESHOLD)
    bordered = photos / "rocket-bordered.jpg"
    os.utime(bordered, (1_000_000_000, 1_000_000_000))
    embedded = passes(collection, monkeypatch)
    assert collection.duplicates(THRESHOLD) == first
    assert embedded == [1]
    bordered.unlink()  # gone: the frame look cannot crop it, and assumes nothing, as without the memory
    assert "rocket.jpg" not in named(collection.duplicates(THRESHOLD))


def described(monkeypatch) -> list[str]:
    """The file names whose keypoints are found from now on (each file read and described)."""
    names: list[str] = []
    find = keypoints._file_keypoints

    def counted(key):
        names.append(Path(key[0]).name)
        return find(key)

    monkeypatch.setattr(keypoints, "_file_keypoints", counted)
    return names


def matched(col) -> set[tuple[str, str]]:
    """The pairs of files whose keypoint matches the index remembers, by name."""
    return {(Path(a).name, Path(b).name) for a, b in col.store.db.conn.execute(
        "SELECT a.path, b.path FROM keypoint_matches AS m JOIN images AS a ON a.id = m.image_a "
        "JOIN images AS b ON b.id = m.image_b")}


def test_a_second_run_reads_no_file_for_its_keypoints(collection, photos, tmp_path, monkeypatch):
    files = described(monkeypatch)
    first = collection.duplicates(THRESHOLD)
    assert files and ("cameraman.jpg", "cameraman-turned.jpg") in matched(collection) | {
        (b, a) for a, b in matched(collection)}
    files.clear()
    assert collection.duplicates(THRESHOLD) == first
    assert files == []
    with lookalike.open(tmp_path / "index") as again:  # another process, the next day
        assert again.duplicates(THRESHOLD) == first
    assert files == []


def test_keypoints_are_matched_again_for_a_file_changed_since_and_after_the_matching_code_changed(
        collection, photos, monkeypatch):
    """A file whose size, mtime or inode changed since indexing is read as it is now, and what it gives
    is not kept; other matching code (an upgrade) measures every pair again rather than trust old ones."""
    first = collection.duplicates(THRESHOLD)
    pairs_kept = matched(collection)
    os.utime(photos / "rocket-bordered.jpg", (1_000_000_000, 1_000_000_000))
    files = described(monkeypatch)
    assert collection.duplicates(THRESHOLD) == first
    partners = {b for a, b in pairs_kept if a == "rocket-bordered.jpg"} | {
        a for a, b in pairs_kept if b == "rocket-bordered.jpg"}
    assert "rocket-bordered.jpg" in files and set(files) <= {"rocket-bordered.jpg", *partners}
    assert matched(collection) == pairs_kept
    files.clear()
    monkeypatch.setattr(keypoints, "matching_code", lambda decided=None: "an upgrade")
    assert collection.duplicates(THRESHOLD) == first
    assert {"cameraman.jpg", "cat.jpg", "espresso.jpg", "rocket.jpg"} <= set(files)


def test_matching_code_whose_source_cannot_be_read_trusts_no_match_kept(monkeypatch):
    assert keypoints.matching_code() == keypoints.matching_code()  # the same code, the same name
    keypoints.matching_code.cache_clear()
    monkeypatch.setattr(keypoints, "__file__", None)  # a frozen build: no source file to read
    try:
        assert keypoints.matching_code().startswith("unknown ")
    finally:
        keypoints.matching_code.cache_clear()


def test_a_file_indexed_again_with_other_content_forgets_its_matches(collection, photos):
    collection.duplicates(THRESHOLD)
    assert any("espresso.jpg" in pair for pair in matched(collection))
    with Image.open(photos / "espresso.jpg") as image:
        image.load()
    image.save(photos / "espresso.jpg", quality=80)  # edited in place
    assert collection.add([photos]).updated == 1
    assert not any("espresso.jpg" in pair for pair in matched(collection))


def test_moved_copies_take_their_remembered_vectors_with_them(collection, photos, tmp_path):
    shrunk = scaled_to(photos / "cat-tiny.jpg")
    collection.move_duplicates(collection.duplicates(THRESHOLD), tmp_path / "quarantine")
    # The keepers' stay; the turned cameraman's and the bordered rocket's went with their rows.
    assert remembered(collection) == {("cat.jpg", shrunk), ("espresso.jpg", "grey")}
    orphans = "SELECT count(*) FROM edited_vectors WHERE image_id NOT IN (SELECT id FROM images)"
    assert collection.store.db.conn.execute(orphans).fetchone() == (0,)


def test_while_another_process_writes_a_run_waits_for_nothing_and_remembers_nothing(collection):
    with WriterLock(collection.directory) as other:  # a flock on another descriptor, as another process's
        other.acquire()
        started = time.monotonic()
        clusters = collection.duplicates(THRESHOLD)
        assert time.monotonic() - started < BUSY_TIMEOUT_S
        assert remembered(collection) == set() and matched(collection) == set()
    assert named(clusters) == FOUND
    assert collection.duplicates(THRESHOLD) == clusters  # once free: the same clusters, now remembered
    assert len(remembered(collection)) == 4


@pytest.mark.parametrize("refusal", ["read-only database", "read-only mount"])
def test_an_index_that_cannot_be_written_still_gives_the_clusters(collection, monkeypatch, refusal):
    conn = collection.store.db.conn
    if refusal == "read-only database":
        conn.execute("PRAGMA query_only = ON")  # SQLite refuses every write (SQLITE_READONLY)
    else:
        def read_only(self, wait: float = 0.0) -> None:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self.path))

        monkeypatch.setattr(WriterLock, "acquire", read_only)  # not even the lock file opens for writing
    clusters = collection.duplicates(THRESHOLD)
    assert named(clusters) == FOUND and remembered(collection) == set() and matched(collection) == set()
    assert not conn.in_transaction
    conn.execute("PRAGMA query_only = OFF")
    monkeypatch.undo()
    assert collection.duplicates(THRESHOLD) == clusters


def test_against_another_index_only_my_pictures_edits_are_remembered_and_theirs_is_untouched(
        tmp_path, tf1_module, photos, monkeypatch):
    """Two sets: my copies against an archive of the originals. The turned and the framed pictures are
    mine; the shrunk and the greyed ones (the larger, the colour one) are the archive's, which is only
    read: looked at again each run."""
    mine_folder = tmp_path / "mine"
    mine_folder.mkdir()
    for copy in [c for copies in FOUND.values() for c in copies]:
        (photos / copy).rename(mine_folder / copy)
    with lookalike.open(tmp_path / "archive", model=str(tf1_module)) as archive:
        archive.add([photos])
    untouched = tree_digest(tmp_path / "archive")
    with lookalike.open(tmp_path / "mine-index", model=str(tf1_module)) as mine:
        mine.add([mine_folder])
        first = mine.duplicates(THRESHOLD, against=tmp_path / "archive")
        assert {Path(c.keeper.path).name: [Path(m.path).name for m in c.copies] for c in first} == FOUND
        assert remembered(mine) == {("cameraman-turned.jpg", "turned"),
                                    ("rocket-bordered.jpg", f"unframed {TRAITS_VERSION}")}
        embedded = passes(mine, monkeypatch)
        assert mine.duplicates(THRESHOLD, against=tmp_path / "archive") == first
        assert embedded == [1, 1]  # the archive's cat shrunk and espresso greyed, again
    assert tree_digest(tmp_path / "archive") == untouched

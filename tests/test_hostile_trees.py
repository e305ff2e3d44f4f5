"""Hostile photo folders against the library: nothing a user had is lost, every skip is accounted for.

Each test is a reproduction from issue 8 or from our own attack on the indexer: a real folder tree,
a real index (SQLite + FAISS) and the tiny test model, then the operation a user would run.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3  # noqa: F401  before TensorFlow, whose bundled SQLite lacks FTS5
import threading
import time
from pathlib import Path

import pytest

import lookalike
from lookalike.cli import output
from lookalike.errors import LookalikeError
from lookalike.index.store import WriterLock
from tests.photos import DATA, blocks

THRESHOLD = 0.99


def digests(root: Path) -> dict[str, str]:
    """Every regular file under root (links not followed) by relative path, with its SHA-256."""
    found = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = Path(dirpath) / name
            if path.is_file() and not path.is_symlink():
                found[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


@pytest.fixture
def photos(tmp_path) -> Path:
    """Four real photos and two distinct block pictures; no duplicates among them."""
    root = tmp_path / "photos"
    root.mkdir()
    for photo in sorted(DATA.glob("*.jpg")):
        shutil.copy2(photo, root / photo.name)
    blocks(root / "blocks0.png", 0)
    blocks(root / "blocks1.png", 1)
    return root


@pytest.fixture
def open_index(tmp_path, tf1_module):
    def opener(name: str = "index"):
        return lookalike.open(tmp_path / name, model=str(tf1_module))

    return opener


def test_against_a_folder_the_index_already_covers_offers_nothing_to_remove(photos, open_index, tmp_path):
    (photos / "archive").mkdir()
    shutil.copy2(photos / "cat.jpg", photos / "archive" / "cat.jpg")  # a real copy, inside the archive
    before = digests(photos)
    with open_index() as col:
        col.add([photos])
        # The whole folder against itself: every file is the archive's own, none is a copy.
        for exact in (True, False):
            assert col.duplicates(THRESHOLD, against=photos, exact_only=exact) == []
        # A subfolder as the archive: its own files are never copies; the file outside it is.
        for exact in (True, False):
            clusters = col.duplicates(THRESHOLD, against=photos / "archive", exact_only=exact)
            assert [(c.keeper.path, [m.path for m in c.copies]) for c in clusters] == [
                (str(photos / "archive" / "cat.jpg"), [str(photos / "cat.jpg")])]
        moved = col.move_duplicates(col.duplicates(THRESHOLD, against=photos / "archive"), tmp_path / "q")
        assert [m.original for m in moved.moved] == [photos / "cat.jpg"]
    after = digests(photos)
    assert after == {k: v for k, v in before.items() if k != "cat.jpg"}  # the archive copy is untouched


def test_a_file_and_a_symlink_to_it_are_one_image_and_never_its_own_duplicate(photos, open_index, tmp_path):
    (photos / "a-link.jpg").symlink_to("cat.jpg")  # sorts before the real file
    os.symlink(photos, tmp_path / "alias")
    before = digests(photos)
    with open_index() as col:
        col.add([photos])
        col.add([tmp_path / "alias"])  # the same folder through a link, in a second run
        assert col.info().images == 6
        assert col.get_by_path(photos / "a-link.jpg").path == str(photos / "cat.jpg")
        assert col.duplicates(THRESHOLD) == [] and col.duplicates(exact_only=True) == []
        assert col.delete_duplicates(col.duplicates(exact_only=True)).deleted == ()
    assert digests(photos) == before and (photos / "cat.jpg").exists()


def test_hard_links_are_reported_as_the_same_file_and_never_removed(photos, open_index, capsys):
    os.link(photos / "cat.jpg", photos / "cat-hardlink.jpg")
    with open_index() as col:
        col.add([photos])
        (cluster,) = col.duplicates(exact_only=True)
        (copy,) = cluster.copies
        assert copy.same_file and cluster.reclaimable == 0  # removing a hard link frees no bytes
        output.duplicate_clusters([cluster], as_json=False, as_csv=False)
        assert "  link  exact" in capsys.readouterr().out
        result = col.delete_duplicates([cluster])
        assert result.deleted == () and result.problems == ()
    assert (photos / "cat.jpg").exists() and (photos / "cat-hardlink.jpg").exists()


def test_a_copy_swapped_for_a_link_to_its_keeper_is_left_alone(photos, open_index):
    shutil.copy2(photos / "cat.jpg", photos / "zz-copy.jpg")
    with open_index() as col:
        col.add([photos])
        clusters = col.duplicates(exact_only=True)
        (photos / "zz-copy.jpg").unlink()
        (photos / "zz-copy.jpg").symlink_to("cat.jpg")  # after the report, before the clean-up
        result = col.delete_duplicates(clusters)
    assert result.deleted == () and "no longer a regular file" in result.problems[0].reason
    assert (photos / "cat.jpg").read_bytes() == (DATA / "cat.jpg").read_bytes()


def test_a_quarantine_inside_the_indexed_folder_never_comes_back(photos, open_index):
    for n in range(3):
        shutil.copy2(photos / "espresso.jpg", photos / f"espresso copy {n}.jpg")
    quarantine = photos / "quarantine"
    with open_index() as col:
        col.add([photos])
        first = col.move_duplicates(col.duplicates(exact_only=True), quarantine)
        assert len(first.moved) == 3
        summary = col.add([photos], prune=True)
        assert (summary.added, summary.removed) == (0, 0)  # the moved copies are not indexed again
        second = col.move_duplicates(col.duplicates(exact_only=True), quarantine)
        assert second.moved == () and second.manifest is None  # nothing renamed in place to "x (1).jpg"
        col.undo(first.manifest)
        rows = {image.path for hit in [col.find("photos", 100)] for image in (h.image for h in hit)}
        assert col.info().images == 9 == len(rows)
        assert all(os.path.exists(path) for path in rows)
    assert sorted(p.name for p in quarantine.iterdir()) == [".lookalike-quarantine", first.manifest.name]


def copies_in_sub_folders(photos: Path) -> Path:
    """Two copies of a photo in sub-folders, and the quarantine beside the photos they will go to."""
    for folder in ("2021/a", "2021/b"):
        (photos / folder).mkdir(parents=True)
        shutil.copy2(photos / "espresso.jpg", photos / folder / "espresso copy.jpg")
    return photos.parent / "quarantine"


def test_a_folder_inside_the_quarantine_is_neither_indexed_nor_an_archive(photos, open_index):
    """Once only the quarantine's top was known: indexed, ``quarantine/sub`` brought moved copies back,
    and ``--against quarantine/sub --delete`` deleted the originals as copies of the moved ones."""
    quarantine = copies_in_sub_folders(photos)
    before = digests(photos)
    with open_index() as col:
        col.add([photos])
        moved = col.move_duplicates(col.duplicates(exact_only=True), quarantine)
        inside = next(m.moved_to.parent for m in moved.moved if m.moved_to.parent != quarantine)
        for exact in (True, False):
            with pytest.raises(LookalikeError, match=f"is in the quarantine {quarantine}: its files"):
                col.duplicates(THRESHOLD, against=inside, exact_only=exact)
        summary = col.add([inside])
        assert summary.added == 0
        assert [f.reason for f in col.failures()] == [
            f"in the quarantine {quarantine}: moved copies are not indexed"]
        col.undo(moved.manifest)
    assert digests(photos) == before


def test_links_into_the_quarantine_never_bring_moved_copies_back(photos, open_index):
    """Walking stops at the quarantine's top, but a link leads past it: the moved copies came back as
    originals, and ``--delete --keep shortest-path`` then deleted the photos they were copies of."""
    quarantine = copies_in_sub_folders(photos)
    before = digests(photos)
    with open_index() as col:
        col.add([photos])
        moved = col.move_duplicates(col.duplicates(exact_only=True), quarantine)
        [inside, *_] = sorted(m.moved_to for m in moved.moved)
        (photos / "quarantined folder").symlink_to(inside.parent, target_is_directory=True)
        (photos / "quarantined.jpg").symlink_to(inside)
        summary = col.add([photos])
        assert summary.added == 0
        assert sorted((f.path, f.reason) for f in col.failures()) == sorted(
            (str(photos / name), f"leads into the quarantine {quarantine}: moved copies are not indexed")
            for name in ("quarantined folder", "quarantined.jpg"))
        assert col.duplicates(exact_only=True) == []
        (photos / "quarantined folder").unlink()
        (photos / "quarantined.jpg").unlink()
        col.undo(moved.manifest)
    assert digests(photos) == before


def test_a_fifo_named_like_a_manifest_never_hangs_the_walk(photos, open_index):
    """Whether a folder is a quarantine is read from its manifests' first lines: a FIFO by that name, in
    the folder or above the root, once waited for a writer forever."""
    os.mkfifo(photos.parent / "manifest-20261204T101500.jsonl")
    os.mkfifo(photos / "manifest-20261204T101501.jsonl")
    done = []
    with open_index() as col:
        worker = threading.Thread(target=lambda: done.append(col.add([photos])), daemon=True)
        worker.start()
        worker.join(timeout=120)
        assert not worker.is_alive() and done[0].added == 6


def test_a_full_index_disk_after_a_move_still_says_what_moved_and_how_to_undo_it(photos, open_index,
                                                                               monkeypatch):
    from lookalike.errors import NoSpace

    shutil.copy2(photos / "cat.jpg", photos / "cat copy.jpg")
    with open_index() as col:
        col.add([photos])

        def disk_full(paths):
            raise NoSpace("no space left on the index's disk")

        monkeypatch.setattr(col, "_forget_paths", disk_full)
        with pytest.raises(NoSpace, match=r"1 copies had been moved into the quarantine \(undo: .*manifest-"):
            col.move_duplicates(col.duplicates(exact_only=True), photos.parent / "quarantine")
        [manifest] = (photos.parent / "quarantine").glob("manifest-*.jsonl")
        monkeypatch.undo()
        col.undo(manifest)
    assert (photos / "cat copy.jpg").exists() and (photos / "cat.jpg").exists()


def test_undo_with_a_relative_manifest_path_removes_emptied_folders(photos, open_index, tmp_path,
                                                                    monkeypatch):
    (photos / "sub").mkdir()
    shutil.copy2(photos / "rocket.jpg", photos / "sub" / "rocket.jpg")
    with open_index() as col:
        col.add([photos])
        moved = col.move_duplicates(col.duplicates(exact_only=True), tmp_path / "q")
        monkeypatch.chdir(tmp_path)
        col.undo(Path("q") / moved.manifest.name)
    left = sorted(p.name for p in (tmp_path / "q").iterdir())
    assert left == [".lookalike-quarantine", moved.manifest.name]


def test_names_that_are_not_utf8_or_hold_control_characters_index_and_round_trip(photos, open_index):
    names = [b"bad\xffname.jpg", b"line\nbreak.jpg", b"tab\tand\x1besc.jpg", b"\xe9t\xe9 latin-1.jpg"]
    raw_dir = os.fsencode(photos)
    for n, name in enumerate(names):
        shutil.copy2(DATA / "rocket.jpg", os.fsdecode(raw_dir + b"/" + name))
        blocks(Path(os.fsdecode(raw_dir + b"/" + b"b" + name)), 10 + n)
    with open_index() as col:
        summary = col.add([photos])
        assert (summary.added, summary.failed) == (6 + 2 * len(names), 0)
        for name in names:
            image = col.get_by_path(os.fsdecode(raw_dir + b"/" + name))
            assert os.fsencode(image.path) == raw_dir + b"/" + name  # exact bytes, back to the file
            hits = col.search(image.path, k=3).neighbours
            assert hits[0].score > 0.99 and os.path.exists(hits[0].image.path)
        assert len(col.duplicates(exact_only=True)[0].copies) == len(names)


def test_every_skip_is_recorded_with_its_reason_and_prune_clears_gone_ones(photos, open_index, tmp_path):
    os.mkfifo(photos / "fifo.jpg")
    (photos / "dangling.jpg").symlink_to(tmp_path / "nowhere.jpg")
    (photos / "loop.jpg").symlink_to("loop.jpg")
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (photos / "empty.png").write_bytes(b"")
    with open_index() as col:
        summary = col.add([photos])
        reasons = {Path(p).name: r for p, r in summary.failures}
        assert reasons["fifo.jpg"] == "not a regular file (FIFO)"
        assert reasons["dangling.jpg"] == "dangling symlink"
        assert reasons["loop.jpg"] == "symlink loop"
        assert "broken.jpg" in reasons and reasons["empty.png"] == "empty file"
        assert {Path(f.path).name for f in col.failures()} == set(reasons)
        for name in reasons:
            os.unlink(photos / name)
        col.add([photos], prune=True)
        assert col.failures() == []


def test_a_fifo_named_directly_is_skipped_at_once_not_waited_on(photos, open_index):
    os.mkfifo(photos / "fifo.jpg")
    with open_index() as col:
        done = []
        worker = threading.Thread(target=lambda: done.append(col.add([photos / "fifo.jpg"])), daemon=True)
        worker.start()
        worker.join(timeout=60)
        assert done, "indexing a FIFO hung"
        assert done[0].failures == [(str(photos / "fifo.jpg"), "not a regular file (FIFO)")]


def test_a_writer_waiting_for_the_lock_never_blocks_readers_in_its_process(photos, open_index, tmp_path):
    with open_index() as col:
        col.add([photos])
        lock = WriterLock(col.directory)
        lock.acquire()  # another process is indexing
        try:
            with pytest.raises(lookalike.WriterBusy, match="being written"):
                col.add([photos], wait=0)
            waiting = threading.Thread(target=lambda: pytest.raises(lookalike.WriterBusy, col.add, [photos],
                                                                    wait=3), daemon=True)
            waiting.start()
            time.sleep(0.3)
            started = time.monotonic()
            assert col.info().images == 6 and col.find("photos")  # answered while the writer waits
            assert time.monotonic() - started < 2.5
            waiting.join()
        finally:
            lock.release()


def test_the_indexed_file_is_served_only_while_it_is_still_that_file(photos, open_index):
    with open_index() as col:
        col.add([photos])
        image = col.get_by_path(photos / "cat.jpg")
        handle, found = col.open_indexed_file(image.id)
        with handle:
            assert handle.read() == (DATA / "cat.jpg").read_bytes() and found == image
        (photos / "cat.jpg").unlink()
        (photos / "cat.jpg").symlink_to("/etc/passwd")
        with pytest.raises(lookalike.StaleFile):
            col.open_indexed_file(image.id)
        (photos / "cat.jpg").unlink()
        os.mkfifo(photos / "cat.jpg")
        with pytest.raises(lookalike.StaleFile):
            col.open_indexed_file(image.id)
        with pytest.raises(lookalike.ImageNotFound):
            col.open_indexed_file(10_000)


def test_a_damaged_faiss_file_is_rebuilt_and_saved_by_the_next_index_run(photos, open_index, tmp_path):
    with open_index() as col:
        col.add([photos])
    faiss_file = tmp_path / "index" / "vectors.faiss"
    data = bytearray(faiss_file.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = b"\x7f" * 64  # damage inside, same size
    faiss_file.write_bytes(bytes(data))
    with open_index() as col:
        summary = col.add([photos])
        assert (summary.added, summary.unchanged) == (0, 6)
    assert faiss_file.read_bytes() != bytes(data)  # saved again, whole
    with open_index() as col:
        top = col.search((DATA / "cat.jpg").read_bytes(), k=1).neighbours[0]
        assert top.image.path == str(photos / "cat.jpg") and top.score <= 1.0001

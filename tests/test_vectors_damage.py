"""The FAISS file through the library: damage inside it and a full disk while saving it, on a real index."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys

import pytest

import lookalike
from lookalike.errors import CollectionError, NoSpace
from lookalike.index import vectors
from lookalike.index.store import WriterLock
from lookalike.index.vectors import INDEX_FILE, SIDECAR_FILE
from tests.blocking import within


@pytest.fixture
def photos(tmp_path, sample_photos):
    folder = tmp_path / "photos"
    folder.mkdir()
    for photo in sample_photos:
        shutil.copy(photo, folder / photo.name)
    return folder


@pytest.fixture
def later(tmp_path, photos):
    """All photos but the first moved to a folder of their own: indexed by a later run."""
    folder = tmp_path / "later"
    folder.mkdir()
    for photo in sorted(photos.iterdir())[1:]:
        photo.rename(folder / photo.name)
    return folder


def stop_before_saving_faiss(collection, monkeypatch) -> None:
    """A run stopped (Ctrl-C, kill, a full disk) right after its last commit, before its FAISS save."""

    def stopped(index):
        raise KeyboardInterrupt

    monkeypatch.setattr(collection, "_save_vectors", stopped)


def test_a_faiss_file_damaged_inside_at_the_same_size_is_rebuilt_and_searches_stay_right(
    tmp_path, photos, tf1_module, sample_photos
):
    index_dir = tmp_path / "index"
    with lookalike.open(index_dir, model=str(tf1_module)) as col:
        col.add([photos])
        expected = [(n.image.path, round(n.score, 4)) for n in col.search(sample_photos[0], k=3).neighbours]
    faiss_file = index_dir / INDEX_FILE
    data = bytearray(faiss_file.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(b ^ 0xFF for b in data[middle : middle + 64])
    faiss_file.write_bytes(bytes(data))  # same size: only the checksum can tell

    with lookalike.open(index_dir, model=str(tf1_module)) as col:
        result = col.search(sample_photos[0], k=3)

    assert [(n.image.path, round(n.score, 4)) for n in result.neighbours] == expected
    assert all(-1.0 - 1e-5 <= n.score <= 1.0 + 1e-5 for n in result.neighbours)


@pytest.mark.parametrize("name", [SIDECAR_FILE, INDEX_FILE])
def test_a_fifo_in_place_of_the_faiss_files_is_rebuilt_from_sqlite_never_waited_on(
    tmp_path, photos, tf1_module, sample_photos, name
):
    """A FIFO planted as ``vectors.json`` hung every search for good, waiting for a writer; one as
    ``vectors.faiss`` too once the sidecar claimed its size (0). Either is refused at once as no regular
    file: the index is rebuilt from SQLite, as from a damaged file, and the next writer replaces it."""
    index_dir = tmp_path / "index"
    with lookalike.open(index_dir, model=str(tf1_module)) as col:
        col.add([photos])
        expected = [(n.image.path, round(n.score, 4)) for n in col.search(sample_photos[0], k=3).neighbours]
    sidecar = json.loads((index_dir / SIDECAR_FILE).read_text())
    (index_dir / SIDECAR_FILE).write_text(json.dumps({**sidecar, "file_size": 0}))
    fifo = index_dir / name
    fifo.unlink()
    os.mkfifo(fifo)

    error = within(30, lambda: vectors.VectorIndex.load(index_dir), fifo=fifo)
    assert isinstance(error, CollectionError) and f"{fifo}: not a regular file (FIFO)" in str(error)
    if name == SIDECAR_FILE:
        assert within(30, lambda: vectors.saved_generation(index_dir), fifo=fifo) is None
    with lookalike.open(index_dir) as col:
        result = within(30, lambda: col.search(sample_photos[0], k=3), fifo=fifo)
        assert [(n.image.path, round(n.score, 4)) for n in result.neighbours] == expected
        col.add([photos])
    assert (index_dir / name).is_file()
    vectors.VectorIndex.load(index_dir)


def test_a_fifo_or_device_in_place_of_the_writer_lock_is_refused_in_one_line(tmp_path, photos, tf1_module):
    """``write.lock`` as a FIFO: a writer took the pid and the truncate as a bare EINVAL (a traceback),
    and a reader asking who holds the lock waited on it for good."""
    index_dir = tmp_path / "index"
    with lookalike.open(index_dir, model=str(tf1_module)) as col:
        col.add([photos])
    lock = index_dir / "write.lock"
    lock.unlink()
    os.mkfifo(lock)
    assert within(30, lambda: WriterLock.live_holder(index_dir), fifo=lock) is None
    with lookalike.open(index_dir) as col:
        assert col.search_id(1, k=1).neighbours
        with pytest.raises(CollectionError, match=f"^{lock}: not a regular file \\(FIFO\\), where the index "
                                                  "keeps its writer lock: move it away"):
            col.add([photos])
    lock.unlink()
    lock.symlink_to("/dev/null")
    with lookalike.open(index_dir) as col, pytest.raises(CollectionError, match=r"regular file \(device\)"):
        col.add([photos])
    lock.unlink()
    with lookalike.open(index_dir) as col:
        assert col.add([photos]).unchanged == len(os.listdir(photos))


@pytest.mark.parametrize(("name", "line"), [
    (SIDECAR_FILE, "{} is a folder, where the index keeps a file of its own: move it away"),
    (INDEX_FILE, "{} is a folder, where the index keeps a file of its own: move it away"),
    ("write.lock", "{}: not a regular file (folder), where the index keeps its writer lock: move it away "
                   "(the lock is made again)"),
])
def test_a_folder_in_place_of_a_file_of_the_index_is_one_line_at_the_next_write(
    tmp_path, photos, tf1_module, sample_photos, name, line
):
    """Searches go on (from SQLite); a write was a traceback (IsADirectoryError at the FAISS save, or
    opening the lock)."""
    index_dir = tmp_path / "index"
    with lookalike.open(index_dir, model=str(tf1_module)) as col:
        col.add([photos])
    folder = index_dir / name
    folder.unlink()
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    shutil.copy(sample_photos[0], photos / "new.jpg")
    with lookalike.open(index_dir) as col:
        assert col.search(sample_photos[0], k=1).neighbours
        with pytest.raises(CollectionError) as refused:
            col.add([photos])
        assert str(refused.value) == line.format(folder)
    assert (folder / "notes.txt").read_text() == "mine"


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_disk_while_saving_the_faiss_file_is_no_space_and_nothing_committed_is_lost(
    tmp_path, photos, later, tf1_module, sample_photos
):
    index_dir = tmp_path / "index"
    with lookalike.open(index_dir, model=str(tf1_module)) as col:
        col.add([photos])
    before = {name: (index_dir / name).read_bytes() for name in (INDEX_FILE, SIDECAR_FILE)}
    full = vectors._temp_path(index_dir / INDEX_FILE)
    full.symlink_to("/dev/full")  # every write of the next FAISS save fails with ENOSPC

    with lookalike.open(index_dir, model=str(tf1_module)) as col, pytest.raises(NoSpace) as caught:
        col.add([later])

    assert "\n" not in str(caught.value) and "No space left on device" in str(caught.value)
    assert {name: (index_dir / name).read_bytes() for name in before} == before
    assert not full.exists() and not full.is_symlink()
    with lookalike.open(index_dir, model=str(tf1_module)) as col:  # SQLite has the rows: searches see them
        hits = col.search(sample_photos[-1], k=len(sample_photos)).neighbours
        assert {os.path.basename(n.image.path) for n in hits} == {p.name for p in sample_photos}
        summary = col.add([photos, later])
        assert summary.added == 0 and summary.failed == 0


def server_behind_a_stopped_run(index_dir, photos, edited, other_picture, tf1_module, monkeypatch):
    """A long-lived process (a server) with FAISS cached, left behind by an index run that re-embedded
    ``edited`` (now ``other_picture``, same name), committed, and was stopped before its FAISS save."""
    server = lookalike.open(index_dir, model=str(tf1_module))
    server.add([photos])
    server.search(edited, k=1)  # FAISS cached
    with lookalike.open(index_dir, model=str(tf1_module)) as run:
        shutil.copy(other_picture, edited)  # another picture now, under the same name
        os.utime(edited, (1, 1))
        stop_before_saving_faiss(run, monkeypatch)
        with pytest.raises(KeyboardInterrupt):
            run.add([photos])
    return server


def test_a_long_lived_reader_never_saves_a_faiss_index_older_than_the_rows(tmp_path, photos, tf1_module,
                                                                            sample_photos, monkeypatch):
    """A server (or a notebook) keeps FAISS cached. Meanwhile an index run re-embeds an edited photo,
    commits, and is stopped before it saves FAISS. When the server next writes (an upload), it must not
    save its cache, which still holds the photo's old vector under the same id, as current: every
    process would take that file as current for good."""
    index_dir = tmp_path / "index"
    edited = photos / sample_photos[0].name
    server = server_behind_a_stopped_run(index_dir, photos, edited, sample_photos[1], tf1_module, monkeypatch)

    upload = tmp_path / "upload.jpg"
    shutil.copy(sample_photos[2], upload)
    server.add([upload])
    server.close()

    with lookalike.open(index_dir, model=str(tf1_module)) as col:
        row = col.store.get_by_path(edited)
        hits = col._current_vectors().search(row.vector[None], k=3)[0]
        found = dict(zip(map(int, hits.ids), map(float, hits.scores), strict=True))
        assert found.get(row.id) == pytest.approx(1.0, abs=1e-4)  # its new vector, not the old one
        assert vectors.saved_generation(index_dir) == col.store.generation


def scored_by_its_stored_vector(col, path) -> float | None:
    """The score the FAISS copy gives the row of ``path`` searched by its own stored vector (1.0: current)."""
    row = col.store.get_by_path(path)
    hits = col._current_vectors().search(row.vector[None], k=3)[0]
    return dict(zip(map(int, hits.ids), map(float, hits.scores), strict=True)).get(row.id)


def test_a_long_lived_reader_that_forgets_images_saves_faiss_with_the_rows_it_never_read(
    tmp_path, photos, tf1_module, sample_photos, monkeypatch
):
    """The server's copy is behind another process's commit (an edited photo re-embedded, that run
    stopped before its FAISS save) when it writes by another way than indexing: forgetting an image.
    The saved file holds the edited photo's new vector, in this process and in the next."""
    index_dir = tmp_path / "index"
    edited = photos / sample_photos[0].name
    server = server_behind_a_stopped_run(index_dir, photos, edited, sample_photos[1], tf1_module, monkeypatch)
    forgotten = server.get_by_path(photos / sample_photos[-1].name).id

    assert server.remove_ids([forgotten]) == 1
    assert scored_by_its_stored_vector(server, edited) == pytest.approx(1.0, abs=1e-4)
    server.close()
    with lookalike.open(index_dir, model=str(tf1_module)) as col:
        assert vectors.saved_generation(index_dir) == col.store.generation
        assert scored_by_its_stored_vector(col, edited) == pytest.approx(1.0, abs=1e-4)


def test_a_long_lived_process_indexing_nothing_new_saves_faiss_caught_up_with_a_stopped_run(
    tmp_path, photos, later, tf1_module, monkeypatch
):
    """A run stopped before its FAISS save; the server, its copy behind, then indexes and finds nothing
    new. As the writer it saves FAISS caught up, rather than leave every reader to rebuild it."""
    index_dir = tmp_path / "index"
    server = lookalike.open(index_dir, model=str(tf1_module))
    server.add([photos])
    server.search_id(1, k=1)  # FAISS cached
    with lookalike.open(index_dir, model=str(tf1_module)) as run:
        stop_before_saving_faiss(run, monkeypatch)
        with pytest.raises(KeyboardInterrupt):
            run.add([later])

    assert server.add([photos, later]).added == 0
    assert vectors.saved_generation(index_dir) == server.store.generation
    server.close()


def test_a_commit_that_fails_after_the_faiss_copy_changed_leaves_the_copy_to_be_rebuilt(
    tmp_path, photos, tf1_module, sample_photos, monkeypatch
):
    """Re-indexing an edited photo takes its old vector out of the FAISS copy, then commits the new one.
    When that commit fails (a full disk), the copy lacked a row SQLite still holds yet passed for current:
    the next save kept the photo out of this process's searches for good."""
    index_dir = tmp_path / "index"
    edited = photos / sample_photos[0].name
    col = lookalike.open(index_dir, model=str(tf1_module))
    col.add([photos])
    forgotten = col.get_by_path(photos / sample_photos[-1].name).id
    shutil.copy(sample_photos[1], edited)
    os.utime(edited, (1, 1))

    def full_disk(images):
        raise NoSpace("no space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(col.store, "upsert", full_disk)
        with pytest.raises(NoSpace):
            col.add([photos])
    col.remove_ids([forgotten])  # a later write saves the copy

    assert scored_by_its_stored_vector(col, edited) == pytest.approx(1.0, abs=1e-4)  # the old row, searched
    col.close()


def test_a_reader_catches_up_with_rows_a_stopped_run_never_saved_to_faiss(tmp_path, photos, later, tf1_module,
                                                                          sample_photos, monkeypatch):
    """A server answers from its FAISS copy while another process indexes, catching up at each save.
    A run stopped before its save leaves no newer file: while a live process holds the writer lock, the
    copy is caught up once it has been behind the store for ``STALE_AFTER_S`` (a live run saves every
    minute); once none does, at once. So the new photos are searched, not only counted."""
    from lookalike.index import collection as module

    index_dir = tmp_path / "index"
    server = lookalike.open(index_dir, model=str(tf1_module))
    server.add([photos])
    server.search_id(1, k=1)  # FAISS cached

    with lookalike.open(index_dir, model=str(tf1_module)) as run, WriterLock(index_dir) as live_writer:
        stop_before_saving_faiss(run, monkeypatch)
        with pytest.raises(KeyboardInterrupt):
            run.add([later])
        live_writer.acquire()  # still held by a live process (this one): it may save any moment
        assert server.info().images == len(sample_photos)
        assert len(server.search_id(1, k=50).neighbours) == 0  # within the grace: the copy as it was
        with monkeypatch.context() as patch:
            patch.setattr(module, "STALE_AFTER_S", 0.0)
            assert len(server.search_id(1, k=50).neighbours) == len(sample_photos) - 1
    server.close()


def test_a_reader_catches_up_at_once_when_the_writer_was_killed(tmp_path, photos, later, tf1_module,
                                                                sample_photos):
    """An index run killed with SIGKILL after its last commit, before its FAISS save, leaves its pid in
    the lock and no newer FAISS file: nobody will save one, so the reader waits out no grace (120 s)."""
    index_dir = tmp_path / "index"
    server = lookalike.open(index_dir, model=str(tf1_module))
    server.add([photos])
    server.search_id(1, k=1)  # FAISS cached
    killed_before_saving = (
        "import os, signal, sys\nimport lookalike\n"
        "col = lookalike.open(sys.argv[1], model=sys.argv[2])\n"
        "col._save_vectors = lambda index: os.kill(os.getpid(), signal.SIGKILL)\n"
        "col.add([sys.argv[3]])\n"
    )
    run = subprocess.run([sys.executable, "-c", killed_before_saving, index_dir, tf1_module, later],
                         capture_output=True, timeout=300)
    assert run.returncode == -signal.SIGKILL, run.stderr.decode()[-2000:]
    assert (index_dir / "write.lock").read_text() != ""  # the dead writer's pid, left behind

    assert len(server.search_id(1, k=50).neighbours) == len(sample_photos) - 1
    server.close()

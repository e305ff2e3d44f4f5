"""The collection as a library user meets it: lookalike.open, add, search, find, info, failures."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest

import lookalike
from lookalike.embedder import images
from lookalike.errors import CollectionError, InvalidOption, ModelMismatchError
from lookalike.index.vectors import INDEX_FILE
from tests.modules import build_tf1_module
from tests.photos import blocks, photo_folder


@pytest.fixture
def photos(tmp_path) -> dict[str, Path]:
    return photo_folder(tmp_path / "photos")


@pytest.fixture
def collection(tmp_path, tf1_module, photos):
    col = lookalike.open(tmp_path / "index", model=str(tf1_module))
    summary = col.add([tmp_path / "photos"])
    assert summary.added == len(photos)
    yield col
    col.close()


def rows(index_dir: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(index_dir / "lookalike.db") as db:
        return db.execute(sql).fetchall()


def test_adding_a_folder_stores_every_image_with_its_metadata(collection, photos):
    (count,) = rows(collection.directory, "SELECT count(*) FROM images")[0]
    assert count == len(photos)
    path, width, height, fmt, digest, labels = rows(
        collection.directory,
        f"SELECT path, width, height, format, digest, labels FROM images WHERE path = '{photos['cat']}'",
    )[0]
    assert (width, height, fmt) == (451, 300, "JPEG")
    assert len(digest) == 64 and labels.startswith("[{")
    assert (collection.directory / INDEX_FILE).exists()


def test_a_resized_copy_is_the_nearest_neighbour(collection, photos):
    for name in ("cat", "espresso", "rocket"):
        result = collection.search(photos[f"{name}-small"], k=3)
        assert result.neighbours[0].image.path == str(photos[name])
        assert result.neighbours[0].score > 0.99
        assert [n.rank for n in result.neighbours] == [1, 2, 3]


def test_an_indexed_image_is_left_out_of_its_own_results(collection, photos):
    result = collection.search(photos["cat"], k=50)
    assert result.query_id is not None
    paths = [n.image.path for n in result.neighbours]
    assert str(photos["cat"]) not in paths
    assert len(paths) == len(photos) - 1
    scores = [n.score for n in result.neighbours]
    assert scores == sorted(scores, reverse=True)


def test_search_by_id_uses_the_stored_vector_and_bytes_are_embedded(collection, photos):
    by_path = collection.search(photos["espresso"], k=1)
    by_id = collection.search_id(by_path.query_id, k=1)
    assert by_id.neighbours == by_path.neighbours
    from_bytes = collection.search(photos["espresso-small"].read_bytes(), k=2)
    assert from_bytes.query_id is None  # bytes are not an indexed image: identical copies are answers
    expected = {str(photos["espresso"]), str(photos["espresso-small"])}
    assert {n.image.path for n in from_bytes.neighbours} == expected
    assert from_bytes.query_labels  # the query's own labels come with the answer


def test_min_score_and_label_filters(collection, photos):
    close = collection.search(photos["cat-small"], k=10, min_score=0.99)
    assert [n.image.path for n in close.neighbours] == [str(photos["cat"])]
    wanted = collection.get(close.neighbours[0].image.id).labels[0].name
    labelled = collection.search(photos["rocket"], k=10, label=wanted)
    assert labelled.neighbours and all(
        any(wanted.lower() in label.name.lower() for label in n.image.labels) for n in labelled.neighbours
    )


def test_find_matches_labels_and_paths(collection, photos):
    top = collection.get(collection.search(photos["cat"], k=1).query_id).labels[0].name
    hits = collection.find(top)
    assert str(photos["cat"]) in [h.image.path for h in hits]
    assert all(h.matched_label for h in hits if h.probability > 0)
    by_path = collection.find("copies")
    assert {h.image.path for h in by_path} == {str(p) for n, p in photos.items() if n.endswith("-small")}


def test_second_run_embeds_nothing_and_loads_no_model(collection, tmp_path, tf1_module, photos):
    again = lookalike.open(collection.directory)
    summary = again.add([tmp_path / "photos"])
    assert (summary.added, summary.updated, summary.unchanged) == (0, 0, len(photos))
    assert again._embedder is None  # nothing changed, so the model was never loaded


def test_touched_file_is_not_re_embedded_but_edited_file_is(collection, tmp_path, photos):
    os.utime(photos["cat"], (1_000_000, 1_000_000))
    blocks(photos["blocks0"], seed=99)  # new content, same name
    summary = collection.add([tmp_path / "photos"])
    assert (summary.added, summary.updated) == (0, 1)
    assert summary.unchanged == len(photos) - 1
    (mtime,) = rows(collection.directory, f"SELECT mtime FROM images WHERE path = '{photos['cat']}'")[0]
    assert mtime == 1_000_000


def test_prune_forgets_deleted_files_only_under_the_given_paths(collection, tmp_path, photos):
    photos["blocks1"].unlink()
    photos["cat-small"].unlink()
    summary = collection.add([tmp_path / "photos" / "copies"], prune=True)
    assert summary.removed == 1  # blocks1 is outside the pruned folder: kept until its folder is pruned
    assert collection.info().images == len(photos) - 1
    assert collection.add([tmp_path / "photos"]).removed == 0  # no --prune, nothing forgotten
    assert collection.add([tmp_path / "photos"], prune=True).removed == 1
    paths = [n.image.path for n in collection.search(photos["cat"], k=50).neighbours]
    assert str(photos["cat-small"]) not in paths and str(photos["blocks1"]) not in paths


def test_unreadable_files_are_recorded_and_the_run_goes_on(collection, tmp_path):
    bad = tmp_path / "photos" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    summary = collection.add([tmp_path / "photos"])
    assert summary.failed == 1 and summary.failures[0][0] == str(bad)
    (failure,) = collection.failures()
    assert failure.path == str(bad) and failure.reason
    assert collection.info().failures == 1


def test_a_failures_limit_is_a_whole_number_of_1_or_more(collection, tmp_path):
    """SQLite reads ``LIMIT -1`` as no limit at all and refuses 1.5 with a bare IntegrityError: both are
    refused as ``find`` refuses them."""
    (tmp_path / "photos" / "broken.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "photos" / "empty.png").write_bytes(b"")
    assert collection.add([tmp_path / "photos"]).failed == 2
    assert len(collection.failures(limit=1)) == 1 and len(collection.failures()) == 2
    for limit in (-1, 0, 1.5, True):
        with pytest.raises(InvalidOption, match="limit must be a whole number of 1 or more"):
            collection.failures(limit=limit)


def test_an_index_refuses_vectors_from_another_model(collection, tmp_path, tf1_module):
    other = build_tf1_module(tmp_path / "other-model", classes=10)
    col = lookalike.open(collection.directory, model=str(other))
    with pytest.raises(ModelMismatchError) as error:
        col.add([blocks(tmp_path / "new.png", seed=42)])
    message = str(error.value)
    assert "\n" not in message and str(tf1_module) in message and str(other) in message


def test_faiss_file_is_rebuilt_from_sqlite_when_missing_or_corrupt(collection, photos):
    expected = collection.search(photos["rocket-small"], k=5).neighbours
    (collection.directory / INDEX_FILE).unlink()
    assert lookalike.open(collection.directory).search(photos["rocket-small"], k=5).neighbours == expected
    (collection.directory / INDEX_FILE).write_bytes(b"garbage" * 100)
    assert lookalike.open(collection.directory).search(photos["rocket-small"], k=5).neighbours == expected


def test_a_second_writer_fails_clearly_while_readers_keep_working(collection, tmp_path, photos):
    with collection.store.writer():
        other = lookalike.open(collection.directory)
        with pytest.raises(CollectionError, match="being written by pid"):
            other.add([blocks(tmp_path / "late.png", seed=7)])
        assert other.search(photos["cat-small"], k=1).neighbours[0].image.path == str(photos["cat"])


def test_info_describes_the_index(collection, photos):
    info = collection.info()
    assert info.images == len(photos)
    assert info.vector_size == collection.embedder.dim
    assert info.index_type == "flat"
    assert info.disk_bytes > 0 and info.failures == 0
    assert info.fingerprint["handle"] == collection.embedder.handle


def test_opening_a_missing_index_without_create_fails(tmp_path):
    with pytest.raises(CollectionError, match="no lookalike index"):
        lookalike.open(tmp_path / "nothing-here", create=False)


def test_remove_ids_keeps_faiss_and_sqlite_in_step(collection, photos):
    cat_id = collection.search(photos["cat"], k=1).query_id
    assert collection.remove_ids([cat_id]) == 1
    reopened = lookalike.open(collection.directory)
    result = reopened.search(photos["cat-small"], k=50)
    assert all(n.image.id != cat_id for n in result.neighbours)
    vectors = reopened._current_vectors()
    assert vectors.id_checksum() == reopened.store.id_checksum()
    assert np.isin(cat_id, vectors.ids(), invert=True)


def test_an_index_type_asked_for_once_is_remembered(tmp_path, tf1_module, photos):
    with lookalike.open(tmp_path / "ivf-index", model=str(tf1_module), index_type="flat") as col:
        col.add([photos["cat"]])
    with lookalike.open(tmp_path / "ivf-index") as reopened:
        assert reopened._index_type == "flat"
        reopened.add([photos["rocket"]])
        assert reopened.info().index_type == "flat"
    with pytest.raises(lookalike.InvalidOption, match="unknown index type"):
        lookalike.open(tmp_path / "ivf-index", index_type="hnsw")


def test_arguments_that_would_answer_nothing_silently_are_refused(collection, photos):
    """A count of matches is a whole number of 1 or more and a cosine score lies in [-1, 1]: before,
    ``k=-5`` and ``min_score=nan`` answered nothing and ``limit=-1`` all but the last match, silently."""
    photo = next(iter(photos.values()))
    for k in (-5, 0, 1.5, True):
        with pytest.raises(InvalidOption, match="k must be a whole number"):
            collection.search(photo, k=k)
    for score in (float("nan"), 5, -1.5):
        with pytest.raises(InvalidOption, match=r"minimum score must be in \[-1, 1\]"):
            collection.search_id(1, min_score=score)
    with pytest.raises(InvalidOption, match="limit must be a whole number"):
        collection.find("jpg", limit=-1)
    assert len(collection.search(photo, k=np.int64(2), min_score=-1).neighbours) == 2


def test_a_threshold_is_a_number_in_its_range_not_a_bool(collection):
    """Python takes ``True`` for 1 and lets NaN by: ``duplicates(threshold=True)`` ran at 1.0, silently."""
    for threshold in (True, False, float("nan"), 0, 1.5, "0.9"):
        with pytest.raises(InvalidOption, match=r"threshold must be in \(0, 1\]"):
            collection.duplicates(threshold=threshold)
    assert collection.duplicates(threshold=np.float32(0.9)) is not None


def test_classify_checks_k_at_the_call_not_at_the_first_image(tf1_module, photos):
    """``lookalike.classify`` is lazy; a bad ``k`` is refused before any model loads or image is read."""
    for k in (0, -3, 1.5, True):
        with pytest.raises(InvalidOption, match="k must be a whole number"):
            lookalike.classify(list(photos.values()), model=str(tf1_module), k=k)
    [(_, labels), *_] = lookalike.classify(list(photos.values()), model=str(tf1_module), k=2)
    assert len(labels) == 2


def test_a_closed_collection_says_so_in_one_line(tmp_path, tf1_module, photos):
    with lookalike.open(tmp_path / "index", model=str(tf1_module)) as col:
        col.add(tmp_path / "photos")  # one folder, given alone: a path, not a list of its letters
        assert col.info().images == len(photos)
    col.close()  # closing again is harmless
    for use in (col.info, lambda: col.search_id(1), lambda: col.find("jpg")):
        with pytest.raises(CollectionError, match="was closed: open it again"):
            use()


def test_one_folder_given_alone_is_one_folder_whatever_form_its_name_takes(tmp_path, tf1_module, photos):
    """A name as str, Path or the bytes the kernel sees (what ``os.fsencode`` gives): never a list of its
    letters, nor of its byte values."""
    with lookalike.open(tmp_path / "index", model=str(tf1_module)) as col:
        assert col.add(os.fsencode(tmp_path / "photos")).added == len(photos)
        assert col.add(tmp_path / "photos").unchanged == len(photos)


def test_a_photo_replaced_by_a_copy_of_itself_is_the_file_the_index_serves(collection, tmp_path, photos):
    """``rsync -a``, ``cp -p`` then ``mv``, a restore from a backup: the same bytes, size and mtime under
    the same name, but another file (inode). It is not embedded again, and the index now knows the new
    file, so it is served (it was refused as changed, for good). Another picture put there the same way,
    at the same size and mtime, is embedded again."""
    by_size = sorted(photos.values(), key=lambda p: p.stat().st_size)
    path, smaller = by_size[-1], by_size[0]
    row = collection.store.get_by_path(path)

    def put_in_its_place(content: bytes) -> None:
        incoming = tmp_path / "incoming.jpg"
        incoming.write_bytes(content)
        os.utime(incoming, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns))
        os.replace(incoming, path)

    put_in_its_place(path.read_bytes())
    summary = collection.add([tmp_path / "photos"])
    assert (summary.added, summary.updated, summary.unchanged) == (0, 0, len(photos))
    handle, image = collection.open_indexed_file(row.id)
    with handle:
        assert handle.read() == path.read_bytes() and image.path == str(path)

    put_in_its_place(smaller.read_bytes().ljust(path.stat().st_size, b"\0"))  # bytes after a JPEG's end
    assert collection.add([tmp_path / "photos"]).updated == 1
    assert collection.search(smaller, k=1).neighbours[0].score == pytest.approx(1.0, abs=1e-4)


def renamed_over(path: Path, content: bytes) -> None:
    """An editor's atomic save of a same-size picture, its mtime kept: a new file under the name."""
    st = path.stat()
    incoming = path.parent.parent / "incoming"
    incoming.write_bytes(content)
    os.utime(incoming, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(incoming, path)


def rewritten_in_place(path: Path, content: bytes) -> None:
    """A same-size picture written into the file, its mtime set back (cp -p, touch -r, a restore)."""
    st = path.stat()
    with open(path, "r+b") as f:
        f.write(content)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


@pytest.mark.parametrize("save_over", [renamed_over, rewritten_in_place])
@pytest.mark.parametrize("read_whole_max", [images.READ_WHOLE_MAX, 0], ids=["in memory", "descriptor"])
def test_a_photo_saved_over_between_its_decoding_and_its_digest_is_never_stored_half_and_half(
    tmp_path, tf1_module, monkeypatch, save_over, read_whole_max
):
    """Indexing decoded a file, then opened it again to digest it: another picture saved over it in
    between (same size, mtime kept) left the old picture's vector under the new content's digest, which
    every later run took as unchanged. Now the digest is of the very bytes decoded, and a file whose
    inode was touched meanwhile is recorded as changed while being read; the next run embeds it."""
    monkeypatch.setattr(images, "READ_WHOLE_MAX", read_whole_max)
    folder = tmp_path / "photos"
    folder.mkdir()
    victim = blocks(folder / "victim.bmp", 1)
    old, new = victim.read_bytes(), blocks(tmp_path / "new.bmp", 2).read_bytes()
    assert len(old) == len(new) and old != new
    real_sha256 = images._sha256
    saves = [new]

    def saved_over_then_digested(stream, label):
        if saves:
            save_over(victim, saves.pop())
        return real_sha256(stream, label)

    monkeypatch.setattr(images, "_sha256", saved_over_then_digested)
    with lookalike.open(tmp_path / "index", model=str(tf1_module)) as col:
        first = col.add([folder])
        if first.added:  # stored: one picture, the one decoded, under its own digest
            row = col.store.get_by_path(victim)
            assert row.digest == hashlib.sha256(old).hexdigest()
            assert float(row.vector @ col.embedder.embed(old).vector) == pytest.approx(1.0, abs=1e-4)
        else:
            assert first.failures == [(str(victim), "changed while being read")]
        assert col.add([folder]).failures == []
        assert col.store.get_by_path(victim).digest == hashlib.sha256(new).hexdigest()
        (nearest,) = col.search(new, k=1).neighbours  # the picture the file now holds
        assert nearest.image.path == str(victim) and nearest.score == pytest.approx(1.0, abs=1e-4)

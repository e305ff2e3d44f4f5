"""The FAISS side: cosine search keyed by SQLite ids, and a file that is only ever a cache of SQLite."""

from __future__ import annotations

import json
import os
import tracemalloc

import faiss
import numpy as np
import pytest

from lookalike.errors import CollectionError, NoSpace
from lookalike.index import vectors
from lookalike.index.store import NewImage, Store
from lookalike.index.vectors import (
    FLAT_MAX,
    INDEX_FILE,
    IVF_MIN,
    SIDECAR_FILE,
    VectorIndex,
    choose_kind,
    load_or_rebuild,
    normalized,
    rebuild,
    save_current,
)
from tests.blocking import within

DIM = 16


def clustered(n: int, seed: int = 0, clusters: int = 40) -> np.ndarray:
    """Unit vectors in tight-ish groups, like embeddings of photos of a few kinds of things."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, DIM))
    return normalized(centres[rng.integers(0, clusters, n)] + 0.3 * rng.standard_normal((n, DIM)))


def fill(store: Store, x: np.ndarray, start: int = 0) -> list[int]:
    return store.upsert([NewImage(f"/p/{start + i}.jpg", 1, 1.0, "d", 1, 1, "PNG", [], v)
                         for i, v in enumerate(x)])


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path) as s:
        yield s


def test_scores_are_cosine_similarities_and_ids_are_the_ones_given():
    x = clustered(100)
    ids = np.arange(1000, 1100) * 7  # SQLite ids need not be 0..n-1
    index = VectorIndex.empty(DIM)
    index.add(ids, x * 3.0)  # any length: vectors are normalised on the way in

    (hits,) = index.search(x[5:6] * 0.1, k=3)

    assert hits.ids[0] == ids[5] and hits.scores[0] == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(hits.scores, [float(x[5] @ x[np.flatnonzero(ids == i)[0]]) for i in hits.ids],
                               atol=1e-5)
    assert list(hits.scores) == sorted(hits.scores, reverse=True)


def test_exclude_and_min_score_filter_each_query():
    x = clustered(50)
    index = VectorIndex.empty(DIM)
    index.add(np.arange(50), x)

    own, other = index.search(x[[3, 4]], k=5, exclude=[{3}, {4, 10}])
    assert 3 not in own.ids and len(own.ids) == 5
    assert not {4, 10} & set(other.ids.tolist()) and len(other.ids) == 5

    (close,) = index.search(x[3:4], k=50, min_score=0.9)
    assert close.scores.min() >= 0.9 and 3 in close.ids and len(close.ids) < 50

    with pytest.raises(ValueError):
        index.search(x[:2], k=5, exclude=[{1}])


def test_an_empty_index_or_a_large_k_returns_what_exists():
    index = VectorIndex.empty(DIM)
    assert [len(h.ids) for h in index.search(clustered(2), k=10)] == [0, 0]
    index.add([1, 2], clustered(2))
    (hits,) = index.search(clustered(1), k=10)
    assert sorted(hits.ids.tolist()) == [1, 2]


def test_removed_ids_are_no_longer_found():
    x = clustered(20)
    index = VectorIndex.empty(DIM)
    index.add(np.arange(20), x)

    assert index.remove([4, 7, 999]) == 2

    (hits,) = index.search(x[4:5], k=20)
    assert index.ntotal == 18 and not {4, 7} & set(hits.ids.tolist())


def test_the_kind_follows_the_size_unless_asked():
    assert choose_kind(0) == choose_kind(FLAT_MAX) == "flat"
    assert choose_kind(FLAT_MAX + 1) == "ivf"
    assert choose_kind(10 * FLAT_MAX, "flat") == "flat"
    assert choose_kind(IVF_MIN, "ivf") == "ivf"
    assert choose_kind(IVF_MIN - 1, "ivf") == "flat"  # too few vectors to train lists on
    with pytest.raises(CollectionError, match="unknown index type 'annoy'"):
        choose_kind(10, "annoy")


def test_an_existing_index_is_kept_near_the_threshold_and_rebuilt_far_from_it():
    flat = VectorIndex.empty(DIM)
    assert flat.suits(FLAT_MAX) and flat.suits(int(FLAT_MAX * 1.2))
    assert not flat.suits(FLAT_MAX * 2)
    assert flat.suits(100, "ivf") and not flat.suits(IVF_MIN, "ivf")  # ivf asked: only with enough to train


def test_ivf_finds_nearly_what_exact_search_finds_and_removes_in_place(store):
    x = clustered(4000)
    ids = fill(store, x)
    exact, _ = rebuild(store, "flat")
    approximate, _ = rebuild(store, "ivf")
    queries = clustered(50, seed=1)

    truth = [set(h.ids.tolist()) for h in exact.search(queries, k=10)]
    found = [set(h.ids.tolist()) for h in approximate.search(queries, k=10, nprobe=16)]
    recall = np.mean([len(t & f) / 10 for t, f in zip(truth, found, strict=True)])

    assert approximate.kind == "ivf" and approximate.ntotal == 4000
    assert recall >= 0.9
    assert approximate.suits(4000, "ivf") and not approximate.suits(4000, "flat")
    assert not approximate.suits(4000 * 16, "ivf")  # grown 16x: its lists are too few, retrain
    assert approximate.remove(ids[:10]) == 10 and approximate.ntotal == 3990
    assert approximate.id_checksum() == (3990, sum(ids[10:]))


def test_a_saved_index_is_loaded_as_is_while_sqlite_is_unchanged(store, tmp_path):
    fill(store, clustered(200))
    built, generation = rebuild(store)
    built.save(tmp_path, generation)

    loaded, rebuilt = load_or_rebuild(store)

    assert not rebuilt and loaded.ntotal == 200
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temp files left


def search_results(index: VectorIndex, queries: np.ndarray) -> list[list[int]]:
    return [h.ids.tolist() for h in index.search(queries, k=5)]


@pytest.mark.parametrize("damage", ["missing", "garbage", "truncated", "sidecar missing", "sidecar garbage"])
def test_a_missing_or_corrupt_file_is_rebuilt_from_sqlite_with_identical_results(store, tmp_path, damage):
    fill(store, clustered(300))
    built, generation = rebuild(store)
    built.save(tmp_path, generation)
    queries = clustered(20, seed=7)
    expected = search_results(built, queries)
    index_file, sidecar = tmp_path / INDEX_FILE, tmp_path / SIDECAR_FILE

    if damage == "missing":
        index_file.unlink()
    elif damage == "garbage":
        index_file.write_bytes(np.random.default_rng(0).bytes(index_file.stat().st_size))
    elif damage == "truncated":
        index_file.write_bytes(index_file.read_bytes()[:1000])
    elif damage == "sidecar missing":
        sidecar.unlink()
    else:
        sidecar.write_text("{not json")

    with pytest.raises(CollectionError, match="unusable"):
        VectorIndex.load(tmp_path)
    loaded, rebuilt = load_or_rebuild(store)
    assert rebuilt and search_results(loaded, queries) == expected


def plant_sidecar(sidecar, how: str) -> None:
    """Put something hostile where ``vectors.json`` was."""
    if how == "padded":  # valid JSON, the right keys, past SIDECAR_MAX
        saved = json.loads(sidecar.read_text())
        sidecar.write_text(json.dumps({**saved, "pad": "x" * vectors.SIDECAR_MAX}))
    elif how == "Infinity":  # JSON as Python reads it, never as lookalike writes it
        saved = json.loads(sidecar.read_text())
        sidecar.write_text(json.dumps({**saved, "generation": float("inf")}))
    elif how == "sparse":  # 64 MB of (sparse) zeros
        sidecar.write_bytes(b"")
        os.truncate(sidecar, 64 << 20)
    elif how == "empty":
        sidecar.write_bytes(b"")
    elif how == "/dev/zero":
        sidecar.unlink()
        sidecar.symlink_to("/dev/zero")
    else:
        sidecar.unlink()
        sidecar.mkdir()


@pytest.mark.parametrize("how", ["padded", "Infinity", "sparse", "empty", "/dev/zero", "folder"])
def test_a_hostile_sidecar_is_damage_read_no_further_than_a_sidecar_can_be(store, tmp_path, how):
    """A big file planted as ``vectors.json`` was read whole into memory at every open and at every
    search's poll of its generation (a padded one was even taken as current). Past ``SIDECAR_MAX`` it is
    damage, as a sidecar that is no JSON: the index is rebuilt from SQLite with the same answers."""
    fill(store, clustered(300))
    built, generation = rebuild(store)
    built.save(tmp_path, generation)
    queries = clustered(20, seed=7)
    expected = search_results(built, queries)
    plant_sidecar(tmp_path / SIDECAR_FILE, how)

    tracemalloc.start()
    try:
        error = within(30, lambda: VectorIndex.load(tmp_path))
        assert within(30, lambda: vectors.saved_generation(tmp_path)) is None
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert isinstance(error, CollectionError) and "unusable" in str(error) and "\n" not in str(error)
    assert peak < 4 * vectors.SIDECAR_MAX
    loaded, rebuilt = load_or_rebuild(store)
    assert rebuilt and search_results(loaded, queries) == expected


def test_a_stale_file_is_rebuilt_with_the_rows_written_since(store, tmp_path):
    fill(store, clustered(100))
    built, generation = rebuild(store)
    built.save(tmp_path, generation)
    newcomer = clustered(1, seed=99)
    (new_id,) = fill(store, newcomer, start=100)

    loaded, rebuilt = load_or_rebuild(store)

    assert rebuilt and loaded.ntotal == 101
    assert loaded.search(newcomer, k=1)[0].ids.tolist() == [new_id]


def test_a_reembedded_row_makes_the_file_stale_though_the_ids_are_the_same(store, tmp_path):
    x = clustered(50)
    fill(store, x)
    built, generation = rebuild(store)
    built.save(tmp_path, generation)
    changed = clustered(1, seed=5)
    assert fill(store, changed) == [1]  # /p/0.jpg re-embedded: same id, new vector

    loaded, rebuilt = load_or_rebuild(store)
    (hits,) = loaded.search(changed, k=1)
    assert rebuilt and hits.ids.tolist() == [1] and hits.scores[0] == pytest.approx(1.0, abs=1e-5)


def test_a_copy_follows_the_commits_it_takes_part_in_and_no_other(store, tmp_path):
    fill(store, clustered(50))
    copy, generation = rebuild(store)
    assert copy.generation == generation == store.generation
    with copy.changing_with(store):
        copy.add(fill(store, clustered(1, seed=7), start=50), clustered(1, seed=7))
    assert copy.generation == store.generation == generation + 1

    fill(store, clustered(1, seed=8), start=51)  # another process's commit: this copy did not take it
    with copy.changing_with(store):
        copy.add(fill(store, clustered(1, seed=9), start=52), clustered(1, seed=9))
    assert copy.generation == generation + 1 < store.generation  # behind, and stays behind

    current, _ = rebuild(store)
    with pytest.raises(NoSpace), current.changing_with(store):
        current.remove([1])
        raise NoSpace("the commit failed after the copy changed")
    assert current.generation == vectors.BEHIND


def test_saving_a_copy_behind_the_store_rebuilds_it_instead_of_stamping_it_current(store, tmp_path):
    """A long-lived process's copy lags behind another process's commits; saved stamped with the store's
    generation it would pass as current for good, here with a re-embedded row's old vector."""
    fill(store, clustered(50))
    stale, _ = rebuild(store)
    changed = clustered(1, seed=5)
    (row_id,) = fill(store, changed)  # /p/0.jpg re-embedded elsewhere: same id, new vector

    saved = save_current(stale, store)

    assert saved is not stale and saved.generation == store.generation
    assert vectors.saved_generation(store.directory) == store.generation
    loaded, rebuilt = load_or_rebuild(store)
    (hits,) = loaded.search(changed, k=1)
    assert not rebuilt and hits.ids.tolist() == [row_id] and hits.scores[0] == pytest.approx(1.0, abs=1e-5)
    assert save_current(loaded, store) is loaded  # a current copy is saved as it is


def test_a_crash_while_saving_leaves_the_previous_file_intact(store, tmp_path, monkeypatch):
    fill(store, clustered(100))
    built, generation = rebuild(store)
    built.save(tmp_path, generation)
    before = (tmp_path / INDEX_FILE).read_bytes()

    serialized = faiss.serialize_index(built.index)  # what the real write_index sends its writer

    def write_half_then_die(index, writer):
        writer(faiss.swig_ptr(serialized), 1, len(serialized) // 2)  # half of it, then killed
        raise KeyboardInterrupt

    monkeypatch.setattr(faiss, "write_index", write_half_then_die)
    with pytest.raises(KeyboardInterrupt):
        built.save(tmp_path, generation + 1)

    assert (tmp_path / INDEX_FILE).read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".tmp"] == []
    assert not load_or_rebuild(store)[1]


def test_an_index_without_vectors_needs_a_vector_size(store):
    with pytest.raises(CollectionError, match="no vectors yet"):
        rebuild(store)
    empty, _ = rebuild(store, dim=DIM)
    assert empty.ntotal == 0 and empty.dim == DIM


def test_auto_rebuilds_a_flat_file_as_ivf_once_the_collection_outgrows_it(store, tmp_path, monkeypatch):
    monkeypatch.setattr(vectors, "FLAT_MAX", IVF_MIN)
    fill(store, clustered(IVF_MIN))
    built, generation = rebuild(store)
    built.save(tmp_path, generation)
    assert built.kind == "flat"

    fill(store, clustered(IVF_MIN, seed=3), start=IVF_MIN)  # doubled: well past the threshold
    loaded, rebuilt = load_or_rebuild(store)
    assert rebuilt and loaded.kind == "ivf" and loaded.ntotal == 2 * IVF_MIN


def test_a_stale_ivf_file_keeps_its_trained_lists_and_gets_the_current_vectors(store, tmp_path):
    def centroids(index: VectorIndex) -> np.ndarray:
        ivf = faiss.extract_index_ivf(index.index)
        return ivf.quantizer.reconstruct_n(0, ivf.nlist)

    ids = fill(store, clustered(IVF_MIN + 100))
    built, generation = rebuild(store, "ivf")
    built.save(tmp_path, generation)
    store.delete(ids[:5])
    (new_id,) = fill(store, clustered(1, seed=42), start=IVF_MIN + 100)

    loaded, rebuilt = load_or_rebuild(store, "ivf")

    assert rebuilt and loaded.kind == "ivf"
    np.testing.assert_array_equal(centroids(loaded), centroids(built))  # no k-means again
    assert loaded.id_checksum() == store.id_checksum()
    assert loaded.search(clustered(1, seed=42), k=1, nprobe=64)[0].ids.tolist() == [new_id]


# --- damage inside the file, at the same size: caught by the sidecar's checksum --------------------


def flip_middle(path, count: int = 64) -> None:
    """Invert ``count`` bytes in the middle of ``path``: same size, same ids, wrong vectors."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + count] = bytes(b ^ 0xFF for b in data[middle : middle + count])
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_bytes_flipped_inside_the_file_at_the_same_size_are_rebuilt_with_correct_scores(
    store, tmp_path, kind
):
    x = clustered(IVF_MIN + 200 if kind == "ivf" else 300)
    fill(store, x)
    built, generation = rebuild(store, kind)
    built.save(tmp_path, generation)
    queries = x[:20]
    expected = search_results(built, queries)
    size = (tmp_path / INDEX_FILE).stat().st_size

    flip_middle(tmp_path / INDEX_FILE)

    assert (tmp_path / INDEX_FILE).stat().st_size == size
    with pytest.raises(CollectionError, match="checksum"):
        VectorIndex.load(tmp_path)
    loaded, rebuilt = load_or_rebuild(store, kind)
    assert rebuilt and loaded.kind == kind
    assert search_results(loaded, queries) == expected
    for got, want in zip(loaded.search(queries, k=10), built.search(queries, k=10), strict=True):
        np.testing.assert_allclose(got.scores, want.scores, atol=1e-6)
        assert got.scores.max() <= 1.0 + (0.01 if kind == "ivf" else 1e-5)  # ivf: 8-bit codes


def test_the_sidecar_names_its_checksum_and_the_file_it_covers(store, tmp_path):
    import json
    import zlib

    fill(store, clustered(100))
    built, generation = rebuild(store)
    built.save(tmp_path, generation)

    sidecar = json.loads((tmp_path / SIDECAR_FILE).read_text())
    assert sidecar["checksum"] == f"crc32:{zlib.crc32((tmp_path / INDEX_FILE).read_bytes()):08x}"


def test_a_sidecar_from_the_previous_release_without_a_checksum_is_accepted_until_the_next_save(
    store, tmp_path
):
    import json

    fill(store, clustered(100))
    built, generation = rebuild(store)
    built.save(tmp_path, generation)
    sidecar_path = tmp_path / SIDECAR_FILE
    old = json.loads(sidecar_path.read_text())
    del old["checksum"]
    sidecar_path.write_text(json.dumps(old))  # exactly what the previous release wrote

    loaded, rebuilt = load_or_rebuild(store)
    assert not rebuilt and loaded.ntotal == 100
    loaded.save(tmp_path, generation)
    assert "checksum" in json.loads(sidecar_path.read_text())


@pytest.mark.parametrize("checksum", ["xxh3:0123", "crc32:zz", 42, None])
def test_a_checksum_that_cannot_be_verified_is_damage(store, tmp_path, checksum):
    import json

    fill(store, clustered(100))
    built, generation = rebuild(store)
    built.save(tmp_path, generation)
    sidecar = json.loads((tmp_path / SIDECAR_FILE).read_text())
    sidecar["checksum"] = checksum
    (tmp_path / SIDECAR_FILE).write_text(json.dumps(sidecar))

    with pytest.raises(CollectionError, match="unusable"):
        VectorIndex.load(tmp_path)
    assert load_or_rebuild(store)[1]


# --- a full disk while saving: NoSpace, the previous files intact, no temp file left -----------------


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("failing", [INDEX_FILE, SIDECAR_FILE])
def test_a_full_disk_while_saving_is_no_space_and_keeps_the_previous_index(store, tmp_path, failing):
    fill(store, clustered(100))
    built, generation = rebuild(store)
    built.save(tmp_path, generation)
    before = {name: (tmp_path / name).read_bytes() for name in (INDEX_FILE, SIDECAR_FILE)}
    fill(store, clustered(50, seed=3), start=100)
    grown, new_generation = rebuild(store)
    # The temporary file the save writes first is a link to /dev/full: every write fails with ENOSPC.
    vectors._temp_path(tmp_path / failing).symlink_to("/dev/full")

    with pytest.raises(NoSpace) as caught:
        grown.save(tmp_path, new_generation)

    message = str(caught.value)
    assert "\n" not in message and "no space left" in message.lower() and str(tmp_path) in message
    assert {name: (tmp_path / name).read_bytes() for name in before} == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    loaded, _ = VectorIndex.load(tmp_path)
    assert loaded.ntotal == 100  # the previous index, whole and verified


def test_other_write_errors_are_not_disguised_as_a_full_disk(store, tmp_path):
    fill(store, clustered(20))
    built, generation = rebuild(store)
    vectors._temp_path(tmp_path / INDEX_FILE).mkdir()  # the temp name is taken by a folder: EISDIR
    with pytest.raises(OSError) as caught:
        built.save(tmp_path, generation)
    assert not isinstance(caught.value, NoSpace)

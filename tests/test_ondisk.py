"""The large layout (lookalike/index/ondisk.py) on small synthetic data: a few thousand 16-d vectors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import faiss
import numpy as np
import pytest

from lookalike.index import ondisk, vectors
from lookalike.index.ondisk import OnDiskIndex
from lookalike.index.store import NewImage, Store
from lookalike.index.vectors import IVF_MIN, ONDISK_MIN, VectorIndex, choose_kind, normalized
from tests.blocking import within

DIM = 16
N = 4000


def clustered(n: int, seed: int = 0, clusters: int = 40) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, DIM))
    return normalized(centres[rng.integers(0, clusters, n)] + 0.3 * rng.standard_normal((n, DIM)))


def chunks_of(ids: np.ndarray, x: np.ndarray, size: int = 1000):
    return lambda: ((ids[i:i + size], x[i:i + size]) for i in range(0, len(ids), size))


class Vectors:
    """A stand-in for SQLite's vectors: what ``fetch`` reads for re-ranking."""

    def __init__(self, ids: np.ndarray, x: np.ndarray) -> None:
        self.by_id = {int(i): v for i, v in zip(ids, x, strict=True)}

    def fetch(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        found = np.array([i for i in ids if int(i) in self.by_id], dtype=np.int64)
        return found, np.array([self.by_id[int(i)] for i in found], dtype=np.float32).reshape(-1, DIM)


def exact(ids: np.ndarray, x: np.ndarray, queries: np.ndarray, k: int = 10) -> np.ndarray:
    flat = faiss.IndexFlatIP(DIM)
    flat.add(x)
    return ids[flat.search(queries, k)[1]]


def recall(hits: list[vectors.Hits], truth: np.ndarray) -> float:
    return float(np.mean([len(set(h.ids.tolist()) & set(t.tolist())) / truth.shape[1]
                          for h, t in zip(hits, truth, strict=True)]))


@pytest.fixture(scope="module")
def data():
    x = clustered(N)
    ids = np.arange(N, dtype=np.int64) * 7 + 3  # row ids are not positions
    return ids, x


@pytest.fixture
def built(tmp_path, data, monkeypatch):
    monkeypatch.setattr(ondisk, "SEGMENT", 1500)  # several segments merged by merge_ondisk
    ids, x = data
    vi = OnDiskIndex.build(tmp_path, chunks_of(ids, x), len(ids), DIM)
    vi.fetch = Vectors(ids, x).fetch
    return vi


def test_recall_against_exact_search_comes_back_with_re_ranking(built, data):
    ids, x = data
    queries = clustered(200, seed=1)
    truth = exact(ids, x, queries)
    reranked = built.search(queries, 10)
    assert recall(reranked, truth) >= 0.95
    exact_scores = np.sort(x @ queries[0])[::-1][:3]
    np.testing.assert_allclose(reranked[0].scores[:3], exact_scores, atol=1e-5)  # cosine, not PQ estimates
    built.fetch = None
    assert recall(built.search(queries, 10), truth) < recall(reranked, truth)  # PQ alone is coarser
    assert built.ntotal == N and built.id_checksum() == (N, int(ids.sum()))
    assert sorted(built.ids().tolist()) == ids.tolist()


def test_removed_ids_are_hidden_by_tombstones_then_dropped_by_compaction(built, data):
    ids, x = data
    gone = ids[:500]
    assert built.remove(gone.tolist() + [10**9]) == 500  # an absent id is ignored
    assert built.remove(gone[:10].tolist()) == 0  # twice: nothing more
    found = {int(i) for h in built.search(x[:500], 10) for i in h.ids}
    assert not found & set(gone.tolist())
    assert built.ntotal == N - 500 and built.id_checksum() == (N - 500, int(ids[500:].sum()))
    before = [h.ids.tolist() for h in built.search(x[500:600], 10)]
    built.compact()
    assert built._tombs.size == 0 and built.ntotal == N - 500
    assert [h.ids.tolist() for h in built.search(x[500:600], 10)] == before


def test_a_replaced_vector_is_found_as_its_new_self_only(built, data):
    ids, x = data
    target, new = int(ids[5]), clustered(1, seed=9)[0]
    store = Vectors(ids, x)
    store.by_id[target] = new
    built.fetch = store.fetch
    built.remove([target])
    built.add([target], new[None])
    (hits,) = built.search(new[None], 3)
    assert hits.ids[0] == target and hits.scores[0] == pytest.approx(1.0, abs=1e-5)
    assert list(hits.ids).count(target) == 1  # not twice, though the base still holds its old code
    (old,) = built.search(x[5][None], 10)
    if target in old.ids:  # scored as what it is now
        assert old.scores[list(old.ids).index(target)] == pytest.approx(float(new @ x[5]), abs=1e-5)
    assert built.ntotal == N and built.remove([target]) == 1 and built.ntotal == N - 1


def test_a_saved_index_reloads_from_disk_with_its_delta_and_tombstones(built, data, tmp_path):
    ids, x = data
    extra_ids, extra = np.arange(10**6, 10**6 + 50, dtype=np.int64), clustered(50, seed=3)
    built.remove(ids[:20])
    built.add(extra_ids, extra)
    built.save(tmp_path, generation=7)
    sidecar = json.loads((tmp_path / vectors.SIDECAR_FILE).read_text())
    assert sidecar["kind"] == "ondisk" and sidecar["generation"] == 7 and sidecar["count"] == N - 20 + 50
    assert vectors.saved_generation(tmp_path) == 7
    loaded, side = VectorIndex.load(tmp_path)
    assert isinstance(loaded, OnDiskIndex) and side == sidecar
    loaded.fetch = built.fetch = Vectors(np.r_[ids, extra_ids], np.r_[x, extra]).fetch
    queries = np.r_[x[:30], extra[:10]]
    answers = [h.ids.tolist() for h in built.search(queries, 10)]
    assert [h.ids.tolist() for h in loaded.search(queries, 10)] == answers
    assert loaded.id_checksum() == built.id_checksum()


def test_a_damaged_small_file_is_refused(built, tmp_path):
    built.save(tmp_path, generation=1)
    header = next(tmp_path.glob("ondisk-*.faiss"))
    raw = bytearray(header.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    header.write_bytes(bytes(raw))
    with pytest.raises(vectors.CollectionError, match="checksum"):
        VectorIndex.load(tmp_path)


def test_a_fifo_in_place_of_a_small_file_is_refused_never_waited_on(built, tmp_path):
    """Even named by a sidecar that claims its size (0): FAISS and NumPy would open a FIFO and wait."""
    built.save(tmp_path, generation=1)
    sidecar = json.loads((tmp_path / vectors.SIDECAR_FILE).read_text())
    ids = next(tmp_path.glob("ondisk-*-ids.npy"))
    ids.unlink()
    os.mkfifo(ids)
    sidecar["ondisk"]["files"][ids.name] = {"size": 0, "checksum": None}
    (tmp_path / vectors.SIDECAR_FILE).write_text(json.dumps(sidecar))
    error = within(30, lambda: VectorIndex.load(tmp_path), fifo=ids)
    assert isinstance(error, vectors.CollectionError) and "not a regular file (FIFO)" in str(error)
    sidecar["ondisk"]["files"][ids.name] = {"size": 0, "checksum": "crc32:00000000"}
    (tmp_path / vectors.SIDECAR_FILE).write_text(json.dumps(sidecar))
    error = within(30, lambda: ondisk._file_crc(ids), fifo=ids)
    assert isinstance(error, OSError) and "not a regular file (FIFO)" in str(error)


@pytest.mark.parametrize("role", ["delta", "tombstones", ".ivfdata", ".faiss"])
def test_a_file_the_sidecar_names_outside_its_files_is_refused_never_waited_on(built, data, tmp_path, role):
    """The sidecar names the delta, the tombstones and (by the base's name) the header and lists; its
    ``files`` map gives each one's size and checksum. One named but not listed there was opened unchecked:
    a FIFO in its place hung every search (FAISS and NumPy wait for a writer)."""
    ids, x = data
    built.remove(ids[:20])
    built.add(np.arange(10**6, 10**6 + 50, dtype=np.int64), clustered(50, seed=3))
    built.save(tmp_path, generation=7)
    sidecar = json.loads((tmp_path / vectors.SIDECAR_FILE).read_text())
    info = sidecar["ondisk"]
    name = info[role] if role in ("delta", "tombstones") else info["base"] + role
    del info["files"][name]
    (tmp_path / vectors.SIDECAR_FILE).write_text(json.dumps(sidecar))
    error = within(30, lambda: VectorIndex.load(tmp_path))
    assert isinstance(error, vectors.CollectionError) and f"{name}: not listed among its files" in str(error)
    fifo = tmp_path / name
    fifo.unlink()
    os.mkfifo(fifo)
    error = within(30, lambda: VectorIndex.load(tmp_path), fifo=fifo)
    assert isinstance(error, vectors.CollectionError) and "unusable" in str(error)


@pytest.mark.parametrize("role", ["delta", "tombstones"])
@pytest.mark.parametrize("change", ["swapped for a FIFO", "gone"])
def test_a_small_file_changed_between_its_check_and_its_read_is_refused(built, data, tmp_path, monkeypatch,
                                                                        role, change):
    """The delta and tombstones are read through a descriptor checked again when opened: one replaced by a
    FIFO after the sidecar's checks (between the check and the read) is refused, one gone is damage."""
    ids, x = data
    built.remove(ids[:20])
    built.add(np.arange(10**6, 10**6 + 50, dtype=np.int64), clustered(50, seed=3))
    built.save(tmp_path, generation=7)
    changed = tmp_path / json.loads((tmp_path / vectors.SIDECAR_FILE).read_text())["ondisk"][role]
    read_base = ondisk._read_base

    def change_then_read_base(directory, name):
        changed.unlink()
        if change == "swapped for a FIFO":
            os.mkfifo(changed)
        return read_base(directory, name)

    monkeypatch.setattr(ondisk, "_read_base", change_then_read_base)
    error = within(30, lambda: VectorIndex.load(tmp_path), fifo=changed)
    assert isinstance(error, vectors.CollectionError) and "unusable" in str(error)
    reason = "not a regular file (FIFO)" if change == "swapped for a FIFO" else "No such file or directory"
    assert reason in str(error)


@pytest.mark.parametrize(("key", "value"), [("files", "names"), ("trained_count", "x"), ("version", 1.5)])
def test_a_sidecar_whose_layout_fields_have_the_wrong_shape_is_damage(built, tmp_path, key, value):
    """``files`` as a list was an AttributeError, a ``trained_count`` of text loaded and then raised at every
    search (asked whether it needs retraining), a ``version`` not whole at the next compaction: tracebacks,
    where a damaged sidecar is rebuilt from SQLite."""
    built.save(tmp_path, generation=1)
    sidecar = json.loads((tmp_path / vectors.SIDECAR_FILE).read_text())
    sidecar["ondisk"][key] = list(sidecar["ondisk"]["files"]) if value == "names" else value
    (tmp_path / vectors.SIDECAR_FILE).write_text(json.dumps(sidecar))
    with pytest.raises(vectors.CollectionError, match=f"unusable: .*{key}"):
        VectorIndex.load(tmp_path)


def test_compaction_at_save_rewrites_the_lists_and_deletes_the_old_files(built, data, tmp_path, monkeypatch):
    ids, x = data
    built.save(tmp_path, generation=1)
    first = {p.name for p in tmp_path.glob("ondisk-*")}
    monkeypatch.setattr(ondisk, "COMPACT_MIN", 100)
    built.remove(ids[:600])  # past COMPACT_FRACTION of the base
    built.save(tmp_path, generation=2)
    now = {p.name for p in tmp_path.glob("ondisk-*")}
    assert not now & first and any(n.endswith(".ivfdata") for n in now)
    loaded, _ = VectorIndex.load(tmp_path)
    assert loaded.ntotal == N - 600 and loaded._tombs.size == 0


def test_opening_maps_the_lists_without_reading_them(built, tmp_path):
    built.save(tmp_path, generation=1)
    ivfdata = next(tmp_path.glob("*.ivfdata"))
    script = textwrap.dedent(f"""
        import json, pathlib, sys
        from lookalike.index.vectors import VectorIndex
        vi, _ = VectorIndex.load({str(tmp_path)!r})
        mapped = rss = None
        lines = pathlib.Path("/proc/self/smaps").read_text().splitlines()
        for i, line in enumerate(lines):
            if line.endswith({ivfdata.name!r}):
                size = int(lines[i + 1].split()[1])
                rss = int(lines[i + 2].split()[1])
                mapped = size
        print(json.dumps([mapped, rss]))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    mapped_kib, rss_kib = json.loads(out.strip().splitlines()[-1])
    assert mapped_kib and mapped_kib * 1024 >= ivfdata.stat().st_size - 4096  # the whole file is mapped...
    assert rss_kib <= 4 < mapped_kib // 4  # ...and at most one page of it read


def fill(store: Store, x: np.ndarray) -> list[int]:
    return store.upsert([NewImage(f"/p/{i}.jpg", 1, 1.0, "d", 1, 1, "PNG", [], v) for i, v in enumerate(x)])


def test_conversion_flat_to_ondisk_to_flat_keeps_the_answers(tmp_path, data):
    _, x = data
    queries = clustered(50, seed=2)
    with Store.open(tmp_path) as store:
        fill(store, x)
        flat, generation = vectors.rebuild(store, "flat")
        flat.save(tmp_path, generation)
        want = [h.ids.tolist() for h in flat.search(queries, 10)]

        big, rebuilt = vectors.load_or_rebuild(store, "ondisk")  # a flat file, ondisk asked: rebuilt
        assert rebuilt and big.kind == "ondisk"
        big.save(tmp_path, generation)
        assert not (tmp_path / vectors.INDEX_FILE).exists()
        again, rebuilt = vectors.load_or_rebuild(store, "ondisk")
        assert not rebuilt and again.kind == "ondisk"
        got = again.search(queries, 10)
        assert recall(got, np.array(want)) >= 0.95
        np.testing.assert_allclose(got[0].scores, flat.search(queries[:1], 10)[0].scores, atol=1e-5)

        back, rebuilt = vectors.load_or_rebuild(store, "flat")
        assert rebuilt and back.kind == "flat"
        back.save(tmp_path, generation)
        assert not list(tmp_path.glob("ondisk-*"))
        assert [h.ids.tolist() for h in back.search(queries, 10)] == want


def test_the_kind_is_ondisk_when_asked_or_past_the_cut_over():
    assert choose_kind(IVF_MIN, "ondisk") == "ondisk"
    assert choose_kind(IVF_MIN - 1, "ondisk") == "flat"  # too few to train on
    assert choose_kind(ONDISK_MIN) == "ivf" and choose_kind(ONDISK_MIN + 1) == "ondisk"
    assert choose_kind(10 * ONDISK_MIN, "ivf") == "ivf"
    assert vectors.kind_suits("ivf", int(ONDISK_MIN * 1.2)) and not vectors.kind_suits("ivf", ONDISK_MIN * 2)
    assert vectors.kind_suits("ondisk", int(ONDISK_MIN * 0.8))
    assert not vectors.kind_suits("ondisk", ONDISK_MIN // 2)
    assert not vectors.kind_suits("ondisk", ONDISK_MIN * 2, "ivf")


def test_retraining_is_due_once_the_collection_has_grown_four_times(built):
    assert built.suits(N, "ondisk") and built.suits(4 * N, "ondisk")
    assert not built.suits(4 * N + 1, "ondisk") and not built.suits(N // 5, "ondisk")


def test_the_duplicate_self_search_scores_exactly_and_hides_removed_ids(built, data):
    from lookalike.index.duplicates import similar_pairs

    ids, x = data
    built.remove(ids[:10])
    live, live_x = ids[10:], x[10:]
    flat = VectorIndex.build(chunks_of(live, live_x), len(live), DIM, "flat")
    exact_pairs = {(p.a, p.b): p.similarity for p in similar_pairs(flat.pair_search(), live_x, live, 0.97)}
    found = similar_pairs(built.pair_search(), live_x, live, 0.97)
    assert len(exact_pairs) > 100
    assert {(p.a, p.b) for p in found} == set(exact_pairs)  # the threshold test on exact similarities
    np.testing.assert_allclose([p.similarity for p in found], [exact_pairs[p.a, p.b] for p in found],
                               atol=1e-5)
    sims, labels = built.pair_search().search(x[:10], 5)
    assert not np.isin(labels, ids[:10]).any() and np.all(np.diff(sims, axis=1) <= 0)


def test_faiss_says_nothing_on_standard_output_which_a_json_answer_owns(tmp_path, data, capfd, monkeypatch):
    """FAISS's C++ reports on on-disk lists with printf ("IO_FLAG_ONDISK_SAME_DIR: updating ondisk
    filename", "resizing"): written to standard output, it broke ``search --json`` and ``--csv``.
    Built, compacted, saved and loaded, the index leaves standard output as it found it."""
    monkeypatch.setattr(ondisk, "SEGMENT", 1500)
    ids, x = data
    vi = OnDiskIndex.build(tmp_path, chunks_of(ids, x), len(ids), DIM)
    vi.remove(ids[:20])
    vi.compact()
    vi.save(tmp_path, generation=1)
    VectorIndex.load(tmp_path)
    print("the answer")
    out, err = capfd.readouterr()
    assert out == "the answer\n"
    assert "ondisk" in err  # FAISS still says it, where messages go

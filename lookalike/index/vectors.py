"""The FAISS side of a collection: derived data for fast search, keyed by SQLite row ids.

Vectors are L2-normalised, so inner product is cosine similarity. The index file is a cache of what
SQLite holds: it is written atomically next to a small JSON sidecar naming the store ``generation``
it reflects, and when it is missing, stale or unreadable it is rebuilt from the stored vectors - no
image is embedded again.

The sidecar also holds the file's size and CRC-32, computed in the same pass as the write and checked
in the same pass as the read, so bytes damaged inside a file of the right size (which FAISS would load
and answer from, with scores like 2.9e29) count as unreadable too. CRC-32 rather than a cryptographic
hash: it is there to catch damage, and it is the fastest (docs/benchmarks.md, "FAISS file checksum").
A sidecar from before checksums (no ``checksum`` key) is still accepted on its other checks - refusing
it would make every reader rebuild a 1M-vector index until the next write - and the next save adds one.
A full disk while saving raises ``NoSpace`` and leaves the previous file and sidecar untouched.

Index policy, from bench/search.py (docs/benchmarks.md, "Search latency and recall"; 2 shared cores):
- ``flat``: exact search, one dot product per vector; single-query latency grows linearly, about
  0.3 us per 1280-d vector (28 ms at 100k, 570 ms at 1M), so exact is used up to ``FLAT_MAX``.
- ``ivf``: an inverted file with 8-bit scalar-quantized vectors (``IndexIVFScalarQuantizer``), about
  4*sqrt(n) lists trained by k-means on a sample, ``NPROBE`` lists visited per query. At 1M vectors:
  p50 2.0 ms, recall@10 0.986, 1.25 GiB (float IVF: 2.9 ms, 0.992, 4.9 GiB). HNSW matched the
  recall but took 84 s to build at 100k (IVF: 8 s) and cannot remove vectors, so it is not offered.
- ``ondisk``: the large layout (``lookalike/index/ondisk.py``): IVF-PQ with its inverted lists on
  disk, memory-mapped, candidates re-ranked exactly with the vectors SQLite holds; RAM stays at the
  quantizer and tables (docs/benchmarks.md, "On-disk IVF-PQ layout").
- ``auto`` (default): flat up to ``FLAT_MAX`` vectors, ivf beyond, ondisk beyond ``ONDISK_MIN``; an
  existing index is kept until the collection is 25% past the threshold the other way, so a few adds
  or deletes around it do not rebuild back and forth. ``ivf`` and ``ondisk`` need ``IVF_MIN`` vectors
  to train; below that, flat is used.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import os
import re
import zlib
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple

import faiss
import numpy as np

from lookalike.errors import CollectionError, NoSpace
from lookalike.index.store import Store
from lookalike.paths import display, open_regular_file, read_regular

IndexKind = Literal["flat", "ivf", "ondisk"]
INDEX_TYPES = ("auto", "flat", "ivf", "ondisk")
KIND_ORDER = ("flat", "ivf", "ondisk")  # by the size each is for
INDEX_FILE = "vectors.faiss"
SIDECAR_FILE = "vectors.json"
SIDECAR_MAX = 1 << 20
"""The most of ``vectors.json`` ever read: a sidecar is a few hundred bytes (the large layout's, naming its
files, a few KB). A bigger file there is no sidecar of ours (planted, or a copy gone wrong): damaged, like one
that is no JSON, rather than read whole into memory at every open and at every search's generation poll."""

FLAT_MAX = 15_000  # auto: exact search up to here, about 4-5 ms per query
ONDISK_MIN = 4_000_000  # auto: the on-disk layout beyond here (IVF-SQ8 would hold 5 GB of RAM)
NPROBE = 32  # lists visited per query: recall@10 0.987 at 100k, 0.986 at 1M in the benchmark
TRAIN_PER_LIST = 40  # k-means sample size per list: FAISS warns below 39
MIN_NLIST, MAX_NLIST = 64, 8192
IVF_MIN = TRAIN_PER_LIST * MIN_NLIST

Chunks = Iterable[tuple[np.ndarray, np.ndarray]]
_LEGACY = object()  # a sidecar from before checksums: no "checksum" key


class Hits(NamedTuple):
    """One query's neighbours, best first: cosine similarities and SQLite row ids."""

    scores: np.ndarray
    ids: np.ndarray


def choose_kind(count: int, requested: str = "auto") -> IndexKind:
    """The index kind for ``count`` vectors: the request, or by size when it is ``auto``."""
    if requested not in INDEX_TYPES:
        raise CollectionError(f"unknown index type {requested!r}; choose one of {', '.join(INDEX_TYPES)}")
    if requested == "flat" or count < IVF_MIN:
        return "flat"
    if requested == "ondisk" or (requested == "auto" and count > ONDISK_MIN):
        return "ondisk"
    return "ivf" if requested == "ivf" or count > FLAT_MAX else "flat"


def nlist_for(count: int) -> int:
    """About 4*sqrt(n) lists (FAISS's guidance); fewer when there are not ``TRAIN_PER_LIST`` per list."""
    target = 1 << round(np.log2(max(4 * np.sqrt(max(count, 1)), 1)))
    return int(np.clip(min(target, count // TRAIN_PER_LIST), MIN_NLIST, MAX_NLIST))


def normalized(vectors: np.ndarray) -> np.ndarray:
    """A float32 C-contiguous, L2-normalised copy, as FAISS wants it."""
    x = np.array(vectors, dtype=np.float32, order="C", ndmin=2, copy=True)
    faiss.normalize_L2(x)
    return x


def _index_ids(index: faiss.Index) -> np.ndarray:
    """Every id an index holds, read from its id map or its inverted lists."""
    if isinstance(index, faiss.IndexIDMap):
        return faiss.vector_to_array(index.id_map).astype(np.int64)
    ivf = faiss.extract_index_ivf(index)
    invlists = ivf.invlists
    parts = []
    for list_no in range(ivf.nlist):
        size = invlists.list_size(list_no)
        if size:
            parts.append(faiss.rev_swig_ptr(invlists.get_ids(list_no), size).copy())
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temp_path(path: Path) -> Path:
    """Where ``path`` is written before it is renamed into place: same directory, hidden, per process."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


class _Crc32:
    """CRC-32 of a byte stream, fed chunk by chunk (zlib's: ~3.8 GB/s here, 4x SHA-256)."""

    name = "crc32"

    def __init__(self) -> None:
        self.value = 0

    def update(self, chunk: bytes) -> None:
        self.value = zlib.crc32(chunk, self.value)

    def hexdigest(self) -> str:
        return f"{self.name}:{self.value:08x}"


def _write_index_checksummed(index: faiss.Index, path: Path) -> str:
    """``faiss.write_index`` through Python: one pass writes the file and computes its checksum.

    Writes fail as Python's OSError (ENOSPC and all), not as FAISS's RuntimeError with text.
    """
    crc = _Crc32()
    with open(path, "wb") as out:

        def write(chunk: bytes) -> int:
            crc.update(chunk)
            out.write(chunk)
            return len(chunk)

        faiss.write_index(index, faiss.PyCallbackIOWriter(write))
    return crc.hexdigest()


def _read_index_checksummed(path: Path) -> tuple[faiss.Index, str]:
    """``faiss.read_index`` through Python, computing the file's checksum in the same single pass; a FIFO
    or device in its place is refused (:func:`~lookalike.paths.open_regular_file`), never waited on."""
    crc = _Crc32()
    with open_regular_file(path) as source:

        def read(size: int) -> bytes:
            chunk = source.read(size)
            crc.update(chunk)
            return chunk

        index = faiss.read_index(faiss.PyCallbackIOReader(read))
        rest = source.read()  # FAISS need not read to the end; the checksum covers the whole file
        crc.update(rest)
    return index, crc.hexdigest()


def _no_space(error: OSError, directory: Path) -> NoSpace | None:
    """The one-line error for a full disk or quota, or None for any other OSError."""
    if error.errno not in (errno.ENOSPC, errno.EDQUOT):
        return None
    return NoSpace(
        f"{os.strerror(error.errno)} while saving the search index in {display(directory)}: "
        "free some space and run again (the previous index and everything committed are intact)"
    )


def remove_dead_temps(directory: Path, pattern: str) -> None:
    """Delete the temporary files in ``directory`` matching ``pattern`` (``.NAME.PID.tmp``,
    :func:`_temp_path`) whose writer is gone: one killed while saving (SIGKILL runs no ``finally``) left
    them behind, as large as what it saved, and nothing else would ever remove them."""
    for path in directory.glob(pattern):
        pid = path.name.rsplit(".", 2)[-2]
        if not (pid.isdigit() and _alive(int(pid))):
            path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _save_atomically(directory: Path, files: Sequence[tuple[str, Callable[[Path], None]]]) -> None:
    """Write every file to a temporary name, fsync them all, then rename each over its final name.

    Nothing is renamed before every temporary file is complete on disk, so a failed write (a full disk
    included) leaves all the previous files exactly as they were, and no temporary file behind; what a
    writer killed while saving left is removed first. A crash
    between the renames leaves a new index next to an old sidecar, which ``load`` refuses (size and
    checksum), so it is rebuilt from SQLite.
    """
    temps = [(_temp_path(directory / name), directory / name, write) for name, write in files]
    for name, _ in files:
        remove_dead_temps(directory, f".{glob.escape(name)}.*.tmp")
    try:
        for tmp, _, write in temps:
            write(tmp)
            _fsync(tmp)
        for tmp, final, _ in temps:
            try:
                os.replace(tmp, final)
            except IsADirectoryError:  # a folder at a file's place: a traceback at every save
                raise CollectionError(f"{display(final)} is a folder, where the index keeps a file of its "
                                      "own: move it away") from None
        _fsync(directory)  # make the renames themselves durable
    except OSError as error:
        full = _no_space(error, directory)
        if full is not None:
            raise full from None
        raise
    finally:
        for tmp, _, _ in temps:
            if tmp.is_symlink() or tmp.is_file():
                tmp.unlink(missing_ok=True)


BEHIND = -1
"""The generation of a copy that reflects no known state of the store: built from vectors handed to it, or
left half changed by a failed commit. Never the store's own (it counts from 0), so saved it is rebuilt."""


class StoreCopy:
    """What every in-memory FAISS copy (:class:`VectorIndex`, the ondisk layout's ``OnDiskIndex``) knows of
    the store it mirrors: ``generation``, the store generation whose rows it holds.

    A long-lived process's copy can lag behind another process's commits; changed and then saved stamped
    with the store's generation, it would pass for current in every process for good (an edited photo
    searched by its old vector). So a copy moves to a new generation only with a commit it took part in,
    from the generation it held (:meth:`changing_with`), and :func:`save_current` rebuilds a copy behind
    the store from SQLite rather than stamp it.
    """

    generation: int = BEHIND

    @contextlib.contextmanager
    def changing_with(self, store: Store) -> Iterator[None]:
        """Around one store commit whose rows the block also adds to or removes from this copy (the caller
        holds the writer lock: no other commit comes between). A copy that reflected the store before the
        commit reflects it after; one behind stays behind; a block that fails leaves it behind."""
        before = store.generation
        try:
            yield
        except BaseException:
            self.generation = BEHIND
            raise
        if self.generation == before:
            self.generation = store.generation


class VectorIndex(StoreCopy):
    """A FAISS index over normalised vectors whose ids are SQLite row ids."""

    def __init__(self, index: faiss.Index, kind: IndexKind) -> None:
        self.index = index
        self.kind = kind

    # -- building ----------------------------------------------------------------------------------

    @classmethod
    def empty(cls, dim: int, kind: IndexKind = "flat", train: np.ndarray | None = None,
              nlist: int = MIN_NLIST) -> VectorIndex:
        """A new index; ``ivf`` learns its ``nlist`` lists from ``train`` (~``TRAIN_PER_LIST`` per list)."""
        if kind == "flat":
            return cls(faiss.IndexIDMap(faiss.IndexFlatIP(dim)), "flat")
        if train is None or len(train) < nlist:
            raise CollectionError(f"an ivf index with {nlist} lists needs at least {nlist} training vectors")
        index = faiss.IndexIVFScalarQuantizer(
            faiss.IndexFlatIP(dim), dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
        )
        index.cp.niter = 10  # the benchmark's setting: recall is fine, training 2.5x faster than 25
        index.train(normalized(train))
        return cls(index, "ivf")

    @classmethod
    def build(cls, chunks: Callable[[], Chunks], count: int, dim: int, kind: str = "auto",
              seed: int = 0) -> VectorIndex:
        """Build from (ids, vectors) chunks; ivf calls ``chunks`` twice: a training sample, then all."""
        chosen, nlist, train = choose_kind(count, kind), nlist_for(count), None
        if chosen == "ondisk":
            raise CollectionError("the ondisk layout is built in a directory: see OnDiskIndex.build")
        if chosen == "ivf":  # a uniform sample of ~TRAIN_PER_LIST vectors per list, chunk by chunk
            keep = min(1.0, TRAIN_PER_LIST * nlist / count)
            rng = np.random.default_rng(seed)
            train = np.concatenate([v[rng.random(len(v)) < keep] for _, v in chunks()])
        vi = cls.empty(dim, chosen, train, nlist)
        for ids, vectors in chunks():
            vi.add(ids, vectors)
        return vi

    # -- changing ----------------------------------------------------------------------------------

    def add(self, ids: np.ndarray | Sequence[int], vectors: np.ndarray) -> None:
        """Add vectors under their row ids; a re-embedded image must be ``remove``d first."""
        if len(ids):
            self.index.add_with_ids(normalized(vectors), np.asarray(ids, dtype=np.int64))

    def refill(self, chunks: Callable[[], Chunks]) -> None:
        """Drop every vector and add ``chunks()`` again, keeping what the index learnt (ivf lists)."""
        self.index.reset()
        for ids, vectors in chunks():
            self.add(ids, vectors)

    def remove(self, ids: Iterable[int]) -> int:
        """Remove ids (absent ones are ignored); returns how many were removed."""
        batch = np.fromiter((int(i) for i in ids), dtype=np.int64)
        return int(self.index.remove_ids(faiss.IDSelectorBatch(batch))) if len(batch) else 0

    # -- reading -----------------------------------------------------------------------------------

    @property
    def dim(self) -> int:
        return self.index.d

    @property
    def ntotal(self) -> int:
        return self.index.ntotal

    def ids(self) -> np.ndarray:
        return _index_ids(self.index)

    def pair_search(self) -> faiss.Index:
        """What a duplicate self-search calls: the FAISS index itself, its scores exact or SQ8 (as
        ``OnDiskIndex.pair_search``'s are exact rather than PQ)."""
        return self.index

    def id_checksum(self) -> tuple[int, int]:
        """(count, sum of ids): compared with ``Store.id_checksum`` to prove both hold the same set."""
        ids = self.ids()
        return len(ids), int(ids.sum())

    def suits(self, count: int, requested: str = "auto") -> bool:
        """Whether this index is still the right kind and shape for a collection of ``count`` vectors.

        With ``auto`` the kind may lag 25% behind the threshold (hysteresis); an ivf index is retrained
        once its list count is off by more than 2x from ideal, i.e. the collection grew or shrank ~4x.
        """
        if not kind_suits(self.kind, count, requested):
            return False
        if self.kind == "ivf":
            nlist = faiss.extract_index_ivf(self.index).nlist
            return nlist_for(count) // 2 <= nlist <= 2 * nlist_for(count)
        return True

    def search(self, queries: np.ndarray, k: int = 10, *, exclude: Sequence[Collection[int]] | None = None,
               min_score: float | None = None, nprobe: int | None = None) -> list[Hits]:
        """The ``k`` nearest stored vectors of each query, best first.

        ``exclude`` gives, per query, ids to leave out (e.g. the query image itself); ``min_score``
        drops neighbours below a cosine similarity. Either may leave fewer than ``k`` hits.
        """
        q = normalized(queries)
        if exclude is not None and len(exclude) != len(q):
            raise ValueError("exclude needs one collection of ids per query")
        if self.ntotal == 0 or k <= 0:
            return [Hits(np.empty(0, np.float32), np.empty(0, np.int64)) for _ in q]
        extra = max((len(e) for e in exclude), default=0) if exclude else 0
        params = None
        if self.kind == "ivf":
            params = faiss.SearchParametersIVF(nprobe=nprobe or NPROBE)
        scores, ids = self.index.search(q, min(k + extra, self.ntotal), params=params)
        hits = []
        for i, (row_scores, row_ids) in enumerate(zip(scores, ids, strict=True)):
            keep = row_ids >= 0
            if exclude:
                keep &= ~np.isin(row_ids, np.fromiter(exclude[i], dtype=np.int64))
            if min_score is not None:
                keep &= row_scores >= min_score
            hits.append(Hits(row_scores[keep][:k], row_ids[keep][:k]))
        return hits

    # -- files ---------------------------------------------------------------------------------------

    def save(self, directory: str | Path, generation: int) -> None:
        """Write the index and its sidecar atomically; ``generation`` is the store state it reflects.

        The sidecar carries the index file's size and checksum, verified by ``load``. A full disk
        or quota raises ``NoSpace`` and leaves the previous index and sidecar as they were.
        """
        directory = Path(directory)
        written: dict[str, object] = {}

        def write_index(tmp: Path) -> None:
            written["checksum"] = _write_index_checksummed(self.index, tmp)
            written["file_size"] = tmp.stat().st_size

        def write_sidecar(tmp: Path) -> None:
            count, id_sum = self.id_checksum()
            sidecar = {"generation": generation, "kind": self.kind, "dim": self.dim, "count": count,
                       "id_sum": id_sum, **written}
            tmp.write_text(json.dumps(sidecar))

        _save_atomically(directory, [(INDEX_FILE, write_index), (SIDECAR_FILE, write_sidecar)])
        from lookalike.index.ondisk import remove_stale

        remove_stale(directory)  # the large layout's files, after a conversion back to the small one

    @classmethod
    def load(cls, directory: str | Path) -> tuple[VectorIndex, dict]:
        """Read the index and its sidecar; raises ``CollectionError`` when either is missing or damaged, or
        is no regular file (a FIFO there hung every search, waiting for a writer).

        Damaged means anything the sidecar disagrees with: size, checksum (computed while the file is
        read, so damage inside a file of the right size is caught too), kind, dimension, id set. A
        sidecar written before checksums existed (no ``checksum`` key) is accepted on the other checks;
        the next save adds one.
        """
        directory = Path(directory)
        try:
            sidecar = _read_sidecar(directory)
            if isinstance(sidecar, dict) and sidecar.get("kind") == "ondisk":
                from lookalike.index.ondisk import OnDiskIndex

                return OnDiskIndex.load(directory, sidecar), sidecar  # type: ignore[return-value]
            if (directory / INDEX_FILE).stat().st_size != sidecar["file_size"]:
                raise ValueError("file size differs from its sidecar")
            expected = sidecar.get("checksum", _LEGACY)
            if expected is not _LEGACY and not (isinstance(expected, str) and
                                                re.fullmatch(r"crc32:[0-9a-f]{8}", expected)):
                raise ValueError(f"unknown checksum {expected!r} in its sidecar")
            index, actual = _read_index_checksummed(directory / INDEX_FILE)
            if expected is not _LEGACY and actual != expected:
                raise ValueError(f"checksum {actual} differs from its sidecar's {expected}: damaged")
            vi = cls(index, sidecar["kind"])
            if vi.kind not in ("flat", "ivf") or vi.dim != sidecar["dim"]:
                raise ValueError("kind or dimension differs from its sidecar")
            if vi.id_checksum() != (sidecar["count"], sidecar["id_sum"]):
                raise ValueError("ids differ from its sidecar")
        except (OSError, RuntimeError, ValueError, KeyError, TypeError) as e:
            raise CollectionError(f"FAISS index in {directory} unusable: {e}") from None
        return vi, sidecar


def _read_sidecar(directory: Path) -> Any:
    """The parsed ``vectors.json`` of ``directory``: ValueError past ``SIDECAR_MAX`` bytes or when it is no
    JSON, OSError when it cannot be read (:class:`~lookalike.paths.NotRegular` for a FIFO or device).

    NaN and Infinity, which Python's JSON reads but a sidecar never holds, are damage too: a generation
    of Infinity made ``saved_generation`` raise OverflowError at every search."""
    raw = read_regular(directory / SIDECAR_FILE, SIDECAR_MAX + 1)
    if len(raw) > SIDECAR_MAX:
        raise ValueError(f"{SIDECAR_FILE} is larger than any sidecar ({SIDECAR_MAX} bytes)")
    return json.loads(raw, parse_constant=_no_constant)


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} in {SIDECAR_FILE}")


def store_chunks(store: Store, chunk: int = 20_000) -> Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]]:
    """The store's vectors as a re-iterable chunk source for ``VectorIndex.build``."""
    return lambda: store.iter_vectors(chunk)


def rebuild(store: Store, kind: str = "auto", dim: int | None = None) -> tuple[VectorIndex, int]:
    """Build the FAISS index from the vectors in SQLite; returns it with the generation it reflects."""
    with store.snapshot():  # one consistent state even while another process writes
        generation = store.generation
        dim = store.vector_size or dim
        if dim is None:
            raise CollectionError(f"the index in {store.directory} has no vectors yet and no vector size")
        count = store.count()
        if choose_kind(count, kind) == "ondisk":
            from lookalike.index.ondisk import OnDiskIndex

            vi = _with_fetch(OnDiskIndex.build(store.directory, store_chunks(store), count, dim), store)
        else:
            vi = VectorIndex.build(store_chunks(store), count, dim, kind)
    vi.generation = generation
    return vi, generation  # type: ignore[return-value]


def save_current(index: VectorIndex, store: Store, kind: str = "auto") -> VectorIndex:
    """Save ``index`` as the FAISS file of ``store`` at its generation (the caller holds the writer lock);
    returns the copy saved. A copy behind the store (another process committed since it was read, or a
    change of it failed) is rebuilt from SQLite first, never stamped current; so is one of a kind the
    size no longer calls for."""
    count = store.count()
    if index.generation != store.generation or (count and not index.suits(count, kind)):
        index, _ = rebuild(store, kind, index.dim)
    if count or store.vector_size is not None:
        index.save(store.directory, index.generation)
    return index


def load_or_rebuild(store: Store, kind: str = "auto", dim: int | None = None) -> tuple[VectorIndex, bool]:
    """The FAISS index matching ``store``: the saved file when current, else rebuilt (not saved).

    Current means: same generation, same id set (count and sum), and the right kind for the size.
    A stale but readable file of the right kind keeps its trained ivf lists and is only refilled from
    SQLite: k-means is most of an ivf build (minutes at 1M vectors), the vectors are not.
    Returns (index, rebuilt); a writer saves a rebuilt index, a reader just uses it.
    """
    with store.snapshot():
        generation, checksum = store.generation, store.id_checksum()
    try:
        vi, sidecar = VectorIndex.load(store.directory)
    except CollectionError:
        return rebuild(store, kind, dim)[0], True
    if not vi.suits(checksum[0], kind):
        return rebuild(store, kind, dim)[0], True
    rebuilt = (sidecar["generation"], (sidecar["count"], sidecar["id_sum"])) != (generation, checksum)
    if rebuilt:
        with store.snapshot():
            generation = store.generation
            vi.refill(store_chunks(store))
    vi.generation = generation
    return _with_fetch(vi, store), rebuilt


def kind_suits(kind: str, count: int, requested: str = "auto") -> bool:
    """Whether an index of ``kind`` may stay for ``count`` vectors: the kind asked, or with ``auto`` one
    that lags at most 25% behind the threshold between it and the kind the size calls for."""
    wanted = choose_kind(count, requested)
    if kind == wanted:
        return True
    if requested != "auto" or count < IVF_MIN or kind not in KIND_ORDER:
        return False
    bound = ONDISK_MIN if "ondisk" in (kind, wanted) else FLAT_MAX
    if KIND_ORDER.index(kind) < KIND_ORDER.index(wanted):
        return count <= bound * 1.25
    return count >= bound * 0.75


def store_fetch(store: Store) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The stored float vectors of some ids, for the large layout's exact re-ranking of candidates."""

    def fetch(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows = store.get_many([int(i) for i in ids], vector=True)
        if not rows:
            return np.empty(0, np.int64), np.empty((0, store.vector_size or 0), np.float32)
        return np.array([r.id for r in rows], dtype=np.int64), np.stack([r.vector for r in rows])

    return fetch


def _with_fetch(vi: VectorIndex, store: Store) -> VectorIndex:
    if vi.kind == "ondisk":
        vi.fetch = store_fetch(store)  # type: ignore[attr-defined]
    return vi


def saved_generation(directory: str | Path) -> int | None:
    """The store generation the saved FAISS file reflects, from its sidecar alone (cheap to poll)."""
    try:
        return int(_read_sidecar(Path(directory))["generation"])
    except (OSError, ValueError, KeyError, TypeError):
        return None

"""The large layout: IVF-PQ with its inverted lists on disk, memory-mapped at search, re-ranked exactly.

For collections past what the small layout (``vectors.py``: flat, then IVF-SQ8 in RAM at ~1.3 KB a
vector) holds comfortably. Each vector costs ``PQ_M`` bytes of code and 8 bytes of id *on disk*; RAM
holds only the OPQ rotation, the coarse quantizer and the PQ tables (tens of MB), plus the pages of
the lists a query touches. Measured in docs/benchmarks.md, "On-disk IVF-PQ layout" (bench/ondisk.py).

- **Training** once on a uniform sample, as autofaiss chooses: ``OPQ64_256,IVF{nlist}_HNSW32,PQ64``
  (an HNSW coarse quantizer once there are ``HNSW_NLIST`` lists or more, a flat one below; plain 4-bit
  PQ without OPQ when the sample is too small for 256 centroids per sub-quantizer). ``suits`` asks for
  a retraining when the collection has grown (or shrunk) ``RETRAIN_GROWTH`` times since.
- **Building** encodes the vectors chunk by chunk into segments (``SEGMENT`` vectors each, one faiss
  file per segment, memory-mapped), merged by ``faiss.contrib.ondisk.merge_ondisk`` into one
  ``.ivfdata`` file: the *base*.
- **Changes** between merges: added vectors are encoded into a small *delta* kept in RAM and saved
  as codes (``.npz``); removed (and replaced) ids of the base become *tombstones*, hidden at search
  by an ``IDSelector``. Search runs over base and delta stacked (``HStackInvertedLists``): one
  coarse assignment, one scan. ``save`` compacts - rewrites the lists without the tombstones and with
  the delta - once the delta or the tombstones pass ``COMPACT_FRACTION`` of the base.
- **Search** asks PQ for ``RERANK`` x k candidates, then scores them exactly with the float vectors
  from ``fetch`` (SQLite today, float16 shards later): PQ alone finds the neighbourhood, the exact
  dot products put it in order, which is where recall@10 comes back. Without ``fetch`` the scores are
  PQ estimates. The duplicate self-search goes through ``pair_search`` (``PAIR_RERANK`` x k, exact
  too): PQ estimates move pairs across the 0.64 threshold (docs/benchmarks.md: PQ alone found 14% of
  the planted pairs, re-ranked all of them).
- **Files** (next to the collection's ``vectors.json`` sidecar, which names them and is renamed into
  place last, so a crash leaves the previous set intact): ``ondisk-<tag>-<n>.faiss`` (the index with an
  on-disk list header), ``.ivfdata`` (the lists), ``-ids.npy`` (the base's ids, sorted, memory-mapped),
  ``-delta-<g>.npz`` and ``-tomb-<g>.npy``. Every file is written under a new name; the sidecar holds
  each one's size, and a CRC-32 of each except the ``.ivfdata`` (size only: checking it would read
  gigabytes at every open). Files no sidecar names are deleted by the writer after each save.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import secrets
import stat
import sys
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from pathlib import Path

import faiss
import numpy as np
from faiss.contrib.ondisk import merge_ondisk

from lookalike.errors import CollectionError
from lookalike.index.vectors import (
    INDEX_FILE,
    SIDECAR_FILE,
    Chunks,
    Hits,
    StoreCopy,
    _Crc32,
    _fsync,
    _save_atomically,
    kind_suits,
    normalized,
    remove_dead_temps,
)
from lookalike.paths import NotRegular, open_regular_file

PREFIX = "ondisk-"
NPROBE = 64  # lists visited per query; see docs/benchmarks.md
RERANK = 10  # candidates re-scored exactly per neighbour asked
PAIR_RERANK = 4  # the same for a duplicate self-search, whose k is 32+ (2 sufficed in docs/benchmarks.md)
RERANK_BATCH = 65_536  # candidates fetched and re-scored at a time in a bulk scan (~320 MB of float32)
PQ_M = 64  # bytes of PQ code per vector (1280-d: OPQ rotates to 256-d, 64 sub-vectors of 4 dims)
HNSW_NLIST = 4096  # an HNSW coarse quantizer from this many lists up (it also speeds k-means up)
TRAIN_PER_LIST = 30  # k-means points per list (FAISS warns below 39; recall is unchanged at 30)
MAX_TRAIN = 250_000  # cap on the training sample: k-means time grows with sample x lists
PQ_TRAIN_8BIT = 10_000  # 256 centroids per sub-quantizer need ~39 x 256 points; 4-bit PQ below that
SEGMENT = 1_000_000  # vectors per segment while building
COMPACT_FRACTION = 0.1  # compact when delta or tombstones pass this share of the base...
COMPACT_MIN = 50_000  # ...and this many vectors
RETRAIN_GROWTH = 4  # retrain once the collection has grown or shrunk this many times since training

Fetch = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]  # ids -> (found ids, float vectors)
_LAYOUT_FIELDS = {"files": dict, "version": int, "trained_count": int, "base_count": int, "base_id_sum": int}
"""The sidecar's fields of the layout, by the type every use of them needs."""


_CHATTER = threading.RLock()


@contextlib.contextmanager
def _faiss_chatter_to_stderr() -> Iterator[None]:
    """FAISS's C++ reports on on-disk lists with ``printf`` ("IO_FLAG_ONDISK_SAME_DIR: updating ondisk
    filename", "resizing ... to N bytes"): on standard output, which a ``--json`` or ``--csv`` answer owns
    and a pipe reads. Standard output is standard error while FAISS works on them (C's buffers flushed
    before it is given back, so nothing written meanwhile lands on it later)."""
    with _CHATTER:
        sys.stdout.flush()
        saved = os.dup(1)
        os.dup2(2, 1)
        try:
            yield
        finally:
            ctypes.CDLL(None).fflush(None)
            os.dup2(saved, 1)
            os.close(saved)


def nlist_for(count: int) -> int:
    """About 4*sqrt(n) lists, a power of two; no fewer than 64 points per list for small collections."""
    target = 1 << round(np.log2(max(4 * np.sqrt(max(count, 1)), 1)))
    return int(np.clip(min(target, max(count // 64, 16)), 16, 1 << 18))


def factory_for(count: int, dim: int, train_size: int) -> str:
    """The ``index_factory`` string for ``count`` vectors of ``dim``, trained on ``train_size`` points."""
    nlist = nlist_for(count)
    coarse = f"IVF{nlist}_HNSW32" if nlist >= HNSW_NLIST else f"IVF{nlist}"
    if train_size >= PQ_TRAIN_8BIT and dim >= 4 * PQ_M:
        return f"OPQ{PQ_M}_{4 * PQ_M},{coarse},PQ{PQ_M}"
    m = max(d for d in (1, 2, 4, 8, 16, 32, 64) if dim % d == 0 and d <= max(dim // 2, 1))
    return f"{coarse},PQ{m}x{8 if train_size >= PQ_TRAIN_8BIT else 4}"


def _ivf(index: faiss.Index) -> faiss.IndexIVF:
    return faiss.extract_index_ivf(index)


def _file_crc(path: Path) -> str:
    crc = _Crc32()
    with open_regular_file(path) as f:
        while chunk := f.read(1 << 22):
            crc.update(chunk)
    return crc.hexdigest()


def _list_numbers(codes: np.ndarray, coarse_size: int) -> np.ndarray:
    """The inverted list of each standalone code (``sa_encode``): its first bytes, little-endian."""
    nos = np.zeros(len(codes), dtype=np.int64)
    for byte in range(coarse_size):
        nos |= codes[:, byte].astype(np.int64) << (8 * byte)
    return nos


def _fill(invlists: faiss.InvertedLists, ids: np.ndarray, codes: np.ndarray, coarse_size: int) -> None:
    """Append standalone codes to ``invlists``, grouped by list."""
    if not len(ids):
        return
    nos = _list_numbers(codes, coarse_size)
    order = np.argsort(nos, kind="stable")
    nos, ids = nos[order], np.ascontiguousarray(ids[order])
    payload = np.ascontiguousarray(codes[order, coarse_size:])
    starts = np.flatnonzero(np.r_[True, nos[1:] != nos[:-1]])
    ends = np.r_[starts[1:], len(nos)]
    for s, e in zip(starts, ends, strict=True):
        invlists.add_entries(int(nos[s]), int(e - s), faiss.swig_ptr(ids[s:e]), faiss.swig_ptr(payload[s:e]))


class OnDiskIndex(StoreCopy):
    """IVF-PQ over normalised vectors whose ids are SQLite row ids, lists on disk; see the module doc."""

    kind = "ondisk"

    def __init__(self, directory: Path, index: faiss.Index, meta: dict, base_ids: np.ndarray,
                 delta_ids: np.ndarray, delta_codes: np.ndarray, tombs: np.ndarray) -> None:
        self.directory = Path(directory)
        self.meta = meta  # factory, tag, trained_count, base files, base count and id sum
        self.fetch: Fetch | None = None
        self._index = index  # the trained index; its lists are base + delta, stacked
        self._ivf = _ivf(index)
        self._coarse = self._ivf.coarse_code_size()
        self._base_lists = self._ivf.invlists  # on disk (or empty, in RAM): the index gives it to us
        self._ivf.own_invlists = False
        self._base_lists.this.acquire()  # freed (and unmapped) with this Python object
        self._base_ids = base_ids  # sorted, memory-mapped
        self._delta_ids, self._delta_codes = delta_ids, delta_codes
        self._tombs = np.unique(tombs.astype(np.int64))
        self._delta = faiss.ArrayInvertedLists(self._ivf.nlist, self._ivf.code_size)
        _fill(self._delta, delta_ids, delta_codes, self._coarse)
        self._ptrs = faiss.InvertedListsPtrVector()
        self._ptrs.push_back(self._base_lists)
        self._ptrs.push_back(self._delta)
        self._stack = faiss.HStackInvertedLists(2, self._ptrs.data())
        self._stack.this.disown()  # SWIG has no destructor for it: a few bytes per load, not a warning
        self._ivf.replace_invlists(self._stack, False)
        self._selector: tuple[faiss.IDSelector, ...] | None = None
        self._sync_total()

    # -- building ----------------------------------------------------------------------------------

    @classmethod
    def train(cls, directory: str | Path, sample: np.ndarray, count: int, dim: int) -> OnDiskIndex:
        """An empty index trained on ``sample`` for a collection of about ``count`` vectors."""
        sample = normalized(sample)
        factory = factory_for(count, dim, len(sample))
        nlist = nlist_for(count)
        if len(sample) < nlist:
            raise CollectionError(f"an ondisk index of {nlist} lists needs at least {nlist} training points")
        index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
        ivf = _ivf(index)
        ivf.cp.niter = 10
        ivf.cp.max_points_per_centroid = 10_000  # we chose the sample size; do not subsample it again
        faiss.downcast_index(ivf).do_polysemous_training = False  # factory default: minutes, no gain here
        pq = faiss.downcast_index(ivf).pq
        pq.cp.niter, pq.cp.max_points_per_centroid = 10, 128  # 32k points per sub-quantizer at most
        if isinstance(index, faiss.IndexPreTransform):  # OPQ: 10 rounds, not 50, on 32k points
            opq = faiss.downcast_VectorTransform(index.chain.at(0))
            opq.niter, opq.max_train_points = 10, 32_768
        index.train(sample)
        meta = {"factory": factory, "tag": secrets.token_hex(4), "version": 0, "trained_count": count,
                "base": None, "base_count": 0, "base_id_sum": 0}
        empty = np.empty(0, np.int64)
        return cls(Path(directory), index, meta, empty, empty, np.empty((0, ivf.coarse_code_size() +
                   ivf.code_size), np.uint8), empty)

    @classmethod
    @_faiss_chatter_to_stderr()
    def build(cls, directory: str | Path, chunks: Callable[[], Chunks], count: int, dim: int,
              seed: int = 0, train: np.ndarray | None = None) -> OnDiskIndex:
        """Train on a sample of ``chunks()``, encode every chunk into segments, merge them on disk.

        ``chunks`` is called twice (sample, then all) unless ``train`` is given.
        """
        if train is None:
            want = min(count, MAX_TRAIN, max(TRAIN_PER_LIST * nlist_for(count), PQ_TRAIN_8BIT))
            keep = min(1.0, want / max(count, 1))
            rng = np.random.default_rng(seed)
            train = np.concatenate([v[rng.random(len(v)) < keep] for _, v in chunks()])
        vi = cls.train(directory, train, count, dim)
        del train
        vi.merge_segments(vi.encode_segments(chunks()))
        return vi

    def encode_segments(self, chunks: Chunks) -> list[Path]:
        """Encode (ids, vectors) chunks into segment files of ``SEGMENT`` vectors each."""
        segments: list[Path] = []
        ids_parts: list[np.ndarray] = []
        code_parts: list[np.ndarray] = []
        pending = 0

        def flush() -> None:
            nonlocal pending
            if not pending:
                return
            seg = faiss.clone_index(self._trained_empty())
            _fill(_ivf(seg).invlists, np.concatenate(ids_parts), np.concatenate(code_parts), self._coarse)
            _ivf(seg).ntotal = seg.ntotal = pending
            path = self.directory / f".{PREFIX}{self.meta['tag']}-seg{len(segments)}.{os.getpid()}.tmp"
            faiss.write_index(seg, str(path))
            segments.append(path)
            ids_parts.clear()
            code_parts.clear()
            pending = 0

        for ids, vectors in chunks:
            ids_parts.append(np.asarray(ids, dtype=np.int64))
            code_parts.append(self._index.sa_encode(normalized(vectors)))
            pending += len(ids)
            if pending >= SEGMENT:
                flush()
        flush()
        return segments

    def _trained_empty(self) -> faiss.Index:
        """A copy of the trained index with empty in-RAM lists (a segment's shape)."""
        stacked = self._ivf.invlists
        empty = faiss.ArrayInvertedLists(self._ivf.nlist, self._ivf.code_size)
        self._ivf.replace_invlists(empty, False)
        saved = self._ivf.ntotal, self._index.ntotal
        self._ivf.ntotal = self._index.ntotal = 0
        try:
            return faiss.clone_index(self._index)
        finally:
            self._ivf.replace_invlists(stacked, False)
            self._ivf.ntotal, self._index.ntotal = saved

    @_faiss_chatter_to_stderr()
    def merge_segments(self, segments: Sequence[Path]) -> None:
        """Merge segment files (and nothing else) into a new base with ``merge_ondisk``; segments deleted."""
        try:
            if self._delta_ids.size or self._base_count():
                raise CollectionError("merge_segments works on an empty index only")
            target = self._trained_empty()
            name = self._next_base_name()
            ivfdata = self.directory / f"{name}.ivfdata"
            merge_ondisk(target, [str(s) for s in segments], str(ivfdata))
            ids = np.concatenate([np.empty(0, np.int64), *(self._segment_ids(s) for s in segments)])
            self._adopt_base(target, name, ids)
        finally:
            for s in segments:
                s.unlink(missing_ok=True)

    @staticmethod
    def _segment_ids(path: Path) -> np.ndarray:
        seg = faiss.read_index(str(path), faiss.IO_FLAG_MMAP)
        return _all_ids(_ivf(seg).invlists, _ivf(seg).nlist)

    def _next_base_name(self) -> str:
        self.meta["version"] += 1
        return f"{PREFIX}{self.meta['tag']}-{self.meta['version']}-{secrets.token_hex(3)}"

    def _adopt_base(self, target: faiss.Index, name: str, ids: np.ndarray) -> None:
        """Make ``target`` (on-disk lists named ``name``.ivfdata) the base: write its header and ids."""
        header, ids_file = self.directory / f"{name}.faiss", self.directory / f"{name}-ids.npy"
        faiss.write_index(target, str(header))
        ids = np.sort(ids.astype(np.int64))
        np.save(ids_file, ids)
        for path in (header, ids_file, self.directory / f"{name}.ivfdata"):
            _fsync(path)
        self.meta.update(base=name, base_count=int(len(ids)), base_id_sum=int(ids.sum()))
        loaded = _read_base(self.directory, name)
        fetch = self.fetch
        self.__init__(self.directory, loaded, self.meta, np.load(ids_file, mmap_mode="r"),
                      np.empty(0, np.int64), self._delta_codes[:0], np.empty(0, np.int64))
        self.fetch = fetch

    @_faiss_chatter_to_stderr()
    def compact(self) -> None:
        """Rewrite the lists: base minus tombstones, plus the delta, into a new ``.ivfdata``."""
        name = self._next_base_name()
        ivfdata = self.directory / f"{name}.ivfdata"
        ivf = self._ivf
        out = faiss.OnDiskInvertedLists(ivf.nlist, ivf.code_size, str(ivfdata))
        kept_ids = []
        for list_no in range(ivf.nlist):
            ids_parts, code_parts = [], []
            for lists in (self._base_lists, self._delta):
                size = lists.list_size(list_no)
                if not size:
                    continue
                ids = faiss.rev_swig_ptr(lists.get_ids(list_no), size)
                codes = faiss.rev_swig_ptr(lists.get_codes(list_no), size * ivf.code_size)
                codes = codes.reshape(size, ivf.code_size)
                if lists is self._base_lists and len(self._tombs):
                    keep = ~np.isin(ids, self._tombs)  # replaced ids live on in the delta
                    ids, codes = ids[keep], codes[keep]
                ids_parts.append(np.array(ids))
                code_parts.append(np.array(codes))
            if ids_parts:
                ids = np.ascontiguousarray(np.concatenate(ids_parts))
                codes = np.ascontiguousarray(np.concatenate(code_parts))
                if len(ids):
                    out.add_entries(list_no, len(ids), faiss.swig_ptr(ids), faiss.swig_ptr(codes))
                    kept_ids.append(ids)
        target = self._trained_empty()
        tivf = _ivf(target)
        tivf.replace_invlists(out, True)
        out.this.disown()
        total = sum(len(i) for i in kept_ids)
        tivf.ntotal = target.ntotal = total
        self._adopt_base(target, name, np.concatenate(kept_ids) if kept_ids else np.empty(0, np.int64))

    # -- changing ----------------------------------------------------------------------------------

    def add(self, ids: np.ndarray | Sequence[int], vectors: np.ndarray) -> None:
        """Encode vectors into the delta under their row ids; a replaced image must be ``remove``d first."""
        if not len(ids):
            return
        ids = np.asarray(ids, dtype=np.int64)
        codes = self._index.sa_encode(normalized(vectors))
        self._delta_ids = np.concatenate([self._delta_ids, ids])
        self._delta_codes = np.concatenate([self._delta_codes, codes])
        _fill(self._delta, ids, codes, self._coarse)
        self._changed()

    def remove(self, ids: Iterable[int]) -> int:
        """Remove ids (absent ones are ignored): from the delta, and as tombstones from the base."""
        batch = np.unique(np.fromiter((int(i) for i in ids), dtype=np.int64))
        if not len(batch):
            return 0
        in_delta = np.isin(self._delta_ids, batch)
        removed = set(self._delta_ids[in_delta].tolist())
        if in_delta.any():
            self._delta_ids, self._delta_codes = self._delta_ids[~in_delta], self._delta_codes[~in_delta]
            self._delta.reset()
            _fill(self._delta, self._delta_ids, self._delta_codes, self._coarse)
        in_base = self._in_base(batch) & ~np.isin(batch, self._tombs)
        self._tombs = np.union1d(self._tombs, batch[in_base])
        removed |= set(batch[in_base].tolist())
        self._changed()
        return len(removed)

    def refill(self, chunks: Callable[[], Chunks]) -> None:
        """Drop every vector and encode ``chunks()`` again, keeping what the index learnt."""
        fetch = self.fetch
        meta = {**self.meta, "base": None, "base_count": 0, "base_id_sum": 0}
        empty = np.empty(0, np.int64)
        self.__init__(self.directory, self._trained_empty(), meta, empty, empty, self._delta_codes[:0], empty)
        self.merge_segments(self.encode_segments(chunks()))
        self.fetch = fetch

    def _in_base(self, ids: np.ndarray) -> np.ndarray:
        if not len(self._base_ids):
            return np.zeros(len(ids), dtype=bool)
        pos = np.searchsorted(self._base_ids, ids)
        at = np.asarray(self._base_ids[np.minimum(pos, len(self._base_ids) - 1)])
        return (pos < len(self._base_ids)) & (at == ids)

    def _hidden(self) -> np.ndarray:
        """Base ids hidden at search: tombstones not added again (a replaced id lives on in the delta)."""
        return self._tombs[~np.isin(self._tombs, self._delta_ids)]

    def _changed(self) -> None:
        self._selector = None
        self._sync_total()

    def _sync_total(self) -> None:
        total = self._base_count() + len(self._delta_ids)
        self._ivf.ntotal = self._index.ntotal = total

    def _base_count(self) -> int:
        return int(self.meta.get("base_count", 0))

    # -- reading -----------------------------------------------------------------------------------

    @property
    def index(self) -> faiss.Index:
        """The FAISS index, base and delta stacked, tombstones *not* hidden, PQ scores (bulk scans that
        need live ids and exact scores use ``pair_search``)."""
        return self._index

    @property
    def dim(self) -> int:
        return self._index.d

    @property
    def ntotal(self) -> int:
        """Live vectors: base minus tombstones plus delta."""
        return self._base_count() - len(self._tombs) + len(self._delta_ids)

    def ids(self) -> np.ndarray:
        base = np.asarray(self._base_ids)
        return np.concatenate([base[~np.isin(base, self._tombs)], self._delta_ids])

    def id_checksum(self) -> tuple[int, int]:
        """(count, sum of ids), from the counters: no scan of the base's ids."""
        total = int(self.meta.get("base_id_sum", 0)) - int(self._tombs.sum()) + int(self._delta_ids.sum())
        return self.ntotal, total

    def needs_retraining(self, count: int) -> bool:
        trained = max(int(self.meta.get("trained_count", 1)), 1)
        return count > RETRAIN_GROWTH * trained or count * RETRAIN_GROWTH < trained

    def search(self, queries: np.ndarray, k: int = 10, *, exclude: Sequence[Collection[int]] | None = None,
               min_score: float | None = None, nprobe: int | None = None,
               rerank: int | None = None) -> list[Hits]:
        """The ``k`` nearest live vectors of each query, best first; as ``VectorIndex.search``.

        Candidates come from PQ (``rerank`` x k, default ``RERANK``); with ``fetch`` set they are
        re-scored exactly, so the scores are cosine similarities like the small layout's.
        """
        q = normalized(queries)
        if exclude is not None and len(exclude) != len(q):
            raise ValueError("exclude needs one collection of ids per query")
        live = self.ntotal
        if live <= 0 or k <= 0:
            return [Hits(np.empty(0, np.float32), np.empty(0, np.int64)) for _ in q]
        extra = max((len(e) for e in exclude), default=0) if exclude else 0
        scores, ids = self._nearest(q, k + extra, nprobe or NPROBE, rerank or RERANK)
        hits = []
        for i, (row_scores, row_ids) in enumerate(zip(scores, ids, strict=True)):
            keep = row_ids >= 0
            first = np.zeros(len(row_ids), bool)
            first[np.unique(row_ids, return_index=True)[1]] = True
            keep &= first  # a replaced id can come from both base and delta
            if exclude:
                keep &= ~np.isin(row_ids, np.fromiter(exclude[i], dtype=np.int64))
            if min_score is not None:
                keep &= row_scores >= min_score
            hits.append(Hits(row_scores[keep][:k].astype(np.float32), row_ids[keep][:k].astype(np.int64)))
        return hits

    def _nearest(self, q: np.ndarray, want: int, nprobe: int, rerank: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of each query's candidates, live only: ``rerank`` x ``want`` from PQ re-scored
        exactly and best first when ``fetch`` is set (a replaced id once), else ``want`` PQ estimates."""
        depth = min(want * rerank if self.fetch is not None else want, self._index.ntotal)
        params = faiss.SearchParametersIVF(nprobe=nprobe)
        selector = self._search_selector()
        if selector is not None:
            params.sel = selector
        scores, ids = self._index.search(q, depth, params=params)
        return self._rerank(q, ids) if self.fetch is not None else (scores, ids)

    def pair_search(self, rerank: int = PAIR_RERANK) -> ExactScan:
        """What a duplicate self-search calls: a FAISS-like ``search`` with exact similarities."""
        return ExactScan(self, rerank)

    def _search_selector(self) -> faiss.IDSelector | None:
        hidden = self._hidden()
        if not len(hidden):
            return None
        if self._selector is None:
            batch = faiss.IDSelectorBatch(hidden)
            self._selector = (faiss.IDSelectorNot(batch), batch)  # keep the inner selector alive
        return self._selector[0]

    def _rerank(self, q: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact scores for the candidates: duplicates (a replaced id, base and delta) and gaps dropped."""
        assert self.fetch is not None
        unique = np.unique(ids[ids >= 0])
        found, vecs = self.fetch(unique)
        found = np.asarray(found, dtype=np.int64)
        vecs = normalized(vecs) if len(found) else np.empty((0, self.dim), np.float32)
        order = np.argsort(found)
        found, vecs = found[order], vecs[order]
        out_scores = np.full(ids.shape, -np.inf, dtype=np.float32)
        out_ids = np.full(ids.shape, -1, dtype=np.int64)
        for i, row in enumerate(ids):
            cand = np.unique(row[row >= 0])
            pos = np.searchsorted(found, cand)
            ok = np.zeros(len(cand), bool)
            if len(found):
                ok = (pos < len(found)) & (found[np.minimum(pos, len(found) - 1)] == cand)
            cand, pos = cand[ok], pos[ok]
            s = vecs[pos] @ q[i]
            best = np.argsort(-s, kind="stable")
            out_scores[i, :len(best)], out_ids[i, :len(best)] = s[best], cand[best]
        return out_scores, out_ids

    def suits(self, count: int, requested: str = "auto") -> bool:
        """The right kind for ``count`` vectors (``vectors.kind_suits``), trained for about as many."""
        return kind_suits(self.kind, count, requested) and not self.needs_retraining(count)

    # -- files ---------------------------------------------------------------------------------------

    def needs_compaction(self) -> bool:
        base = self._base_count()
        limit = max(COMPACT_MIN, COMPACT_FRACTION * base)
        return len(self._delta_ids) > limit or len(self._tombs) > limit

    def save(self, directory: str | Path, generation: int) -> None:
        """Write the delta, tombstones and sidecar (compacting first when due); then delete old files.

        The base files already exist under their own names; the sidecar, renamed into place last,
        is what makes the new set current. A full disk raises ``NoSpace`` as the small layout's save.
        """
        directory = Path(directory)
        if directory.resolve() != self.directory.resolve():
            raise CollectionError("an ondisk index is saved in the directory it was built in")
        if self.needs_compaction() or self.meta.get("base") is None:
            self.compact()
        name = self.meta["base"]
        files: dict[str, dict] = {}
        for suffix in (".faiss", "-ids.npy"):
            path = directory / f"{name}{suffix}"
            files[path.name] = {"size": path.stat().st_size, "checksum": self._cached_crc(path)}
        ivfdata = directory / f"{name}.ivfdata"
        files[ivfdata.name] = {"size": ivfdata.stat().st_size, "checksum": None}
        writes = []
        stamp = f"{generation}-{secrets.token_hex(3)}"
        delta_name = tomb_name = None
        if len(self._delta_ids):
            delta_name = f"{name}-delta-{stamp}.npz"
            delta_ids, delta_codes = self._delta_ids, self._delta_codes
            writes.append((delta_name, lambda tmp: _write_npz(tmp, ids=delta_ids, codes=delta_codes)))
        if len(self._tombs):
            tomb_name = f"{name}-tomb-{stamp}.npy"
            writes.append((tomb_name, lambda tmp: _write_npy(tmp, self._tombs)))
        count, id_sum = self.id_checksum()
        public = {k: v for k, v in self.meta.items() if k != "crcs"}

        def write_sidecar(tmp: Path) -> None:
            for extra in (delta_name, tomb_name):
                if extra:
                    final = directory / extra
                    files[extra] = {"size": final.stat().st_size, "checksum": _file_crc(final)}
            sidecar = {"generation": generation, "kind": self.kind, "dim": self.dim, "count": count,
                       "id_sum": id_sum, "ondisk": {**public, "delta": delta_name, "tombstones": tomb_name,
                                                    "files": files}}
            tmp.write_text(json.dumps(sidecar))

        # the delta and tombstones first (new names), then the sidecar that names them
        _save_atomically(directory, writes)
        _save_atomically(directory, [(SIDECAR_FILE, write_sidecar)])
        remove_stale(directory, keep=set(files))
        (directory / INDEX_FILE).unlink(missing_ok=True)  # the small layout's file, after a conversion

    def _cached_crc(self, path: Path) -> str:
        crcs = self.meta.setdefault("crcs", {})
        if path.name not in crcs:
            crcs[path.name] = _file_crc(path)
        return crcs[path.name]

    @classmethod
    def load(cls, directory: str | Path, sidecar: dict) -> OnDiskIndex:
        """Open the files a sidecar names: lists memory-mapped, small files checked against their CRC.

        Every file opened must be listed under ``files`` (a sidecar we wrote lists each one), so that each
        is checked first: a regular file of the size listed. One named but not listed is damage: opened
        unchecked, a FIFO in its place hung every search."""
        directory = Path(directory)
        try:
            info = sidecar["ondisk"]
            files = info["files"]
            for key, kind in _LAYOUT_FIELDS.items():  # read later, at every search or at compaction
                if not isinstance(info[key], kind):
                    raise ValueError(f"{key} is no {kind.__name__} in its sidecar")
            base = info["base"]
            opened = (f"{base}.faiss", f"{base}-ids.npy", f"{base}.ivfdata", info["delta"],
                      info["tombstones"])
            unlisted = [n for n in opened if n and n not in files]
            if unlisted:
                raise ValueError(f"{unlisted[0]}: not listed among its files")
            for name, expect in files.items():
                path = directory / name
                st = path.stat()
                if not stat.S_ISREG(st.st_mode):  # FAISS and NumPy would open a FIFO and wait on it
                    raise NotRegular(name, st.st_mode)
                if st.st_size != expect["size"]:
                    raise ValueError(f"{name}: size differs from its sidecar")
                if expect["checksum"] is not None and _file_crc(path) != expect["checksum"]:
                    raise ValueError(f"{name}: checksum differs from its sidecar: damaged")
            index = _read_base(directory, base)
            base_ids = np.load(directory / f"{base}-ids.npy", mmap_mode="r")
            if info["delta"]:
                with open_regular_file(directory / info["delta"]) as f, np.load(f) as z:
                    delta_ids, delta_codes = z["ids"].astype(np.int64), z["codes"].astype(np.uint8)
            else:
                ivf = _ivf(index)
                delta_ids = np.empty(0, np.int64)
                delta_codes = np.empty((0, ivf.coarse_code_size() + ivf.code_size), np.uint8)
            if info["tombstones"]:
                with open_regular_file(directory / info["tombstones"]) as f:
                    tombs = np.load(f)
            else:
                tombs = np.empty(0, np.int64)
            meta = {k: v for k, v in info.items() if k not in ("files", "delta", "tombstones")}
            meta["crcs"] = {n: e["checksum"] for n, e in files.items() if e["checksum"] is not None}
            vi = cls(directory, index, meta, base_ids, delta_ids, delta_codes, tombs)
            if vi.dim != sidecar["dim"] or vi.id_checksum() != (sidecar["count"], sidecar["id_sum"]):
                raise ValueError("dimension or ids differ from its sidecar")
            if len(base_ids) != meta["base_count"]:
                raise ValueError("base ids differ from its sidecar")
        except (OSError, RuntimeError, ValueError, KeyError, TypeError) as e:
            raise CollectionError(f"on-disk FAISS index in {directory} unusable: {e}") from None
        return vi


@_faiss_chatter_to_stderr()
def _read_base(directory: Path, name: str) -> faiss.Index:
    """Read a base header; its ``.ivfdata`` (same directory) is memory-mapped read-only, not read.

    (Not ``IO_FLAG_MMAP``: that flag is for in-RAM lists; on-disk lists are always mapped, and with it
    FAISS 1.15 crashes at search.)
    """
    flags = faiss.IO_FLAG_ONDISK_SAME_DIR | faiss.IO_FLAG_READ_ONLY
    return faiss.read_index(str(directory / f"{name}.faiss"), flags)


def _all_ids(invlists: faiss.InvertedLists, nlist: int) -> np.ndarray:
    parts = []
    for list_no in range(nlist):
        size = invlists.list_size(list_no)
        if size:
            parts.append(faiss.rev_swig_ptr(invlists.get_ids(list_no), size).copy())
    return np.concatenate(parts) if parts else np.empty(0, np.int64)


def _write_npz(path: Path, **arrays: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _write_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, array)


def remove_stale(directory: str | Path, keep: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    """Delete the on-disk layout's files not in ``keep`` (all of them when the small layout is current).

    Readers that still have an old ``.ivfdata`` memory-mapped keep reading it: Linux frees the blocks
    when the last mapping goes.
    """
    directory = Path(directory)
    for path in directory.glob(f"{PREFIX}*"):
        if path.name not in keep:
            path.unlink(missing_ok=True)
    remove_dead_temps(directory, f".{PREFIX}*.tmp")


class ExactScan:
    """An ``OnDiskIndex`` as FAISS's ``search(x, k, params)`` for bulk scans (duplicates): live ids only,
    similarities exact (from ``fetch``) rather than PQ estimates, which are noisy near a threshold.

    ``params``, when given, carries the lists to visit (``nprobe``); missing neighbours are -1 ids as
    FAISS pads them. Queries are taken in batches so that ``RERANK_BATCH`` candidates are held at a time.
    """

    def __init__(self, index: OnDiskIndex, rerank: int) -> None:
        self._index, self._rerank = index, rerank

    @property
    def ntotal(self) -> int:
        return self._index.ntotal

    def search(self, x: np.ndarray, k: int,
               params: faiss.SearchParametersIVF | None = None) -> tuple[np.ndarray, np.ndarray]:
        q = normalized(x)
        nprobe = params.nprobe if params is not None else NPROBE
        sims = np.full((len(q), k), -np.inf, dtype=np.float32)
        labels = np.full((len(q), k), -1, dtype=np.int64)
        step = max(1, RERANK_BATCH // (k * self._rerank))
        for start in range(0, len(q), step):
            s, i = self._index._nearest(q[start : start + step], k, nprobe, self._rerank)
            width = min(k, s.shape[1])
            sims[start : start + step, :width] = s[:, :width]
            labels[start : start + step, :width] = i[:, :width]
        return sims, labels

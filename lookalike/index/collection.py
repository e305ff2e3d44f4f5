"""A collection: one index directory (SQLite truth + FAISS cache) and the model that filled it.

This is the library API the CLI and the HTTP service call as is: ``lookalike.open(dir)``, then
``add``, ``search``, ``find``, ``info``, ``failures``. Results are plain dataclasses.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import errno
import os
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple

import numpy as np

from lookalike.arguments import check_count, check_path, check_score, check_wait
from lookalike.embedder.catalog import DEFAULT_MODEL
from lookalike.embedder.labels import Label
from lookalike.errors import (
    CollectionError,
    ImageError,
    ImageNotFound,
    InvalidOption,
    ModelMismatchError,
    NoSpace,
    StaleFile,
    WriterBusy,
)
from lookalike.index import quarantine, vectors
from lookalike.index.duplicates import (
    DEFAULT_POLICY,
    DEFAULT_THRESHOLD,
    DENSITY_DEPTH,
    KeeperPolicy,
    PairArrays,
    ShapeTest,
    build_clusters,
    build_matches,
    by_id,
    could_be_greyed,
    could_be_scaled,
    could_be_turned,
    density,
    frame_test,
    orientation_pixels,
    pair_score,
    pair_scores,
    recheck_orientations,
    second_look,
    similar_pair_arrays,
    split_at_threshold,
    worth_a_look,
)
from lookalike.index.geometry import VOUCHED_PAIRS, best_per_image, files_vouch, geometry_disagrees
from lookalike.index.looks import GREY_MATCH
from lookalike.index.records import Cluster, ImageRecord, Pair
from lookalike.index.shards import SHARD_SIZE
from lookalike.index.store import (
    DB_NAME,
    FileState,
    ImageRow,
    NewImage,
    Store,
    WriterLock,
    match_labels,
    words,
)
from lookalike.index.thumbnails import (
    PIXEL_AGREEMENT,
    TINY,
    aligned_correlations,
    luminance_difference,
    luminance_differences,
    pixel_neighbours,
)
from lookalike.index.walk import (
    FoundFile,
    Walk,
    digest_file,
    embed_failure,
    open_regular,
    quarantine_holding,
    walk,
)
from lookalike.paths import FileSet, PathLike, absolute, display, path_list
from lookalike.results import Image, Neighbour, SearchResult

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

    from lookalike.embedder import Embedder, Fingerprint
    from lookalike.embedder.embedder import Embedding
    from lookalike.embedder.keypoints import KeypointFiles, Match
    from lookalike.engines import Engine

COMMIT_EVERY = 256  # images per SQLite transaction: the unit a killed run loses at most
SHARDS_DIR = "shards"  # in the index directory: Parquet shards made by an engine, until loaded
SAVE_EVERY_S = 60.0  # during a long run, refresh the FAISS file this often for readers
STALE_AFTER_S = 2 * SAVE_EVERY_S
"""A reader's FAISS copy behind the store (another process committed) with no newer file saved for this
long, while a live process holds the writer lock: that writer stopped saving (a full disk, or its pid
reused after it died), and the copy is caught up from SQLite; a live run saves every ``SAVE_EVERY_S``.
With no live holder the copy is caught up at once."""
LABEL_FILTER_POOL = 20  # with --label, look this many times deeper for neighbours that match
PAIR_CHUNK = 4096  # vectors read from SQLite per duplicate self-search call
ORIENTATION_BATCH = 16  # images per forward pass of the orientation check (x2 turns)

Progress = Callable[..., None]
"""``progress(done, total)`` while images are embedded; ``progress(done, total, step=REFRESHING)`` while
the traits of unchanged files are found again, a step of its own (an upgraded library reads each file)."""
REFRESHING = "finding traits again"
SEARCHING, EDITING, MATCHING = "finding pairs", "embedding edited pictures", "matching keypoints"
"""The steps a duplicates run reports, each ``progress(done, total, step=...)`` (vectors searched, edited
pictures embedded, pairs matched), a step again for each batch of work: a first run on thousands of
images takes minutes, silent until now."""
EMBEDDING_OTHERS = "embedding the other folder"  # --against a folder: indexed first, a step of its own
_RUN_PROGRESS: contextvars.ContextVar[Progress | None] = contextvars.ContextVar("progress", default=None)
"""The running duplicates call's ``progress``, for the steps deep inside it; a context variable, so a
run in another thread (the HTTP service's review) reports only to its own caller."""


def default_directory() -> Path:
    """``LOOKALIKE_INDEX``, else ``$XDG_DATA_HOME/lookalike/index`` (``~/.local/share/lookalike/index``)."""
    explicit = os.environ.get("LOOKALIKE_INDEX")
    if explicit:
        return Path(explicit).expanduser()
    data = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data) / "lookalike" / "index"


@dataclass(frozen=True)
class AddSummary:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    failed: int = 0
    seconds: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)
    refreshed: int = 0  # unchanged files whose traits were found again (``TRAITS_VERSION`` moved on)


@dataclass(frozen=True)
class Undone(quarantine.UndoResult):
    """What :meth:`Collection.undo` did: the files put back and those left in the quarantine;
    ``unindexed``: files back in place that the index does not hold yet, because another writer held
    it for longer than the wait (undoing the same manifest again indexes them, as ``index`` does);
    ``caught_up``: files an earlier undo put back while the index was busy, indexed by this one."""

    unindexed: tuple[Path, ...] = ()
    caught_up: tuple[Path, ...] = ()


@dataclass(frozen=True)
class TextHit:
    image: Image
    matched_label: str | None
    probability: float


@dataclass(frozen=True)
class IndexInfo:
    directory: str
    model: str | None
    fingerprint: dict[str, Any] | None
    vector_size: int | None
    images: int
    failures: int
    index_type: str
    disk_bytes: int
    created: str | None
    stale_traits: int = 0  # images whose traits an index run will find again (``TRAITS_VERSION``)


class Edit(NamedTuple):
    """An edited picture to embed for a second look: ``row``'s file decoded at ``min_size`` or more (None:
    the model's input size) and changed by ``change``. ``name`` says which edit ("grey", "scaled WxH",
    "unframed" and the ``TRAITS_VERSION``): with the row's id, the key its vector is remembered under in
    the index when ``store``, the row's, is this collection's (another index is only read). An edit made
    otherwise by a later release takes another name, so that vectors made the old way are not read."""

    row: ImageRow
    store: Store
    name: str
    min_size: int | None
    change: Callable[[PILImage], PILImage]


class Collection:
    """Open with :func:`open_collection` (``lookalike.open``). Safe to share between threads."""

    def __init__(
        self, store: Store, model: str | None, cache_dir: str | Path | None, index_type: str | None,
        batching: bool = False,
    ) -> None:
        self.store = store
        self.directory = store.directory
        self._model = model
        self._cache_dir = cache_dir
        # An index type asked for once is remembered (at the next write), so plain opens keep using it.
        self._index_type_asked = index_type
        self._index_type = index_type or store.get_meta("index_type") or "auto"
        self._batching = batching
        self._embedder: Embedder | None = None
        self._vectors: vectors.VectorIndex | None = None  # carries the store generation it reflects
        self._vectors_since = time.monotonic()  # when the cache was last loaded or saved
        self._vectors_unsaved = False  # rebuilt from SQLite (missing, stale or damaged) and not saved yet
        self._lock = threading.RLock()  # one SQLite connection and one FAISS index, many callers

    # -- the model ---------------------------------------------------------------------------------

    @property
    def fingerprint(self) -> Fingerprint | None:
        from lookalike.embedder import Fingerprint

        stored = self.store.get_meta("model")
        return Fingerprint.from_dict(stored) if stored else None

    @property
    def embedder(self) -> Embedder:
        """The model, loaded on first use: the one named at open, else the one the index was built with."""
        with self._lock:
            if self._embedder is None:
                from lookalike.embedder import load_embedder

                stored = self.fingerprint
                name = self._model or (stored.handle if stored else DEFAULT_MODEL)
                embedder = load_embedder(name, self._cache_dir)
                if stored is not None and embedder.fingerprint != stored:
                    raise ModelMismatchError(
                        f"index {self.directory} was built with {stored}; refusing vectors from "
                        f"{embedder.fingerprint}"
                    )
                if self._batching:  # a server's concurrent searches share forward passes
                    from lookalike.embedder.batching import BatchingEmbedder

                    embedder = BatchingEmbedder(embedder)
                self._embedder = embedder
            return self._embedder

    # -- writing -----------------------------------------------------------------------------------

    def add(
        self,
        paths: PathLike | Iterable[PathLike],
        *,
        prune: bool = False,
        extensions: Iterable[str] | None = None,
        include_hidden: bool = False,
        progress: Progress | None = None,
        batch_size: int = 32,
        commit_every: int = COMMIT_EVERY,
        wait: float = 0.0,
        engine: Engine | None = None,
        shard_size: int = SHARD_SIZE,
    ) -> AddSummary:
        """Index new files, re-embed changed ones, and with ``prune`` forget files gone from ``paths``.

        A pipeline of named steps: walk (files and skips) -> plan (what changed) -> embed -> write
        (batches committed every ``commit_every`` images). A run killed at any moment and started
        again resumes after its last commit, and the FAISS file is brought back in step from SQLite.
        The writer lock is taken first and the in-process lock only around each write, so searches
        from other threads go on while images are embedded, and nothing waits holding a lock.
        Raises WriterBusy when another writer holds the index for longer than ``wait`` seconds.
        With an ``engine`` (:mod:`lookalike.engines`) the embed step makes Parquet shards of
        ``shard_size`` files, loaded as they come (:meth:`_embed_sharded`). One path may be given
        alone: a string (or bytes) is one folder, never its letters.
        """
        started = time.perf_counter()
        roots = [absolute(check_path(p, "PATH")) for p in path_list(paths)]
        with self.store.writer(wait):
            skipped: list[tuple[str, str]] = []
            walker = Walk(roots, extensions, include_hidden=include_hidden,
                          on_skip=lambda path, reason: skipped.append((path, reason)))
            found = list(walker)
            with self._lock:
                if self._index_type_asked:
                    self.store.set_meta("index_type", self._index_type_asked)
                known = self.store.file_states()
            plan = _plan(found, known)
            with self._lock:
                if plan.touched:
                    self.store.update_stats(plan.touched)
                if skipped:
                    self.store.record_failures(skipped)
                # (with an engine, FAISS is opened at the first shard: a new index learns its model
                # from the shard, and this process never loads the model just for the vector size)
                # Loaded with nothing to embed too: a damaged or stale FAISS file is rebuilt and saved
                # now, by the writer, instead of by every search after it.
                opens = (plan.to_embed and not engine) or prune or (not plan.to_embed and self.store.count())
                index = self._current_vectors() if opens else None
                behind = index is not None and index.generation != self.store.generation  # rebuilt at save
                changes = bool(plan.to_embed or prune or self._vectors_unsaved or behind)
            writer = _BatchWriter(self, index, known, commit_every)
            if plan.to_embed and engine is not None:  # embedded into shards elsewhere, then loaded
                index = self._embed_sharded(engine, plan.to_embed, writer, progress, shard_size)
            elif plan.to_embed:
                embedder = self.embedder
                with self._lock:
                    self._claim_model(embedder.fingerprint)
                files = {f.path: f for f in plan.to_embed}
                results = embedder.embed_many(list(files), batch_size=batch_size, digests=True)
                for done, (path, result) in enumerate(results, start=1):
                    writer.take(files[path], result)
                    if progress:
                        progress(done, len(files))
                writer.flush()
                index = writer.index  # a save on the way keeps the copy it saved (maybe rebuilt)
            refreshed = self._refresh_traits(plan.stale, commit_every, progress)
            removed = 0
            if prune:
                where = [*(os.path.realpath(root) for root in roots), *walker.real_roots]
                with self._lock:
                    removed = self._forget(self._gone(where), index)
                    self.store.clear_failures(p for p in self.store.failure_paths()
                                              if _under(p, where) and not os.path.lexists(p))
            if index is not None and changes:
                with self._lock:
                    self._save_vectors(index)
        failures = [*skipped, *writer.failures]
        return AddSummary(writer.added, writer.updated, plan.unchanged, removed, len(failures),
                          time.perf_counter() - started, failures, refreshed)

    def _refresh_traits(self, stale: Sequence[tuple[int, str]], commit_every: int,
                        progress: Progress | None = None) -> int:
        """The refresh step of :meth:`add`: unchanged files whose traits are missing or an older
        ``TRAITS_VERSION``'s are read again (decoded small, no model), a batch per commit, so
        duplicate runs need not read them. A file that does not read now keeps what it had."""
        from lookalike.embedder.images import read_traits

        refreshed = 0
        for start in range(0, len(stale), commit_every):
            found = []
            for image_id, path in stale[start : start + commit_every]:
                with contextlib.suppress(ImageError):
                    found.append((image_id, read_traits(path)))
            with self._lock:
                self.store.update_traits(found)
            refreshed += len(found)
            if progress:
                progress(min(start + commit_every, len(stale)), len(stale), step=REFRESHING)
        return refreshed

    def _claim_model(self, fingerprint: Fingerprint) -> None:
        if self.store.get_meta("model") is None:
            self.store.set_meta("model", fingerprint.as_dict())

    def _gone(self, where: Sequence[str]) -> list[int]:
        """Rows under the real folders ``where`` whose file no longer exists (never rows outside them)."""
        return [
            state.id
            for path, state in self.store.file_states().items()
            if _under(path, where) and not os.path.exists(path)
        ]

    def _forget(self, ids: Sequence[int], index: vectors.VectorIndex | None) -> int:
        if not ids:
            return 0
        if index is None:
            return self.store.delete(ids)
        with index.changing_with(self.store):
            index.remove(ids)
            return self.store.delete(ids)

    def remove_ids(self, ids: Sequence[int], wait: float = 0.0) -> int:
        """Forget images by id (their files are not touched); e.g. after duplicates were moved away."""
        with self.store.writer(wait), self._lock:
            index = self._current_vectors()
            removed = self._forget(ids, index)
            self._save_vectors(index)
            return removed

    # -- shards (lookalike.engines): embedded elsewhere, loaded here ---------------------------------

    def load_shards(self, paths: PathLike | Iterable[PathLike], *, wait: float = 0.0) -> AddSummary:
        """Load Parquet shards (:mod:`lookalike.index.shards`) into the index, one transaction each.

        Rows are upserted by path, so loading a shard again adds no row; failures are recorded. A
        shard from another model is refused (ModelMismatchError); the first shard names the model of
        an empty index. A path no file can have (empty, a NUL byte) is InvalidOption, before any is read.
        """
        started = time.perf_counter()
        files = [Path(check_path(path, "SHARD")) for path in path_list(paths)]
        with self.store.writer(wait):
            with self._lock:
                index = self._current_vectors() if self.store.vector_size is not None else None
            writer = _BatchWriter(self, index, {}, COMMIT_EVERY)
            for path in files:
                self._load_shard(path, writer)
            with self._lock:
                if writer.index is not None:
                    self._save_vectors(writer.index)
        return AddSummary(writer.added, writer.updated, failed=len(writer.failures),
                          seconds=time.perf_counter() - started, failures=writer.failures)

    def _embed_sharded(self, engine: Engine, files: Sequence[FoundFile], writer: _BatchWriter,
                       progress: Progress | None, shard_size: int) -> vectors.VectorIndex | None:
        """The embed step of :meth:`add` with an engine: shards in ``<index>/shards``, each loaded and
        deleted as it arrives. Shards a killed run finished but did not load are loaded first (only rows
        whose file is unchanged since), so a re-run embeds only the rest and adds no row twice.
        Returns the FAISS index the shards went into (None if no shard came)."""
        from lookalike.index import shards

        staging = self.directory / SHARDS_DIR
        shards.clear_partial(staging)
        wanted = {f.path: f for f in files}
        total, done = len(wanted), 0
        for path in shards.finished(staging):
            done += len(self._load_shard(path, writer, wanted))
            path.unlink()
        engine.resumed = done
        if progress and done:
            progress(done, total)
        for path in engine.run(shards.plan_shards(wanted.values(), shard_size, engine.model), staging):
            done += len(self._load_shard(path, writer, wanted))
            path.unlink()
            if progress:
                progress(done, total)
        return writer.index

    def _load_shard(self, path: Path, writer: _BatchWriter,
                    wanted: dict[str, FoundFile] | None = None) -> list[str]:
        """One shard through ``writer`` in one commit; returns the paths taken. With ``wanted`` (the
        walk's files to embed) only rows for those files, with the stat the walk saw, are taken, and
        taken files leave ``wanted``."""
        from lookalike.embedder import Fingerprint
        from lookalike.index import shards

        shard = shards.read_shard(path)
        with self._lock:
            stored = self.store.get_meta("model")
            if stored is None:
                self._claim_model(Fingerprint.from_dict(shard.fingerprint))
            elif stored != shard.fingerprint:
                raise ModelMismatchError(
                    f"shard {display(path)} was made with {Fingerprint.from_dict(shard.fingerprint)}; index "
                    f"{self.directory} was built with {Fingerprint.from_dict(stored)}")
            if writer.index is None:
                writer.index = self._current_vectors()
            taken = []
            for row in shard.rows:
                found = wanted.get(row.path) if wanted is not None else None
                if wanted is not None and (found is None or (found.size, found.mtime, found.device,
                                                             found.inode) != (row.size, row.mtime,
                                                                              row.device, row.inode)):
                    continue  # not asked for now, or changed since: the plan embeds it again
                if (state := self.store.get_by_path(row.path, vector=False)) is not None:
                    writer.known[row.path] = FileState(state.id, state.size, state.mtime, state.digest)
                if row.error is not None:
                    writer.batch_failures.append((row.path, row.error))
                else:
                    writer.batch.append(NewImage(row.path, row.size, row.mtime, row.digest, row.width,
                                                 row.height, row.format, row.labels, row.vector,
                                                 row.device, row.inode, row.traits))
                taken.append(row.path)
            writer.flush()
        if wanted is not None:
            for taken_path in taken:
                wanted.pop(taken_path, None)
        return taken

    # -- FAISS -------------------------------------------------------------------------------------

    def _current_vectors(self) -> vectors.VectorIndex:
        """The FAISS index: cached; reloaded when a writer saved a newer one; else built from SQLite.

        While another process indexes, this keeps answering from the last saved FAISS file (rows are
        still read from SQLite, so removed images never show) instead of rebuilding at every commit;
        but not for longer than ``STALE_AFTER_S`` behind the store without a newer file (that writer
        stopped before its save: new images would stay out of every search until some writer saved),
        and not at all once no live writer holds the lock (the writer was killed, or ended without its
        save: nobody will save a newer file). A writer may change a copy behind the store too: saving
        it rebuilds it (:meth:`_save_vectors`).
        """
        if self._vectors is not None:
            saved, generation = vectors.saved_generation(self.directory), self._vectors.generation
            if (saved is None or saved <= generation) and (
                    generation == self.store.generation
                    or (time.monotonic() - self._vectors_since < STALE_AFTER_S
                        and WriterLock.live_holder(self.directory) is not None)):
                return self._vectors
        self._vectors_since = time.monotonic()
        if self.store.vector_size is None:  # nothing stored yet: an empty copy, at that generation
            self._vectors = vectors.rebuild(self.store, dim=self._dim_hint())[0]
        else:
            self._vectors, self._vectors_unsaved = vectors.load_or_rebuild(self.store, self._index_type)
        return self._vectors

    def _dim_hint(self) -> int:
        stored = self.fingerprint
        return stored.dim if stored else self.embedder.dim

    def _save_vectors(self, index: vectors.VectorIndex) -> vectors.VectorIndex:
        """Save FAISS for the generation SQLite is at now (:func:`vectors.save_current`: a copy behind
        it, or of a kind the size no longer calls for, is rebuilt first); the copy saved is the cache."""
        self._vectors = vectors.save_current(index, self.store, self._index_type)
        self._vectors_unsaved, self._vectors_since = False, time.monotonic()
        return self._vectors

    # -- reading -----------------------------------------------------------------------------------

    def search(
        self,
        image: str | Path | bytes,
        k: int = 10,
        *,
        min_score: float | None = None,
        label: str | None = None,
    ) -> SearchResult:
        """Nearest images to a file or encoded image bytes; an indexed path uses its stored vector."""
        k = _check_search(k, min_score, label)
        if self.fingerprint is None and self._model is None:
            raise CollectionError(f"{self.directory} holds no images yet: run 'lookalike index PATH' first")
        if not isinstance(image, bytes):
            image = check_path(image, "IMAGE")
            with self._lock:
                row = self.store.get_by_path(os.path.realpath(absolute(image)))
            if row is not None:
                return self._search_row(row, k, min_score, label)
        embedding = self.embedder.embed(image)
        return self._search_vector(embedding.vector, embedding.labels, None, k, min_score, label)

    def search_id(
        self, id: int, k: int = 10, *, min_score: float | None = None, label: str | None = None
    ) -> SearchResult:
        k = _check_search(k, min_score, label)
        with self._lock:
            row = self.store.get(id)
        if row is None:
            raise ImageNotFound(id, self.directory)
        return self._search_row(row, k, min_score, label)

    def _search_row(self, row: ImageRow, k: int, min_score: float | None, label: str | None) -> SearchResult:
        labels = Image.from_row(row).labels
        return self._search_vector(row.vector, labels, row.id, k, min_score, label)

    def _search_vector(
        self,
        vector: np.ndarray,
        query_labels: list[Label],
        query_id: int | None,
        k: int,
        min_score: float | None,
        label: str | None,
    ) -> SearchResult:
        with self._lock:
            self._check_vector_size(vector)
            index = self._current_vectors()
            depth = k * LABEL_FILTER_POOL if label else k
            exclude = [{query_id}] if query_id is not None else None
            (hits,) = index.search(vector[None, :], depth, exclude=exclude, min_score=min_score)
            rows = {row.id: row for row in self.store.get_many(hits.ids.tolist())}
        neighbours = []
        for score, id in zip(hits.scores, hits.ids, strict=True):
            row = rows.get(int(id))
            if row is None or (label and not match_labels(row.labels, label)):
                continue
            neighbours.append(Neighbour(len(neighbours) + 1, float(score), Image.from_row(row)))
            if len(neighbours) == k:
                break
        return SearchResult(query_labels, neighbours, query_id)

    def _check_vector_size(self, vector: np.ndarray) -> None:
        size = self.store.vector_size
        if size is not None and vector.shape[-1] != size:
            raise ModelMismatchError(f"query vector has {vector.shape[-1]} dimensions, the index {size}")

    def find(self, text: str, limit: int = 50) -> list[TextHit]:
        """Images whose predicted labels (or paths) match ``text``, surest first."""
        _check_words(text, "TEXT")
        limit = check_count("limit", limit, "--limit")
        with self._lock:
            matches = self.store.search_text(text, limit)
        return [TextHit(Image.from_row(m.row), m.label, m.probability) for m in matches]

    def get(self, id: int) -> Image:
        """An indexed image by id; raises ImageNotFound."""
        with self._lock:
            row = self.store.get(id, vector=False)
        if row is None:
            raise ImageNotFound(id, self.directory)
        return Image.from_row(row)

    def get_by_path(self, path: PathLike) -> Image | None:
        """The indexed image a path reaches (through links too), or None."""
        path = check_path(path, "PATH")
        with self._lock:
            row = self.store.get_by_path(os.path.realpath(absolute(path)), vector=False)
        return Image.from_row(row) if row else None

    def open_indexed_file(self, id: int) -> tuple[BinaryIO, Image]:
        """The file of an indexed image, opened for reading, only if it is still the file that was indexed.

        Never follows a symlink put in its place, never opens a FIFO or device, and refuses a file whose
        size, mtime or inode differ from the index: serving a path swapped after indexing (a link to
        ``/etc/passwd``) is how a service leaks what it was never given. Raises ImageNotFound for an
        unknown id and StaleFile otherwise. The caller closes the file.
        """
        with self._lock:
            row = self.store.get(id, vector=False)
        if row is None:
            raise ImageNotFound(id, self.directory)
        try:
            fd = os.open(row.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as e:
            reason = "replaced by a symlink" if e.errno == errno.ELOOP else (e.strerror or str(e)).lower()
            raise StaleFile(f"the file of image {id} is gone or unreadable: {reason}") from None
        if not _as_indexed(row, os.fstat(fd)):
            os.close(fd)
            raise StaleFile(f"the file of image {id} changed since it was indexed")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb"), Image.from_row(row)

    def failures(self, limit: int | None = None):
        """The files that could not be indexed, most recent first; all of them without a ``limit``."""
        limit = None if limit is None else check_count("limit", limit, "--limit")
        with self._lock:
            return self.store.failures(limit)

    def info(self) -> IndexInfo:
        with self._lock:
            fingerprint = self.fingerprint
            count = self.store.count()
            kind = self._current_vectors().kind if count else "flat"
            disk = sum(p.stat().st_size for p in self.directory.iterdir() if p.is_file())
            return IndexInfo(
                str(self.directory), str(fingerprint) if fingerprint else None,
                fingerprint.as_dict() if fingerprint else None, self.store.vector_size, count,
                self.store.failure_count(), kind, disk, self.store.get_meta("created"),
                self.store.stale_traits_count(),
            )

    def stale_traits(self) -> int:
        """How many images' traits a duplicate run must read from their files, until ``add`` (the
        ``index`` command) refreshes them: rows from an older lookalike, or loaded from shards."""
        with self._lock:
            return self.store.stale_traits_count()

    # -- duplicates --------------------------------------------------------------------------------

    def duplicates(
        self,
        threshold: float | None = None,
        *,
        policy: str = str(DEFAULT_POLICY),
        against: PathLike | None = None,
        exact_only: bool = False,
        progress: Progress | None = None,
    ) -> list[Cluster]:
        """Exact and near-duplicate clusters: a keeper each (by ``policy``), its copies with their similarity.

        A pipeline: search (every image's neighbours and density) -> score (cosine less density) ->
        second looks (quarter turns, tiny and greyscale copies; keypoints where only the density held a
        pair under; other colours) -> group (around the most central image) -> keep (the policy chooses
        among the members; every copy is checked against it).
        ``threshold`` is the score a copy needs against its keeper (default: the calibrated
        ``DEFAULT_THRESHOLD``). ``against`` another index directory or an image folder asks "which of
        my images are already there?": the other set's file is the keeper, mine are the copies. Another
        index is only read; a folder is indexed with this collection's model into a temporary index
        that is deleted afterwards. ``exact_only`` compares content digests alone: no model, no vectors.
        ``progress(done, total, step=...)`` is told how each step (``SEARCHING``, ``EDITING``,
        ``MATCHING``; ``EMBEDDING_OTHERS`` first, against a folder) goes.
        Raises InvalidOption for an unknown policy, a threshold outside (0, 1], or ``against`` neither an
        index nor a folder (nothing there, a file).
        """
        keeper_policy = KeeperPolicy.parse(policy)
        threshold = DEFAULT_THRESHOLD if threshold is None else threshold
        threshold = check_score("threshold", threshold, "--threshold", 0, 1, above_low=True)
        reporting = _RUN_PROGRESS.set(progress)
        try:
            return self._duplicates(threshold, keeper_policy, against, exact_only)
        finally:
            _RUN_PROGRESS.reset(reporting)

    def _duplicates(self, threshold: float, keeper_policy: KeeperPolicy, against: PathLike | None,
                    exact_only: bool) -> list[Cluster]:
        if against is not None:
            return self._matches(Path(check_path(against, "--against")).expanduser().absolute(), threshold,
                                 exact_only)
        pairs: list[Pair] = []
        densities: dict[int, float] = {}
        keypoints = self._keypoint_files()
        if not exact_only:
            with self._lock:
                index = self._current_vectors() if self.store.count() else None
            if index is not None:
                pairs = self._near_pairs(similar_pair_arrays, index, self.store, threshold, densities,
                                         keypoints)
        with self._lock:
            twins = self.store.shared_digest_ids()
            records = _records(self.store, [*twins, *(i for p in pairs for i in (p.a, p.b))])
        records = _with_traits(records)
        pairs = second_look(pairs, threshold, records, keypoints=keypoints)
        verify = self._verifier(threshold, densities, records, keypoints) if pairs else None
        return build_clusters(records, pairs, keeper_policy, verify)

    def densities(self, ids: Iterable[int]) -> dict[int, float]:
        """Each indexed image's density (:func:`~lookalike.index.duplicates.density`), for scoring pairs."""
        with self._lock:
            rows = self.store.get_many(list(ids), vector=True)
            if not rows:
                return {}
            index = self._current_vectors()
            queries = np.stack([row.vector for row in rows]).astype(np.float32)
            scan = index.pair_search()
            sims, labels = scan.search(queries, min(DENSITY_DEPTH, scan.ntotal))
        return dict(zip((row.id for row in rows), density(sims, labels).tolist(), strict=True))

    def _verifier(self, threshold: float, densities: dict[int, float], records: dict[int, ImageRecord],
                  keypoints: KeypointFiles) -> Callable[[int, int], Pair | None]:
        """Scores a keeper and a member the search did not pair, from their stored vectors."""
        cache: dict[int, np.ndarray] = {}

        def vector(image_id: int) -> np.ndarray | None:
            if image_id not in cache:
                with self._lock:
                    row = self.store.get(image_id)
                cache[image_id] = None if row is None else vectors.normalized(row.vector)[0]
            return cache[image_id]

        def verify(keeper: int, member: int) -> Pair | None:
            a, b = vector(keeper), vector(member)
            if a is None or b is None:
                return None
            similarity = float(a @ b)
            score = pair_score(similarity, densities.get(keeper), densities.get(member))
            pair = Pair(keeper, member, similarity, score)
            return pair if score >= threshold and second_look([pair], threshold, records,
                                                              keypoints=keypoints) else None

        return verify

    def _near_pairs(self, find: Callable[..., tuple[PairArrays, PairArrays]], index: vectors.VectorIndex,
                    targets: Store, threshold: float, densities: dict[int, float],
                    keypoints: KeypointFiles) -> list[Pair]:
        """Scored pairs at the threshold, plus those a second look (:meth:`_second_looks`) brings to it.

        ``find`` searches my vectors against ``index``, whose ids are rows of ``targets`` (this store,
        or the other set's), fills ``densities`` for my images and, from the same search, collects the
        neighbours shaped for a second look; across two sets an archive image is scored with its
        query's density. Pairs stay in arrays until they are known to matter: a million images have
        tens of millions of neighbours under the threshold.
        """
        across = targets is not self.store
        with self._lock:
            my_shapes, my_greys, my_contents = (self.store.shapes(), self.store.greyscale(),
                                                self.store.content_shapes())
            their_shapes, their_greys, their_contents = (targets.shapes(), targets.greyscale(),
                                                         targets.content_shapes()) if across \
                else (my_shapes, my_greys, my_contents)
            vectors_in_all = self.store.count()

        framed = frame_test(my_shapes, my_contents, their_shapes, their_contents)

        def shaped_for_a_look(a: np.ndarray, b: np.ndarray, sims: np.ndarray) -> np.ndarray:
            return worth_a_look(by_id(my_shapes, a, 0), by_id(their_shapes, b, 0)) | could_be_greyed(
                by_id(my_greys, a, -1), by_id(their_greys, b, -1)) | framed(a, b, sims)

        found: list[PairArrays] = []
        looks: list[PairArrays] = []
        chunks = self.store.iter_vectors(PAIR_CHUNK)
        searched, report = 0, _RUN_PROGRESS.get()
        while True:
            # The collection lock is held a chunk at a time, so searches from other threads (the HTTP
            # service) go on between chunks instead of waiting for the whole run.
            with self._lock:
                if (chunk_of := next(chunks, None)) is None:
                    break
                ids, chunk = chunk_of
                pairs, candidates = find(index.pair_search(), chunk, ids, threshold, densities=densities,
                                         by_density=True, look=shaped_for_a_look)
                found.append(pairs)
                looks.append(candidates)
            if report:
                searched += len(ids)
                report(searched, vectors_in_all, step=SEARCHING)
        density_by_id = np.full(len(my_shapes), np.nan)
        for image_id, value in densities.items():
            if image_id < len(density_by_id):
                density_by_id[image_id] = value
        sure, short, held = split_at_threshold(PairArrays.concat(found), density_by_id, threshold,
                                               shaped_for_a_look, across)
        vouched = self._vouched_pairs(held, density_by_id, targets, threshold, keypoints)
        with self._lock:
            tiny = self._tiny_candidates(targets, my_shapes, their_shapes)
            candidates = PairArrays.concat([*looks, short, tiny])
            grey = self._grey_candidates(targets, my_greys, their_greys,
                                         PairArrays.concat([PairArrays.of(sure), candidates]), across)
        candidates = PairArrays.concat([candidates, grey])
        if not across:
            candidates = candidates.unordered()  # a pair can come from both its images' searches

        def scored(p: Pair) -> Pair:
            mine = densities.get(p.a)
            theirs = mine if across else densities.get(p.b)
            return Pair(p.a, p.b, p.similarity, pair_score(p.similarity, mine, theirs))

        return sure + vouched + [scored(p) for p in self._second_looks(candidates, targets,
                                                                       lambda p: scored(p).score >= threshold,
                                                                       framed)]

    def _vouched_pairs(self, held: PairArrays, density_by_id: np.ndarray, targets: Store, threshold: float,
                       keypoints: KeypointFiles) -> list[Pair]:
        """The keypoint look (``VOUCHED_PAIRS``): of the pairs (my ``a``, ``targets``' ``b``) their
        density alone holds under the threshold, each image's best whose files vouch for one picture
        (:func:`files_vouch`), scored at the threshold; the colour checks and the geometric check still
        judge them like any pair. Across two sets an archive image is scored with its query's density."""
        across = targets is not self.store
        if not len(held) or not VOUCHED_PAIRS:
            return []
        mine = by_id(density_by_id, held.a, np.nan)
        scores = pair_scores(held.sims, mine, mine if across else by_id(density_by_id, held.b, np.nan))
        numbered = zip(held.a.tolist(), held.b.tolist(), scores.tolist(), strict=True)
        best = sorted(best_per_image(((n, (0, a), (int(across), b), score)  # ids of two sets kept apart
                                      for n, (a, b, score) in enumerate(numbered)), VOUCHED_PAIRS))
        held = held.take(np.array(best, dtype=np.int64))
        with self._lock:
            my_paths = {r.id: r.path for r in self.store.get_many(np.unique(held.a).tolist())}
            their_paths = {r.id: r.path for r in targets.get_many(np.unique(held.b).tolist())}
        pairs = [p for p in held.pairs() if p.a in my_paths and p.b in their_paths]
        vouched = files_vouch([(my_paths[p.a], their_paths[p.b]) for p in pairs], keypoints)
        return [Pair(p.a, p.b, p.similarity, threshold)
                for p, sure in zip(pairs, vouched, strict=True) if sure]

    def _tiny_candidates(self, targets: Store, my_shapes: np.ndarray, their_shapes: np.ndarray) -> PairArrays:
        """My tiny pictures (``TINY``) with the ``targets``' larger ones whose thumbnails match theirs and
        whose shapes allow the scale look: candidates the vector search cannot reach."""
        short_sides = my_shapes.min(axis=1)
        return self._pixel_candidates(targets, np.nonzero((short_sides > 0) & (short_sides < TINY))[0],
                                      np.nonzero(their_shapes.min(axis=1) > 0)[0],
                                      lambda a, b: could_be_scaled(my_shapes[a], their_shapes[b]))

    def _grey_candidates(self, targets: Store, my_greys: np.ndarray, their_greys: np.ndarray,
                         found: PairArrays, across: bool) -> PairArrays:
        """My grey pictures with none of their own luminance (``GREY_MATCH``) among the colour pictures
        ``found`` beside them, with the ``targets``' colour pictures whose luminance thumbnails match
        theirs. The model sees colour, so a greyscale copy's original can sit deeper in its neighbours
        than the search reaches: a German flag greyed was nearer 47 other flags than its own (colour
        variants probe), and joined the Estonian one. A grey picture whose original was found costs
        nothing more."""
        grey = np.nonzero(my_greys == 1)[0]
        if not len(grey):
            return PairArrays.concat([])
        greys, colours = [], []
        for x, y in [(found.a, found.b)] if across else [(found.a, found.b), (found.b, found.a)]:
            grey_by_colour = (by_id(my_greys, x, -1) == 1) & (by_id(their_greys, y, -1) == 0)
            greys.append(x[grey_by_colour])
            colours.append(y[grey_by_colour])
        a, b = np.concatenate(greys), np.concatenate(colours)
        mine, theirs = np.unique(a), np.unique(b)
        own = luminance_differences(self._thumbnails(self.store, mine)[np.searchsorted(mine, a)],
                                    self._thumbnails(targets, theirs)[np.searchsorted(theirs, b)])
        return self._pixel_candidates(targets, np.setdiff1d(grey, a[own <= GREY_MATCH]),
                                      np.nonzero(their_greys == 0)[0])

    def _pixel_candidates(self, targets: Store, mine: np.ndarray, theirs: np.ndarray,
                          fits: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None) -> PairArrays:
        """Pairs of my images ``mine`` and the ``targets``' ``theirs`` (sorted ids) whose thumbnails match
        (:func:`pixel_neighbours`) and that ``fits`` (ids, ids) lets through, if given, with their cosine
        similarity. Nothing is read when either side is empty."""
        if not len(mine) or not len(theirs):
            return PairArrays.concat([])
        same = None
        if targets is self.store:  # not itself
            at = np.minimum(np.searchsorted(theirs, mine), len(theirs) - 1)
            same = np.where(theirs[at] == mine, at, -1)
        rows, found = pixel_neighbours(self._thumbnails(self.store, mine), targets.thumbnails(theirs)[0],
                                       same)
        a, b = mine[rows], theirs[found]
        if fits is not None:
            keep = fits(a, b)
            a, b = a[keep], b[keep]
        my_vectors, their_vectors = ({r.id: vectors.normalized(r.vector)[0]
                                      for r in store.get_many(np.unique(ids).tolist(), vector=True)}
                                     for store, ids in ((self.store, a), (targets, b)))
        return PairArrays.of(Pair(x, y, float(my_vectors[x] @ their_vectors[y]))
                             for x, y in zip(a.tolist(), b.tolist(), strict=True)
                             if x in my_vectors and y in their_vectors)

    def _second_looks(self, pairs: PairArrays, targets: Store, good: Callable[[Pair], bool],
                      framed: ShapeTest | None = None) -> list[Pair]:
        """The pairs (my ``a``, ``targets``' ``b``) that a second look makes ``good``: their pixels agree
        once aligned (``PIXEL_AGREEMENT``, from the stored thumbnails, :meth:`_agreeing`), and
        re-embedded a quarter turn (:func:`recheck_orientations`) or a many-times scale
        (:meth:`_scaled_pairs`) apart, or the colour one greyed (:meth:`_greyed_pairs`, only when the
        grey one has its luminance, ``GREY_MATCH``), they reach the threshold; each with the best
        similarity seen.

        Only pairs whose shapes allow a turn or a scale, or whose colours allow a greyscale copy, are
        offered, and only those whose pixels agree are re-embedded, the costly part: a few per copy,
        whatever the collection's size. A framed picture beside one its content's shape
        (:func:`could_be_unframed`, from ``FRAME_FLOOR``) is cropped to its content and embedded again
        (:meth:`_unframed_pairs`): its frame shifts its thumbnail, so the pixels cannot vouch for it.
        ``framed``, the frame look's test (:func:`frame_test`), when the caller has the tables for it."""
        if framed is None:
            with self._lock:
                framed = frame_test(self.store.shapes(), self.store.content_shapes(), targets.shapes(),
                                    targets.content_shapes())
        unframe = pairs.take(framed(pairs.a, pairs.b, pairs.sims)).pairs()
        pairs = self._agreeing(pairs, targets).pairs()  # a frame shifts the thumbnail: not for the framed
        if not pairs and not unframe:
            return []
        looked = [*pairs, *unframe]
        with self._lock:
            mine = {r.id: r for r in self.store.get_many(list({p.a for p in looked}), vector=True)}
            theirs = {r.id: r for r in targets.get_many(list({p.b for p in looked}), vector=True)}
        pairs = [p for p in pairs if p.a in mine and p.b in theirs]
        unframe = [p for p in unframe if p.a in mine and p.b in theirs]

        def shapes(p: Pair) -> tuple[tuple[int, int], tuple[int, int]]:
            return (mine[p.a].width, mine[p.a].height), (theirs[p.b].width, theirs[p.b].height)

        def greys(p: Pair) -> tuple[int, int]:
            a, b = mine[p.a].traits, theirs[p.b].traits
            return -1 if a is None else int(a.greyscale), -1 if b is None else int(b.greyscale)

        turns = [p for p in pairs if could_be_turned(*shapes(p))]
        scales = [p for p in pairs if could_be_scaled(*shapes(p))]
        greyed = [p for p in pairs if could_be_greyed(*greys(p)) and luminance_difference(
            mine[p.a].traits.thumbnail, theirs[p.b].traits.thumbnail) <= GREY_MATCH]
        variants = self._orientation_vectors({p.a for p in turns})
        best: dict[tuple[int, int], Pair] = {}
        for p in [*recheck_orientations(turns, -1.0, variants, {i: r.vector for i, r in theirs.items()}),
                  *self._scaled_pairs(scales, mine, theirs, targets),
                  *self._greyed_pairs(greyed, mine, theirs, targets),
                  *self._unframed_pairs(unframe, mine, theirs, targets)]:
            if (p.a, p.b) not in best or p.similarity > best[p.a, p.b].similarity:
                best[p.a, p.b] = p
        return [p for p in best.values() if good(p)]

    def _agreeing(self, pairs: PairArrays, targets: Store) -> PairArrays:
        """The pairs whose pictures agree pixel by pixel (``PIXEL_AGREEMENT``): each image's stored
        thumbnail read once, the pairs compared a chunk at a time."""
        if not len(pairs):
            return pairs
        mine, theirs = np.unique(pairs.a), np.unique(pairs.b)
        with self._lock:
            my_thumbnails = self._thumbnails(self.store, mine)
            their_thumbnails = self._thumbnails(targets, theirs)
        agreement = aligned_correlations(my_thumbnails, their_thumbnails, np.searchsorted(mine, pairs.a),
                                         np.searchsorted(theirs, pairs.b))
        return pairs.take(agreement >= PIXEL_AGREEMENT)

    def _keypoint_files(self) -> KeypointFiles:
        """A fresh keypoint cache for one run of pair checks (OpenCV imported only now) that reads the
        matches this index remembers and keeps those it makes (:class:`_IndexedMatches`)."""
        from lookalike.embedder.keypoints import KeypointFiles

        report = _RUN_PROGRESS.get()
        return KeypointFiles(memory=_IndexedMatches(self.store, self._lock),
                             progress=partial(report, step=MATCHING) if report else None,
                             decided=geometry_disagrees)

    @staticmethod
    def _thumbnails(store: Store, ids: np.ndarray) -> np.ndarray:
        """``ids``' thumbnails; those of rows indexed before schema 4 read from their files (a file
        gone or unreadable gives a flat thumbnail, which never agrees)."""
        from lookalike.embedder.images import read_traits

        matrix, recorded = store.thumbnails(ids)
        if not recorded.all():
            for row in store.get_many(ids[~recorded].tolist()):
                with contextlib.suppress(ImageError):
                    thumbnail = read_traits(row.path).thumbnail
                    matrix[np.searchsorted(ids, row.id)] = np.frombuffer(thumbnail, dtype=np.uint8)
        return matrix

    def _scaled_pairs(self, pairs: Sequence[Pair], mine: dict[int, ImageRow], theirs: dict[int, ImageRow],
                      targets: Store) -> list[Pair]:
        """The scale second look (``SCALE_RATIO``): each pair's larger picture shrunk to the smaller one's
        size and embedded again, against the smaller one's stored vector; the best similarity kept.
        ``theirs`` are rows of ``targets``. Unreadable files leave their pair as it was."""
        from PIL import Image as PILImage

        jobs, smaller = {}, {}
        for p in pairs:
            a, b = mine[p.a], theirs[p.b]
            mine_larger = a.width * a.height >= b.width * b.height
            large, small = (a, b) if mine_larger else (b, a)
            width, height = max(1, small.width), max(1, small.height)
            jobs[p.a, p.b] = Edit(
                large, self.store if mine_larger else targets, f"scaled {width}x{height}",
                max(small.width, small.height),
                lambda picture, size=(width, height): picture.resize(size, PILImage.Resampling.LANCZOS))
            smaller[p.a, p.b] = vectors.normalized(small.vector)[0]
        embedded = self._embedded_edits(jobs)
        return [Pair(p.a, p.b, max(p.similarity, float(embedded[p.a, p.b] @ smaller[p.a, p.b])))
                for p in pairs if (p.a, p.b) in embedded]

    def _greyed_pairs(self, pairs: Sequence[Pair], mine: dict[int, ImageRow], theirs: dict[int, ImageRow],
                      targets: Store) -> list[Pair]:
        """The greyscale second look: each pair's colour picture turned grey and embedded again (once
        however many grey pictures it pairs with), against the grey one's stored vector; the best
        similarity kept. The model sees colour, so a greyscale copy's plain similarity to its original is
        often under 0.85; greyed alike, 0.97 or more. ``theirs`` are rows of ``targets``. Unreadable files
        leave their pair as it was."""
        if not pairs:
            return []
        sides = [(mine[p.a], theirs[p.b], targets) if mine[p.a].traits.greyscale
                 else (theirs[p.b], mine[p.a], self.store) for p in pairs]
        embedded = self._embedded_edits({colour.path: Edit(colour, store, "grey", None,
                                                           lambda picture: picture.convert("L"))
                                         for _, colour, store in sides})
        return [Pair(p.a, p.b, max(p.similarity,
                                   float(embedded[colour.path] @ vectors.normalized(grey.vector)[0])))
                for p, (grey, colour, _) in zip(pairs, sides, strict=True) if colour.path in embedded]

    def _unframed_pairs(self, pairs: Sequence[Pair], mine: dict[int, ImageRow], theirs: dict[int, ImageRow],
                        targets: Store) -> list[Pair]:
        """The frame look (``FRAMED``): each pair's framed picture cropped to its content and embedded
        again (once however many pictures it pairs with), against the other's stored vector; the best
        similarity kept. ``theirs`` are rows of ``targets``. Unreadable files leave their pair as it was."""
        if not pairs:
            return []
        from lookalike.embedder.traits import TRAITS_VERSION, content_crop

        def framed_first(a: ImageRow, b: ImageRow) -> tuple[ImageRow, ImageRow, Store]:
            return (a, b, self.store) if ImageRecord.of(a).framed else (b, a, targets)

        sides = [framed_first(mine[p.a], theirs[p.b]) for p in pairs]
        name = f"unframed {TRAITS_VERSION}"  # where the content ends is a trait: found better by releases
        embedded = self._embedded_edits({framed.path: Edit(framed, store, name, None, content_crop)
                                         for framed, _, store in sides})
        return [Pair(p.a, p.b, max(p.similarity,
                                   float(embedded[framed.path] @ vectors.normalized(plain.vector)[0])))
                for p, (framed, plain, _) in zip(pairs, sides, strict=True) if framed.path in embedded]

    def _embedded_edits(self, jobs: Mapping[Any, Edit]) -> dict[Any, np.ndarray]:
        """``{key: edit}`` -> ``{key: unit vector}``: each file opened, edited and embedded again, a batch at
        a time, unless the index remembers it (:meth:`_remembered`); the second looks that change the
        picture before comparing it. Unreadable files are left out."""
        from lookalike.embedder.images import open_image, preprocess

        def pixels_of(key: Any) -> np.ndarray:
            job, size = jobs[key], self.embedder.input_size
            picture = open_image(job.row.path, min_size=size if job.min_size is None else job.min_size)
            return preprocess(job.change(picture).convert("RGB"), size)[None]

        memos = {key: (job.row, job.name) if job.store is self.store else None for key, job in jobs.items()}
        embed = partial(self._embedded_in_batches, pixels_of=pixels_of)
        return {key: vector for key, (vector,) in self._remembered(memos, embed).items()}

    def _orientation_vectors(self, ids: Iterable[int]) -> dict[int, np.ndarray]:
        """Quarter-turned embeddings of indexed images [turns, dim], from their files unless the index
        remembers them (:meth:`_remembered`); unreadable ones left out."""
        from lookalike.embedder.images import load_image

        with self._lock:
            rows = {row.id: row for row in self.store.get_many(sorted(ids))}

        def embed(keys: list[int]) -> dict[int, np.ndarray]:
            # a file gone or changed since indexing leaves its pair below the threshold
            return self._embedded_in_batches(keys, lambda image_id: orientation_pixels(
                load_image(rows[image_id].path, self.embedder.input_size).pixels))

        return self._remembered({image_id: (row, "turned") for image_id, row in rows.items()}, embed)

    def _embedded_in_batches(self, keys: list[Any], pixels_of: Callable[[Any], np.ndarray]
                             ) -> dict[Any, np.ndarray]:
        """``{key: unit vectors [n, dim]}`` of each key's preprocessed pictures (``pixels_of``: [n, side,
        side, 3]; an unreadable file, ImageError, leaves its key out), ``ORIENTATION_BATCH`` keys a run of
        the model."""
        from lookalike.embedder.embedder import l2_normalise

        found: dict[Any, np.ndarray] = {}
        report = _RUN_PROGRESS.get()
        for start in range(0, len(keys), ORIENTATION_BATCH):
            batch = []
            for key in keys[start : start + ORIENTATION_BATCH]:
                with contextlib.suppress(ImageError):
                    batch.append((key, pixels_of(key)))
            if batch:
                features, _ = self.embedder.embed_pixels(np.concatenate([pixels for _, pixels in batch]))
                found.update(zip((key for key, _ in batch), l2_normalise(features).reshape(
                    len(batch), -1, features.shape[-1]), strict=True))
            if report:
                report(min(start + ORIENTATION_BATCH, len(keys)), len(keys), step=EDITING)
        return found

    def _remembered(self, memos: Mapping[Any, tuple[ImageRow, str] | None],
                    embed: Callable[[list[Any]], dict[Any, np.ndarray]]) -> dict[Any, np.ndarray]:
        """Edited pictures' vectors [n, dim] by key: those the index remembers read (``memos``: each key's
        row and edit name, None for another index's picture), the others ``embed``-ed (the model loaded
        only then) and remembered, best effort (:meth:`Store.remember_edited_vectors`). They depend only
        on the file's content and the model, so a second run, after a review, embeds none of them again;
        the result never depends on whether remembering worked. A file gone or changed since it was
        indexed (:func:`_as_indexed`) is read as it is now, and what it gives is not remembered."""

        kept = {key: memo for key, memo in memos.items() if memo is not None and _file_as_indexed(memo[0])}
        with self._lock:
            known = self.store.edited_vectors((row.id, edit) for row, edit in kept.values())
        found = {key: known[row.id, edit] for key, (row, edit) in kept.items() if (row.id, edit) in known}
        missing = [key for key in memos if key not in found]
        made = embed(missing) if missing else {}
        fresh = {(row.id, edit): (row.digest, made[key]) for key, (row, edit) in kept.items() if key in made}
        if fresh:
            with self._lock:
                self.store.remember_edited_vectors(fresh)
        return {**found, **made}

    def _matches(self, other: Path, threshold: float, exact_only: bool) -> list[Cluster]:
        """Two-set mode: my images against another index (only read) or a folder (a throwaway index)."""
        if (other / DB_NAME).exists():
            with Store.open(other, create=False) as archive:
                return self._match_store(archive, threshold, exact_only)
        if not other.is_dir():  # a wrong argument, as a missing folder to index is: status 2
            what = "is neither a lookalike index nor a folder" if os.path.exists(other) else "does not exist"
            raise InvalidOption("--against", f"{display(other)} {what}")
        if (quarantine := quarantine_holding(str(other))) is not None:  # the walk would skip it: say why
            raise InvalidOption("--against", f"{display(other)} is in the quarantine {display(quarantine)}: "
                                "its files are moved copies, not originals to match against")
        if exact_only:
            return self._match_files(other)
        with (
            tempfile.TemporaryDirectory(prefix="lookalike-against-") as tmp,
            Collection(Store.open(tmp), None, self._cache_dir, "auto") as scratch,
        ):
            scratch._embedder = self.embedder  # the same model, loaded once
            report = _RUN_PROGRESS.get()
            embedding = None if report is None else (  # add names only its own steps
                lambda done, total, step=EMBEDDING_OTHERS: report(done, total, step=step))
            scratch.add([other], progress=embedding)
            return self._match_store(scratch.store, threshold, exact_only)

    def _match_store(self, archive: Store, threshold: float, exact_only: bool) -> list[Cluster]:
        """My images against ``archive``'s. A file that is itself part of the archive (the same file,
        reached by any path) is never a copy: it is what the archive holds, not a duplicate of it."""
        pairs: list[Pair] = []
        keypoints = self._keypoint_files()  # each file described once, for the keypoint look and the check
        with self._lock:
            mine = self.store.digests()
            compare = not exact_only and self.store.count() and archive.count()
            if compare:
                self._check_same_model(archive)
        wanted = set(mine.values())
        twins = [i for i, digest in archive.digests().items() if digest in wanted]
        if compare:
            index, _ = vectors.load_or_rebuild(archive)  # a reader: never saved into their index
            across = partial(similar_pair_arrays, self_search=False)
            pairs = self._near_pairs(across, index, archive, threshold, {}, keypoints)
        theirs = _records(archive, [*twins, *(p.b for p in pairs)])
        found = {r.digest for r in theirs.values()}
        twins = [i for i, digest in mine.items() if digest in found]
        with self._lock:
            queries = _records(self.store, [*twins, *(p.a for p in pairs)])
        archive_files = archive.file_identities()
        queries = {i: r for i, r in queries.items() if not r.is_one_of(archive_files)}
        pairs = second_look([p for p in pairs if p.a in queries and p.b in theirs], threshold,
                            _with_traits(queries), _with_traits(theirs), keypoints)
        return build_matches(queries.values(), theirs.values(), pairs)

    def _check_same_model(self, archive: Store) -> None:
        from lookalike.embedder import Fingerprint

        mine, theirs = self.store.get_meta("model"), archive.get_meta("model")
        if mine != theirs:
            raise ModelMismatchError(
                f"{archive.directory} was built with {Fingerprint.from_dict(theirs)}, {self.directory} with "
                f"{Fingerprint.from_dict(mine)}: their vectors cannot be compared (--exact still can)"
            )

    def _match_files(self, folder: Path) -> list[Cluster]:
        """Exact two-set mode against a plain folder: content digests only, no model, nothing written."""
        with self._lock:
            mine = self.store.digests()
        wanted = set(mine.values())
        theirs, archive_files = [], FileSet()
        for number, file in enumerate(walk([folder])):
            archive_files.add(file.path, file.device, file.inode)
            digest = _digest_or_none(file.path)
            if digest in wanted:
                width, height = _pixel_size(file.path)
                theirs.append(ImageRecord(number, file.path, width, height, file.size, file.mtime, digest,
                                          file.device, file.inode))
        found = {r.digest for r in theirs}
        with self._lock:
            queries = _records(self.store, [i for i, d in mine.items() if d in found])
        return build_matches([r for r in queries.values() if not r.is_one_of(archive_files)], theirs)

    def move_duplicates(self, clusters: Iterable[Cluster], quarantine_dir: PathLike, *,
                        wait: float = 0.0) -> quarantine.MoveResult:
        """Move every cluster's copies (never a keeper) into ``quarantine_dir`` and forget them here.

        Paths under the quarantine mirror the copies' folders; ``result.manifest`` is what :meth:`undo`
        takes. The writer lock is held throughout, so files and index change together.
        """
        with self.store.writer(wait), self._lock:
            folder = Path(check_path(quarantine_dir, "--move-to")).expanduser()
            result = quarantine.move_copies(clusters, folder)
            try:
                self._forget_paths(result.originals)
            except NoSpace as e:  # the files did move: say so, and how to put them back
                raise NoSpace(f"{e}; {len(result.moved)} copies had been moved into the quarantine "
                              f"(undo: {display(result.manifest)})") from None
        return result

    def delete_duplicates(self, clusters: Iterable[Cluster], *, wait: float = 0.0) -> quarantine.DeleteResult:
        """Delete every cluster's copies (never a keeper) for good, and forget them. Ask the user first."""
        with self.store.writer(wait), self._lock:
            result = quarantine.delete_copies(clusters)
            self._forget_paths(result.deleted)
        return result

    def undo(self, manifest: PathLike, *, wait: float = 0.0) -> Undone:
        """Put files moved by :meth:`move_duplicates` back, byte-identical, and index them again.

        The files go back first, so a writer holding the index for longer than ``wait`` seconds is no
        error (they are back): they come as ``unindexed``. Undoing the manifest again indexes every file
        it put back that the index still lacks, whichever undo put it back.
        """
        self.store.check_open()  # the files go back before the writer lock is asked for
        check_wait(wait)  # and so is a bad wait refused before they go
        path = Path(check_path(manifest, "MANIFEST")).expanduser().absolute()
        moves = quarantine.read_moves(path)
        result = quarantine.undo(path, moves)
        earlier = tuple(self._back_but_unindexed(moves, result))
        if result.restored or earlier:
            try:
                self.add([*result.restored, *earlier], wait=wait)
            except WriterBusy:
                return Undone(result.restored, result.problems, unindexed=(*result.restored, *earlier))
        return Undone(result.restored, result.problems, caught_up=earlier)

    def _back_but_unindexed(self, moves: list[dict], done: quarantine.UndoResult) -> list[Path]:
        """Files an earlier undo of a manifest's ``moves`` put back (the same bytes at the same place)
        that the index does not hold: that undo found the index busy."""
        seen = {*done.restored, *(problem.path for problem in done.problems)}
        found = []
        for entry in moves:
            original = Path(entry["original"])
            if original in seen or Path(entry["moved_to"]).exists():
                continue
            seen.add(original)
            if self.get_by_path(original) is None and _digest_or_none(str(original)) == entry["sha256"]:
                found.append(original)
        return found

    def _forget_paths(self, paths: Iterable[Path]) -> None:
        """Drop the rows of files that were moved or deleted (the caller holds the writer lock)."""
        ids = [row.id for path in paths if (row := self.store.get_by_path(path, vector=False))]
        if ids:
            index = self._current_vectors()
            self._forget(ids, index)
            self._save_vectors(index)

    @property
    def read_only(self) -> str | None:
        """Why this index cannot be written ("read-only file system"), or None when it can."""
        return self.store.read_only

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Collection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_search(k: object, min_score: float | None, label: str | None) -> int:
    """A search's arguments, refused before anything is embedded: a cosine score lies in [-1, 1], and
    NaN or 5 matched nothing, silently; so did a label filter without a word."""
    if min_score is not None:
        check_score("the minimum score", min_score, "--min-score", -1, 1)
    if label is not None:
        _check_words(label, "--label")
    return check_count("k", k, "-k")


def _check_words(text: object, option: str) -> None:
    """Text to match holds a word: letters or digits, as the full-text index splits it
    (:func:`~lookalike.index.store.words`). ``find ""``, ``"  "`` or ``"*"`` matched nothing by
    construction and answered "no matches", as if the index had been searched; an empty ``--label`` was
    no filter at all, and ``"  "`` one that let no neighbour through."""
    if not isinstance(text, str) or not words(text):
        raise InvalidOption(option, f"{option} holds no word to match (letters or digits): {text!r}")


class _IndexedMatches:
    """The index's memory of keypoint matches (a :class:`~lookalike.embedder.keypoints.MatchMemory`):
    reading and describing the files is most of a second duplicates run's time, and a match depends only
    on the two files' content and the matching code (:func:`~lookalike.embedder.keypoints.matching_code`).
    Only pairs of this index's images whose files are as they were indexed (:func:`_as_indexed`) are read
    or kept: a file changed since is matched as it is now, and not kept; nor is a file that did not read.
    Keeping is best effort (:meth:`Store.remember_keypoint_matches`); the result never depends on it."""

    def __init__(self, store: Store, lock: threading.RLock) -> None:
        self._store, self._lock = store, lock
        self._rows: dict[str, ImageRow | None] = {}

    def recall(self, code: str, pairs: Sequence[tuple[str, str]], mirrored: bool) -> dict[int, Match]:
        from lookalike.embedder.keypoints import Match

        keys = self._keys(pairs, mirrored)
        with self._lock:
            known = self._store.keypoint_matches(code, (key for key in keys if key is not None))
        return {i: Match(*known[key]) for i, key in enumerate(keys) if key in known}

    def keep(self, code: str, pairs: Sequence[tuple[str, str]], mirrored: bool,
             found: Sequence[Match | None]) -> None:
        entries = {key: (self._rows[a].digest, self._rows[b].digest, tuple(match))
                   for key, (a, b), match in zip(self._keys(pairs, mirrored), pairs, found, strict=True)
                   if key is not None and match is not None}
        if entries:
            with self._lock:
                self._store.remember_keypoint_matches(code, entries)

    def _keys(self, pairs: Sequence[tuple[str, str]], mirrored: bool) -> list[tuple[int, int, bool] | None]:
        rows = [(self._row(a), self._row(b)) for a, b in pairs]
        return [(a.id, b.id, mirrored) if a is not None and b is not None else None for a, b in rows]

    def _row(self, path: str) -> ImageRow | None:
        """This index's row for ``path`` while its file is as indexed; looked at once a run."""
        if path not in self._rows:
            with self._lock:
                row = self._store.get_by_path(path, vector=False)
            self._rows[path] = row if row is not None and _file_as_indexed(row) else None
        return self._rows[path]


def _records(store: Store, ids: Iterable[int]) -> dict[int, ImageRecord]:
    """What the keeper policy and the report need, for just the images in pairs or exact groups."""
    return {row.id: ImageRecord.of(row) for row in store.get_many(list(ids))}


def _with_traits(records: dict[int, ImageRecord]) -> dict[int, ImageRecord]:
    """Traits for rows indexed before they were recorded (schema < 3), read from their files.

    A file that is gone or unreadable keeps None: the keeper policy then falls back to its pixels.
    """
    from lookalike.embedder.images import read_traits

    filled = dict(records)
    for image_id, record in records.items():
        if record.traits is None:
            with contextlib.suppress(ImageError):
                filled[image_id] = dataclasses.replace(record, traits=read_traits(record.path))
    return filled


def _pixel_size(path: str) -> tuple[int, int]:
    """Width and height as the picture is meant to be seen (EXIF rotation applied); (0, 0) if unreadable.

    Opened as a regular file only (:func:`~lookalike.index.walk.open_regular`): never blocks on a FIFO.
    """
    from PIL import Image as PILImage

    try:
        with os.fdopen(open_regular(path), "rb") as f, PILImage.open(f) as image:
            width, height = image.size
            turned = image.getexif().get(0x0112) in (5, 6, 7, 8)  # Orientation: a quarter turn
    except (ImageError, OSError, ValueError, PILImage.DecompressionBombError):
        return 0, 0
    return (height, width) if turned else (width, height)


def _as_indexed(row: ImageRow, st: os.stat_result) -> bool:
    """Whether ``st`` is still the file ``row`` indexed: a regular file of its size and mtime (what the
    indexer takes for unchanged, unread) and, where recorded, its device and inode."""
    return (stat.S_ISREG(st.st_mode) and st.st_size == row.size and abs(st.st_mtime - row.mtime) < 1e-3
            and (row.inode is None or (st.st_dev, st.st_ino) == (row.device, row.inode)))


def _file_as_indexed(row: ImageRow) -> bool:
    """Whether the file at ``row``'s path is still the one it indexed (:func:`_as_indexed`); not if it is
    gone or cannot be looked at."""
    try:
        return _as_indexed(row, os.lstat(row.path))
    except OSError:
        return False


def _digest_or_none(path: str) -> str | None:
    try:
        return digest_file(path)
    except ImageError:
        return None


def _under(path: str, folders: Sequence[str]) -> bool:
    """Whether ``path`` is one of ``folders`` or inside one (by path, not by following links)."""
    return any(path == f or path.startswith(f.rstrip(os.sep) + os.sep) for f in folders)


class Plan(NamedTuple):
    """What a walk found, against what the index holds."""

    to_embed: list[FoundFile]  # new, or changed in content
    touched: list[tuple[str, int, float]]  # size or mtime changed, same content: new stats only
    unchanged: int
    stale: list[tuple[int, str]]  # (id, path) of unchanged files whose traits are out of date


def _plan(found: Sequence[FoundFile], known: dict[str, FileState]) -> Plan:
    """Split found files by what they need; a changed size, mtime or file (another inode under the path)
    is only a change if the digest is."""
    to_embed, touched, unchanged, stale = [], [], 0, []
    for file in found:
        state = known.get(file.path)
        if state is None:
            to_embed.append(file)
            continue
        same_file = state.inode is None or (state.device, state.inode) == (file.device, file.inode)
        if (state.size, state.mtime) == (file.size, file.mtime) and same_file:
            unchanged += 1
        elif state.size == file.size and _digest_or_none(file.path) == state.digest:
            touched.append((file.path, file.size, file.mtime, file.device, file.inode))
            unchanged += 1
        else:
            to_embed.append(file)
            continue
        if not state.traits_current:
            stale.append((state.id, file.path))
    return Plan(to_embed, touched, unchanged, stale)


class _BatchWriter:
    """The write step of :meth:`Collection.add`: embedded files become rows and vectors, a batch per commit.

    Each commit is one SQLite transaction plus the matching FAISS change, under the collection lock,
    so a reader sees either the whole batch or none of it.
    """

    def __init__(self, collection: Collection, index: vectors.VectorIndex | None,
                 known: dict[str, FileState], commit_every: int) -> None:
        self.collection = collection
        self.index = index
        self.known = known
        self.commit_every = commit_every
        self.batch: list[NewImage] = []
        self.batch_failures: list[tuple[str, str]] = []
        self.failures: list[tuple[str, str]] = []
        self.added = self.updated = 0
        self.last_save = time.monotonic()

    def take(self, file: FoundFile, result: Embedding | ImageError) -> None:
        """One file's embedding (with its digest: ``embed_many(digests=True)``) or failure, in the batch."""
        reason = embed_failure(file, result)
        if reason is not None:
            self.batch_failures.append((file.path, reason))
        else:
            self.batch.append(NewImage(
                file.path, file.size, file.mtime, result.digest, result.width, result.height, result.format,
                [vars(label) for label in result.labels], result.vector, file.device, file.inode,
                result.traits,
            ))
        if len(self.batch) + len(self.batch_failures) >= self.commit_every:
            self.flush()

    def flush(self) -> None:
        """Commit what is pending: rows, vectors and failures together."""
        store = self.collection.store
        wrote = bool(self.batch)
        with self.collection._lock:
            if wrote:
                replaced = [self.known[row.path].id for row in self.batch if row.path in self.known]
                with self.index.changing_with(store):
                    self.index.remove(replaced)
                    ids = store.upsert(self.batch)
                    self.index.add(ids, np.stack([row.vector for row in self.batch]))
                self.updated += len(replaced)
                self.added += len(self.batch) - len(replaced)
            if self.batch_failures:
                store.record_failures(self.batch_failures)
                self.failures.extend(self.batch_failures)
            self.batch.clear()
            self.batch_failures.clear()
            if wrote and time.monotonic() - self.last_save > SAVE_EVERY_S:  # readers catch up
                self.index = self.collection._save_vectors(self.index)
                self.last_save = time.monotonic()


def open_collection(
    directory: PathLike | None = None,
    *,
    model: str | None = None,
    create: bool = True,
    index_type: str | None = None,
    cache_dir: str | Path | None = None,
    batching: bool = False,
) -> Collection:
    """Open (or create) the index in ``directory`` (default: :func:`default_directory`).

    ``model`` is needed only for a new index (default efficientnet-b2); an existing one remembers its
    model and refuses vectors from another. ``index_type``: auto (exact, then IVF as it grows), flat or
    ivf; remembered by the index once it is written with it. ``batching``: embed queries from concurrent
    threads together (:mod:`lookalike.embedder.batching`).
    """
    if index_type is not None and index_type not in vectors.INDEX_TYPES:
        raise InvalidOption(
            "--index-type", f"unknown index type {index_type!r}; choose {', '.join(vectors.INDEX_TYPES)}")
    directory = default_directory() if directory is None else check_path(directory, "--index")
    store = Store.open(directory, create=create)
    return Collection(store, model, cache_dir, index_type, batching)

"""Embed requests that arrive together in one forward pass.

A server answers each request in its own thread; where one model call per request leaves cores idle,
one batch of many costs little more than one image. Measured on 2 cores it does not pay (concurrent
single-image calls already fill both: docs/benchmarks.md, "Service load"), so it is opt-in. The wrapper
keeps :class:`Embedder`'s ``embed(source, top_k)``: the caller's thread decodes and preprocesses (so
decoding stays parallel and a bad image fails in its own request), a single worker runs the model on
whatever pixels arrived within a few milliseconds, and each caller gets back its own embedding.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from lookalike.embedder.embedder import TOP_K, Embedding, Source
from lookalike.embedder.images import DecodedImage, load_image

if TYPE_CHECKING:
    from lookalike.embedder.embedder import Embedder

MAX_BATCH = 16
"""Images per forward pass at most: past this, a batch costs as much per image as two smaller ones."""

MAX_WAIT_S = 0.002
"""How long the worker waits for company after the first image of a batch arrives."""

IDLE_EXIT_S = 30.0
"""The worker thread ends after this long without work, and starts again with the next request."""

_Request = tuple[DecodedImage, int, Future]


class BatchingEmbedder:
    """Thread-safe ``embed`` that batches concurrent calls; everything else is the wrapped embedder's."""

    def __init__(self, embedder: Embedder, max_batch: int = MAX_BATCH, max_wait: float = MAX_WAIT_S) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be positive, not {max_batch}")
        self.embedder = embedder
        self.max_batch = max_batch
        self.max_wait = max_wait
        self._queue: queue.Queue[_Request] = queue.Queue()
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None

    def __getattr__(self, name: str) -> Any:
        """``input_size``, ``dim``, ``fingerprint``, ``embed_many``, ...: the wrapped embedder's own."""
        return getattr(self.embedder, name)

    def embed(self, source: Source, top_k: int = TOP_K) -> Embedding:
        """Same answer as ``Embedder.embed``; raises ImageError in the caller's thread for a bad image."""
        decoded = load_image(source, self.embedder.input_size)
        future: Future[Embedding] = Future()
        with self._lock:  # the worker decides to exit under this lock too, so no request is stranded
            self._queue.put((decoded, top_k, future))
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, name="embed-batcher", daemon=True)
                self._worker.start()
        return future.result()

    def _run(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=IDLE_EXIT_S)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():
                        self._worker = None
                        return
                continue
            self._embed_batch(self._gather(first))

    def _gather(self, first: _Request) -> list[_Request]:
        """The first request and whatever else arrives before ``max_wait`` runs out or the batch is full."""
        batch = [first]
        deadline = time.monotonic() + self.max_wait
        while len(batch) < self.max_batch:
            remaining = deadline - time.monotonic()
            try:
                batch.append(self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get(False))
            except queue.Empty:
                break
        return batch

    def _embed_batch(self, batch: list[_Request]) -> None:
        """One forward pass; top-k labels for the largest k asked, each caller's list cut to its own k."""
        images = [image for image, _, _ in batch]
        try:
            embeddings = self.embedder._embed_decoded(images, max(k for _, k, _ in batch))
        except Exception as error:  # the callers, not this thread, report it
            for _, _, future in batch:
                future.set_exception(error)
            return
        for (_, k, future), embedding in zip(batch, embeddings, strict=True):
            future.set_result(dataclasses.replace(embedding, labels=embedding.labels[:k]))

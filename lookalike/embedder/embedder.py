"""The embedder: images in, L2-normalised feature vectors and ImageNet labels out, in one forward pass."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.embedder import catalog
from lookalike.embedder.images import PREPROCESSING_VERSION, DecodedImage, load_image
from lookalike.embedder.labels import Label, top_labels
from lookalike.embedder.traits import Traits
from lookalike.errors import ImageError
from lookalike.paths import FileIdentity

TOP_K = 5
Source = str | Path | bytes

MAX_BATCH_SIZE = 64
"""Images per forward pass at most, whatever batch size is asked: a larger one runs as batches of this.

The model's activations grow with the batch, about 16 MB per image with the offline model at 260x260:
before this cap, 700 JPEGs peaked at 3.4 GiB with batch 128 and passed 10 GiB with 1024. At 64 every
batch size peaks at 1.9 GiB (0.8 of it the loaded model) and no larger batch was faster on 2 cores
(bench/memory.py, "Peak memory by batch size" in docs/benchmarks.md). The CLI's ``--batch-size`` stops here.
"""

MAX_LOOKAHEAD_BYTES = 256 * 2**20
"""Decoded images waiting for the model in ``embed_many``, at most, in bytes of float32 pixels.

At 260x260 an image is 811 KB, so this never binds below two batches of ``MAX_BATCH_SIZE``; at B7's
600x600 (4.3 MB each) it keeps the queue to 62 images whatever the batch size."""


@dataclass(frozen=True)
class Fingerprint:
    """What makes two embedders' vectors comparable: same weights, same preprocessing, same size."""

    handle: str
    digest: str
    preprocessing: str
    dim: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fingerprint:
        return cls(str(data["handle"]), str(data["digest"]), str(data["preprocessing"]), int(data["dim"]))

    def __str__(self) -> str:
        entry = catalog.lookup(self.handle)
        name = entry.name if entry else self.handle
        return f"{name} ({self.dim}-d, weights {self.digest[:8]}, {self.preprocessing})"


@dataclass(frozen=True)
class Embedding:
    vector: np.ndarray
    labels: list[Label]
    width: int
    height: int
    format: str
    traits: Traits | None = None
    digest: str | None = None  # asked for: the SHA-256 of exactly the bytes embedded
    file: FileIdentity | None = None  # the file a path's bytes were read from, as opened


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


class Embedder:
    """A loaded module plus the preprocessing it needs. Build one with :func:`load_embedder`."""

    def __init__(self, name: str, module, input_size: int, digest: str) -> None:
        self.name = name
        self.handle = module.handle
        self.format = module.format
        self.module_path = module.path
        self.input_size = input_size
        self._run = module.run
        probe_features, probe_logits = self._run(np.zeros((1, input_size, input_size, 3), np.float32))
        self.dim = int(probe_features.shape[1])
        self.has_labels = probe_logits is not None
        self.fingerprint = Fingerprint(self.handle, digest, PREPROCESSING_VERSION, self.dim)

    def embed_pixels(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Raw features [n, dim] and logits [n, classes] (or None) for a preprocessed batch.

        At most ``MAX_BATCH_SIZE`` images go through the model at once; a larger batch is split.
        """
        if len(pixels) <= MAX_BATCH_SIZE:
            return self._run(pixels)
        parts = [self._run(pixels[i : i + MAX_BATCH_SIZE]) for i in range(0, len(pixels), MAX_BATCH_SIZE)]
        features = np.concatenate([f for f, _ in parts])
        logits = None if parts[0][1] is None else np.concatenate([g for _, g in parts])
        return features, logits

    def embed(self, source: Source, top_k: int = TOP_K) -> Embedding:
        """One image (path or encoded bytes); raises ImageError if it is not a readable image."""
        return self._embed_decoded([load_image(source, self.input_size)], top_k)[0]

    def embed_many(
        self,
        sources: Iterable[Source],
        batch_size: int = 32,
        workers: int | None = None,
        top_k: int = TOP_K,
        digests: bool = False,
    ) -> Iterator[tuple[Source, Embedding | ImageError]]:
        """Embeds in input order, decoding in threads while the model runs on the previous batch.

        A file that cannot be decoded comes back as its ImageError in its place; the run goes on.
        ``digests``: each embedding carries the SHA-256 of the bytes decoded (``load_image(digest=True)``),
        taken in the decoding thread, so an indexer need not open the file again to digest it.
        Memory does not grow with ``batch_size``: batches are capped at ``MAX_BATCH_SIZE`` images and
        the decoded images waiting for the model at :func:`lookahead_images` (two batches, at most
        ``MAX_LOOKAHEAD_BYTES``); full-size decodes in flight are one per worker thread.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, not {batch_size}")
        workers = workers or min(4, os.cpu_count() or 1)
        batch_size = min(batch_size, MAX_BATCH_SIZE)
        lookahead = lookahead_images(batch_size, self.input_size, workers)
        todo = iter(sources)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode") as pool:
            pending: deque[tuple[Source, Future[DecodedImage]]] = deque()

            def top_up() -> None:
                while len(pending) < lookahead:
                    source = next(todo, None)
                    if source is None:
                        return
                    pending.append((source, pool.submit(load_image, source, self.input_size, digest=digests)))

            top_up()
            while pending:
                batch = [pending.popleft() for _ in range(min(batch_size, len(pending)))]
                results: list[DecodedImage | ImageError] = []
                for source, future in batch:
                    try:
                        results.append(future.result())
                    except ImageError as error:
                        results.append(error)
                    except Exception as error:  # a decoder bug must not end a 10,000-photo run
                        results.append(ImageError(source, f"cannot decode: {error}"))
                top_up()  # the pool decodes the next batch while the model runs on this one
                decoded = [r for r in results if isinstance(r, DecodedImage)]
                embedded = iter(self._embed_decoded(decoded, top_k) if decoded else [])
                for (source, _), result in zip(batch, results, strict=True):
                    yield source, next(embedded) if isinstance(result, DecodedImage) else result

    def _embed_decoded(self, images: list[DecodedImage], top_k: int) -> list[Embedding]:
        features, logits = self.embed_pixels(np.stack([image.pixels for image in images]))
        vectors = l2_normalise(features)
        labels = top_labels(logits, top_k) if logits is not None else [[] for _ in images]
        return [
            Embedding(vector, image_labels, image.width, image.height, image.format, image.traits,
                      image.digest, image.file)
            for vector, image_labels, image in zip(vectors, labels, images, strict=True)
        ]


def lookahead_images(batch_size: int, input_size: int, workers: int) -> int:
    """How many decoded images ``embed_many`` keeps ahead of the model: two batches, within the byte cap.

    Never fewer than ``workers``, so every decoding thread has work while the model runs.
    """
    per_image = input_size * input_size * 3 * np.dtype(np.float32).itemsize
    by_bytes = MAX_LOOKAHEAD_BYTES // per_image
    return max(workers, min(2 * min(batch_size, MAX_BATCH_SIZE), by_bytes))


def load_embedder(model: str = catalog.DEFAULT_MODEL, cache_dir: str | Path | None = None) -> Embedder:
    """Loads a catalog name, TF-Hub handle/URL or module directory (imports TensorFlow on first use)."""
    from lookalike.embedder import hub

    entry = catalog.lookup(model)
    handle = entry.handle if entry else model
    cache = Path(cache_dir) if cache_dir else hub.default_cache_dir()
    module = hub.load(handle, cache)
    name = entry.name if entry else handle
    return Embedder(name, module, hub.input_size(handle, module), module.digest)

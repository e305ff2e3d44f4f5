"""lookalike: image similarity search with EfficientNet embeddings, a FAISS index and SQLite metadata.

Everything the command line does is one call here; ``import lookalike`` does not import TensorFlow
(the model loads when an image is first embedded).
"""

from __future__ import annotations

# TensorFlow carries its own SQLite without FTS5; whichever loads first wins for the whole process, so the
# system SQLite (with the full-text search the index needs) must be loaded before TensorFlow ever is.
import sqlite3  # noqa: F401
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lookalike.errors import (
    CollectionError,
    ImageError,
    ImageNotFound,
    IndexTooNew,
    InvalidOption,
    LookalikeError,
    ModelError,
    ModelMismatchError,
    NoSpace,
    NotAnIndex,
    QuarantineError,
    ReportError,
    ServerUnavailable,
    StaleFile,
    WriterBusy,
)

if TYPE_CHECKING:
    from lookalike.embedder import Label
    from lookalike.index.collection import Collection
    from lookalike.paths import PathLike

__version__ = "0.1.0"
__all__ = [
    "CollectionError",
    "ImageError",
    "ImageNotFound",
    "IndexTooNew",
    "InvalidOption",
    "LookalikeError",
    "ModelError",
    "ModelMismatchError",
    "NoSpace",
    "NotAnIndex",
    "QuarantineError",
    "ReportError",
    "ServerUnavailable",
    "StaleFile",
    "WriterBusy",
    "classify",
    "open",
]


def open(directory: PathLike | None = None, **options: Any) -> Collection:
    """Open (or create) an index directory: ``col = lookalike.open("photos-index", model=...)``.

    The options are :func:`lookalike.index.collection.open_collection`'s (model, create, index_type,
    cache_dir, batching); the import is deferred so that ``import lookalike`` stays light.
    """
    from lookalike.index.collection import open_collection

    return open_collection(directory, **options)


def classify(
    images: Iterable[str | Path | bytes],
    model: str | None = None,
    k: int = 5,
    cache_dir: str | Path | None = None,
) -> Iterator[tuple[str | Path | bytes, list[Label] | ImageError]]:
    """Top-k ImageNet labels for each image, without an index; unreadable images yield their ImageError.

    ``k`` is checked here, at the call, not at the first image (InvalidOption, as ``search`` does).
    """
    from lookalike.arguments import check_count
    from lookalike.embedder import DEFAULT_MODEL, load_embedder

    k = check_count("k", k, "-k")
    embedder = load_embedder(model or DEFAULT_MODEL, cache_dir)
    return ((source, result if isinstance(result, ImageError) else result.labels)
            for source, result in embedder.embed_many(images, top_k=k))

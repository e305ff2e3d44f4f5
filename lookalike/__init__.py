"""lookalike: image similarity search with EfficientNet embeddings, a FAISS index and SQLite metadata.

Everything the command line does is one call here; ``import lookalike`` does not import TensorFlow
(the model loads when an image is first embedded).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from lookalike.errors import CollectionError, ImageError, LookalikeError, ModelError, ModelMismatchError

if TYPE_CHECKING:
    from lookalike.embedder import Label

__version__ = "0.1.0"
__all__ = [
    "CollectionError",
    "ImageError",
    "LookalikeError",
    "ModelError",
    "ModelMismatchError",
    "classify",
    "open",
]


def open(
    directory: str | Path | None = None,
    *,
    model: str | None = None,
    create: bool = True,
    index_type: str = "auto",
    cache_dir: str | Path | None = None,
):
    """Open (or create) an index directory: ``col = lookalike.open("~/.lookalike")``.

    ``model`` is needed only for a new index (default efficientnet-b2); an existing one remembers its
    model and refuses vectors from another. ``index_type``: auto (exact, then IVF as it grows), flat, ivf.
    """
    from lookalike.index.collection import open_collection

    return open_collection(directory, model=model, create=create, index_type=index_type, cache_dir=cache_dir)


def classify(
    images: Iterable[str | Path | bytes],
    model: str | None = None,
    k: int = 5,
    cache_dir: str | Path | None = None,
) -> Iterator[tuple[str | Path | bytes, list[Label] | ImageError]]:
    """Top-k ImageNet labels for each image, without an index; unreadable images yield their ImageError."""
    from lookalike.embedder import DEFAULT_MODEL, load_embedder

    embedder = load_embedder(model or DEFAULT_MODEL, cache_dir)
    for source, result in embedder.embed_many(images, top_k=k):
        yield source, result if isinstance(result, ImageError) else result.labels

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
]


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

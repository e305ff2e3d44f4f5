"""Images in, vectors and ImageNet labels out. Importing this package does not import TensorFlow."""

from lookalike.embedder.catalog import CATALOG, DEFAULT_MODEL, OFFLINE_MODEL
from lookalike.embedder.embedder import Embedder, Embedding, Fingerprint, load_embedder
from lookalike.embedder.labels import Label
from lookalike.errors import ImageError, ModelError

__all__ = [
    "CATALOG",
    "DEFAULT_MODEL",
    "OFFLINE_MODEL",
    "Embedder",
    "Embedding",
    "Fingerprint",
    "ImageError",
    "Label",
    "ModelError",
    "load_embedder",
]

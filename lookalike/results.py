"""What a search answers: plain dataclasses, in a module that imports nothing heavy.

They live apart from :mod:`lookalike.index.collection`, which makes them, so that a client of a running
``lookalike serve`` (:mod:`lookalike.remote`) returns the same types without importing FAISS, SQLite or
TensorFlow; ``lookalike.index.collection`` re-exports them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lookalike.embedder.labels import Label

if TYPE_CHECKING:
    from lookalike.index.store import ImageRow


@dataclass(frozen=True)
class Image:
    """An indexed image as answers show it."""

    id: int
    path: str
    width: int
    height: int
    size: int
    format: str
    labels: list[Label]

    @property
    def top_label(self) -> Label | None:
        return self.labels[0] if self.labels else None

    @classmethod
    def from_row(cls, row: ImageRow) -> Image:
        labels = [Label(la["name"], la["index"], la["probability"]) for la in row.labels]
        return cls(row.id, row.path, row.width, row.height, row.size, row.format, labels)


@dataclass(frozen=True)
class Neighbour:
    rank: int
    score: float
    image: Image


@dataclass(frozen=True)
class SearchResult:
    """The query's own labels, and its nearest images best first (the query itself left out)."""

    query_labels: list[Label]
    neighbours: list[Neighbour]
    query_id: int | None = None


"""The failures a user is expected to meet, each shown as one line, never a traceback."""

from __future__ import annotations


class LookalikeError(Exception):
    """Base of every expected failure; the CLI prints ``str(error)`` and exits 1."""


class ImageError(LookalikeError):
    """A file (or upload) that is not a readable image; ``reason`` says why in a few words."""

    def __init__(self, source: object, reason: str) -> None:
        self.source = str(source)
        self.reason = reason
        super().__init__(f"{self.source}: {reason}")


class ModelError(LookalikeError):
    """A model that cannot be found, downloaded or used."""


class CollectionError(LookalikeError):
    """An index directory that cannot be opened, written or queried as asked."""


class ModelMismatchError(CollectionError):
    """Vectors from one model offered to an index built with another."""

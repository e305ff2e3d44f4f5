"""The failures a caller can act on, each shown as one line, never a traceback.

The tree (catch a branch to handle everything under it)::

    LookalikeError                  every expected failure
    +-- InvalidOption               a bad argument: keeper policy, index type, threshold, k, limit, score
    +-- ImageError                  a file or upload that is not a readable image (.source, .reason)
    +-- ModelError                  a model that cannot be found, downloaded or used
    +-- CollectionError             an index that cannot be used as asked (closed, say)
    |   +-- NotAnIndex              a database that is not an index
    |   |   +-- NoIndex             no index there at all (.directory): ``lookalike index`` makes one
    |   +-- IndexTooNew             written by a newer lookalike: upgrade the program
    |   +-- ModelMismatchError      vectors from one model offered to an index built with another
    |   +-- ImageNotFound           no image with that id (.id)
    |   +-- StaleFile               the indexed file is gone or is no longer the file that was indexed
    |   +-- WriterBusy              another writer holds the index (.retry_after seconds)
    |   +-- NoSpace                 the disk (or quota) is full; nothing committed was lost
    |   +-- IndexDamaged            SQLite finds the index database malformed past its first pages
    +-- QuarantineError             a manifest that cannot be read or acted on
    +-- ReportError                 a place an HTML report cannot be written to
    +-- ServerUnavailable           a ``lookalike serve`` that cannot be reached or is busy (.url)

Each class maps to one exit status in :mod:`lookalike.cli.exits` and one HTTP status in
:mod:`lookalike.server.app` (``STATUSES``), in one table each.
"""

from __future__ import annotations

from pathlib import Path


class LookalikeError(Exception):
    """Base of every expected failure; the CLI prints ``str(error)`` on one line."""


class InvalidOption(LookalikeError, ValueError):
    """An argument outside what is accepted (a ValueError too, for callers that catch those)."""

    def __init__(self, option: str, message: str) -> None:
        self.option = option
        super().__init__(message)


class ImageError(LookalikeError):
    """A file (or upload) that is not a readable image; ``reason`` says why in a few words."""

    def __init__(self, source: object, reason: str) -> None:
        from lookalike.paths import display

        self.source = source if isinstance(source, str) else str(source)
        self.reason = reason
        super().__init__(f"{display(self.source)}: {reason}")


class ModelError(LookalikeError):
    """A model that cannot be found, downloaded or used."""


class CollectionError(LookalikeError):
    """An index directory that cannot be opened, written or queried as asked."""


class NotAnIndex(CollectionError):
    """The directory holds no lookalike index, or its database is not one."""


class NoIndex(NotAnIndex):
    """No index in this directory yet (its database file is missing); the CLI says how to create one."""

    def __init__(self, directory: object, database: str) -> None:
        from lookalike.paths import display

        self.directory = directory
        super().__init__(f"no lookalike index in {display(directory)} (missing {database})")


class IndexTooNew(CollectionError):
    """The index was written by a newer lookalike (a higher schema version): upgrade the program."""


class ModelMismatchError(CollectionError):
    """Vectors from one model offered to an index built with another."""


class ImageNotFound(CollectionError):
    """No image with this id in the index."""

    def __init__(self, id: int, directory: object) -> None:
        self.id = id
        super().__init__(f"no image with id {id} in {directory}")


class StaleFile(CollectionError):
    """The file of an indexed image is gone, or its path now reaches another file (replaced, a symlink)."""


class WriterBusy(CollectionError):
    """Another process (or thread) is writing this index; try again after ``retry_after`` seconds."""

    retry_after = 5


class NoSpace(CollectionError):
    """The disk or quota filled up while writing; everything committed before is intact."""


class IndexDamaged(CollectionError):
    """The index database is damaged where a command read it (SQLite: "database disk image is
    malformed"), though it opened: a disk error, a partial copy, a hand edit. Nothing more is read from
    it or written to it by that command; restore it from a backup, or move the folder aside and index
    again. ``reason`` is SQLite's own words."""

    def __init__(self, path: object, reason: str) -> None:
        from lookalike.paths import display

        self.reason = reason
        path = Path(path)
        super().__init__(f"the index in {display(path.parent)} is damaged ({path.name}: {reason}): "
                         "restore it from a backup, or move the folder aside and index your folders again")


class QuarantineError(LookalikeError):
    """A quarantine manifest that cannot be read, or is not one; a folder copies cannot be moved into."""


class ReportError(LookalikeError):
    """An HTML report cannot be written where asked: a folder is there, or its folder is missing or
    cannot be written."""


class ServerUnavailable(LookalikeError):
    """The ``lookalike serve`` at ``url`` did not answer, or answered that it is busy: try again later,
    or ask without the server (the local index and model)."""

    def __init__(self, url: str, message: str) -> None:
        self.url = url
        super().__init__(message)

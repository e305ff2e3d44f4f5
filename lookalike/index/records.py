"""What the duplicate search knows of each image and what it answers with: records, pairs, clusters.

The data shared by the pair search and clustering (``duplicates.py``) and by the second looks
(``looks.py``, ``geometry.py``); nothing here reads a file or searches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lookalike.embedder.traits import TINT_SIDE, Traits
from lookalike.paths import FileSet

if TYPE_CHECKING:
    from lookalike.index.store import ImageRow

FRAMED = 0.95
"""A picture keeping under this share of its pixels inside its content box has an added border or
caption band (``ImageRecord.framed``; the frame look in ``duplicates.py`` says how it was chosen)."""
UNFRAMED = 0.98
"""A picture whose content box (``Traits``) keeps this share of its pixels has no added border or band;
one that keeps this share of a side spans it (``ImageRecord.banded``: a band at most along the other)."""


@dataclass(frozen=True)
class ImageRecord:
    """What the keeper policy and the report need to know about one indexed image."""

    id: int
    path: str
    width: int
    height: int
    size: int
    mtime: float
    digest: str | None = None
    device: int | None = None
    inode: int | None = None
    traits: Traits | None = None

    @classmethod
    def of(cls, row: ImageRow) -> ImageRecord:
        """The record of a store row (its vector and labels left behind)."""
        return cls(row.id, row.path, row.width, row.height, row.size, row.mtime, row.digest, row.device,
                   row.inode, row.traits)

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def content_pixels(self) -> int:
        """The picture's own pixels: without an added border or caption band (``embedder/traits.py``)."""
        return self.traits.content_pixels if self.traits else self.pixels

    @property
    def banded(self) -> bool:
        """Framed with its content the whole width or height: a caption band may cover part of it."""
        traits = self.traits
        return self.framed and traits is not None and (traits.content_width >= UNFRAMED * self.width
                                                       or traits.content_height >= UNFRAMED * self.height)

    @property
    def content_share(self) -> float:
        """The share of the picture's pixels that its own content keeps; 1.0 when unknown."""
        return self.content_pixels / self.pixels if 0 < self.content_pixels < self.pixels else 1.0

    @property
    def coverable(self) -> float:
        """The share of a picture that its caption band may have covered in the original, 0 when not
        banded: the band's own share and one row of the colour grid (``TINT_SIDE``), whose cells a band
        ending inside them may have covered all but a trace too faint to count."""
        return 1.0 - self.content_share + 1.0 / TINT_SIDE if self.banded else 0.0

    @property
    def framed(self) -> bool:
        """Inside an added border or caption band (``FRAMED``), which its thumbnail shares with every
        picture framed alike."""
        return self.content_pixels < FRAMED * self.pixels

    def is_one_of(self, files: FileSet) -> bool:
        return (self.path, self.device, self.inode) in files

    def same_file_as(self, other: ImageRecord) -> bool:
        """The same file under another path (a hard link, a bind mount): removing it frees nothing."""
        return self.path == other.path or bool(self.inode) and (self.device, self.inode) == (
            other.device, other.inode)


@dataclass(frozen=True)
class Pair:
    """Two images at or above the similarity threshold (cosine of their L2-normalised vectors).

    Within one set ``a < b``; across two sets ``a`` is the query image and ``b`` the archive image.
    """

    a: int
    b: int
    similarity: float
    score: float | None = None  # the similarity less the pair's density (:func:`pair_score`)

    @property
    def rank(self) -> float:
        return self.similarity if self.score is None else self.score


@dataclass(frozen=True)
class Member:
    """One image of a cluster, with its similarity to the cluster's keeper (1.0 for the keeper)."""

    id: int
    path: str
    width: int
    height: int
    size: int
    mtime: float
    similarity: float
    exact: bool
    same_file: bool = False
    """The keeper's own file under another name (a hard link): shown, never moved or deleted."""
    digest: str | None = None
    """The content digest it was indexed with: before a copy is moved or deleted, the copy and its keeper
    must still hold what was compared (a same-size rewrite keeps size and mtime close)."""
    device: int | None = None
    inode: int | None = None
    """With ``device``, what tells hard links of one file apart from copies (None: not known)."""

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def file(self) -> tuple[int | None, int] | str:
        """The file it is, whatever its name: its device and inode when known, else its path."""
        return (self.device, self.inode) if self.inode else self.path


@dataclass(frozen=True)
class Cluster:
    """A keeper and its copies; ``exact`` copies share the keeper's content digest byte for byte.

    A copy that is the keeper's very file under another name (``same_file``: a hard link) is listed
    for honesty but frees nothing and is never acted on.
    """

    keeper: Member
    copies: tuple[Member, ...]

    @property
    def members(self) -> tuple[Member, ...]:
        return (self.keeper, *self.copies)

    @property
    def reclaimable(self) -> int:
        """Bytes freed by removing the copies: what a user weighs before cleaning up. Each file counts once
        (two copies may be hard links of one file), the keeper's own file under another name not at all."""
        return sum({c.file: c.size for c in self.copies if not c.same_file}.values())


def tint_of(record: ImageRecord | None) -> bytes:
    """A record's stored colour grid; empty when unknown or grey."""
    return b"" if record is None or record.traits is None else record.traits.tint


def thumbnail_of(record: ImageRecord | None) -> bytes:
    """A record's stored luminance thumbnail; empty when unknown."""
    return b"" if record is None or record.traits is None else record.traits.thumbnail

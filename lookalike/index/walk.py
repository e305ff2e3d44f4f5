"""Finding image files under folders, fast enough to re-check a 100k-photo tree in seconds.

Only ``os.scandir`` and one ``stat`` per image file: no file is opened, so an unchanged tree costs a
directory walk plus a dictionary lookup per file in the store. Size and mtime decide whether a file
needs a closer look; the SHA-256 digest (``digest_file``) then decides whether it needs re-embedding.

Every file is found under its real path (:func:`lookalike.paths.identify`): a photo reached through a
symlink, or through a symlinked folder, is the same image as the one it points to, found once. Only
regular files are ever yielded; everything passed over that a user could expect to be indexed (a
dangling link, a link loop, a FIFO or device named like an image, an unreadable folder, a path too
long for the system) is reported to ``on_skip`` with its reason. Quarantine folders (they hold a
lookalike manifest) are never walked into: their files are copies moved away on purpose.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from lookalike.embedder.images import CHANGED, IMAGE_EXTENSIONS
from lookalike.errors import ImageError, LookalikeError
from lookalike.paths import FileIdentity, NotRegular, display, file_kind, identify, open_regular_fd

if TYPE_CHECKING:
    from lookalike.embedder.embedder import Embedding

QUARANTINE_MARKER = ".lookalike-quarantine"
"""A file in every quarantine folder's top: the walker passes such folders by."""
MANIFEST_PREFIX = "manifest-"
MANIFEST_SUFFIX = ".jsonl"

OnSkip = Callable[[str, str], None]  # (path, reason)


FoundFile = FileIdentity
"""A file the walk found: its identity (:func:`lookalike.paths.identify`), decided there and only there."""


class Walk:
    """The files under ``roots`` (iterate it once), and what the walk learnt on the way.

    ``real_roots`` are the real folders the walk entered at their top (the roots and the targets of
    symlinked folders): the places ``--prune`` looks for files that have gone.
    """

    def __init__(
        self,
        roots: Iterable[str | Path],
        extensions: Iterable[str] | None = None,
        *,
        include_hidden: bool = False,
        follow_symlinks: bool = True,
        on_skip: OnSkip | None = None,
    ) -> None:
        self.wanted = normalize_extensions(IMAGE_EXTENSIONS if extensions is None else extensions)
        self.include_hidden = include_hidden
        self.follow_symlinks = follow_symlinks
        self.on_skip = on_skip or (lambda path, reason: None)
        self.real_roots: list[str] = []
        self._roots = [os.path.abspath(os.fspath(root)) for root in roots]
        self._visited: set[tuple[int, int]] = set()
        self._yielded: set[str] = set()
        self._quarantines: dict[str, str | None] = {}  # folders links led to: in a quarantine or not

    def __iter__(self) -> Iterator[FoundFile]:
        for path in self._roots:
            try:
                st = os.stat(path)
            except OSError as e:
                raise LookalikeError(f"{display(path)}: {_reason(e, path)}") from None
            quarantine = quarantine_holding(path, self._quarantines)
            if quarantine is not None:
                self.on_skip(path, f"in the quarantine {display(quarantine)}: moved copies are not indexed")
            elif stat.S_ISDIR(st.st_mode):
                yield from self._walk_dir(path)
            else:
                found = self._file(path, st)
                if found:
                    yield found

    def _file(self, path: str, st: os.stat_result) -> FoundFile | None:
        """The regular file ``path`` reaches, by its real path, once per walk; else report why not."""
        if not stat.S_ISREG(st.st_mode):
            self.on_skip(path, f"not a regular file ({file_kind(st.st_mode)})")
            return None
        try:
            found = identify(path, st)
        except OSError as e:
            self.on_skip(path, _reason(e, path))
            return None
        if found.path in self._yielded:
            return None
        self._yielded.add(found.path)
        return found

    def _walk_dir(self, top: str) -> Iterator[FoundFile]:
        stack = [top]
        while stack:
            directory = stack.pop()
            try:
                st = os.stat(directory)
                if (st.st_dev, st.st_ino) in self._visited:
                    continue  # reached before by another path: its files are already found
                self._visited.add((st.st_dev, st.st_ino))
                with os.scandir(directory) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError as e:
                self.on_skip(directory, f"cannot read folder: {_reason(e, directory)}")
                continue
            if is_quarantine(entries):
                continue
            if directory == top or os.path.islink(directory):
                self.real_roots.append(os.path.realpath(directory))
            subdirs = []
            for entry in entries:
                if not self.include_hidden and entry.name.startswith("."):
                    continue
                found = self._entry(entry, subdirs)
                if found:
                    yield found
            stack.extend(reversed(subdirs))

    def _entry(self, entry: os.DirEntry, subdirs: list[str]) -> FoundFile | None:
        image = image_name(entry.name, self.wanted)
        try:
            if entry.is_dir(follow_symlinks=False):
                subdirs.append(entry.path)
                return None
            link = entry.is_symlink()
            if link and not self.follow_symlinks:
                return None
            if not link and not image:
                return None
            st = entry.stat(follow_symlinks=True)
        except OSError as e:
            # A link that fails to resolve may have been meant as a folder: loops are always reported.
            if image or e.errno == errno.ELOOP:
                self.on_skip(entry.path, _reason(e, entry.path))
            return None
        if link and (quarantine := quarantine_holding(entry.path, self._quarantines)) is not None:
            # Walking stops at a quarantine's top, but a link leads past it: moved copies must not come
            # back through one (then stand as originals a clean-up deletes)
            self.on_skip(entry.path, f"leads into the quarantine {display(quarantine)}: moved copies are "
                                     "not indexed")
            return None
        if stat.S_ISDIR(st.st_mode):  # a symlinked folder
            if _is_ancestor(entry.path):
                target = display(os.path.realpath(entry.path))
                self.on_skip(entry.path, f"symlink loop: leads back to {target}")
            else:
                subdirs.append(entry.path)
            return None
        return self._file(entry.path, st) if image else None


def walk(
    roots: Iterable[str | Path],
    extensions: Iterable[str] | None = None,
    *,
    include_hidden: bool = False,
    follow_symlinks: bool = True,
    on_skip: OnSkip | None = None,
) -> Iterator[FoundFile]:
    """Yield the image files under ``roots`` (see :class:`Walk`), each directory in name order.

    Files named directly in ``roots`` are yielded whatever their name or extension: the user asked for
    them. Under directories, names starting with "." are skipped unless ``include_hidden``. Symlinked
    directories are followed, but every directory is entered at most once (by device and inode), so a
    link back up the tree cannot loop. A root that does not exist is an error.
    """
    return iter(Walk(roots, extensions, include_hidden=include_hidden, follow_symlinks=follow_symlinks,
                     on_skip=on_skip))


def normalize_extensions(extensions: Iterable[str]) -> frozenset[str]:
    """``["JPG", ".png"]`` -> ``{".jpg", ".png"}``: how users type them vs how suffixes compare."""
    return frozenset("." + e.lower().lstrip(".") for e in extensions)


def image_name(name: str, wanted: frozenset[str]) -> bool:
    return os.path.splitext(name)[1].lower() in wanted


def is_quarantine(entries: Iterable[os.DirEntry]) -> bool:
    """Whether a folder's entries hold a quarantine marker or a lookalike manifest (older quarantines)."""
    for entry in entries:
        if entry.name == QUARANTINE_MARKER:
            return True
        if entry.name.startswith(MANIFEST_PREFIX) and entry.name.endswith(MANIFEST_SUFFIX):
            try:  # never blocks: a FIFO by that name would hang the walk
                with os.fdopen(open_regular(entry.path), "rb") as f:
                    if b'"lookalike-quarantine"' in f.readline(4096):
                        return True
            except (OSError, ImageError):
                continue
    return False


LITTER = frozenset({"lost+found", "Thumbs.db", "desktop.ini"})
"""Names that leave a folder empty, as hidden files do: a new file system's lost+found, and what file
managers leave in folders they show."""


def someones_names(names: Iterable[str]) -> list[str]:
    """The names in a folder that are someone's files (not hidden, not :data:`LITTER`): a folder holding
    none is empty enough to become a new index or a quarantine."""
    return [name for name in names if not name.startswith(".") and name not in LITTER]


def quarantine_holding(path: str, known: dict[str, str | None] | None = None) -> str | None:
    """The quarantine ``path`` lies in (a folder holding a marker, itself or any folder above it, links
    resolved), or None. Walking stops at a quarantine's own top only; a root named inside it
    (``quarantine/2021``, one of its files) or a link leading there must not bring moved copies back in,
    nor serve as an archive they match. ``known`` remembers the folders looked at (one walk's links)."""
    folder = os.path.realpath(path)
    if not os.path.isdir(folder):
        folder = os.path.dirname(folder)
    looked: list[str] = []
    while True:
        if known is not None and folder in known:
            found = known[folder]
            break
        looked.append(folder)
        try:
            with os.scandir(folder) as it:
                if is_quarantine(it):
                    found = folder
                    break
        except OSError:
            pass
        parent = os.path.dirname(folder)
        if parent == folder:
            found = None
            break
        folder = parent
    if known is not None:
        known.update(dict.fromkeys(looked, found))
    return found


def _is_ancestor(link: str) -> bool:
    """Whether a symlinked folder leads to a folder that contains the link: walking it would loop."""
    target = os.path.realpath(link)
    parent = os.path.realpath(os.path.dirname(link))
    return parent == target or parent.startswith(target.rstrip(os.sep) + os.sep)


def _reason(error: OSError, path: str) -> str:
    """A few words for why a path could not be used."""
    if error.errno == errno.ENOENT and os.path.islink(path):
        return "dangling symlink"
    if error.errno == errno.ELOOP:
        return "symlink loop"
    if error.errno == errno.ENAMETOOLONG:
        return "path too long"
    return (error.strerror or str(error)).lower()


def open_regular(path: str | Path) -> int:
    """A read-only descriptor of ``path`` if it is a regular file; never blocks on a FIFO or device.

    Raises ImageError (a few words why) for anything else: a FIFO swapped in after the walk would
    otherwise hang the reader forever.
    """
    try:
        return open_regular_fd(path)
    except NotRegular as e:
        raise ImageError(path, e.reason) from None
    except OSError as e:
        raise ImageError(path, _reason(e, os.fspath(path))) from None


def digest_file(path: str | Path) -> str:
    """SHA-256 of the content, hex: tells a touched file (same digest) from an edited one.

    Raises ImageError when ``path`` is not a readable regular file (it is never opened otherwise). What
    indexing stores comes with its digest from the decoding itself (:func:`embed_failure`).
    """
    with os.fdopen(open_regular(path), "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def embed_failure(file: FoundFile, result: Embedding | ImageError) -> str | None:
    """Why an embedded file cannot be stored, or None: its ImageError's reason, or changed while being
    read when its bytes (embedded with ``digests=True``) came from another version than the walk found:
    stored under the walk's size and mtime, they would pass as unchanged for good. Device and inode are
    not compared: an engine's worker on another machine sees a shared folder under its own device number,
    and a file swapped for another inode is digested again by the next run anyway."""
    if isinstance(result, ImageError):
        return result.reason
    read = result.file
    return None if read is not None and (read.size, read.mtime) == (file.size, file.mtime) else CHANGED

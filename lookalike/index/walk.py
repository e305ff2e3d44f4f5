"""Finding image files under folders, fast enough to re-check a 100k-photo tree in seconds.

Only ``os.scandir`` and one ``stat`` per image file: no file is opened, so an unchanged tree costs a
directory walk plus a dictionary lookup per file in the store. Size and mtime decide whether a file
needs a closer look; the SHA-256 digest (``digest_file``) then decides whether it needs re-embedding.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from lookalike.embedder.images import IMAGE_EXTENSIONS
from lookalike.errors import LookalikeError


class FoundFile(NamedTuple):
    path: str  # absolute, symlinks in it kept as the user named them
    size: int
    mtime: float


def normalize_extensions(extensions: Iterable[str]) -> frozenset[str]:
    """``["JPG", ".png"]`` -> ``{".jpg", ".png"}``: how users type them vs how suffixes compare."""
    return frozenset("." + e.lower().lstrip(".") for e in extensions)


def walk(
    roots: Iterable[str | Path],
    extensions: Iterable[str] | None = None,
    *,
    include_hidden: bool = False,
    follow_symlinks: bool = True,
    on_error: Callable[[str, OSError], None] | None = None,
) -> Iterator[FoundFile]:
    """Yield the image files under ``roots``, each directory in name order, each file once per directory.

    Files named directly in ``roots`` are yielded whatever their name or extension: the user asked for
    them. Under directories, names starting with "." are skipped unless ``include_hidden``. Symlinked
    directories are followed, but every directory is entered at most once (tracked by device and
    inode), so a link back up the tree cannot loop. Unreadable directories are passed to ``on_error``
    (default: skipped silently); a root that does not exist is an error.
    """
    wanted = normalize_extensions(IMAGE_EXTENSIONS if extensions is None else extensions)
    visited: set[tuple[int, int]] = set()
    for root in roots:
        path = os.path.abspath(os.fspath(root))
        try:
            st = os.stat(path)
        except OSError as e:
            raise LookalikeError(f"{root}: {e.strerror.lower() if e.strerror else e}") from None
        if os.path.isdir(path):
            yield from _walk_dir(path, wanted, visited, include_hidden, follow_symlinks, on_error)
        else:
            yield FoundFile(path, st.st_size, st.st_mtime)


def _walk_dir(
    top: str,
    wanted: frozenset[str],
    visited: set[tuple[int, int]],
    include_hidden: bool,
    follow_symlinks: bool,
    on_error: Callable[[str, OSError], None] | None,
) -> Iterator[FoundFile]:
    stack = [top]
    while stack:
        directory = stack.pop()
        try:
            st = os.stat(directory)
            key = (st.st_dev, st.st_ino)
            if key in visited:
                continue
            visited.add(key)
            with os.scandir(directory) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            if on_error is not None:
                on_error(directory, e)
            continue
        subdirs = []
        for entry in entries:
            if not include_hidden and entry.name.startswith("."):
                continue
            try:
                if entry.is_dir(follow_symlinks=follow_symlinks):
                    subdirs.append(entry.path)
                elif os.path.splitext(entry.name)[1].lower() in wanted and entry.is_file(
                    follow_symlinks=follow_symlinks
                ):
                    fst = entry.stat(follow_symlinks=True)
                    yield FoundFile(entry.path, fst.st_size, fst.st_mtime)
            except OSError as e:  # a dangling symlink or a file removed while walking
                if on_error is not None:
                    on_error(entry.path, e)
        stack.extend(reversed(subdirs))


def digest_file(path: str | Path) -> str:
    """SHA-256 of the content, hex: tells a touched file (same digest) from an edited one."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()

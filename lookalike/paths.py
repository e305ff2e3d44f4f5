"""File names and file identity, decided here once for the whole program.

**Names.** Linux file names are bytes. Python hands undecodable bytes over as lone surrogates
(``os.fsdecode``, PEP 383), which open the exact file again but cannot be written as UTF-8. So a path
is kept as Python gives it, stored in SQLite as its exact bytes (:func:`to_bytes` / :func:`from_bytes`),
and turned into text only to be shown (:func:`display`): undecodable bytes as ``\\xNN``, control
characters as escapes, so a newline in a name cannot forge a line of output.

**Identity.** One file can be reached by many paths: symlinks to it, a symlinked folder, a bind
mount, hard links. :func:`identify` names a file by its resolved real path plus its device and inode,
so that the indexer stores one row per real path and no clean-up ever removes a file that *is* its
keeper. Hard links share device and inode under different real paths: removing one frees nothing.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO, NamedTuple

PathLike = str | bytes | os.PathLike

_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Characters that reorder how the rest of a line is drawn ("Trojan Source"): shown as escapes.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")


def to_bytes(path: PathLike) -> bytes:
    """The exact bytes of a file name, as the kernel sees it."""
    return os.fsencode(path)


def from_bytes(raw: bytes) -> str:
    """The name as Python opens it (undecodable bytes as surrogates)."""
    return os.fsdecode(raw)


def display(path: PathLike) -> str:
    """Printable, valid UTF-8 text for a path: safe in a terminal, a CSV cell, a log line or a page."""
    text = os.fsdecode(path) if isinstance(path, bytes) else os.fspath(path)
    if text.isprintable() and not _BIDI.intersection(text):
        return text
    out = []
    for char in text:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte (surrogateescape)
            out.append(f"\\x{code - 0xDC00:02x}")
        elif char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif char in _BIDI or not char.isprintable() and char != " ":
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)


class FileIdentity(NamedTuple):
    """Which file a path reaches: its real path (symlinks resolved), as stat saw it, device and inode."""

    path: str
    size: int
    mtime: float
    device: int = 0
    inode: int = 0


def identify(path: PathLike, st: os.stat_result | None = None) -> FileIdentity:
    """Resolve ``path`` to the file it reaches; ``st`` saves a stat the caller already made.

    Raises OSError when the path does not resolve (missing, a dangling link, a loop).
    """
    real = os.path.realpath(os.fspath(path), strict=True)
    st = st or os.stat(real)
    return FileIdentity(real, st.st_size, st.st_mtime, st.st_dev, st.st_ino)


class FileSet:
    """A set of files by identity: a path belongs if it is one of them by real path or by device and inode."""

    def __init__(self) -> None:
        self.paths: set[str] = set()
        self.inodes: set[tuple[int, int]] = set()

    def add(self, path: str, device: int | None, inode: int | None) -> None:
        self.paths.add(path)
        if inode:
            self.inodes.add((device or 0, inode))

    def __contains__(self, item: tuple[str, int | None, int | None]) -> bool:
        path, device, inode = item
        return path in self.paths or bool(inode) and (device or 0, inode) in self.inodes

    def __len__(self) -> int:
        return len(self.paths)


def same_file(a: PathLike, b: PathLike) -> bool:
    """Whether two paths reach one file (False when either is gone)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def file_kind(mode: int) -> str:
    """What a non-regular file is, in a word, for skip reasons: "FIFO", "socket", "device", ..."""
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    if stat.S_ISDIR(mode):
        return "folder"
    return "special file"


class NotRegular(OSError):
    """A path that reaches no regular file (a FIFO, socket, device or folder), refused before it is read:
    a FIFO blocks its reader until a writer comes (forever, in an index folder), a device reads without
    end. An OSError, so that what handles a file it cannot read handles this one too."""

    def __init__(self, path: PathLike, mode: int) -> None:
        self.reason = f"not a regular file ({file_kind(mode)})"
        super().__init__(f"{display(path)}: {self.reason}")


def open_regular_fd(path: PathLike) -> int:
    """A read-only descriptor of ``path`` if it reaches a regular file, else :class:`NotRegular`; never
    blocks: ``O_NONBLOCK`` makes the open return at once whatever the path is, and the kind is checked on
    the descriptor itself (so what is read is the file that passed). Other failures stay the OSError of
    the open."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise NotRegular(path, mode)
    os.set_blocking(fd, True)
    return fd


def open_regular_file(path: PathLike) -> BinaryIO:
    """:func:`open_regular_fd` as a binary file object, for reading."""
    return os.fdopen(open_regular_fd(path), "rb")


def read_regular(path: PathLike, limit: int = -1) -> bytes:
    """The content of a regular file (at most ``limit`` bytes); :class:`NotRegular` for anything else."""
    with open_regular_file(path) as f:
        return f.read(limit)


def path_list(paths: PathLike | Iterable[PathLike]) -> list[PathLike]:
    """The paths a caller gave, one alone or many: a string or bytes is one name, never its letters
    (or byte values) walked as names of their own."""
    return [paths] if isinstance(paths, str | bytes | os.PathLike) else list(paths)


def absolute(path: PathLike) -> Path:
    """``~`` expanded and made absolute, symlinks kept (the path as the user named it)."""
    return Path(os.path.abspath(Path(os.fsdecode(path)).expanduser()))

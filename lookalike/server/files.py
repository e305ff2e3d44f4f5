"""The server's own file and memory handling: thumbnails of indexed files, uploads saved under fresh
names, the pixel cap on uploads, and the gate bounding how many pictures are decoded at once."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import io
import os
import re
import secrets
import threading
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from PIL import Image as PILImage

from lookalike.embedder.images import (
    ICON_SIGNATURE,
    IMAGE_EXTENSIONS,
    icon_size,
    open_image,
    readable_formats,
)
from lookalike.errors import ImageError

THUMBNAIL_CACHE = 2048
"""Thumbnails kept in memory (JPEGs of ~10 KB at 256 px): a results page shows a few dozen."""
TRIM_AFTER_BYTES = 8 * 2**20
"""Give freed heap back to the system after a request that decoded at least this much (see Gate)."""


class Thumbnails:
    """JPEG thumbnails made on first request and kept in an LRU keyed by the open file's identity.

    The caller opens the file with ``Collection.open_indexed_file`` (a regular file that is still the
    indexed one); the key is its device, inode, size and mtime, so a photo edited in place (and
    re-indexed) gets a fresh thumbnail and a swapped file never gets an old one.
    """

    def __init__(self, cache_size: int = THUMBNAIL_CACHE) -> None:
        self._size = cache_size
        self._cache: OrderedDict[tuple, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, stream: BinaryIO, size: int) -> bytes:
        """The thumbnail of the open file ``stream``; raises ImageError if it does not decode."""
        st = os.fstat(stream.fileno())
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, size)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        jpeg = _thumbnail(stream, size)
        with self._lock:
            self._cache[key] = jpeg
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return jpeg


def _thumbnail(stream: BinaryIO, size: int) -> bytes:
    """The picture fitted in ``size x size`` (aspect kept), decoded at reduced scale where it can be."""
    image = open_image(stream, min_size=size)
    image.thumbnail((size, size), PILImage.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


# -- uploads ---------------------------------------------------------------------------------------


def declared_pixels(data: bytes) -> tuple[int, int] | None:
    """Width and height from an upload's header, without decoding it; None when Pillow cannot tell.

    Pictures Pillow cannot identify here are left to the full decode, which names what is wrong.
    An icon is read by :func:`~lookalike.embedder.images.icon_size`: Pillow would decode it to open it.
    """
    if data.startswith(ICON_SIGNATURE):
        return icon_size(io.BytesIO(data))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            with PILImage.open(io.BytesIO(data), formats=readable_formats()) as image:
                return image.size
    except PILImage.DecompressionBombError as error:  # over twice Pillow's own limit: huge anyway
        match = re.search(r"\((\d+) pixels\)", str(error))
        return (int(match[1]), 1) if match else (2**31, 1)
    except Exception:
        return None


def _shortest(item: tuple[str, str]) -> tuple[int, str]:
    return len(item[0]), item[0]


def _extensions_by_format() -> dict[str, str]:
    """Pillow format name -> an extension the indexer walks by default (".jpg" for JPEG, ...)."""
    PILImage.init()
    found: dict[str, str] = {}
    for extension, image_format in sorted(PILImage.registered_extensions().items(), key=_shortest):
        if extension in IMAGE_EXTENSIONS:
            found.setdefault(image_format, extension)
    return found


def save_upload(folder: Path, data: bytes, filename: str | None) -> Path:
    """Write an uploaded image into ``folder`` under a new name; never replaces an existing file.

    The name keeps a cleaned-up stem of the client's file name (for people browsing the folder) plus a
    random suffix, and takes its extension from the decoded format, never from the client. Raises
    ImageError for anything the indexer could not read back.
    """
    open_image(data, min_size=1)  # the whole bomb-guarded decode: refuse what the indexer would refuse
    with PILImage.open(io.BytesIO(data), formats=readable_formats()) as image:
        image_format = image.format or "unknown"
    extension = _extensions_by_format().get(image_format)
    if extension is None:
        raise ImageError(filename or "<upload>", f"{image_format} files are not indexed")
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", Path(filename or "").stem).strip("-")[:40] or "upload"
    folder.mkdir(parents=True, exist_ok=True)
    while True:
        path = folder / f"{stem}-{secrets.token_hex(6)}{extension}"
        try:
            with open(path, "xb") as out:  # exclusive create: an existing file is never touched
                out.write(data)
            return path
        except FileExistsError:
            continue


# -- memory ----------------------------------------------------------------------------------------


class Busy(Exception):
    """Too many requests are already waiting to decode; ``retry_after`` seconds is a fair pause."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__("the server is busy decoding other images; try again shortly")


class Gate:
    """At most ``running`` decodes at once, at most ``waiting`` more queued (each up to ``wait`` s).

    A picture's decode holds several full-size copies of it (RGBA, the composite, RGB): four 100 MP
    uploads at once took the server to 7 GB. Requests beyond the queue get :class:`Busy` (a 503) at
    once, so waiting threads cannot starve the pool that answers reads. When the last decode ends, the
    heap freed by large pictures is handed back to the system (glibc keeps it otherwise).
    """

    def __init__(self, running: int = 2, waiting: int = 16, wait: float = 60.0) -> None:
        self._slots = threading.BoundedSemaphore(running)
        self._lock = threading.Lock()
        self._running = 0
        self._queued = 0
        self._max_queued = waiting
        self._wait = wait
        self._heavy = False

    @contextlib.contextmanager
    def decoding(self, nbytes: int = 0) -> Iterator[None]:
        """Hold a decode slot for the block; ``nbytes``: roughly how much memory it will take."""
        with self._lock:
            if self._queued >= self._max_queued:
                raise Busy(5)
            self._queued += 1
        try:
            acquired = self._slots.acquire(timeout=self._wait)
        finally:
            with self._lock:
                self._queued -= 1
        if not acquired:
            raise Busy(5)
        with self._lock:
            self._running += 1
            self._heavy = self._heavy or nbytes >= TRIM_AFTER_BYTES
        try:
            yield
        finally:
            with self._lock:
                self._running -= 1
                trim = self._running == 0 and self._heavy
                if trim:
                    self._heavy = False
            self._slots.release()
            if trim:
                release_memory()


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None  # glibc only


M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 4 * 2**20
"""Allocations at least this big get their own mapping, unmapped again when freed."""


def tune_malloc() -> None:
    """Make glibc return big blocks at once (a no-op elsewhere); process-wide, called by the server.

    By default glibc raises its mmap threshold to 32 MB after the first big free, so a decoded
    picture's 16 MB blocks then come from the arena of the thread that decoded it and stay there:
    eight decodes on eight pool threads kept eight pictures' worth of memory (5 GB for 40 MP PNGs,
    though at most two ran at once). A fixed threshold turns that off.
    """
    libc = _libc()
    if libc is not None and hasattr(libc, "mallopt"):
        libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)


def release_memory() -> None:
    """Hand the heap's free pages back to the system (glibc ``malloc_trim``); a no-op elsewhere."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)

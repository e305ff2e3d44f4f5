"""The server's own file handling: thumbnails of indexed images, and uploads saved under fresh names."""

from __future__ import annotations

import functools
import io
import os
import re
import secrets
from pathlib import Path

from PIL import Image as PILImage

from lookalike.embedder.images import IMAGE_EXTENSIONS, open_image
from lookalike.errors import ImageError

THUMBNAIL_CACHE = 2048
"""Thumbnails kept in memory (JPEGs of ~10 KB at 256 px): a results page shows a few dozen."""


class Thumbnails:
    """JPEG thumbnails made on first request and kept in an LRU keyed by the file's size and mtime.

    Keying on the file's state, not just its id, means a photo edited in place gets a fresh thumbnail.
    """

    def __init__(self, cache_size: int = THUMBNAIL_CACHE) -> None:
        self._make = functools.lru_cache(maxsize=cache_size)(_thumbnail)

    def get(self, path: str, size: int) -> bytes:
        """Raises ImageError when the file is gone or no longer readable."""
        try:
            stat = os.stat(path)
        except FileNotFoundError:
            raise ImageError(path, "file not found") from None
        except OSError as error:
            raise ImageError(path, error.strerror or "cannot read file") from None
        return self._make(path, stat.st_mtime_ns, stat.st_size, size)


def _thumbnail(path: str, mtime_ns: int, file_size: int, size: int) -> bytes:
    """The picture fitted in ``size x size`` (aspect kept), decoded at reduced scale where it can be."""
    image = open_image(path, min_size=size)
    image.thumbnail((size, size), PILImage.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


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
    with PILImage.open(io.BytesIO(data)) as image:
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

"""Image loading and preprocessing: the one place both live.

Every picture lookalike embeds goes through :func:`open_image` (decode whatever Pillow can read into a
plain RGB picture, safely) and :func:`preprocess` (turn it into the pixels an EfficientNet TF-Hub module
expects). The module resizes nothing itself and scales/normalises inside, so what happens here decides
the vectors: any change to the pipeline below must change :data:`PREPROCESSING_VERSION`, which is part
of an embedder's fingerprint and so keeps vectors from different pipelines out of one index.

Nothing here imports TensorFlow, so the CLI and the server can check files cheaply.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import io
import os
import re
import stat
import threading
import traceback
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np
from PIL import Image, ImageOps, features

from lookalike.embedder.traits import THUMB, Traits, image_traits, jpeg_quality
from lookalike.errors import ImageError
from lookalike.paths import FileIdentity, file_kind

PREPROCESSING_VERSION = "effnet-eval-crop32-bicubic-v1"
"""Names the pipeline in :func:`preprocess`; stored in fingerprints, so bump it with any change there."""

CROP_PADDING = 32
"""EfficientNet evaluation crop: the centre square is ``size / (size + CROP_PADDING)`` of the short side."""

RESAMPLE = Image.Resampling.BICUBIC
"""The resize filter of the EfficientNet evaluation pipeline."""

MAX_PIXELS = 100_000_000
"""Pictures with more pixels are refused from their header, before anything is decoded (bomb guard)."""

MAX_JPEG_SCANS = 500
"""A progressive JPEG with more scans (markers ``FF DA``) is refused before it is decoded. libjpeg
passes over every block of the picture for each scan, however few bytes the scan holds: a flat 4000 x 4000
JPEG repeating its 53-byte scan 20,000 times (1.1 MB) took 20 s to decode, so a 20 MB upload held a
decode slot for minutes. Encoders write about 10 scans; 500 is the limit libjpeg-turbo's documentation
suggests (``TJPARAM_SCANLIMIT``)."""

ICON_SIGNATURE = b"\x00\x00\x01\x00"
"""How an ICO file starts; Pillow decodes an icon's picture inside ``Image.open`` (see :func:`icon_size`)."""

BACKGROUND = (255, 255, 255)
"""Transparent pixels are composited over white, as an image viewer shows them."""

READ_WHOLE_MAX = 64 * 2**20
"""With a digest asked for, a file up to this size is read into memory once and decoded and digested
from those very bytes. A bigger one (a 10 GB file named .jpg, a huge uncompressed TIFF: no sane photo is
near this) is not read whole, so memory stays bounded against hostile input: it is decoded from its
descriptor and then digested from that same descriptor, its change time checked around both."""

STREAM_MAX = 4 * MAX_PIXELS
"""Bytes read at most from a stream that cannot seek (read into memory to be decoded): the largest
picture decoded (:data:`MAX_PIXELS`) stored uncompressed at 4 bytes a pixel."""
STREAM_CHUNK = 2**20

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".heif", ".avif"}
)
"""Extensions indexed by default: lower case with the dot, as ``Path(p).suffix.lower()`` gives them."""

ImageSource = str | Path | bytes | BinaryIO

_READ_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "GIF", "BMP", "DIB", "TIFF", "ICO", "CUR", "HEIF", "AVIF",
                           "JPEG2000", "PPM", "TGA", "QOI", "PCX", "SGI"})
"""The formats read: pictures a photo library holds, whose headers say the size their decoders make
(icons are sized from their own entries: :func:`icon_size`). Left out are the rest of what Pillow opens:
EPS goes to Ghostscript, which is no place for files from strangers; a BLP texture's header said 1 x 1
over a 12000 x 12000 JPEG it decoded in full, an ICNS icon set's 512 x 512 over a 177 MP PNG; FITS is
decoded a pixel at a time in Python."""
_HIGH_DEPTH_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I", "F"})
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_CORRUPT = "truncated or corrupt image data"
_TEXT_TOO_LARGE = "PNG text metadata too large (over Pillow's limits: 1 MB a chunk, 64 MB in all)"
_PROFILE_TOO_LARGE = "PNG colour profile (iCCP) too large: a decompression bomb (over Pillow's 1 MB limit)"
CHANGED = "changed while being read"
"""The reason for a file whose size or time moved during decoding: its pixels may mix two versions."""
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_BMP_INFO_HEADERS = frozenset({40, 52, 56, 64, 108, 124})  # the sizes Pillow reads width and height from
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"})
_SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"BM", "BMP"),
)
# warnings.catch_warnings swaps the process-wide filter list; two threads doing it at once can leave
# the wrong list behind, so the swap is serialised (only Image.open and rare huge crops take it).
_WARNINGS_LOCK = threading.Lock()


@dataclass(frozen=True, eq=False)
class DecodedImage:
    """A picture ready for the model, with what the index records about the file.

    ``width``/``height`` are the size of the original as it is meant to be seen (after EXIF rotation,
    before any reduced-scale decoding); ``format`` is Pillow's name for the file's format ("JPEG", "PNG",
    "HEIF", ...). Compared by identity: the pixel array has no useful ``==``.
    """

    pixels: np.ndarray
    width: int
    height: int
    format: str
    traits: Traits | None = None  # what the duplicate keeper and second look need (traits.py)
    digest: str | None = None  # asked for: the SHA-256 of exactly the bytes decoded
    file: FileIdentity | None = None  # with the digest of a path: the file those bytes came from, as opened


class _Decoded(NamedTuple):
    image: Image.Image  # RGB
    size: tuple[int, int]  # the original's, as seen
    format: str
    quality: int  # a JPEG's, from its tables
    digest: str | None
    file: FileIdentity | None


def open_image(source: ImageSource, min_size: int | None = None) -> Image.Image:
    """Decode ``source`` (a path, the file's bytes, or a binary file object) into an RGB picture.

    The picture comes upright (EXIF orientation applied), as the first frame of an animation, with
    transparency composited over white and every colour mode (palette, grey, 16-bit, CMYK, ...) turned
    into 8-bit RGB. With ``min_size`` - the size the picture will be given to :func:`preprocess` with -
    JPEGs (and HEIFs with thumbnails) are decoded at a reduced scale that still leaves the centre crop at
    least ``min_size`` pixels on a side, so a 24-megapixel photo is not decoded in full to make 260x260.

    Raises :class:`ImageError` with a short reason for anything that is not a readable picture.
    """
    return _decode(source, min_size).image


def preprocess(image: Image.Image, size: int) -> np.ndarray:
    """The EfficientNet evaluation pipeline: a ``size x size x 3`` float32 array in [0, 1].

    Centre square of side ``round(size / (size + CROP_PADDING) * short side)``, resized bicubically to
    ``size x size``, divided by 255. The TF-Hub modules take [0, 1] and normalise inside, so nothing else
    is done here. This function is the whole pipeline: :data:`PREPROCESSING_VERSION` names it.
    """
    if size < 1:
        raise ValueError(f"size must be positive, not {size}")
    if image.mode != "RGB":
        image = _to_rgb(image)
    width, height = image.size
    side = max(1, round(size / (size + CROP_PADDING) * min(width, height)))
    # Offsets as the reference implementation computes them (odd margins put the extra pixel left/top).
    left = (width - side + 1) // 2
    top = (height - side + 1) // 2
    limit = Image.MAX_IMAGE_PIXELS
    quiet = _pillow_bomb_warning_silenced() if limit and side * side > limit else contextlib.nullcontext()
    with quiet:  # Pillow warns about huge crops; the picture already passed our MAX_PIXELS check
        square = image.crop((left, top, left + side, top + side))
    resized = square.resize((size, size), RESAMPLE)
    return np.asarray(resized, dtype=np.float32) / np.float32(255.0)


def load_image(source: ImageSource, size: int, *, digest: bool = False) -> DecodedImage:
    """Open ``source`` and preprocess it for a model taking ``size x size`` input (see :func:`open_image`).

    With ``digest``, the SHA-256 of the very bytes decoded comes with it (and for a path, the file they
    were read from as it was opened), read once: an index stores a vector with the digest of its own
    picture even when the file is saved over meanwhile (such a file is refused as changed while read).
    """
    decoded = _decode(source, size, digest)
    (width, height), traits = decoded.size, image_traits(decoded.image, decoded.quality, decoded.size)
    return DecodedImage(pixels=preprocess(decoded.image, size), width=width, height=height,
                        format=decoded.format, traits=traits, digest=decoded.digest, file=decoded.file)


def read_bytes(source: str | os.PathLike[str]) -> bytes:
    """A file's content, refused with the ImageError decoding it would get (missing, not a regular file,
    empty, changed while read): what a client sends to ``lookalike serve`` instead of decoding it."""
    with _binary_stream(source) as opened:
        return opened.stream.read()


def read_traits(source: ImageSource) -> Traits:
    """A file's :class:`~lookalike.embedder.traits.Traits` alone, decoded at reduced size."""
    decoded = _decode(source, THUMB)
    return image_traits(decoded.image, decoded.quality, decoded.size)


def _decode(source: ImageSource, min_size: int | None, digest: bool = False) -> _Decoded:
    """Open, guard, draft, decode, orient and convert; with ``digest``, digest the bytes decoded."""
    _register_plugins()
    with _binary_stream(source, digest) as opened:
        stream, label = opened.stream, opened.label
        try:
            start = stream.tell()
            head = stream.read(64)
            stream.seek(start)
        except OSError as exc:  # an I/O error on a failing disk or a vanished network share
            raise _cannot_read(label, exc) from None
        if head.startswith(ICON_SIGNATURE):  # Pillow decodes it in Image.open: check its size first
            size = icon_size(stream)
            if size is None:
                raise ImageError(label, _CORRUPT)
            _check_pixels(label, *size)
        try:
            with _pillow_bomb_warning_silenced():  # our own MAX_PIXELS check below replaces the warning
                image = Image.open(stream, formats=readable_formats())
        except Image.DecompressionBombError as exc:
            raise ImageError(label, _bomb_reason(exc)) from None
        except Image.UnidentifiedImageError:
            raise ImageError(label, _unidentified_reason(head)) from None
        except Exception as exc:  # a plugin choking on a damaged header
            raise ImageError(label, _failure_reason(exc)) from exc

        image_format = image.format or "unknown"
        quality = jpeg_quality(image)  # from the header's tables, before decoding
        width, height = image.size
        _check_pixels(label, width, height)
        if image_format == "JPEG" and image.info.get("progressive"):
            _check_scans(label, stream, start)
        try:
            if min_size:
                # Before the EXIF transpose: draft works on the stored picture and scales both sides alike.
                image.draft("RGB", (min_size + CROP_PADDING, min_size + CROP_PADDING))
            # Force the decode here, inside the try: Pillow is lazy, and a truncated file only fails now.
            image.load()
            stored_size = image.size
            with contextlib.suppress(Exception):
                # Unreadable EXIF should not cost the picture; it just stays as stored.
                ImageOps.exif_transpose(image, in_place=True)
            if image.size != stored_size:
                width, height = height, width
            rgb = _to_rgb(image)
        except ImageError as exc:
            raise ImageError(label, exc.reason) from None
        except Image.DecompressionBombError as exc:
            raise ImageError(label, _bomb_reason(exc)) from None
        except MemoryError:
            raise ImageError(label, "too large to decode (out of memory)") from None
        except Exception as exc:
            raise ImageError(label, _failure_reason(exc)) from exc
    return _Decoded(rgb, (width, height), image_format, quality, opened.digest, opened.file)


def _failure_reason(exc: Exception) -> str:
    """Why Pillow could not read a picture, in a few words. Pillow inflates a PNG's compressed text chunks
    (zTXt, iTXt) as it reads them, each up to ``PngImagePlugin.MAX_TEXT_CHUNK`` and all of them up to
    ``MAX_TEXT_MEMORY``, and refuses the file past either: a bomb of text costs at most that (64 MB, under
    a second), and the file is named for what it is rather than as damaged. Its ICC colour profile
    (iCCP) is inflated under the same 1 MB limit with the same error; which chunk failed is told by
    Pillow's handler (``PngStream.chunk_iCCP``) in the traceback."""
    if isinstance(exc, ValueError) and "MAX_TEXT" in str(exc):
        return _PROFILE_TOO_LARGE if _png_chunk_failed(exc) == "iCCP" else _TEXT_TOO_LARGE
    return _CORRUPT


def _png_chunk_failed(exc: Exception) -> str | None:
    """The type of the PNG chunk whose Pillow handler (``PngStream.chunk_XXXX``) raised ``exc``, if any."""
    chunk = None
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        name = frame.f_code.co_name
        if name.startswith("chunk_") and frame.f_globals.get("__name__") == "PIL.PngImagePlugin":
            chunk = name.removeprefix("chunk_")
    return chunk


def _check_pixels(label: str, width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise ImageError(label, f"too many pixels ({width} x {height} > {MAX_PIXELS:,})")


def _check_scans(label: str, stream: BinaryIO, start: int) -> None:
    """ImageError when the JPEG in ``stream`` (from ``start``) holds over :data:`MAX_JPEG_SCANS` scans.

    Counted as the ``FF DA`` byte pairs of the file: inside entropy-coded data every ``FF`` is followed by
    ``00`` or a restart marker, so only markers (and at most a few chance pairs in metadata) count. Read
    in blocks, stopping at the limit; the stream is left where it was."""
    at = stream.tell()
    stream.seek(start)
    count, last = 0, b""
    try:
        while block := stream.read(1 << 20):
            count += (last + block).count(b"\xff\xda")  # a pair split between two blocks counts once
            if count > MAX_JPEG_SCANS:
                raise ImageError(label, f"too many scans (a progressive JPEG of over {MAX_JPEG_SCANS})")
            last = block[-1:]
    except OSError as exc:
        raise _cannot_read(label, exc) from None
    finally:
        stream.seek(at)


def icon_size(stream: BinaryIO) -> tuple[int, int] | None:
    """The size of the largest picture in an ICO file, read from its own headers; None if one is unreadable.

    Pillow's ICO plugin decodes the picture it shows inside ``Image.open``, before anyone can ask its
    size, and the icon's directory says nothing true about it (one byte a side): a 560 KB icon holding a
    12000 x 12000 PNG took 576 MB just to be opened. So every entry's PNG header (IHDR) or bitmap header
    is read here, as Pillow would read it, without decoding anything. The stream is left where it was.
    """
    start = stream.tell()
    try:
        head = stream.read(6)
        count = int.from_bytes(head[4:6], "little")
        directory = stream.read(16 * count)
        if not head.startswith(ICON_SIGNATURE) or count == 0 or len(directory) < 16 * count:
            return None
        sizes = []
        for entry in range(count):
            stream.seek(int.from_bytes(directory[16 * entry + 12 : 16 * entry + 16], "little"))  # as Pillow
            size = _icon_entry_size(stream.read(24))
            if size is None:
                return None
            sizes.append(size)
        return max(sizes, key=lambda size: size[0] * size[1])
    finally:
        stream.seek(start)


def _icon_entry_size(header: bytes) -> tuple[int, int] | None:
    """Width and height of one icon picture from its first bytes: a PNG's IHDR, or a bitmap's header
    (whose height counts the transparency mask too: Pillow shows half of it)."""
    if header.startswith(_PNG_SIGNATURE):
        if len(header) < 24 or header[12:16] != b"IHDR":
            return None
        return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")
    kind = int.from_bytes(header[:4], "little")
    if kind == 12 and len(header) >= 8:
        return int.from_bytes(header[4:6], "little"), int.from_bytes(header[6:8], "little") // 2
    if kind in _BMP_INFO_HEADERS and len(header) >= 12:
        width = int.from_bytes(header[4:8], "little")
        height = abs(int.from_bytes(header[8:12], "little", signed=True))
        return width, height // 2
    return None


@dataclass
class _Opened:
    """A seekable, non-empty binary stream to decode and the name to blame in errors; once the caller is
    done with the stream, with a digest asked for, the SHA-256 of its bytes and the file they came from."""

    stream: BinaryIO
    label: str
    digest: str | None = None
    file: FileIdentity | None = None


@contextlib.contextmanager
def _binary_stream(source: ImageSource, digest: bool = False) -> Iterator[_Opened]:
    """``source`` opened for decoding; with ``digest``, digested after the caller's decode (see
    :func:`_file_stream`; other sources are in memory, or read into it, and digested from there)."""
    if isinstance(source, str | os.PathLike):
        with _file_stream(os.fspath(source), digest) as opened:
            yield opened
        return
    if isinstance(source, bytes | bytearray | memoryview):
        stream, label = io.BytesIO(source), "<bytes>"
    else:
        stream, label = source, str(getattr(source, "name", "<stream>"))
        if digest or not (hasattr(stream, "seekable") and stream.seekable()):
            stream = io.BytesIO(read_stream(stream, label))
    start = stream.tell()
    end = stream.seek(0, io.SEEK_END)
    stream.seek(start)
    if end <= start:
        raise ImageError(label, "empty file")
    opened = _Opened(stream, label)
    yield opened
    if digest:
        opened.digest = _sha256(stream, label)


def read_stream(stream: BinaryIO, label: str) -> bytes:
    """The bytes of ``stream`` (a pipe: ``lookalike search -``, read into memory to be decoded), refused
    past :data:`STREAM_MAX`: ``search - < /dev/zero`` read zeros until memory ran out (22 GB in a minute),
    and a video piped in by mistake was read whole before it was found to be no image."""
    memory = io.BytesIO()
    try:
        while chunk := stream.read(STREAM_CHUNK):
            memory.write(chunk)
            if memory.tell() > STREAM_MAX:
                raise ImageError(label, f"more than {STREAM_MAX // 2**20} MB: no picture lookalike reads "
                                        "is that large")
    except OSError as exc:
        raise _cannot_read(label, exc) from None
    return memory.getvalue()


@contextlib.contextmanager
def _file_stream(path: str, digest: bool) -> Iterator[_Opened]:
    """The regular file ``path`` opened for decoding (:func:`_open_regular_file`), refused as changed
    while being read when its size or mtime moved by the time the caller is done with it.

    With ``digest``, its bytes are read once and digested as decoded: a file up to
    :data:`READ_WHOLE_MAX` into memory, decoded and digested from there; a bigger one decoded from the
    descriptor, then digested from that same descriptor. The check then takes in the change time too: a
    rewrite in place whose mtime was set back (``cp -p``, ``touch -r``, a restore) moves only that, and
    would give a vector of one picture with the other's digest (a rename over the file, or a chmod, moves
    it as well: refused alike, and embedded by the next run).
    """
    handle, opened = _open_regular_file(path)
    with handle:
        if opened.st_size == 0:
            raise ImageError(path, "empty file")
        try:
            stream: BinaryIO = handle
            if digest and opened.st_size <= READ_WHOLE_MAX:
                try:
                    stream = io.BytesIO(handle.read(opened.st_size + 1))  # a file grown since is refused
                except OSError as exc:
                    raise _cannot_read(path, exc) from None
            found = _Opened(stream, path)
            yield found
            if digest:
                found.digest = _sha256(stream, path)
                found.file = FileIdentity(path, opened.st_size, opened.st_mtime, opened.st_dev, opened.st_ino)
        except ImageError:
            if _changed_since(handle, opened):  # the real reason a half-rewritten file fails
                raise ImageError(path, CHANGED) from None
            raise
        if _changed_since(handle, opened, with_ctime=digest):  # decoded, but maybe from two versions
            raise ImageError(path, CHANGED)


def _sha256(stream: BinaryIO, label: str) -> str:
    """The SHA-256 of the whole of ``stream`` (in memory, or the descriptor decoded from, read again)."""
    try:
        stream.seek(0)
        return hashlib.file_digest(stream, "sha256").hexdigest()
    except OSError as exc:
        raise _cannot_read(label, exc) from None


def _cannot_read(label: str, exc: OSError) -> ImageError:
    """An I/O error on a failing disk or a vanished network share, in a few words."""
    return ImageError(label, f"cannot read file ({exc.strerror or exc})")


def _open_regular_file(path: str) -> tuple[BinaryIO, os.stat_result]:
    """Open ``path`` for reading only if it is a regular file (symlinks followed); never blocks.

    A FIFO would block ``open`` until a writer comes (forever, in a photo folder), a device reads
    forever or has side effects, a socket cannot be opened: each is refused as ``not a regular file
    (kind)``. The kind is checked from a stat before opening (so a device is not even opened) and
    again on the descriptor (so a file swapped in between is caught); ``O_NONBLOCK`` makes the open
    itself return at once whatever the path has become. The stream wraps the checked descriptor, so
    what is decoded is exactly the file that passed, and carries no path Pillow could reopen.
    """
    try:
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            raise _not_regular(path, mode)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(path, "file not found") from None
    except PermissionError:
        raise ImageError(path, "permission denied") from None
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # a socket, or something else with no reader side
            with contextlib.suppress(OSError):
                raise _not_regular(path, os.stat(path).st_mode) from None
        raise _cannot_read(path, exc) from None
    except ValueError as exc:  # a NUL byte in the name
        raise ImageError(path, f"cannot read file ({exc})") from None
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):
            raise _not_regular(path, opened.st_mode)
        os.set_blocking(fd, True)  # a regular file: plain reads from here on
        return os.fdopen(fd, "rb"), opened
    except BaseException:
        os.close(fd)
        raise


def _not_regular(path: str, mode: int) -> ImageError:
    if stat.S_ISDIR(mode):
        return ImageError(path, "is a directory")
    return ImageError(path, f"not a regular file ({file_kind(mode)})")


def _changed_since(handle: BinaryIO, opened: os.stat_result, with_ctime: bool = False) -> bool:
    """Whether the open file's size or modification time (``with_ctime``: or change time) moved while it
    was being read."""
    try:
        now = os.fstat(handle.fileno())
    except OSError:
        return True
    if with_ctime and now.st_ctime_ns != opened.st_ctime_ns:
        return True
    return (now.st_size, now.st_mtime_ns) != (opened.st_size, opened.st_mtime_ns)


@functools.cache
def _register_plugins() -> None:
    """Teach Pillow HEIF/HEIC (pillow-heif) once, on first use; AVIF is Pillow's own when built with it."""
    try:
        import pillow_heif
    except ImportError:  # HEIF files then fail with "unsupported format"
        return
    pillow_heif.register_heif_opener()
    register_avif = getattr(pillow_heif, "register_avif_opener", None)  # pillow-heif < 1.0 only
    if not features.check("avif") and register_avif is not None:
        register_avif()


def readable_formats() -> list[str]:
    """The Pillow formats an image is opened as (:data:`_READ_FORMATS`, those this Pillow has)."""
    Image.init()
    return [name for name in Image.ID if name in _READ_FORMATS]


@contextlib.contextmanager
def _pillow_bomb_warning_silenced() -> Iterator[None]:
    """Silence Pillow's DecompressionBombWarning, which fires at its own limit (~89 Mpx).

    MAX_PIXELS is ours and is checked from the header right after ``Image.open``: every picture Pillow
    would warn about and we refuse becomes an ImageError there, and the rest are within our limit.
    Pillow's hard limit (DecompressionBombError, twice its warning limit) still applies and is mapped too.
    """
    with _WARNINGS_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        yield


def _bomb_reason(exc: Exception) -> str:
    """Pillow's hard limit fired inside Image.open, before we saw the size: quote its pixel count."""
    match = re.search(r"\((\d+) pixels\) exceeds limit of (\d+)", str(exc))
    if match is None:
        return "too many pixels"
    pixels, pillow_limit = int(match[1]), int(match[2])
    limit = MAX_PIXELS if pixels > MAX_PIXELS else pillow_limit  # name our limit unless Pillow's is lower
    return f"too many pixels ({pixels:,} > {limit:,})"


def _unidentified_reason(head: bytes) -> str:
    """Tell a damaged or unsupported picture from something that is no picture at all."""
    guess = _sniff_format(head)
    if guess is None:
        return "not an image (unrecognised format)"
    Image.init()
    if guess not in Image.OPEN:
        return f"unsupported format ({guess}: no decoder installed)"
    return _CORRUPT


def _sniff_format(head: bytes) -> str | None:
    for signature, name in _SIGNATURES:
        if head.startswith(signature):
            return name
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[4:8] == b"ftyp":
        brands = head[8 : max(12, int.from_bytes(head[:4], "big"))]
        if b"avif" in brands or b"avis" in brands:
            return "AVIF"
        if any(brands[i : i + 4] in _HEIF_BRANDS for i in range(0, len(brands), 4)):
            return "HEIF"
    return None


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode to 8-bit RGB; transparency over white, 16-bit scaled (not clipped) to 8-bit."""
    if image.mode == "RGB" and "transparency" not in image.info:
        return image
    if image.mode in _HIGH_DEPTH_MODES:
        return _high_depth_to_rgb(image)
    try:
        if image.mode in _ALPHA_MODES or "transparency" in image.info:
            rgba = image.convert("RGBA")
            background = Image.new("RGBA", rgba.size, (*BACKGROUND, 255))
            background.alpha_composite(rgba)
            return background.convert("RGB")
        return image.convert("RGB")
    except ValueError:  # e.g. LAB, which Pillow cannot turn into RGB without a colour profile
        raise ImageError("<image>", f"unsupported colour mode {image.mode}") from None


def _high_depth_to_rgb(image: Image.Image) -> Image.Image:
    """Grey images deeper than 8 bits: Pillow's own conversion clips them to white, so scale here.

    Integer modes are taken as 16-bit (0..65535, as PNG and most TIFFs store them); float images as
    0..1 if they stay there, else 0..255, else 16-bit.
    """
    values = np.asarray(image)
    if image.mode == "F":
        values = np.nan_to_num(values.astype(np.float32, copy=False))
        peak = float(values.max()) if values.size else 0.0
        scaled = values * 255.0 if peak <= 1.0 else values if peak <= 255.0 else values / 257.0
        grey = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    else:
        deep = np.clip(values, 0, 65535).astype(np.uint32)
        grey = ((deep * 255 + 32767) // 65535).astype(np.uint8)  # round(v / 257)
    return Image.fromarray(grey).convert("RGB")

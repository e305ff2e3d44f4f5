"""How lookalike reads pictures: what comes out of a file, and what is refused with which reason.

Every picture here is a real file written into tmp_path by Pillow (or pillow-heif), so each test shows
one kind of file a user may have and what lookalike makes of it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import os
import socket
import struct
import threading
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile, features

from lookalike.embedder import images
from lookalike.embedder.images import (
    CROP_PADDING,
    IMAGE_EXTENSIONS,
    MAX_PIXELS,
    DecodedImage,
    load_image,
    open_image,
    preprocess,
    read_traits,
)
from lookalike.errors import ImageError, LookalikeError
from tests.blocking import within
from tests.icons import bitmap_declaring, icon_holding

RED = (255, 0, 0)
GREEN = (0, 255, 0)
BLUE = (0, 0, 255)
GREY = (128, 128, 128)
WHITE = (255, 255, 255)
BLACK = (0, 0, 0)


def near(actual: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 12) -> bool:
    """Colours after lossy compression: each channel within ``tolerance``."""
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def reason_for(source: object, **kwargs: object) -> str:
    """The reason open_image gives for refusing ``source`` (fails the test if it is accepted)."""
    with pytest.raises(ImageError) as caught:
        open_image(source, **kwargs)
    return caught.value.reason


def noise_jpeg(path: Path, size: tuple[int, int] = (400, 300)) -> Path:
    """A JPEG of random pixels: big enough that cutting it short loses real image data."""
    pixels = np.random.default_rng(0).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, quality=90)
    return path


def declaring_size(small_file: bytes, image_format: str, width: int, height: int) -> bytes:
    """A tiny real PNG/GIF whose header claims ``width x height``: a bomb that costs nothing to make."""
    data = bytearray(small_file)
    if image_format == "PNG":
        # Signature (8), IHDR length (4) and type (4), then width and height; the chunk CRC follows.
        data[16:24] = struct.pack(">II", width, height)
        data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    else:  # GIF: the logical screen size right after "GIF89a"
        data[6:10] = struct.pack("<HH", width, height)
    return bytes(data)


def encoded(image: Image.Image, image_format: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **params)
    return buffer.getvalue()


# --- files that are not readable pictures -----------------------------------------------------------


def test_missing_file_is_reported_with_its_path(tmp_path: Path) -> None:
    missing = tmp_path / "gone.jpg"
    with pytest.raises(ImageError) as caught:
        open_image(missing)
    assert caught.value.reason == "file not found"
    assert str(caught.value) == f"{missing}: file not found"
    assert isinstance(caught.value, LookalikeError)  # so the CLI prints one line, not a traceback


def test_zero_byte_file_is_an_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jpg"
    empty.touch()
    assert reason_for(empty) == "empty file"
    assert reason_for(b"") == "empty file"
    assert reason_for(io.BytesIO()) == "empty file"


def test_text_file_named_jpg_is_not_an_image(tmp_path: Path) -> None:
    notes = tmp_path / "notes.jpg"
    notes.write_text("shopping list: milk, eggs\n")
    assert reason_for(notes) == "not an image (unrecognised format)"


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    folder = tmp_path / "album.jpg"
    folder.mkdir()
    assert reason_for(folder) == "is a directory"


def test_unreadable_file_is_permission_denied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = noise_jpeg(tmp_path / "secret.jpg")
    secret.chmod(0)
    if os.access(secret, os.R_OK):  # running as root: permissions do not apply, so play the OS's part
        real_open = os.open

        def refuse(path: object, *args: object, **kwargs: object) -> int:
            if os.fspath(path) == str(secret):
                raise PermissionError(13, "Permission denied", str(secret))
            return real_open(path, *args, **kwargs)

        monkeypatch.setattr(os, "open", refuse)
    try:
        assert reason_for(secret) == "permission denied"
    finally:
        secret.chmod(0o644)


@pytest.mark.parametrize(
    ("image_format", "keep"),
    [
        ("JPEG", 0.5),  # cut in the middle of the compressed data
        ("PNG", 0.5),
        ("JPEG", 20 / 11_000),  # only the first few bytes: recognisably a JPEG, but broken
    ],
)
def test_truncated_file_is_detected(tmp_path: Path, image_format: str, keep: float) -> None:
    whole = tmp_path / f"whole.{image_format.lower()}"
    noise = Image.open(noise_jpeg(tmp_path / "noise.jpg"))
    noise.save(whole, quality=90) if image_format == "JPEG" else noise.save(whole)
    data = whole.read_bytes()
    cut = tmp_path / f"cut.{image_format.lower()}"
    cut.write_bytes(data[: max(20, int(len(data) * keep))])

    assert reason_for(cut) == "truncated or corrupt image data"
    # Pillow's lenient mode would have hidden the damage; lookalike must not have switched it on.
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


# --- the decompression-bomb guard --------------------------------------------------------------------


@pytest.mark.parametrize("image_format", ["PNG", "GIF"])
def test_pixel_bomb_is_refused_from_its_header(tmp_path: Path, image_format: str) -> None:
    tiny = encoded(Image.new("L", (4, 4), 0), image_format)
    bomb = tmp_path / f"bomb.{image_format.lower()}"
    bomb.write_bytes(declaring_size(tiny, image_format, 30_000, 30_000))
    assert bomb.stat().st_size < 1_000

    reason = reason_for(bomb)
    assert reason == f"too many pixels (900,000,000 > {MAX_PIXELS:,})"


def progressive_jpeg_repeating_its_last_scan(times: int) -> bytes:
    """A flat grey progressive JPEG whose last scan (a few dozen bytes: one run of empty blocks) is
    repeated ``times`` more times before its end: each repeat costs libjpeg a pass over every block."""
    data = encoded(Image.new("L", (1000, 1000), 128), "JPEG", progressive=True)
    last_scan = data[data.rindex(b"\xff\xda"):-2]
    assert len(last_scan) < 100 and data.endswith(b"\xff\xd9")
    return data[:-2] + last_scan * times + b"\xff\xd9"


def test_a_progressive_jpeg_of_too_many_scans_is_refused_before_decoding(tmp_path: Path) -> None:
    """Thousands of tiny scans make a small file that takes minutes to decode (20,000 scans of a
    4000 x 4000 picture: 1.1 MB, 20 s); it is refused from a count of its markers instead."""
    from lookalike.embedder.images import MAX_JPEG_SCANS

    ordinary = progressive_jpeg_repeating_its_last_scan(0)
    assert open_image(ordinary).size == (1000, 1000)
    assert open_image(progressive_jpeg_repeating_its_last_scan(MAX_JPEG_SCANS - 20)).size == (1000, 1000)

    slow = tmp_path / "slow.jpg"
    slow.write_bytes(progressive_jpeg_repeating_its_last_scan(MAX_JPEG_SCANS))
    assert slow.stat().st_size < 50_000
    reason = f"too many scans (a progressive JPEG of over {MAX_JPEG_SCANS})"
    assert reason_for(slow) == reason
    assert reason_for(slow.read_bytes()) == reason  # an upload
    with pytest.raises(ImageError, match=r"too many scans"):
        load_image(slow, 64, digest=True)


def test_our_limit_is_checked_before_decoding(tmp_path: Path) -> None:
    # 110 Mpx is above MAX_PIXELS but below Pillow's own hard limit: only our header check can catch it.
    # The pixel data is a 4x4 picture's, so any attempt to decode would say "corrupt" instead.
    bomb = tmp_path / "wide.png"
    bomb.write_bytes(declaring_size(encoded(Image.new("L", (4, 4)), "PNG"), "PNG", 11_000, 10_000))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reason = reason_for(bomb)
    assert reason == f"too many pixels (11000 x 10000 > {MAX_PIXELS:,})"
    # Pillow's DecompressionBombWarning (fired above ~89 Mpx) is replaced by our error, not printed.
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]


def with_text_chunks(png: bytes, count: int, inflated: int, after_pixels: bool = False) -> bytes:
    """``png`` with ``count`` zTXt chunks, each inflating to ``inflated`` bytes, before its pixel data
    (read by ``Image.open``) or after it (read by decoding)."""
    payload = b"k\x00\x00" + zlib.compress(b"a" * inflated, 9)
    crc = struct.pack(">I", zlib.crc32(b"zTXt" + payload))
    chunk = struct.pack(">I", len(payload)) + b"zTXt" + payload + crc
    at = png.rindex(b"IEND") - 4 if after_pixels else 33  # after the signature and IHDR
    return png[:at] + chunk * count + png[at:]


@pytest.mark.parametrize("after_pixels", [False, True], ids=["before the pixels", "after the pixels"])
def test_a_png_whose_text_inflates_past_pillow_s_limits_is_named_for_it(tmp_path: Path, after_pixels: bool
                                                                       ) -> None:
    """Text chunks are inflated as they are read, before our pixel check: Pillow stops at 1 MB a chunk and
    64 MB in all, so a 1 GB text bomb costs little; it is refused as such, not as a damaged file, and an
    ordinary PNG with text still decodes."""
    png = encoded(Image.new("RGB", (40, 30), (200, 10, 10)), "PNG")
    (tmp_path / "ordinary.png").write_bytes(with_text_chunks(png, 3, 1000, after_pixels))
    assert load_image(tmp_path / "ordinary.png", 32).width == 40
    for name, count, inflated in (("one-huge.png", 1, 2**30), ("many.png", 80, 900_000)):
        (tmp_path / name).write_bytes(with_text_chunks(png, count, inflated, after_pixels))
        assert reason_for(tmp_path / name).startswith("PNG text metadata too large"), name


def with_profile(png: bytes, inflated: int, after_pixels: bool = False) -> bytes:
    """``png`` with an iCCP chunk (its ICC colour profile) inflating to ``inflated`` bytes."""
    payload = b"ICC profile\x00\x00" + zlib.compress(bytes(inflated), 9)
    crc = struct.pack(">I", zlib.crc32(b"iCCP" + payload))
    chunk = struct.pack(">I", len(payload)) + b"iCCP" + payload + crc
    at = png.rindex(b"IEND") - 4 if after_pixels else 33  # after the signature and IHDR
    return png[:at] + chunk + png[at:]


@pytest.mark.parametrize("after_pixels", [False, True], ids=["before the pixels", "after the pixels"])
def test_a_png_whose_colour_profile_is_a_decompression_bomb_is_named_for_it(tmp_path: Path,
                                                                             after_pixels: bool) -> None:
    """Pillow inflates an iCCP profile under the 1 MB limit of text chunks, with the same error: it was
    refused as "PNG text metadata too large", which sends the user looking for text the file lacks."""
    png = encoded(Image.new("RGB", (40, 30), (200, 10, 10)), "PNG")
    bomb = tmp_path / "profile-bomb.png"
    bomb.write_bytes(with_profile(png, 2**28, after_pixels))
    assert reason_for(bomb) == ("PNG colour profile (iCCP) too large: a decompression bomb (over Pillow's "
                                "1 MB limit)")
    (tmp_path / "with-text.png").write_bytes(with_text_chunks(with_profile(png, 1000), 1, 2**21))
    assert reason_for(tmp_path / "with-text.png").startswith("PNG text metadata too large")


@pytest.mark.parametrize(
    "picture",
    [declaring_size(encoded(Image.new("L", (4, 4)), "PNG"), "PNG", 12_000, 12_000),
     bitmap_declaring(12_000, 12_000)],
    ids=["png", "bitmap"],
)
def test_an_icon_is_refused_from_its_pictures_header_before_pillow_decodes_it(
    tmp_path: Path, picture: bytes, icon_decodes: list[int]
) -> None:
    # Pillow decodes an icon's picture inside Image.open, whatever its directory claims: a 560 KB icon
    # holding a 12000 x 12000 PNG (under Pillow's own limit) took 576 MB before anything was checked.
    bomb = tmp_path / "bomb.ico"
    bomb.write_bytes(icon_holding(picture))
    assert bomb.stat().st_size < 200

    assert reason_for(bomb) == f"too many pixels (12000 x 12000 > {MAX_PIXELS:,})"
    for index in (lambda: load_image(bomb, 64), lambda: read_traits(bomb)):  # what indexing decodes
        with pytest.raises(ImageError, match="too many pixels"):
            index()
    assert icon_decodes == []


def test_an_icon_whose_picture_header_is_unreadable_is_corrupt(
    tmp_path: Path, icon_decodes: list[int]
) -> None:
    broken = tmp_path / "broken.ico"
    broken.write_bytes(icon_holding(b"\x89PNG\r\n\x1a\n" + bytes(8)))  # no IHDR where it must be
    assert reason_for(broken) == "truncated or corrupt image data"
    assert icon_decodes == []


@pytest.mark.parametrize("bitmap_format", ["png", "bmp"])
def test_an_ordinary_icon_still_decodes(tmp_path: Path, bitmap_format: str) -> None:
    icon = tmp_path / "favicon.ico"
    picture = Image.new("RGBA", (48, 48), (*GREEN, 255))
    picture.save(icon, sizes=[(16, 16), (48, 48)], bitmap_format=bitmap_format)
    with icon.open("rb") as stream:
        assert images.icon_size(stream) == (48, 48) and stream.tell() == 0
    image = open_image(icon)
    assert image.size == (48, 48) and near(image.getpixel((24, 24)), GREEN)


def test_pixel_limit_is_the_module_constant(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    photo = tmp_path / "photo.png"
    Image.new("RGB", (200, 100), GREEN).save(photo)
    assert open_image(photo).size == (200, 100)

    monkeypatch.setattr(images, "MAX_PIXELS", 10_000)
    assert reason_for(photo) == "too many pixels (200 x 100 > 10,000)"


# --- colour modes: everything comes out as 8-bit RGB -------------------------------------------------


def test_16_bit_png_is_scaled_not_clipped_to_white(tmp_path: Path) -> None:
    # A grey ramp over the whole 16-bit range: 0, 257, 514, ... 65535 (= 257 x 0..255).
    ramp = np.tile(np.arange(256, dtype=np.uint16) * 257, (8, 1))
    path = tmp_path / "ramp16.png"
    Image.fromarray(ramp).save(path)
    assert Image.open(path).mode.startswith("I")  # Pillow really reads it as a 16-bit picture

    image = open_image(path)

    assert image.mode == "RGB"
    row = np.asarray(image)[4]
    assert np.array_equal(row[:, 0], np.arange(256))  # each 16-bit value v became round(v / 257)
    assert np.array_equal(row[:, 0], row[:, 2])  # still grey
    assert (row == 255).all(axis=1).sum() == 1  # only the brightest pixel is white


def test_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    path = tmp_path / "print.jpg"
    Image.new("CMYK", (64, 48), (0, 255, 255, 0)).save(path, quality=95)  # no cyan, full magenta+yellow
    assert Image.open(path).mode == "CMYK"

    image = open_image(path)

    assert image.mode == "RGB"
    assert near(image.getpixel((32, 24)), RED)


def test_palette_png_transparent_pixels_come_out_white(tmp_path: Path) -> None:
    picture = Image.new("P", (40, 20), 0)
    picture.putpalette([*BLACK, *BLUE])  # index 0 black (but transparent), index 1 blue
    picture.paste(1, (20, 0, 40, 20))
    path = tmp_path / "logo.png"
    picture.save(path, transparency=0)

    image = open_image(path)

    assert image.getpixel((5, 10)) == WHITE  # transparent black shows the white background
    assert image.getpixel((30, 10)) == BLUE


@pytest.mark.parametrize(
    ("mode", "transparent", "opaque", "half"),
    [
        ("RGBA", (*RED, 0), (*BLUE, 255), (*BLACK, 128)),
        ("LA", (0, 0), (0, 255), (0, 128)),
    ],
)
def test_alpha_is_composited_over_white(
    tmp_path: Path, mode: str, transparent: tuple, opaque: tuple, half: tuple
) -> None:
    picture = Image.new(mode, (30, 10), transparent)
    picture.paste(opaque, (10, 0, 20, 10))
    picture.paste(half, (20, 0, 30, 10))
    path = tmp_path / f"{mode}.png"
    picture.save(path)

    image = open_image(path)

    assert image.mode == "RGB"
    assert image.getpixel((5, 5)) == WHITE
    assert image.getpixel((15, 5)) == (BLUE if mode == "RGBA" else BLACK)
    assert near(image.getpixel((25, 5)), (127, 127, 127), tolerance=1)  # half black over white


def test_one_bit_and_grey_images_become_rgb(tmp_path: Path) -> None:
    bilevel = Image.new("1", (16, 16), 1)
    bilevel.paste(0, (0, 0, 8, 16))
    bilevel.save(tmp_path / "fax.png")
    Image.new("L", (16, 16), 77).save(tmp_path / "grey.png")

    fax = open_image(tmp_path / "fax.png")
    grey = open_image(tmp_path / "grey.png")

    assert (fax.mode, fax.getpixel((2, 2)), fax.getpixel((12, 2))) == ("RGB", BLACK, WHITE)
    assert (grey.mode, grey.getpixel((2, 2))) == ("RGB", (77, 77, 77))


# --- animations: the first frame ---------------------------------------------------------------------


@pytest.mark.parametrize("image_format", ["GIF", "WEBP"])
def test_animation_gives_its_first_frame(tmp_path: Path, image_format: str) -> None:
    if image_format == "WEBP" and not features.check("webp"):
        pytest.skip("this Pillow was built without WebP")
    frames = [Image.new("RGB", (32, 32), colour) for colour in (RED, GREEN, BLUE)]
    path = tmp_path / f"blink.{image_format.lower()}"
    params = {"lossless": True} if image_format == "WEBP" else {}
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0, **params)
    assert Image.open(path).n_frames == 3

    image = open_image(path)

    assert image.mode == "RGB"
    assert near(image.getpixel((16, 16)), RED, tolerance=2)


# --- EXIF orientation --------------------------------------------------------------------------------


def rotated_jpeg(path: Path, orientation: int, size: tuple[int, int] = (300, 200)) -> Path:
    """A grey JPEG stored ``size`` wide with a red block in its stored top-left corner."""
    picture = Image.new("RGB", size, GREY)
    picture.paste(RED, (0, 0, size[0] // 5, size[1] // 5))
    exif = Image.Exif()
    exif[0x0112] = orientation  # Orientation
    picture.save(path, quality=95, exif=exif.tobytes())
    return path


@pytest.mark.parametrize(
    ("orientation", "shown_size", "red_corner"),
    [
        (1, (300, 200), "top-left"),  # as stored
        (3, (300, 200), "bottom-right"),  # upside down
        (6, (200, 300), "top-right"),  # camera held rotated: view turned 90 degrees clockwise
        (8, (200, 300), "bottom-left"),  # ... and the other way
    ],
)
def test_exif_orientation_is_applied(
    tmp_path: Path, orientation: int, shown_size: tuple[int, int], red_corner: str
) -> None:
    path = rotated_jpeg(tmp_path / f"o{orientation}.jpg", orientation)

    image = open_image(path)

    assert image.size == shown_size
    width, height = shown_size
    corners = {
        "top-left": (5, 5),
        "top-right": (width - 6, 5),
        "bottom-left": (5, height - 6),
        "bottom-right": (width - 6, height - 6),
    }
    for name, xy in corners.items():
        assert near(image.getpixel(xy), RED if name == red_corner else GREY), name

    decoded = load_image(path, 64)
    assert (decoded.width, decoded.height) == shown_size  # the size the user sees, not the stored one


# --- large photos: JPEG draft decoding ---------------------------------------------------------------

B2_SIZE = 260
CROP_SIDE_24MP = round(B2_SIZE / (B2_SIZE + CROP_PADDING) * 4000)  # 3562


@pytest.fixture(scope="module")
def photo_24mp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 6000x4000 JPEG turned upright by EXIF orientation 6 (so seen as 4000x6000).

    Red outside the centre square the B2 crop takes, green inside it, and a blue square in the middle
    half of it: after preprocessing, the picture is green with a blue middle half and no red.
    """
    picture = Image.new("RGB", (6000, 4000), RED)
    side = CROP_SIDE_24MP
    left, top = (6000 - side) // 2, (4000 - side) // 2
    picture.paste(GREEN, (left, top, left + side, top + side))
    picture.paste(BLUE, (left + side // 4, top + side // 4, left + 3 * side // 4, top + 3 * side // 4))
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path_factory.mktemp("large") / "camera.jpg"
    picture.save(path, quality=85, exif=exif.tobytes())
    return path


@pytest.mark.parametrize(
    ("min_size", "decoded_size"),
    [
        (B2_SIZE, (500, 750)),  # 1/8 scale: short side 500 >= 260 + 32
        (600, (1000, 1500)),  # a B7-sized input needs 632: 1/4 scale
    ],
)
def test_large_jpeg_is_decoded_at_reduced_scale(
    photo_24mp: Path, min_size: int, decoded_size: tuple[int, int]
) -> None:
    image = open_image(photo_24mp, min_size=min_size)

    assert image.size == decoded_size  # upright (portrait) and far below 4000x6000 ...
    assert min(image.size) >= min_size + CROP_PADDING  # ... but the crop still has min_size pixels


def test_large_jpeg_load_keeps_original_size_and_crop_geometry(photo_24mp: Path) -> None:
    decoded = load_image(photo_24mp, B2_SIZE)

    assert (decoded.width, decoded.height, decoded.format) == (4000, 6000, "JPEG")
    pixels = decoded.pixels
    assert pixels.shape == (B2_SIZE, B2_SIZE, 3)
    red, green, blue = (pixels[..., channel] > 0.5 for channel in range(3))
    edge = np.concatenate([pixels[3, 3:-3], pixels[-4, 3:-3], pixels[3:-3, 3], pixels[3:-3, -4]])
    assert (edge[:, 1] > 0.8).all() and (edge[:, 0] < 0.2).all()  # green to the edge, no red border
    # The blue square is the middle half of the crop: about 65..195 of 260 along both axes.
    middle_row = np.flatnonzero(blue[B2_SIZE // 2] & ~green[B2_SIZE // 2])
    assert abs(middle_row[0] - 65) <= 3 and abs(middle_row[-1] - 194) <= 3
    assert not red.any()


def test_small_jpeg_draft_scale(tmp_path: Path) -> None:
    path = noise_jpeg(tmp_path / "small.jpg", size=(800, 600))

    assert open_image(path).size == (800, 600)  # no hint: full size
    assert open_image(path, min_size=100).size == (200, 150)  # 600 // 132 = 4: quarter scale
    assert open_image(path, min_size=500).size == (800, 600)  # 600 < 2 x 532: no reduction possible


# --- HEIC and AVIF -----------------------------------------------------------------------------------


def two_colour_picture() -> Image.Image:
    picture = Image.new("RGB", (128, 96), RED)
    picture.paste(BLUE, (64, 0, 128, 96))
    return picture


def test_heic_round_trip(tmp_path: Path) -> None:
    pillow_heif = pytest.importorskip("pillow_heif")
    if not pillow_heif.libheif_info().get("HEIF"):
        pytest.skip("libheif in this pillow-heif has no HEVC encoder to write a HEIC")
    pillow_heif.register_heif_opener()
    path = tmp_path / "iphone.heic"
    two_colour_picture().save(path, format="HEIF", quality=90)

    decoded = load_image(path, 64)
    image = open_image(path.read_bytes())

    assert (decoded.width, decoded.height, decoded.format) == (128, 96, "HEIF")
    assert near(image.getpixel((16, 48)), RED, 20) and near(image.getpixel((112, 48)), BLUE, 20)


def test_avif_round_trip(tmp_path: Path) -> None:
    if not features.check("avif"):
        pytest.skip("this Pillow was built without AVIF (libavif)")
    path = tmp_path / "web.avif"
    try:
        two_colour_picture().save(path, quality=90)
    except (OSError, ValueError) as exc:
        pytest.skip(f"libavif has no AV1 encoder here: {exc}")

    decoded = load_image(path, 64)
    image = open_image(path)

    assert (decoded.width, decoded.height, decoded.format) == (128, 96, "AVIF")
    assert near(image.getpixel((16, 48)), RED, 20) and near(image.getpixel((112, 48)), BLUE, 20)


# --- sources: paths, bytes, streams ------------------------------------------------------------------


class OneWayStream(io.RawIOBase):
    """An upload read straight off a socket: no seeking."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        chunk = self._data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def test_every_kind_of_source_gives_the_same_picture(tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    two_colour_picture().save(path)
    data = path.read_bytes()
    expected = np.asarray(open_image(path))

    with path.open("rb") as handle:
        from_handle = open_image(handle)
    for picture in (open_image(str(path)), open_image(data), open_image(io.BytesIO(data)), from_handle):
        assert np.array_equal(np.asarray(picture), expected)
    assert np.array_equal(np.asarray(open_image(OneWayStream(data))), expected)
    assert reason_for(OneWayStream(b"hello")) == "not an image (unrecognised format)"
    with pytest.raises(ImageError, match=r"^<bytes>: not an image"):
        open_image(b"hello")


class Zeros(io.RawIOBase):
    """``/dev/zero`` piped in (``lookalike search - < /dev/zero``): no seeking, ``length`` zeros, counted."""

    def __init__(self, length: int) -> None:
        self.left, self.given = length, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        self.given += n
        return n


def test_a_stream_far_longer_than_any_picture_is_refused_once_past_the_largest_not_read_to_its_end(
        monkeypatch) -> None:
    # It was read whole into memory: from /dev/zero, until memory ran out (3 GB in 6 s).
    monkeypatch.setattr(images, "STREAM_MAX", 3 * 2**20)
    zeros = Zeros(100 * 2**20)
    assert reason_for(zeros) == "more than 3 MB: no picture lookalike reads is that large"
    assert zeros.given <= 3 * 2**20 + images.STREAM_CHUNK


# --- preprocess: the EfficientNet evaluation pipeline ------------------------------------------------


def test_preprocess_output_is_float32_in_unit_range() -> None:
    noise = np.random.default_rng(1).integers(0, 256, (200, 300, 3), dtype=np.uint8)

    pixels = preprocess(Image.fromarray(noise), B2_SIZE)

    assert pixels.shape == (B2_SIZE, B2_SIZE, 3) and pixels.dtype == np.float32
    assert pixels.min() >= 0.0 and pixels.max() <= 1.0
    plain = preprocess(Image.new("RGB", (300, 200), (10, 128, 250)), B2_SIZE)
    assert np.allclose(plain, np.array([10, 128, 250], dtype=np.float32) / 255)  # just divided by 255


def test_preprocess_crop_removes_the_border() -> None:
    # 96 x 96 with a 16-pixel red frame: the crop for 64 is round(64 / 96 * 96) = 64, centred,
    # exactly the inside of the frame, so nothing red survives and nothing is resampled.
    framed = Image.new("RGB", (96, 96), RED)
    framed.paste(GREEN, (16, 16, 80, 80))

    pixels = preprocess(framed, 64)

    assert np.array_equal(pixels, np.broadcast_to(np.array(GREEN, np.float32) / 255, (64, 64, 3)))


def test_preprocess_crop_is_centred_on_wide_pictures() -> None:
    # 200 x 96: the crop is 64 x 64 at x = (200 - 64 + 1) // 2 = 68, y = 16. Blue | green inside it.
    wide = Image.new("RGB", (200, 96), RED)
    wide.paste(BLUE, (68, 16, 100, 80))
    wide.paste(GREEN, (100, 16, 132, 80))

    pixels = (preprocess(wide, 64) * 255).round().astype(np.uint8)

    assert (pixels[:, :32] == BLUE).all() and (pixels[:, 32:] == GREEN).all()


def test_preprocess_odd_margin_goes_left() -> None:
    # 97 wide leaves 33 spare columns: 17 go left, 16 right (as the reference implementation does).
    picture = Image.new("RGB", (97, 96), RED)
    picture.paste(GREEN, (17, 16, 81, 80))

    pixels = preprocess(picture, 64)

    assert (pixels[..., 0] == 0).all()


def test_preprocess_scales_with_bicubic_and_converts_other_modes() -> None:
    grey = Image.new("L", (400, 300), 200)
    pixels = preprocess(grey, 32)
    assert pixels.shape == (32, 32, 3) and np.allclose(pixels, 200 / 255)

    ramp = Image.fromarray(np.tile(np.arange(256, dtype=np.uint8), (256, 1)))
    crop = round(64 / (64 + CROP_PADDING) * 256)
    offset = (256 - crop + 1) // 2
    reference = ramp.crop((offset, offset, offset + crop, offset + crop)).resize((64, 64), Image.BICUBIC)
    assert np.allclose(preprocess(ramp, 64)[..., 0], np.asarray(reference) / 255)

    with pytest.raises(ValueError):
        preprocess(grey, 0)


# --- load_image and the constants ---------------------------------------------------------------------


def test_load_image_bundles_pixels_and_file_facts(tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    two_colour_picture().save(path)

    decoded = load_image(path, 48)

    assert isinstance(decoded, DecodedImage)
    assert (decoded.width, decoded.height, decoded.format) == (128, 96, "PNG")
    assert decoded.pixels.shape == (48, 48, 3)
    assert np.array_equal(decoded.pixels, preprocess(open_image(path), 48))
    with pytest.raises(dataclasses.FrozenInstanceError):
        decoded.width = 1  # type: ignore[misc]
    with pytest.raises(ImageError, match="file not found"):
        load_image(tmp_path / "nope.png", 48)


def test_image_extensions_are_what_suffix_gives() -> None:
    assert {".jpg", ".jpeg", ".png", ".webp", ".gif", ".heic", ".avif", ".tiff"} <= IMAGE_EXTENSIONS
    assert all(ext.startswith(".") and ext == ext.lower() for ext in IMAGE_EXTENSIONS)
    assert Path("IMG_0001.HEIC").suffix.lower() in IMAGE_EXTENSIONS


# --- only regular files are read: FIFOs, sockets and devices are refused without blocking -----------


def refused_within(seconds: float, call: Callable[[], object], fifo: Path | None = None) -> str:
    result = within(seconds, call, fifo)
    assert isinstance(result, ImageError), f"expected an ImageError, got {result!r}"
    return result.reason


@pytest.mark.parametrize("reader", ["open_image", "load_image"])
def test_a_fifo_named_like_a_photo_is_refused_at_once(tmp_path: Path, reader: str) -> None:
    fifo = tmp_path / "fifo.jpg"
    os.mkfifo(fifo)
    call = (lambda: open_image(fifo)) if reader == "open_image" else (lambda: load_image(fifo, 64))
    assert refused_within(10, call, fifo) == "not a regular file (FIFO)"


def test_a_fifo_with_a_writer_waiting_is_still_refused_unread(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.jpg"
    os.mkfifo(fifo)
    data = noise_jpeg(tmp_path / "n.jpg").read_bytes()

    def write() -> None:
        with contextlib.suppress(OSError):  # the pipe breaks when the reader closes unread
            fifo.write_bytes(data)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()  # blocks in open until a reader comes: ours must not read what it sends
    assert refused_within(10, lambda: open_image(fifo), fifo) == "not a regular file (FIFO)"
    os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))  # release the writer if it is still waiting
    writer.join(10)


def test_a_socket_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.jpg"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        server.listen()
        assert refused_within(10, lambda: open_image(path)) == "not a regular file (socket)"


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom", "/dev/null"])
def test_a_device_behind_a_photo_name_is_refused_unread(tmp_path: Path, device: str) -> None:
    if not os.path.exists(device):
        pytest.skip(f"no {device} here")
    link = tmp_path / "photo.jpg"
    link.symlink_to(device)
    assert refused_within(10, lambda: open_image(link)) == "not a regular file (device)"
    assert refused_within(10, lambda: open_image(device)) == "not a regular file (device)"


def test_a_symlink_to_a_regular_photo_is_read(tmp_path: Path) -> None:
    photo = noise_jpeg(tmp_path / "real.jpg")
    link = tmp_path / "link.jpg"
    link.symlink_to(photo)
    assert open_image(link).size == (400, 300)


def test_files_read_leave_no_descriptor_open(tmp_path: Path) -> None:
    photo = noise_jpeg(tmp_path / "real.jpg")
    fifo = tmp_path / "fifo.jpg"
    os.mkfifo(fifo)
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        open_image(photo)
        refused_within(10, lambda: open_image(fifo), fifo)
    assert len(os.listdir("/proc/self/fd")) == before


# --- files that change while they are read ----------------------------------------------------------


def while_decoding(monkeypatch: pytest.MonkeyPatch, change: Callable[[], None]) -> None:
    """Run ``change`` once, after the header was read and before the pixels are: a real mid-read change."""
    real_load = ImageFile.ImageFile.load
    done = []

    def load(self: ImageFile.ImageFile) -> object:
        if not done:
            done.append(True)
            change()
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "BMP", "TIFF"])
def test_a_file_cut_short_while_read_is_an_image_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, image_format: str
) -> None:
    path = tmp_path / f"photo.{image_format.lower()}"
    pixels = np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, image_format)
    size = path.stat().st_size
    while_decoding(monkeypatch, lambda: os.truncate(path, size // 2))  # BMP/TIFF: Pillow could mmap these
    with pytest.raises(ImageError) as caught:
        load_image(path, 64)
    assert caught.value.reason in {"truncated or corrupt image data", "changed while being read"}


def test_a_file_rewritten_while_read_is_an_image_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = noise_jpeg(tmp_path / "photo.jpg")
    other = noise_jpeg(tmp_path / "other.jpg", size=(640, 480)).read_bytes()
    while_decoding(monkeypatch, lambda: path.write_bytes(other))  # same inode, new content and size
    with pytest.raises(ImageError) as caught:
        load_image(path, 64)
    assert caught.value.reason in {"truncated or corrupt image data", "changed while being read"}


def test_a_file_grown_while_read_is_reported_as_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = noise_jpeg(tmp_path / "photo.jpg")

    def append() -> None:
        with open(path, "ab") as f:
            f.write(b"\0" * 1000)

    while_decoding(monkeypatch, append)
    with pytest.raises(ImageError) as caught:
        load_image(path, 64)
    assert caught.value.reason == "changed while being read"


def test_a_file_replaced_by_rename_while_read_is_decoded_from_what_was_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An editor's atomic save swaps the name to a new file; the open descriptor still reads the old one."""
    path = noise_jpeg(tmp_path / "photo.jpg")
    replacement = noise_jpeg(tmp_path / "new.jpg", size=(640, 480))
    while_decoding(monkeypatch, lambda: os.replace(replacement, path))
    decoded = load_image(path, 64)
    assert (decoded.width, decoded.height) == (400, 300)


def test_files_changing_under_many_reads_give_pictures_or_image_errors(tmp_path: Path) -> None:
    path = noise_jpeg(tmp_path / "photo.jpg")
    smaller = noise_jpeg(tmp_path / "b.jpg", size=(300, 200)).read_bytes()
    versions = [path.read_bytes(), smaller, b"", b"\xff\xd8"]
    stop = threading.Event()

    def churn() -> None:
        i = 0
        while not stop.is_set():
            with open(path, "r+b") as f:  # in place: readers see the file shrink, grow and change
                f.truncate(0)
                f.write(versions[i % len(versions)])
            i += 1

    writer = threading.Thread(target=churn, daemon=True)
    writer.start()
    try:
        outcomes = [within(10, lambda: load_image(path, 32)) for _ in range(200)]
    finally:
        stop.set()
        writer.join()
    assert all(isinstance(o, DecodedImage | ImageError) for o in outcomes), {type(o) for o in outcomes}


@pytest.mark.parametrize("image_format", ["ICNS", "BLP"])
def test_formats_whose_headers_do_not_say_what_they_unpack_are_not_read(tmp_path: Path, image_format: str,
                                                                        monkeypatch) -> None:
    """An ICNS icon set said 512 x 512 over a 177 MP PNG, a BLP texture 1 x 1 over a 12000 x 12000 JPEG,
    each decoded in full past the pixel cap: Pillow opens them, the indexer and the service do not."""
    from lookalike.server.files import declared_pixels

    path = tmp_path / f"picture.{image_format.lower()}"
    picture = Image.new("RGB", (32, 32), "red")
    (picture.convert("P") if image_format == "BLP" else picture).save(path, image_format)
    with Image.open(path) as opened:  # Pillow itself reads it
        assert opened.format == image_format
    with pytest.raises(ImageError, match="not an image"):
        open_image(path)
    assert declared_pixels(path.read_bytes()) is None


# --- the digest of the bytes decoded ------------------------------------------------------------------

READ_WAYS = [images.READ_WHOLE_MAX, 0]  # files read whole into memory, or decoded from the descriptor


@pytest.mark.parametrize("read_whole_max", READ_WAYS, ids=["in memory", "from the descriptor"])
def test_load_image_digests_exactly_the_file_it_decoded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, read_whole_max: int
) -> None:
    monkeypatch.setattr(images, "READ_WHOLE_MAX", read_whole_max)
    path = noise_jpeg(tmp_path / "photo.jpg")
    st = path.stat()
    decoded = load_image(path, 64, digest=True)
    assert decoded.digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert decoded.file == (str(path), st.st_size, st.st_mtime, st.st_dev, st.st_ino)
    from_bytes = load_image(path.read_bytes(), 64, digest=True)
    assert from_bytes.digest == decoded.digest and from_bytes.file is None
    np.testing.assert_array_equal(from_bytes.pixels, decoded.pixels)
    assert load_image(path, 64).digest is None  # only when asked: searches need none


@pytest.mark.parametrize("read_whole_max", READ_WAYS, ids=["in memory", "from the descriptor"])
def test_a_file_rewritten_with_its_mtime_set_back_between_decoding_and_digest_is_reported_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, read_whole_max: int
) -> None:
    """Same size, mtime put back (cp -p, touch -r): size and mtime cannot tell; the change time does."""
    monkeypatch.setattr(images, "READ_WHOLE_MAX", read_whole_max)
    path = noise_jpeg(tmp_path / "photo.jpg")
    other = bytes(reversed(path.read_bytes()))
    real_sha256 = images._sha256

    def rewritten_then_digested(stream: io.BytesIO, label: str) -> str:
        st = os.stat(path)
        with open(path, "r+b") as f:
            f.write(other)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        return real_sha256(stream, label)

    monkeypatch.setattr(images, "_sha256", rewritten_then_digested)
    with pytest.raises(ImageError) as caught:
        load_image(path, 64, digest=True)
    assert caught.value.reason == "changed while being read"


def test_a_file_over_the_read_whole_cap_is_never_held_in_memory_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A huge uncompressed TIFF (or 10 GB named .jpg) is decoded from its descriptor, then digested from it
    again: the file's bytes are never in memory at once (tracemalloc sees the Python bytes, not Pillow's
    pixels, which the decoding needs anyway)."""
    import tracemalloc

    path = tmp_path / "huge.tif"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (2000, 3000, 3), dtype=np.uint8)).save(path)
    size = path.stat().st_size  # 18 MB

    def peak_of(call: Callable[[], object]) -> int:
        tracemalloc.start()
        try:
            call()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    assert peak_of(lambda: load_image(path, 64, digest=True)) > size  # under the cap: read once, whole
    monkeypatch.setattr(images, "READ_WHOLE_MAX", size - 1)
    assert peak_of(lambda: load_image(path, 64, digest=True)) < size // 4
    assert load_image(path, 64, digest=True).digest == hashlib.sha256(path.read_bytes()).hexdigest()

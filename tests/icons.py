"""ICO files for the decompression-bomb tests: Pillow decodes an icon's picture inside ``Image.open``."""

from __future__ import annotations

import struct


def icon_holding(picture: bytes) -> bytes:
    """An ICO file with one picture, ``picture`` (PNG or bitmap bytes); its directory says 16 x 16."""
    directory = struct.pack("<HHH", 0, 1, 1) + struct.pack("<BBBBHHII", 16, 16, 0, 0, 1, 32, len(picture), 22)
    return directory + picture


def bitmap_declaring(width: int, height: int) -> bytes:
    """An icon's bitmap (BITMAPINFOHEADER: its height counts the mask too) claiming ``width x height``."""
    return struct.pack("<IiiHHIIiiII", 40, width, 2 * height, 1, 32, 0, 0, 0, 0, 0, 0) + bytes(64)

"""A duplicate folder for reviewing clusters in the HTTP service and the page, shared by their tests.

On top of :func:`tests.duplicate_photos.duplicate_folder`: three more crops of rocket (left 80 %, right
80 %, top 85 %) and a hard link of espresso. At ``THRESHOLD`` (0.99) with the tiny test model rocket
keeps four copies; made the keeper instead, rocket-left reaches rocket, rocket-crop and rocket-top
(0.994-0.996) but not rocket-right (0.985): a copy of the old keeper that is no copy of the new one.
"""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image

from tests.duplicate_photos import NEW, duplicate_folder

ROCKET_CROPS = {"rocket-left": (0.0, 0.0, 0.8, 1.0), "rocket-right": (0.2, 0.0, 1.0, 1.0),
                "rocket-top": (0.0, 0.0, 1.0, 0.85)}


def review_folder(root: Path) -> dict[str, Path]:
    """The files by name (``rocket-left``, ``espresso-link``, ...); copies under ``backup/``."""
    files = duplicate_folder(root)
    with Image.open(files["rocket"]) as image:
        w, h = image.size
        for name, (left, top, right, bottom) in ROCKET_CROPS.items():
            path = root / "backup" / f"{name}.jpg"
            image.crop((int(left * w), int(top * h), int(right * w), int(bottom * h))).save(path)
            os.utime(path, (NEW, NEW))
            files[name] = path
    files["espresso-link"] = root / "backup" / "espresso-link.jpg"
    os.link(files["espresso"], files["espresso-link"])
    return files

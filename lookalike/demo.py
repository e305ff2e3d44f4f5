"""Copies of sample photos made the way life makes them, so ``make demo`` has something to find.

    python -m lookalike.demo SOURCE DEST

For every image in SOURCE (only read), DEST gets four copies, each re-saved as a JPEG at quality 60:
``-small`` (half size), ``-crop`` (the middle 80 %), ``-turned`` (a quarter turn) and ``-screenshot``
(in an image viewer's dark frame, its title bar on top). DEST is emptied and refilled each run, and
only if it is one this module made (it holds the marker file) or is empty, so a mistyped path is never
wiped. No randomness: the same photos give the same copies.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageOps

MARKER = ".lookalike-demo"  # hidden: never indexed
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png"}


def _small(image: Image.Image) -> Image.Image:
    return image.resize((image.width // 2, image.height // 2), Image.Resampling.LANCZOS)


def _crop(image: Image.Image) -> Image.Image:
    w, h = image.size
    return image.crop((w // 10, h // 10, w - w // 10, h - h // 10))


def _turned(image: Image.Image) -> Image.Image:
    """A quarter turn clockwise. (Counter-clockwise, the rocket's copy scores 0.640 against its original
    with the offline model: at the duplicate threshold itself, a coin toss on another machine.)"""
    return image.transpose(Image.Transpose.ROTATE_270)


def _screenshot(image: Image.Image) -> Image.Image:
    """The photo in a screenshot of an image viewer: a uniform dark frame, thicker on top (the title bar)."""
    return ImageOps.expand(image, border=(24, 64, 24, 24), fill=(40, 40, 46))


COPIES: dict[str, Callable[[Image.Image], Image.Image]] = {
    "small": _small,
    "crop": _crop,
    "turned": _turned,
    "screenshot": _screenshot,
}
QUALITY = 60  # a re-save below the originals' (data/ holds quality 90 JPEGs): the keeper stays the original


def make_copies(source: Path, dest: Path) -> list[Path]:
    """Refill ``dest`` with the copies of every photo in ``source``; the copies' paths, sorted."""
    if dest.exists():
        if not (dest / MARKER).exists() and any(dest.iterdir()):
            raise SystemExit(f"error: {dest} is not empty and not a demo folder; refusing to empty it")
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    (dest / MARKER).write_text("made by python -m lookalike.demo; emptied on every run\n")
    made = []
    for photo in sorted(p for p in source.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES):
        with Image.open(photo) as opened:
            image = ImageOps.exif_transpose(opened).convert("RGB")
        for name, copy in COPIES.items():
            target = dest / f"{photo.stem}-{name}.jpg"
            copy(image).save(target, quality=QUALITY)
            made.append(target)
    return sorted(made)


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        raise SystemExit("usage: python -m lookalike.demo SOURCE DEST")
    source, dest = map(Path, argv)
    made = make_copies(source, dest)
    print(f"made {len(made)} copies of the photos in {source} in {dest}: {', '.join(COPIES)}")


if __name__ == "__main__":
    main(sys.argv[1:])

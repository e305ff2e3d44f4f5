"""A near-duplicate set made from real photos: each original plus copies as people make them.

Used by ``bench/quality.py`` (retrieval: is a copy's nearest neighbour from its own group?) and by the
duplicate-threshold calibration. Originals: the photos in data/ plus scikit-image's bundled sample
photographs (when scikit-image is installed) - real photos only, no drawings or synthetic charts.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageEnhance, ImageOps

DATA = Path(__file__).resolve().parent.parent / "data"
# scikit-image's sample photographs that are not already in data/ (chelsea, coffee, rocket, camera are).
SKIMAGE_PHOTOS = (
    "astronaut.png", "motorcycle_left.png", "hubble_deep_field.jpg", "retina.jpg", "ihc.png",
    "brick.png", "grass.png", "gravel.png", "coins.png", "moon.png", "clock_motion.png", "page.png",
    "text.png", "cell.png", "microaneurysms.png",
)


@dataclass(frozen=True)
class Item:
    group: str  # the original's name: every copy of it shares the group
    transform: str  # "original" for the original itself
    path: Path


def original_photos() -> list[Path]:
    photos = sorted(DATA.glob("*.jpg"))
    try:
        import skimage
    except ImportError:
        return photos
    folder = Path(skimage.__file__).parent / "data"
    return photos + [folder / name for name in SKIMAGE_PHOTOS if (folder / name).exists()]


def _resize(scale: float) -> Callable[[Image.Image, random.Random], Image.Image]:
    def apply(image: Image.Image, _: random.Random) -> Image.Image:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        return image.resize(size, Image.Resampling.LANCZOS)

    return apply


def _crop(image: Image.Image, rng: random.Random) -> Image.Image:
    """Cut 10-25 % off the width and the height, off-centre."""
    cut_w, cut_h = (round(side * rng.uniform(0.10, 0.25)) for side in image.size)
    left, top = rng.randint(0, cut_w), rng.randint(0, cut_h)
    return image.crop((left, top, left + image.width - cut_w, top + image.height - cut_h))


def _caption(image: Image.Image, rng: random.Random) -> Image.Image:
    """A meme-style caption band over the bottom of the photo."""
    out = image.copy()
    draw = ImageDraw.Draw(out)
    band = max(12, image.height // 8)
    draw.rectangle((0, image.height - band, image.width, image.height), fill=(0, 0, 0))
    size = max(10, band * 2 // 3)
    draw.text((band // 3, image.height - band + band // 6), rng.choice(["LOL", "when it's Monday", "me irl"]),
              fill=(255, 255, 255), font_size=size)
    return out


def _border(image: Image.Image, rng: random.Random) -> Image.Image:
    width = max(4, min(image.size) // 10)
    return ImageOps.expand(image, border=width, fill=rng.choice([(255, 255, 255), (0, 0, 0)]))


TRANSFORMS: dict[str, Callable[[Image.Image, random.Random], Image.Image]] = {
    "resized 50%": _resize(0.5),
    "resized 25%": _resize(0.25),
    "cropped 10-25%": _crop,
    "mirrored": lambda image, _: ImageOps.mirror(image),
    "brightened": lambda image, rng: ImageEnhance.Brightness(image).enhance(rng.uniform(1.3, 1.6)),
    "greyscale": lambda image, _: ImageOps.grayscale(image).convert("RGB"),
    "captioned": _caption,
    "rotated 90": lambda image, rng: image.rotate(rng.choice([90, 270]), expand=True),
    "bordered": _border,
    "jpeg q35-75": lambda image, _: image,  # the re-save below does it
}


def make_set(folder: Path, seed: int = 0) -> list[Item]:
    """Write every original and its copies (JPEG; quality 35-75 for the 'jpeg' copy) into ``folder``."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    for photo in original_photos():
        group = photo.stem
        with Image.open(photo) as opened:
            image = opened.convert("RGB")
        original = folder / f"{group}.jpg"
        image.save(original, quality=92)
        items.append(Item(group, "original", original))
        for name, transform in TRANSFORMS.items():
            copy = transform(image, rng)
            quality = rng.randint(35, 75) if name.startswith("jpeg") else 90
            slug = "".join(c if c.isalnum() else "-" for c in name).strip("-")  # unique per transform
            path = folder / f"{group}__{slug}.jpg"
            copy.save(path, quality=quality)
            items.append(Item(group, name, path))
    return items

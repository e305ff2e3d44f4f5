"""Duplicate photos as people make them, shared by the library, CLI and exit-status tests.

The tiny test model embeds a 4x4 colour thumbnail, so distinct photos still score 0.6-0.9 with it:
tests pass an explicit threshold of 0.99, which its resized, cropped, recompressed and (through the
orientation check) rotated copies reach.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

from tests.photos import DATA, blocks

THRESHOLD = 0.99
OLD, NEW = 1_000_000_000, 1_600_000_000  # originals are older than their copies


def duplicate_folder(root: Path) -> dict[str, Path]:
    """data/'s photos and, under backup/, copies of them as people make them; four distinct pictures.

    cat: a byte-identical copy; espresso: half size; rocket: 5 % cut off each side; cameraman: turned
    a quarter and re-saved smaller. The copies are newer or smaller, so each original is the keeper.
    """
    (root / "backup").mkdir(parents=True)
    files = {p.stem: Path(shutil.copy2(p, root / p.name)) for p in sorted(DATA.glob("*.jpg"))}
    files["cat-copy"] = Path(shutil.copy2(files["cat"], root / "backup" / "cat.jpg"))
    with Image.open(files["espresso"]) as image:
        image.resize((image.width // 2, image.height // 2)).save(root / "backup" / "espresso-small.jpg")
    with Image.open(files["rocket"]) as image:
        w, h = image.size
        image.crop((w // 20, h // 20, w - w // 20, h - h // 20)).save(root / "backup" / "rocket-crop.jpg")
    with Image.open(files["cameraman"]) as image:
        image.rotate(90, expand=True).save(root / "backup" / "cameraman-turned.jpg", quality=60)
    for name in ("espresso-small", "rocket-crop", "cameraman-turned"):
        files[name] = root / "backup" / f"{name}.jpg"
    for seed in range(4):
        files[f"blocks{seed}"] = blocks(root / f"blocks{seed}.png", seed)
    for path in files.values():
        os.utime(path, (NEW, NEW) if path.parent.name == "backup" else (OLD, OLD))
    return files


EXPECTED = {  # keeper -> its copies
    "cat": {"cat-copy"},
    "espresso": {"espresso-small"},
    "rocket": {"rocket-crop"},
    "cameraman": {"cameraman-turned"},
}


def tree_digest(root: Path) -> dict[str, str]:
    """Every file under ``root`` by relative path, with the sha256 of its bytes."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def grey_photos(folder: Path) -> Path:
    """A colour photo and its greyscale copy; another photo and a darker grey version of it."""
    folder.mkdir()
    with Image.open(DATA / "espresso.jpg") as image:
        image.save(folder / "espresso.jpg", quality=95)
        ImageOps.grayscale(image).convert("RGB").save(folder / "espresso-grey.jpg", quality=90)
    with Image.open(DATA / "rocket.jpg") as image:
        image.save(folder / "rocket.jpg", quality=95)
        darker = ImageEnhance.Brightness(ImageOps.grayscale(image)).enhance(0.55)
        darker.convert("RGB").save(folder / "rocket-dark-grey.jpg", quality=90)
    return folder


def same_layout_photos(folder: Path) -> Path:
    """A photo, a crop of it, and a different picture with the photo's colours in the same places.

    ``cat-layout.jpg`` is the cat photo blurred to its colour layout, with the cameraman's details (its
    edges and textures) drawn over it: to a model that sees colour layout it is the cat photo; its
    corners and edges are somewhere else entirely.
    """
    folder.mkdir()
    with Image.open(DATA / "cat.jpg") as opened:
        cat = opened.convert("RGB")
    cat.save(folder / "cat.jpg", quality=95)
    w, h = cat.size
    crop = cat.crop((w // 20, h // 20, w - w // 20, h - h // 20))
    crop.save(folder / "cat-crop.jpg", quality=85)
    with Image.open(DATA / "cameraman.jpg") as opened:
        other = opened.convert("L").resize(cat.size)
    detail = np.asarray(other, np.float32) - np.asarray(other.filter(ImageFilter.GaussianBlur(4)), np.float32)
    layout = np.asarray(cat.filter(ImageFilter.GaussianBlur(24)), np.float32)
    mixed = np.clip(layout + 1.5 * detail[:, :, None], 0, 255).astype(np.uint8)
    Image.fromarray(mixed).save(folder / "cat-layout.jpg", quality=90)
    return folder


def second_look_photos(folder: Path) -> Path:
    """Four photos and a copy of each that only a second look finds, each look once: the cameraman
    turned a quarter, the cat at a quarter size, the espresso in greyscale, the rocket in a wide border."""
    folder.mkdir()
    for name in ("cameraman", "cat", "espresso", "rocket"):
        shutil.copy2(DATA / f"{name}.jpg", folder / f"{name}.jpg")
    with Image.open(DATA / "cameraman.jpg") as image:
        image.rotate(90, expand=True).save(folder / "cameraman-turned.jpg", quality=60)
    with Image.open(DATA / "cat.jpg") as image:
        image.resize((image.width // 4, image.height // 4)).save(folder / "cat-tiny.jpg", quality=70)
    with Image.open(DATA / "espresso.jpg") as image:
        ImageOps.grayscale(image).convert("RGB").save(folder / "espresso-grey.jpg", quality=90)
    with Image.open(DATA / "rocket.jpg") as image:
        ImageOps.expand(image, border=image.width // 3, fill=(20, 20, 20)).save(
            folder / "rocket-bordered.jpg", quality=85)
    return folder

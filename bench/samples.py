"""Distinct JPEGs made from data/'s real photos, for benchmarks that must decode every file for real."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

DATA = Path(__file__).resolve().parent.parent / "data"


def jittered_jpegs(folder: Path, count: int, size: tuple[int, int], noise: int = 3) -> list[Path]:
    """``count`` JPEGs of ``size``: data/'s photos resized, with +-``noise`` per pixel so none repeats."""
    photos = sorted(DATA.glob("*.jpg"))
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        with Image.open(photos[i % len(photos)]) as photo:
            image = photo.convert("RGB").resize(size, Image.Resampling.BICUBIC)
        jitter = rng.integers(-noise, noise + 1, (size[1], size[0], 3))
        noisy = np.clip(np.asarray(image, np.int16) + jitter, 0, 255)
        path = folder / f"{size[0]}x{size[1]}_{i:03d}.jpg"
        Image.fromarray(noisy.astype(np.uint8)).save(path, quality=90)
        paths.append(path)
    return paths

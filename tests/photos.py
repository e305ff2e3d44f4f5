"""Real image files for index tests: sample photos, copies of them, and distinct synthetic pictures."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image

DATA = Path(__file__).resolve().parent.parent / "data"


def hue_turned(picture: Image.Image, degrees: int) -> Image.Image:
    """``picture`` with every hue turned by ``degrees`` (HSV, as a recolouring tool does)."""
    hsv = np.asarray(picture.convert("HSV")).copy()
    hsv[..., 0] = (hsv[..., 0].astype(np.int32) + round(degrees / 360 * 256)) % 256
    return Image.fromarray(hsv, "HSV").convert("RGB")


def blocks(path: Path, seed: int, size: tuple[int, int] = (320, 240)) -> Path:
    """A picture of random coloured blocks: distinct from every other seed, even to a tiny model."""
    rng = np.random.default_rng(seed)
    grid = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    Image.fromarray(grid).resize(size, Image.Resampling.NEAREST).save(path)
    return path


def photo_folder(root: Path, synthetic: int = 6) -> dict[str, Path]:
    """data/'s photos, a half-size copy of each (in a subfolder), and ``synthetic`` block pictures."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "copies").mkdir(exist_ok=True)
    files: dict[str, Path] = {}
    for photo in sorted(DATA.glob("*.jpg")):
        files[photo.stem] = Path(shutil.copy2(photo, root / photo.name))
        with Image.open(photo) as image:
            half = image.resize((image.width // 2, image.height // 2), Image.Resampling.LANCZOS)
            half.save(root / "copies" / f"{photo.stem}-small.jpg", quality=80)
        files[f"{photo.stem}-small"] = root / "copies" / f"{photo.stem}-small.jpg"
    for seed in range(synthetic):
        files[f"blocks{seed}"] = blocks(root / f"blocks{seed}.png", seed)
    return files

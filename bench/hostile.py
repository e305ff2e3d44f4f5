"""Hostile folders: pictures an ImageNet model cannot tell apart, where only pixels can.

Run by hand: ``python bench/hostile.py``. Writes "## Hostile folders: textures and pages of text" in
docs/benchmarks.md.

Two folders, made here from seeds (nothing downloaded), each clustered at the default threshold:

- **textures**: random colour noise, smoothed a little, one seed a picture. EfficientNet-Lite2 finds
  any two alike at cosine 0.95-0.98, so each seems to have dozens of versions of itself (the
  near-identical rule then scores pairs at their cosine). Five of them get five copies each (half size,
  JPEG q30, crop 10 %, mirror, brighter).
- **pages of text**: pages of different made-up words in one layout (a heading, then lines of body
  text). The model finds them alike at 0.99, and their 16x16 thumbnails agree at 0.98, as a copy's do.
  Three of them get the same five copies.

Side by side in one run on one index: the product, and the product with the geometric check as it was
before: *before strokes*, thumbnails that agree vouching for a pair unread and no strokes compared
(session 29); *before*, also pairs over 0.3 above the threshold not verified and a fit of two or three
inliers with no layout trusted (session 28). A cluster is mixed when it holds two different pictures
(a copy counts as its original); *pictures moved wrongly* counts the members of each cluster that are
not the keeper's picture.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from looks_cost import thumbnails_vouching  # noqa: E402
from report import clustered, machine, today, write_section  # noqa: E402

import lookalike  # noqa: E402

SECTION = "## Hostile folders: textures and pages of text"
BEFORE_STROKES = {"STROKES_DIFFER": 9.0, "geometric_look": thumbnails_vouching}
MODES = {"before": {"GEOMETRY_BAND": 0.3, "CHANCE_FIT": -1, **BEFORE_STROKES},
         "before strokes": BEFORE_STROKES, "product": {}}
COPIES: dict[str, Callable[[Image.Image], Image.Image]] = {
    "half size": lambda image: image.resize((image.width // 2, image.height // 2)),
    "jpeg q30": lambda image: image,
    "crop": lambda image: image.crop((image.width // 10, image.height // 10, image.width, image.height)),
    "mirror": ImageOps.mirror,
    "brighter": lambda image: ImageEnhance.Brightness(image).enhance(1.4),
}
SYLLABLES = ("ka", "lo", "mi", "ra", "ten", "su", "vo", "ne", "ri", "pa", "dor", "el", "un", "ist", "qua")


def texture(seed: int) -> Image.Image:
    noise = np.random.default_rng(seed).normal(128, 60, (90, 120, 3)).clip(0, 255).astype(np.uint8)
    smooth = Image.fromarray(noise).resize((480, 360), Image.Resampling.BICUBIC)
    return smooth.filter(ImageFilter.GaussianBlur(1.5))


def page(seed: int) -> Image.Image:
    rng = random.Random(seed)
    image = Image.new("RGB", (850, 1100), "white")
    draw = ImageDraw.Draw(image)
    draw.text((80, 60), f"Chapter {seed + 1}", fill="black", font=ImageFont.load_default(size=36))
    body = ImageFont.load_default(size=18)
    for y in range(140, 1020, 28):
        line = ""
        while len(line) < 70:
            line += "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4))) + " "
        draw.text((80, y), line, fill="black", font=body)
    return image


def make_folder(folder: Path, draw: Callable[[int], Image.Image], count: int,
                with_copies: int) -> dict[str, str]:
    """``count`` pictures, the first ``with_copies`` with every kind of copy: file name -> picture."""
    folder.mkdir(parents=True)
    picture_of = {}
    for seed in range(count):
        image = draw(seed)
        name = f"{seed:02d}.png"
        image.save(folder / name)
        picture_of[name] = name
        for kind, edit in COPIES.items() if seed < with_copies else ():
            copy = f"{seed:02d}-{kind.replace(' ', '-')}.jpg"
            edit(image).save(folder / copy, quality=30 if kind == "jpeg q30" else 85)
            picture_of[copy] = name
    return picture_of


def judge(clusters: list, picture_of: dict[str, str]) -> dict[str, int]:
    mixed = moved_wrongly = copies_found = 0
    for cluster in clusters:
        keeper = picture_of[Path(cluster.keeper.path).name]
        others = [picture_of[Path(m.path).name] for m in cluster.copies]
        mixed += any(other != keeper for other in others)
        moved_wrongly += sum(other != keeper for other in others)
        copies_found += sum(other == keeper for other in others)
    return {"clusters": len(clusters), "mixed": mixed, "moved wrongly": moved_wrongly,
            "copies found": copies_found}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="efficientnet-lite2")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    folders = {"textures": (texture, 40, 5), "pages of text": (page, 24, 3)}
    rows = []
    with tempfile.TemporaryDirectory(prefix="lookalike-hostile-") as tmp:
        for name, (draw, count, with_copies) in folders.items():
            picture_of = make_folder(Path(tmp) / name, draw, count, with_copies)
            with lookalike.open(Path(tmp) / f"index-{name}", model=args.model) as col:
                col.add([Path(tmp) / name])
                for mode, settings in MODES.items():
                    clusters, seconds = clustered(col, settings)
                    rows.append((name, count, with_copies * len(COPIES), mode, judge(clusters, picture_of),
                                 seconds))
                    print(rows[-1], flush=True)
    lines = ["| folder | pictures | copies | check | clusters | mixed | pictures moved wrongly "
             "| copies found | `duplicates()` s |", "|---|---:|---:|---|---:|---:|---:|---:|---:|"]
    for name, count, copies, mode, found, seconds in rows:
        lines.append(f"| {name} | {count} | {copies} | {mode} | {found['clusters']} | {found['mixed']} "
                     f"| {found['moved wrongly']} | {found['copies found']} | {seconds:.1f} |")
    body = "\n\n".join([
        "Folders made from seeds (`bench/hostile.py`: see its docstring): random textures, and pages of "
        "made-up text in one layout, some with five copies each (half size, JPEG q30, crop, mirror, "
        "brighter), at the default threshold. *before strokes*: thumbnails that agree vouch for a pair "
        "unread, strokes not compared; *before*: also pairs over 0.3 above the threshold not verified, a "
        "fit of two or three inliers without a layout trusted.",
        "\n".join(lines),
        f"`python bench/hostile.py` on {today()}, {machine()}; model {args.model}.",
    ])
    if args.no_write:
        print(body)
    else:
        write_section(SECTION, body)
        print(f"wrote {SECTION!r}")


if __name__ == "__main__":
    main()

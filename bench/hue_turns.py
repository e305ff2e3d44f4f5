"""Can the stored 8x8 colour grid tell a hue turned by 30 degrees from a brightened copy?

Run by hand: ``python bench/hue_turns.py`` (after ``bench/calibrate.py`` and
``bench/colour_variants.py --near-hues`` have built and indexed the dev half and the near-hue probe).
Writes "## Hue turns in the stored colour grid" in docs/benchmarks.md.

For every pair of colourful pictures whose luminance thumbnails line up (``PIXEL_AGREEMENT`` in one of
the eight turns and mirrors), the median angle by which the colour cells clearly coloured in both
(``TINT_CHROMA``, at least ``TINT_CELLS`` of them) turn in opponent-colour space, in that alignment.
Copies come from the dev half (one original's copies) and from the probe (one variant's copies); variants
are the probe's, of one design. Brightening clips bright colours and moves their hues; so the angles are
also taken over the cells that clip in neither picture (every channel, rebuilt from the cell's luminance
and opponent colours, under ``UNCLIPPED``). Only dev originals are used: the test half stays unseen.

The angles alone overlap; so the second table counts the pairs the duplicates' colour check
(:func:`~lookalike.index.looks.recoloured_tints`) tells apart, with and without its test of whether
brightening explains a turn (``HUE_TURN``). The third applies edits a user makes to a copy, and
recolourings, to every colourful dev original (JPEG q90 after each), and counts the pairs it tells apart.
"""

from __future__ import annotations

import argparse
import io
import math
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import dupset  # noqa: E402
from calibrate import load_split  # noqa: E402
from colour_variants import hue_turned  # noqa: E402
from report import machine, search_settings, today, write_section  # noqa: E402

import lookalike  # noqa: E402
from lookalike.embedder.traits import (  # noqa: E402
    COLOURFUL,
    THUMBNAIL_SIDE,
    TINT_SIDE,
    image_traits,
    thumbnail_matrix,
    tint_colours,
)
from lookalike.index import (
    looks,  # noqa: E402
    thumbnails,  # noqa: E402
)
from lookalike.index.records import ImageRecord  # noqa: E402

SECTION = "## Hue turns in the stored colour grid"
UNCLIPPED = 180  # a cell's brightest channel under this: brightened 1.3-1.6 times, it did not clip
TURNS = {"original": 0, "hue30": 30, "hueminus30": -30, "hue60": 60}  # the probe's folder suffixes


def _gamma(power: float) -> Callable[[Image.Image], Image.Image]:
    return lambda image: image.point(lambda v: round(255 * (v / 255) ** power))


def _warmer(image: Image.Image) -> Image.Image:
    """White balance moved warm: red up 12 %, blue down 12 %."""
    pixels = np.asarray(image, dtype=np.float32) * np.array([1.12, 1.0, 0.88], dtype=np.float32)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


EDITS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "brighter x1.6": lambda image: ImageEnhance.Brightness(image).enhance(1.6),
    "brighter x2.0": lambda image: ImageEnhance.Brightness(image).enhance(2.0),
    "brighter x2.5": lambda image: ImageEnhance.Brightness(image).enhance(2.5),
    "darker x0.6": lambda image: ImageEnhance.Brightness(image).enhance(0.6),
    "gamma 0.6 (lighter)": _gamma(0.6),
    "gamma 1.4 (darker)": _gamma(1.4),
    "contrast x1.4": lambda image: ImageEnhance.Contrast(image).enhance(1.4),
    "contrast x0.7": lambda image: ImageEnhance.Contrast(image).enhance(0.7),
    "saturation x1.5": lambda image: ImageEnhance.Color(image).enhance(1.5),
    "saturation x0.6": lambda image: ImageEnhance.Color(image).enhance(0.6),
    "sharpened": lambda image: image.filter(ImageFilter.SHARPEN),
    "blurred": lambda image: image.filter(ImageFilter.GaussianBlur(2)),
    "JPEG q20": lambda image: image,  # the edit is the re-encoding itself, at q20 below
    "auto-contrast (per channel)": ImageOps.autocontrast,
    "white balance warmer": _warmer,
    "equalised (per channel)": ImageOps.equalize,
    "hue turned 15°": lambda image: hue_turned(image, 15),
    "hue turned 30°": lambda image: hue_turned(image, 30),
    "hue turned -30°": lambda image: hue_turned(image, -30),
    "hue turned 45°": lambda image: hue_turned(image, 45),
}
"""Edits to a copy first, then those that change colours: white balance and per-channel equalising
change a photo's colours the way a recolouring does; hue turns are recolourings."""


def colourful_records(col) -> list[ImageRecord]:
    """The collection's records with colour, a colour grid and a thumbnail."""
    found = []
    for ids, _ in col.store.iter_vectors():
        for row in col.store.get_many([int(i) for i in ids]):
            record = ImageRecord.of(row)
            traits = record.traits
            if (traits is not None and traits.colourfulness >= COLOURFUL
                    and len(traits.tint) == TINT_SIDE * TINT_SIDE * 2
                    and len(traits.thumbnail) == THUMBNAIL_SIDE * THUMBNAIL_SIDE):
                found.append(record)
    return found


def turn_angles(records: list[ImageRecord], pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For pairs [n, 2] of records: whether they line up and have enough coloured cells, and the median
    cell angle (degrees) over all such cells and over those clipped in neither."""
    luminance = thumbnail_matrix([r.traits.thumbnail for r in records]).reshape(-1, THUMBNAIL_SIDE,
                                                                               THUMBNAIL_SIDE)
    tints = np.frombuffer(b"".join(r.traits.tint for r in records), dtype=np.int8)
    tints = tints.reshape(-1, TINT_SIDE, TINT_SIDE, 2).astype(np.float32) * 2
    a, b = pairs.T
    alignments, valid = thumbnails.view_correlations(luminance[a].reshape(len(a), -1),
                                                     luminance[b].reshape(len(b), -1))
    scores = np.where(valid, alignments, -np.inf)
    view = scores.argmax(axis=0)
    lined_up = scores.max(axis=0) >= thumbnails.PIXEL_AGREEMENT
    rows = np.arange(len(a))
    theirs_tint = np.stack(thumbnails.aligned_views(tints[b]))[view, rows]
    theirs_luminance = np.stack(thumbnails.aligned_views(luminance[b].astype(np.float32)))[view, rows]

    def angle(tint: np.ndarray) -> np.ndarray:
        return np.degrees(np.arctan2(tint[..., 1], tint[..., 0]))

    mine_tint = tints[a]
    turned = np.abs((angle(mine_tint) - angle(theirs_tint) + 180) % 360 - 180)
    coloured = ((np.linalg.norm(mine_tint, axis=-1) >= looks.TINT_CHROMA)
                & (np.linalg.norm(theirs_tint, axis=-1) >= looks.TINT_CHROMA))

    def clipped(light: np.ndarray, tint: np.ndarray) -> np.ndarray:  # tints back to the stored scale
        return tint_colours(light, tint / 2).max(axis=-1) >= UNCLIPPED

    unclipped = coloured & ~clipped(luminance[a].astype(np.float32), mine_tint) & ~clipped(
        theirs_luminance, theirs_tint)

    def medians(cells: np.ndarray) -> np.ndarray:
        enough = cells.sum(axis=(1, 2)) >= looks.TINT_CELLS
        return np.array([np.median(turned[i][cells[i]]) if enough[i] else np.nan for i in rows])

    judged = lined_up & (coloured.sum(axis=(1, 2)) >= looks.TINT_CELLS)
    return judged, medians(coloured), medians(unclipped)


def reencoded(image: Image.Image, quality: int) -> Image.Image:
    """``image`` as a JPEG of ``quality`` decodes."""
    encoded = io.BytesIO()
    image.save(encoded, "JPEG", quality=quality)
    with Image.open(encoded) as decoded:
        return decoded.convert("RGB")


def edited(image: Image.Image, name: str) -> Image.Image:
    """``image`` with ``EDITS[name]`` made, then re-encoded as a JPEG of q90 (q20 for that edit)."""
    return reencoded(EDITS[name](image), 20 if name == "JPEG q20" else 90)


def edited_pairs(originals: list[Path]) -> dict[str, tuple[int, int]]:
    """For each of ``EDITS``: how many colourful originals and their edited copies the colour check tells
    apart, of how many."""
    counts = {name: [0, 0] for name in EDITS}

    def record(image: Image.Image, name: str) -> ImageRecord:
        return ImageRecord(0, name, image.width, image.height, 0, 0.0, traits=image_traits(image))

    for path in originals:
        with Image.open(path) as opened:
            image = opened.convert("RGB")
        original = record(reencoded(image, 95), str(path))
        if original.traits.colourfulness < COLOURFUL or not original.traits.tint:
            continue
        for name in EDITS:
            copy = record(edited(image, name), name)
            counts[name][0] += int(looks.recoloured_tints([original], [copy])[0])
            counts[name][1] += 1
    return {name: (told, total) for name, (told, total) in counts.items()}


def labelled_pairs(records: list[ImageRecord], picture, kind, design) -> tuple[np.ndarray, list[str]]:
    """Every pair of records of one design, each labelled by what it is."""
    first, second = np.triu_indices(len(records), 1)
    same_design = np.array([design(r.path) for r in records])
    keep = same_design[first] == same_design[second]
    pairs = np.stack([first[keep], second[keep]], axis=1)
    labels = []
    for i, j in pairs:
        x, y = records[i].path, records[j].path
        if picture(x) != picture(y):
            turn = abs(TURNS[picture(x).split("--")[1]] - TURNS[picture(y).split("--")[1]])
            labels.append(f"variants turned {turn}°")
        elif "brighter" in (kind(x), kind(y)):
            labels.append("copies, one brightened")
        else:
            labels.append("copies, not brightened")
    return pairs, labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    rows: dict[str, list[tuple[float, float]]] = {}
    tally: dict[str, list[int]] = {}
    dev = load_split("dev")
    probe = dupset.CACHE / "near-hues" / "index-efficientnet-lite2"
    with lookalike.open(probe, model="efficientnet-lite2") as near:
        sources = [
            (colourful_records(dev.collection), dev.group.get, lambda p: dev.kind[p], dev.group.get),
            (colourful_records(near), lambda p: Path(p).parent.name, lambda p: Path(p).stem.replace("-", " "),
             lambda p: Path(p).parent.name.split("--")[0]),
        ]
        for records, picture, kind, design in sources:
            pairs, labels = labelled_pairs(records, picture, kind, design)
            judged, every, unclipped = turn_angles(records, pairs)
            mine, theirs = [records[i] for i in pairs[:, 0]], [records[j] for j in pairs[:, 1]]
            told = looks.recoloured_tints(mine, theirs)
            with search_settings(HUE_TURN=math.inf):
                opposed = looks.recoloured_tints(mine, theirs)
            for i in np.flatnonzero(judged):
                rows.setdefault(labels[i], []).append((every[i], unclipped[i]))
            for i, label in enumerate(labels):
                tally.setdefault(label, [0, 0, 0])
                tally[label][0] += int(told[i])
                tally[label][1] += int(opposed[i])
                tally[label][2] += 1
    edits = edited_pairs(sorted(Path(p) for p in dev.originals.values()))

    def spread(values: np.ndarray) -> str:
        values = values[~np.isnan(values)]
        if not len(values):
            return "- | - | - | -"
        low, middle, high, top = np.percentile(values, [1, 50, 99, 100])
        return f"{low:.1f} | {middle:.1f} | {high:.1f} | {top:.1f}"

    lines = [
        "Median angle (degrees) by which two lined-up colourful pictures' coloured cells turn, per pair "
        "(see the script's docstring): over every cell coloured in both, and over those clipped in neither.",
        "",
        "| pairs | count | 1st pct. | median | 99th pct. | max "
        "| unclipped: 1st pct. | median | 99th pct. | max |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label in sorted(rows):
        values = np.array(rows[label], dtype=np.float64).reshape(-1, 2)
        lines.append(f"| {label} | {len(values)} | {spread(values[:, 0])} | {spread(values[:, 1])} |")
    lines += [
        "",
        "Pairs of pictures of one design the duplicates' colour check tells apart (every pair, lined up or "
        "not), with its test of whether brightening explains a turn and without it (cells pointing more "
        "than a quarter turn apart only):",
        "",
        "| pairs | told apart | without the turn test | of |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {label} | {told} | {opposed} | {total} |"
              for label, (told, opposed, total) in sorted(tally.items())]
    lines += [
        "",
        "Colourful dev originals and an edited copy of each (JPEG q90): told apart, of the pairs. The first "
        "edits keep a copy's colours; white balance and per-channel equalising change them as a recolouring "
        "does, and hue turns are recolourings.",
        "",
        "| edit | told apart | of |",
        "|---|---:|---:|",
    ]
    lines += [f"| {name} | {told} | {total} |" for name, (told, total) in edits.items()]
    lines += ["", f"`python bench/hue_turns.py` on {today()}, {machine()}."]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section(SECTION, body)


if __name__ == "__main__":
    main()

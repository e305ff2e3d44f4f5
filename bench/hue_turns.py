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
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import dupset  # noqa: E402
from calibrate import load_split  # noqa: E402
from report import machine, today, write_section  # noqa: E402

import lookalike  # noqa: E402
from lookalike.embedder.traits import COLOURFUL, THUMBNAIL_SIDE, TINT_SIDE, thumbnail_matrix  # noqa: E402
from lookalike.index import duplicates  # noqa: E402
from lookalike.index.duplicates import ImageRecord  # noqa: E402

SECTION = "## Hue turns in the stored colour grid"
UNCLIPPED = 180  # a cell's brightest channel under this: brightened 1.3-1.6 times, it did not clip
TURNS = {"original": 0, "hue30": 30, "hueminus30": -30, "hue60": 60}  # the probe's folder suffixes


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
    alignments, valid = duplicates._alignments(luminance[a].reshape(len(a), -1),
                                               luminance[b].reshape(len(b), -1))
    scores = np.where(valid, alignments, -np.inf)
    view = scores.argmax(axis=0)
    lined_up = scores.max(axis=0) >= duplicates.PIXEL_AGREEMENT
    rows = np.arange(len(a))
    theirs_tint = np.stack(duplicates._aligned_views(tints[b]))[view, rows]
    theirs_luminance = np.stack(duplicates._aligned_views(luminance[b].astype(np.float32)))[view, rows]

    def brightest(light: np.ndarray, tint: np.ndarray) -> np.ndarray:
        """Each cell's brightest channel, rebuilt from luminance and (R - G, (R + G) / 2 - B)."""
        cells = light.reshape(-1, TINT_SIDE, 2, TINT_SIDE, 2).mean(axis=(2, 4))
        red_green, yellow_blue = tint[..., 0], tint[..., 1]
        green = cells - 0.356 * red_green + 0.114 * yellow_blue
        return np.maximum.reduce([green + red_green, green, green + red_green / 2 - yellow_blue])

    def angle(tint: np.ndarray) -> np.ndarray:
        return np.degrees(np.arctan2(tint[..., 1], tint[..., 0]))

    mine_tint = tints[a]
    turned = np.abs((angle(mine_tint) - angle(theirs_tint) + 180) % 360 - 180)
    coloured = ((np.linalg.norm(mine_tint, axis=-1) >= duplicates.TINT_CHROMA)
                & (np.linalg.norm(theirs_tint, axis=-1) >= duplicates.TINT_CHROMA))
    unclipped = coloured & (brightest(luminance[a].astype(np.float32), mine_tint) < UNCLIPPED) & (
        brightest(theirs_luminance, theirs_tint) < UNCLIPPED)

    def medians(cells: np.ndarray) -> np.ndarray:
        enough = cells.sum(axis=(1, 2)) >= duplicates.TINT_CELLS
        return np.array([np.median(turned[i][cells[i]]) if enough[i] else np.nan for i in rows])

    judged = lined_up & (coloured.sum(axis=(1, 2)) >= duplicates.TINT_CELLS)
    return judged, medians(coloured), medians(unclipped)


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
            for i in np.flatnonzero(judged):
                rows.setdefault(labels[i], []).append((every[i], unclipped[i]))

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
    lines += ["", f"`python bench/hue_turns.py` on {today()}, {machine()}."]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section(SECTION, body)


if __name__ == "__main__":
    main()

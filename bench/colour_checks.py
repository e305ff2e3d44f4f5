"""What the stored-trait checks of every pair cost at scale: colours, negatives, blank pages, colour grids.

Run by hand: ``python bench/colour_checks.py [--pairs 100000,1000000]``. Writes "## Colour checks at
scale" in docs/benchmarks.md.

:func:`~lookalike.index.duplicates.second_look` looks at every pair a duplicate run finds (the colour
margin covers them all), from traits stored at indexing: no file is read. A million images make
150,000 to 1.5 million pairs (`bench/duplicates.py`). The pairs here are of synthetic records with
every trait recorded (a random luminance thumbnail and colour grid, colourful hue histograms), half of
them the same picture brightened, so no check stops early; the keypoint check is left out (it reads
files, `bench/geometric.py`). Side by side in one run: the checks without the two looks that read the
colour grid (as before :func:`recoloured_tints` and :func:`missing_hues`) and with them, and each one's
own cost. The synthetic million-image run of
`bench/duplicates.py` has no traits, so it does not include these checks.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from report import machine, search_settings, today, write_section  # noqa: E402

from lookalike.embedder.traits import HUE_BINS, THUMBNAIL_SIDE, TINT_SIDE, Traits  # noqa: E402
from lookalike.index import duplicates  # noqa: E402
from lookalike.index.duplicates import second_look  # noqa: E402
from lookalike.index.looks import missing_hues, recoloured_tints  # noqa: E402
from lookalike.index.records import ImageRecord, Pair  # noqa: E402

SECTION = "## Colour checks at scale"
IMAGES = 20_000  # distinct records the pairs are drawn from


def records(count: int, seed: int = 0) -> dict[int, ImageRecord]:
    """``count`` pictures and, for each, a brightened copy (ids ``count`` apart), traits all recorded."""
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(count):
        luminance = rng.integers(30, 200, THUMBNAIL_SIDE * THUMBNAIL_SIDE, dtype=np.uint8)
        tint = rng.integers(-60, 60, TINT_SIDE * TINT_SIDE * 2).astype(np.int8)
        hues = np.zeros(HUE_BINS, np.uint8)
        hues[rng.integers(0, HUE_BINS, 2)] = 127
        for number, lift in ((i, 1.0), (i + count, 1.2)):
            traits = Traits(400, 300, False, 90, hues.tobytes(), 0.4,
                            np.clip(luminance * lift, 0, 255).astype(np.uint8).tobytes(), tint.tobytes())
            out[number] = ImageRecord(number, f"/photos/{number}.jpg", 400, 300, 1000, 0.0, traits=traits)
    return out


def pairs(count: int, images: int, seed: int = 1) -> list[Pair]:
    """Half the pairs a picture and its brightened copy, half two pictures."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, images, count)
    b = np.where(np.arange(count) % 2 == 0, a + images, (a + rng.integers(1, images, count)) % images)
    return [Pair(int(x), int(y), 0.8, 0.8) for x, y in zip(a, b, strict=True)]


def no_grid(a: list, b: list) -> np.ndarray:
    """A look at the colour grid as it was before there was one: it flags nothing, and costs nothing."""
    return np.zeros(len(a), dtype=bool)


def timed(step, *args) -> tuple[object, float]:
    started = time.perf_counter()
    result = step(*args)
    return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", default="100000,1000000")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    by_id = records(IMAGES)
    second_look(pairs(1000, IMAGES), duplicates.DEFAULT_THRESHOLD, by_id)  # warm up before the clock runs
    rows = []
    for count in (int(n) for n in args.pairs.split(",")):
        found = pairs(count, IMAGES)
        threshold = duplicates.DEFAULT_THRESHOLD
        with search_settings(recoloured_tints=no_grid, missing_hues=no_grid):
            _, before_s = timed(second_look, found, threshold, by_id)
        after, after_s = timed(second_look, found, threshold, by_id)
        mine, theirs = [by_id[p.a] for p in found], [by_id[p.b] for p in found]
        flagged, grid_s = timed(recoloured_tints, mine, theirs)
        missing, missing_s = timed(missing_hues, mine, theirs)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        copies_kept = sum(p.b >= IMAGES for p in after)
        rows.append(f"| {count:,} | {before_s:.1f} s | {after_s:.1f} s | {after_s / before_s:.2f} "
                    f"| {grid_s:.1f} s | {missing_s:.1f} s | {copies_kept:,} of {(count + 1) // 2:,} "
                    f"| {int(flagged.sum()):,} / {int(missing.sum()):,} | {peak:.1f} GiB |")
        print(rows[-1], flush=True)
    body = "\n".join([
        __doc__.split("\n\n", 2)[2].strip(),
        "",
        "| pairs | checks without the grid's looks | with them | ratio | recoloured tints alone "
        "| missing hues alone | copy pairs kept | pairs each flags | peak memory (process) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
        f"`python bench/colour_checks.py --pairs {args.pairs}` on {today()}, {machine()}.",
    ])
    print(body)
    if not args.no_write:
        write_section(SECTION, body)


if __name__ == "__main__":
    main()

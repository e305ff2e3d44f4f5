"""What seeking tiny and grey pictures' originals by their pixels costs at a million images.

Run by hand: ``python bench/tiny_search.py [--sizes 100000,1000000] [--tiny 1000,10000,100000]``.
Writes "## Tiny copies: the pixel search at scale" in docs/benchmarks.md.

:func:`~lookalike.index.thumbnails.pixel_neighbours` compares every tiny picture's luminance thumbnail
(``TINY``: under 128 px on its short side, enlarged more than twice by the model) with every picture's,
because the vector search cannot reach a tiny copy's original (bench/unseen.py). Its cost is tiny
pictures times all pictures, so it is measured here at the sizes bench/duplicates.py clusters, with
synthetic thumbnails (random 16 x 16 pictures, smoothed so that they correlate as photographs do) and
planted tiny copies (an original's thumbnail with noise, as JPEG and resizing leave it): the time, the
peak memory, and how many planted originals are found. A collection with no tiny picture pays nothing.
Grey pictures without their colour original beside them are sought the same way, and a library of old
black-and-white photos has a hundred thousand of them: so the search goes through an inverted file from
``PIXEL_COMPARISONS`` (queries times pictures) on. Both ways are run side by side on the same
thumbnails, comparing every query with every picture only up to 10,000 queries (100,000 would take
half an hour).
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

from report import constants, machine, today, write_section  # noqa: E402

from lookalike.index import thumbnails as stored_thumbnails  # noqa: E402
from lookalike.index.thumbnails import PIXEL_K, PIXEL_LISTS, PIXEL_NPROBE, pixel_neighbours  # noqa: E402

EXACT_MAX = 10_000  # queries compared with every picture, beyond: only the inverted file

SECTION = "## Tiny copies: the pixel search at scale"


def thumbnails(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` smooth random 16 x 16 luminance thumbnails (uint8 rows), made a chunk at a time."""
    out = np.empty((n, 256), dtype=np.uint8)
    for start in range(0, n, 100_000):
        count = min(100_000, n - start)
        coarse = rng.normal(128, 50, (count, 4, 4))
        fine = np.repeat(np.repeat(coarse, 4, axis=1), 4, axis=2) + rng.normal(0, 15, (count, 16, 16))
        out[start : start + count] = np.clip(fine, 0, 255).reshape(count, 256)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--tiny", default="1000,10000,100000")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    rng = np.random.default_rng(9)
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        pictures = thumbnails(size, rng)
        for tiny in (int(t) for t in args.tiny.split(",")):
            originals = rng.choice(size, tiny, replace=False)
            copies = np.clip(pictures[originals].astype(np.int16) + rng.integers(-8, 9, (tiny, 256)), 0, 255)
            for mode, limit in (("every picture", 10**12), ("inverted file", 0)):
                if limit and tiny > EXACT_MAX:
                    continue
                with constants(stored_thumbnails, PIXEL_COMPARISONS=limit):
                    started = time.perf_counter()
                    found_rows, found = pixel_neighbours(copies.astype(np.uint8), pictures)
                    seconds = time.perf_counter() - started
                hits = int((found == originals[found_rows]).sum())
                others = len(found) - hits
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
                rows.append(f"| {size:,} | {tiny:,} | {mode} | {seconds:.1f} s | {hits:,} of {tiny:,} | "
                            f"{others:,} | {peak:.1f} GiB |")
                print(rows[-1], flush=True)
    body = "\n".join([
        "The pixel search for tiny pictures' originals (`pixel_neighbours`, each tiny picture's "
        f"{PIXEL_K} best thumbnails from the pixel agreement up), on synthetic thumbnails with planted "
        "tiny copies (see the script's docstring). It runs once per `duplicates()` when the collection "
        "holds pictures under 128 px on their short side, beside the vector search bench/duplicates.py "
        "times; what it finds goes to the scale look, which re-embeds only pairs whose shapes allow it. "
        "Grey pictures whose colour original the vector search missed are sought the same way. Each "
        "query compared with every picture, or through an inverted file of the thumbnails "
        f"({PIXEL_LISTS} lists, {PIXEL_NPROBE} visited; the product's way from "
        f"{stored_thumbnails.PIXEL_COMPARISONS:,} comparisons on), on the same thumbnails in one run.",
        "",
        "| pictures | tiny or grey pictures | compared with | pixel search | planted originals found | "
        "other matches | peak memory (process) |",
        "|---:|---:|---|---:|---:|---:|---:|",
        *rows,
        "",
        f"`python bench/tiny_search.py --sizes {args.sizes} --tiny {args.tiny}` on {today()}, {machine()}.",
    ])
    print(body)
    if not args.no_write:
        write_section(SECTION, body)


if __name__ == "__main__":
    main()

"""What the colour rules cost on one large cluster that holds many greyscale copies.

Run by hand: ``python bench/grey_clusters.py [--sizes 100,300,1000] [--rounds 3]`` (after
``bench/calibrate.py`` has indexed the dev half). Writes "## Greyscale copies in one large cluster" in
docs/benchmarks.md; ``--no-write`` prints only.

Every greyscale candidate copy of a colour keeper is checked against the keeper and each colour member of
its cluster (``looks.grey_design``, through ``duplicates.colours_agreeing``): a greyscale copy of a
brightened original is vouched for by the original. That makes the work members x greyscale members per
round. Here one cluster is built from the stored records of one dev picture (the blue balloon's original
and its greyscale copy, with their real thumbnails and colour grids), repeated: 2N colour versions, and N
colour versions with N greyscale copies, every pair of them accepted at 0.9 (the same number of pairs).
Only ``build_clusters`` is timed (the pairs exist before it), alternating, median of the rounds.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import dupset  # noqa: E402
from calibrate import library_state, load_split  # noqa: E402
from report import machine, today, write_section  # noqa: E402

from lookalike.index.duplicates import build_clusters  # noqa: E402
from lookalike.index.records import ImageRecord, Pair  # noqa: E402

SECTION = "## Greyscale copies in one large cluster"
PICTURE = "openclipart-balloon-blue-aj"


def picture_records(collection, group: str) -> tuple[ImageRecord, ImageRecord]:
    """The stored records of one dev picture's original and its greyscale copy."""
    folder = dupset.CACHE / "set" / "dev" / group
    wanted = {str(folder / "original.jpg"): "original", str(folder / "greyscale.jpg"): "greyscale"}
    found = {}
    for ids, _ in collection.store.iter_vectors():
        for row in collection.store.get_many(ids.tolist()):
            if row.path in wanted:
                found[wanted[row.path]] = ImageRecord.of(row)
    return found["original"], found["greyscale"]


def one_cluster(colour: ImageRecord, grey: ImageRecord, versions: int, greys: int
                ) -> tuple[list[ImageRecord], list[Pair]]:
    """``versions`` colour records and ``greys`` greyscale ones, every pair of them at 0.9."""
    records = [dataclasses.replace(colour, id=i, path=f"/colour/{i:05d}.jpg", mtime=float(i))
               for i in range(versions)]
    records += [dataclasses.replace(grey, id=versions + i, path=f"/grey/{i:05d}.jpg") for i in range(greys)]
    return records, [Pair(a.id, b.id, 0.9) for a, b in itertools.combinations(records, 2)]


def timed(records: list[ImageRecord], pairs: list[Pair]) -> tuple[float, list[int]]:
    started = time.perf_counter()
    clusters = build_clusters(records, pairs)
    return time.perf_counter() - started, sorted(len(c.members) for c in clusters)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,300,1000")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    colour, grey = picture_records(load_split("dev").collection, PICTURE)
    lines = ["| images | pairs | clustering s, all colour | half of them greyscale copies "
             "| added per greyscale copy, ms | cluster sizes |", "|---:|---:|---:|---:|---:|---|"]
    for n in (int(s) for s in args.sizes.split(",")):
        plain, greyed = one_cluster(colour, grey, 2 * n, 0), one_cluster(colour, grey, n, n)
        times: dict[str, list[float]] = {"plain": [], "greyed": []}
        sizes = []
        for _ in range(args.rounds):
            for name, (records, pairs) in (("plain", plain), ("greyed", greyed)):
                seconds, found = timed(records, pairs)
                times[name].append(seconds)
                if name == "greyed":
                    sizes = found
        base, with_greys = statistics.median(times["plain"]), statistics.median(times["greyed"])
        lines.append(f"| {2 * n:,} | {len(greyed[1]):,} | {base:.2f} | {with_greys:.2f} | "
                     f"{1000 * (with_greys - base) / n:.2f} | {', '.join(map(str, sizes))} |")
        print(lines[-1], flush=True)
    body = "\n".join([
        __doc__.split("\n\n")[2].replace("\n", " "), "", *lines, "",
        f"`python bench/grey_clusters.py --sizes {args.sizes} --rounds {args.rounds}` on {today()}, "
        f"{machine()}; {library_state()}.",
    ])
    print(body)
    if not args.no_write:
        write_section(SECTION, body)


if __name__ == "__main__":
    main()

"""A first ``duplicates()`` run (nothing remembered) with the described files' cache as shipped and held
to about the 2,048 files it kept before.

Run by hand: ``python bench/first_run.py`` (dev half) or ``--set series`` (the series of distinct
drawings, ``bench/series.py``, the larger and harder one: 10 minutes a run). Writes "## First run:
described files kept" in docs/benchmarks.md; ``--no-write`` prints only.

Each round forgets the index's remembered vectors and matches, then runs each budget in turn, side by
side: the run's seconds, how many times a file was described (decoded, its content box and layout
found, ORB) against how many distinct files (a file mirrored counts apart) were asked for, and the
most the cache held; the clusters of both compared.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from calibrate import MODEL, index_split, load_split  # noqa: E402
from report import machine, today, write_section  # noqa: E402

from lookalike.embedder import keypoints  # noqa: E402
from lookalike.embedder.keypoints import KeypointFiles, cache_budget  # noqa: E402

SECTION = "## First run: described files kept"
BEFORE = 2048 * 80 * 1024  # the 2,048 files kept before, at the 80 KB a file takes on average
MIB = 1 << 20


def first_run(col, budget: int) -> dict:
    """One first run with the cache held to ``budget`` bytes: seconds, descriptions, peak, clusters."""
    described: list[tuple[str, bool]] = []
    peak = [0]
    describe, find = KeypointFiles._describe, keypoints._file_keypoints

    def counted(key):
        described.append(key)
        return find(key)

    def watched(self, keys, pool):
        describe(self, keys, pool)
        peak[0] = max(peak[0], self._bytes)

    col.store.forget_remembered()
    with (mock.patch.object(keypoints, "_file_keypoints", counted),
          mock.patch.object(KeypointFiles, "_describe", watched),
          mock.patch.object(keypoints, "cache_budget", lambda: budget)):  # what a KeypointFiles gets
        started = time.perf_counter()
        clusters = col.duplicates()
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "described": len(described), "distinct": len(set(described)),
            "peak": peak[0], "clusters": sorted(tuple(m.path for m in c.members) for c in clusters)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=("dev", "series"), default="dev")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if args.set == "series":
        import series

        manifest = series.build()
        split = index_split("series", manifest["items"], series.CACHE / "set" / "series", series.CACHE, MODEL)
    else:
        split = load_split("dev")
    budgets = {"as shipped": cache_budget(), "about 2,048 files (before)": BEFORE}
    runs: dict[str, list[dict]] = {name: [] for name in budgets}
    for _ in range(args.rounds):
        for name, budget in budgets.items():
            runs[name].append(first_run(split.collection, budget))
            print(name, {k: v for k, v in runs[name][-1].items() if k != "clusters"}, flush=True)
    split.collection.close()
    median = {name: statistics.median(r["seconds"] for r in found) for name, found in runs.items()}
    before = median["about 2,048 files (before)"]
    same = len({tuple(r["clusters"]) for found in runs.values() for r in found}) == 1
    body = "\n".join([
        f"A first `duplicates()` run on the {args.set} set ({len(split.paths):,} images), its remembered "
        f"vectors and matches forgotten, with the described files' cache held to each budget in turn, "
        f"median of {args.rounds} round(s):",
        "",
        "| cache budget | first run | against before | files described | distinct files | most kept |",
        "|---|---:|---:|---:|---:|---:|",
        *(f"| {name} ({budgets[name] / MIB:,.0f} MiB) | {median[name]:.1f} s | {median[name] / before:.2f} | "
          f"{found[0]['described']:,} | {found[0]['distinct']:,} | {found[0]['peak'] / MIB:,.0f} MiB |"
          for name, found in runs.items()),
        "",
        f"Clusters identical: {'yes' if same else 'NO'} ({len(runs['as shipped'][0]['clusters'])}).",
        "",
        f"`python bench/first_run.py --set {args.set} --rounds {args.rounds}` on {today()}, {machine()}.",
    ])
    print(body)
    if not args.no_write:
        write_section(f"{SECTION} ({args.set})", body)


if __name__ == "__main__":
    main()

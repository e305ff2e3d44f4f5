"""A photo kept in many backups: do its edited copies still reach the threshold with it?

Run by hand: ``python bench/backups.py`` (after ``bench/calibrate.py`` has built and indexed the set).
Writes "## Backups and density" in docs/benchmarks.md.

Simulated on the dev half's own vectors: each original gets B byte-identical backups (its very vector,
B times) and every image of its group has its density measured again among the dev vectors and the
backups, 32 deep as the product searches; a copy counts when its pair score with its original reaches
the default threshold. Side by side: the backups counted in the density (``SAME_PICTURE`` above any
cosine, as before) and left out (the product). Then what the density costs per million searched rows.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import calibrate  # noqa: E402
from report import machine, search_settings, today, write_section  # noqa: E402

from lookalike.index import duplicates  # noqa: E402

SECTION = "## Backups and density"
BACKUPS = (0, 10, 30)
COUNTED = 2.0  # a SAME_PICTURE (and NEAR_IDENTICAL) no cosine reaches: every backup counts, as before


def copies_at_threshold(split: calibrate.Split, backups: int) -> tuple[int, int]:
    """(copies whose score with their original reaches the threshold, copies) with ``backups`` each."""
    vectors = split.vectors.astype(np.float32)
    groups: dict[str, list[int]] = defaultdict(list)
    for row, path in enumerate(split.paths):
        groups[split.group[path]].append(row)
    kept = total = 0
    for rows in groups.values():
        original = next(r for r in rows if split.kind[split.paths[r]] == "original")
        every = np.concatenate([vectors, np.repeat(vectors[original][None], backups, axis=0)])
        sims = vectors[rows] @ every.T
        order = np.argsort(-sims, axis=1)[:, : duplicates.DENSITY_DEPTH]
        density = duplicates.density(np.take_along_axis(sims, order, axis=1), order)
        own = density[rows.index(original)]
        for at, row in enumerate(rows):
            if row != original:
                total += 1
                score = duplicates.pair_score(float(vectors[original] @ vectors[row]), own, density[at])
                kept += score >= duplicates.DEFAULT_THRESHOLD
    return kept, total


def density_seconds_per_million(rounds: int = 7) -> float:
    """Median seconds :func:`~lookalike.index.duplicates.density` takes for a million searched rows."""
    rng = np.random.default_rng(0)
    sims = -np.sort(-rng.uniform(0.3, 1.0, (4096, duplicates.DENSITY_DEPTH)).astype(np.float32), axis=1)
    sims[:, 0] = 1.0
    labels = np.tile(np.arange(duplicates.DENSITY_DEPTH), (4096, 1))
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(20):
            duplicates.density(sims, labels)
        times.append((time.perf_counter() - start) / 20 / 4096 * 1e6)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    split = calibrate.load_split("dev")
    modes = {"counted (before)": {"SAME_PICTURE": COUNTED, "NEAR_IDENTICAL": COUNTED},
             f"left out (>= {duplicates.SAME_PICTURE})": {}}
    rows = []
    for name, settings in modes.items():
        with search_settings(**settings):
            cells = []
            for backups in BACKUPS:
                kept, total = copies_at_threshold(split, backups)
                cells.append(f"{kept}/{total}")
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    split.collection.close()
    body = "\n".join([
        __doc__.split("\n\n", 2)[2].strip(), "",
        f"Default threshold {duplicates.DEFAULT_THRESHOLD}; dev half, {len(split.paths)} images.", "",
        "| backups of each original | " + " | ".join(str(b) for b in BACKUPS) + " |",
        "|---|" + "---:|" * len(BACKUPS),
        *rows, "",
        f"Density per million searched rows ({duplicates.DENSITY_DEPTH} deep, median of 7 rounds): "
        f"{density_seconds_per_million():.2f} s, next to minutes for the pair search it rides on at a "
        "million images ('Duplicate clustering speed').", "",
        f"`python bench/backups.py` on {today()}, {machine()}.",
    ])
    print(body)
    if not args.no_write:
        write_section(SECTION, body)


if __name__ == "__main__":
    main()

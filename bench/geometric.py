"""What comparing aligned details and flat pictures' layouts adds to the geometric check, and what it
costs, side by side in one run.

Run by hand: ``python bench/geometric.py`` (after ``bench/calibrate.py`` has built and indexed the set).
Writes "## Geometric check: keypoints, aligned details, flat layouts" in docs/benchmarks.md.

Pairs from the dev half only: every original with each of its copies (all should pass), and every pair
of pictures of two different originals in one hard-negative family (one design in other colours, a
series of similar pictures: those the keypoints alone pass are what the details and layouts are for).
Each mode reads the files afresh (a new cache) and is timed over several alternating rounds; medians
are quoted.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import calibrate  # noqa: E402
from report import constants, machine, today, write_section  # noqa: E402

from lookalike.embedder import keypoints  # noqa: E402
from lookalike.embedder.keypoints import KeypointFiles  # noqa: E402
from lookalike.index.geometry import files_unlike  # noqa: E402

SECTION = "## Geometric check: keypoints, aligned details, flat layouts"
MODES = {"keypoints alone": (False, False), "with aligned details": (True, False),
         "with details and flat layouts": (True, True)}


def dev_pairs(split: calibrate.Split) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(original, copy) pairs, and pairs of pictures of different originals within one family."""
    copies = [(split.originals[split.group[path]], path) for path in split.paths
              if split.kind[path] != "original"]
    by_family: dict[str, list[str]] = defaultdict(list)
    for path in split.paths:
        if split.family[path]:
            by_family[split.family[path]].append(path)
    strangers = [(a, b) for members in by_family.values() for a, b in itertools.combinations(members, 2)
                 if split.group[a] != split.group[b]]
    return copies, strangers


def run(pairs: list[tuple[str, str]], details: bool, layouts: bool) -> tuple[float, int]:
    inliers = keypoints.ALIGNED_INLIERS if details else 10**9  # no fit is trusted: details never compared
    agreement = keypoints.LAYOUT_AGREEMENT if layouts else -2.0  # no correlation is below: never vetoes
    with constants(keypoints, ALIGNED_INLIERS=inliers, LAYOUT_AGREEMENT=agreement):
        start = time.perf_counter()
        dropped = sum(files_unlike(pairs, KeypointFiles()))
        return time.perf_counter() - start, dropped


def describing_costs(paths: list[str]) -> tuple[float, float]:
    """Median milliseconds to describe a file (decoded already) and, of that, to find its layout."""
    from lookalike.embedder.images import open_image
    from lookalike.embedder.traits import content_box, thumbnail_pixels

    whole, layout = [], []
    for path in paths:
        picture = open_image(path, min_size=keypoints.SIDE)
        start = time.perf_counter()
        keypoints.picture_keypoints(picture)
        whole.append(time.perf_counter() - start)
        pixels = thumbnail_pixels(picture)
        box = content_box(pixels)
        start = time.perf_counter()
        keypoints.content_layout(pixels, box)
        layout.append(time.perf_counter() - start)
    return statistics.median(whole) * 1000, statistics.median(layout) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    split = calibrate.load_split("dev")
    copies, strangers = dev_pairs(split)
    seconds: dict[str, list[float]] = defaultdict(list)
    drops: dict[str, tuple[int, int]] = {}
    for _ in range(args.rounds):
        for mode, (details, layouts) in MODES.items():
            took_copies, lost = run(copies, details, layouts)
            took_strangers, caught = run(strangers, details, layouts)
            seconds[mode].append(took_copies + took_strangers)
            drops[mode] = (lost, caught)
    described, laid_out = describing_costs(sorted(split.originals.values()))
    pairs = len(copies) + len(strangers)
    median = {mode: statistics.median(taken) for mode, taken in seconds.items()}
    rows = [f"| {mode} | {drops[mode][0]} of {len(copies)} | {drops[mode][1]} of {len(strangers)} | "
            f"{median[mode]:.1f} s | {median[mode] / pairs * 1000:.1f} ms |" for mode in MODES]
    ratios = [median[mode] / median["keypoints alone"] for mode in list(MODES)[1:]]
    body = "\n".join([
        "Dev half only (`bench/geometric.py`): every original with each of its copies, and every pair of "
        "pictures of two different originals in one hard-negative family, checked as the clean-up does "
        "(as drawn, then mirrored), whatever their score. Each mode reads the files afresh; median of "
        f"{args.rounds} alternating rounds.",
        "",
        "| geometric check | copies dropped | family strangers dropped | time (all pairs) | per pair |",
        "|---|---:|---:|---:|---:|",
        *rows,
        "",
        f"Comparing aligned details (the cells' details, and where light and dark lie) costs "
        f"{ratios[0]:.2f} times the keypoints alone, with flat pictures' "
        f"layouts too {ratios[1]:.2f} times. Every mode describes each file alike (keypoints, and the "
        "luminance, content box and layout the others need), so the ratios are what the comparisons "
        f"themselves add, not the describing. Describing a file takes {described:.1f} ms (median over the "
        f"{len(split.originals)} originals, decoded), its layout {laid_out:.1f} ms of it.",
        "",
        f"`python bench/geometric.py` on {today()}, {machine()}.",
    ])
    write_section(SECTION, body)
    print(body)


if __name__ == "__main__":
    main()

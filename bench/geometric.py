"""What comparing aligned details adds to the geometric check, and what it costs, side by side in one run.

Run by hand: ``python bench/geometric.py`` (after ``bench/calibrate.py`` has built and indexed the set).
Writes "## Geometric check: keypoints alone and with aligned details" in docs/benchmarks.md.

Pairs from the dev half only: every original with each of its copies (all should pass), and every pair
of pictures of two different originals in one hard-negative family (one design in other colours, a
series of similar pictures: those the keypoints alone pass are what the details are for). Each mode
reads the files afresh (a new cache) and is timed over several alternating rounds; medians are quoted.
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
from report import machine, today, write_section  # noqa: E402

from lookalike.embedder import keypoints  # noqa: E402
from lookalike.embedder.keypoints import KeypointFiles  # noqa: E402
from lookalike.index.duplicates import files_unlike  # noqa: E402

SECTION = "## Geometric check: keypoints alone and with aligned details"


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


def run(pairs: list[tuple[str, str]], details: bool) -> tuple[float, int]:
    saved = keypoints.ALIGNED_INLIERS
    keypoints.ALIGNED_INLIERS = saved if details else 10**9  # no fit is trusted: details never compared
    try:
        start = time.perf_counter()
        dropped = sum(files_unlike(pairs, KeypointFiles()))
        return time.perf_counter() - start, dropped
    finally:
        keypoints.ALIGNED_INLIERS = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    split = calibrate.load_split("dev")
    copies, strangers = dev_pairs(split)
    modes = {"keypoints alone": False, "with aligned details": True}
    seconds: dict[str, list[float]] = defaultdict(list)
    drops: dict[str, tuple[int, int]] = {}
    for _ in range(args.rounds):
        for mode, details in modes.items():
            took_copies, lost = run(copies, details)
            took_strangers, caught = run(strangers, details)
            seconds[mode].append(took_copies + took_strangers)
            drops[mode] = (lost, caught)
    pairs = len(copies) + len(strangers)
    median = {mode: statistics.median(taken) for mode, taken in seconds.items()}
    rows = [f"| {mode} | {drops[mode][0]} of {len(copies)} | {drops[mode][1]} of {len(strangers)} | "
            f"{median[mode]:.1f} s | {median[mode] / pairs * 1000:.1f} ms |" for mode in modes]
    ratio = median["with aligned details"] / median["keypoints alone"]
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
        f"Comparing aligned details costs {ratio:.2f} times the keypoints alone. Both modes describe each "
        "file alike (keypoints, and the luminance and content box the details need), so the ratio is what "
        "the comparison itself adds, not the describing.",
        "",
        f"`python bench/geometric.py` on {today()}, {machine()}.",
    ])
    write_section(SECTION, body)
    print(body)


if __name__ == "__main__":
    main()

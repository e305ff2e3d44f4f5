"""The clustering step alone, this working tree against an earlier commit, side by side.

Run by hand: ``python bench/clustering_step.py --against 642890e``. Writes "## Clustering step: before
and after" in docs/benchmarks.md.

``build_clusters`` runs once per ``lookalike duplicates`` over every accepted pair; at a million images
a rule that costs a set copy per candidate turns it quadratic (the first version of the
better-elsewhere rule took 42 times as long). This builds one synthetic graph (5 % of images with 1-3
copies at 0.90-0.99, a third as many background pairs at 0.64-0.70 between random images) and times
both versions on it, alternating, median of the rounds: the ratio is what the change costs.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from report import machine, today, write_section  # noqa: E402

from lookalike.index import (
    duplicates,  # noqa: E402
    records,  # noqa: E402
)

SECTION = "## Clustering step: before and after"


def earlier_module(commit: str):
    """``lookalike/index/duplicates.py`` as it was at ``commit``, imported under another name."""
    source = subprocess.run(["git", "show", f"{commit}:lookalike/index/duplicates.py"], check=True,
                            capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent).stdout
    path = Path(tempfile.mkdtemp()) / "duplicates_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("duplicates_before", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["duplicates_before"] = module  # dataclasses look their module up while being made
    spec.loader.exec_module(module)
    return module


def graph(images: int, seed: int) -> tuple[list[records.ImageRecord], list[records.Pair]]:
    rng = np.random.default_rng(seed)
    records = [records.ImageRecord(i, f"/photos/{i}.jpg", 1000, 800, 10_000 + i, 0.0)
               for i in range(images)]
    pairs, i = [], 0
    while i < images - 4:
        if rng.random() < 0.05:
            copies = int(rng.integers(1, 4))
            pairs += [records.Pair(i, i + j, float(rng.uniform(0.90, 0.99))) for j in range(1, copies + 1)]
            i += copies + 1
        else:
            i += 1
    background = rng.integers(0, images, (len(pairs) // 3, 2))
    pairs += [records.Pair(int(a), int(b), float(rng.uniform(0.64, 0.70)))
              for a, b in background if a != b]
    return records, pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", required=True, help="the commit to compare with")
    parser.add_argument("--images", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    before = earlier_module(args.against)
    records, pairs = graph(args.images, seed=0)
    seconds: dict[str, list[float]] = {"before": [], "now": []}
    for _ in range(args.rounds):
        for name, module in (("before", before), ("now", duplicates)):
            started = time.perf_counter()
            clusters = module.build_clusters(records, pairs)
            seconds[name].append(time.perf_counter() - started)
    medians = {name: statistics.median(times) for name, times in seconds.items()}
    body = (
        f"`build_clusters` on {args.images:,} images and {len(pairs):,} accepted pairs ({len(clusters):,} "
        f"clusters now), median of {args.rounds} alternating rounds: commit {args.against} "
        f"{medians['before']:.2f} s, this tree {medians['now']:.2f} s, "
        f"**{medians['now'] / medians['before']:.2f} times**.\n\n"
        f"`python bench/clustering_step.py --against {args.against}` on {today()}, {machine()}."
    )
    print(body)
    if not args.no_write:
        write_section(SECTION, body)


if __name__ == "__main__":
    main()

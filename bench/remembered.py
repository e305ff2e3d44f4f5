"""What the second looks' remembered vectors save: a second ``duplicates()`` run on the dev half.

Run by hand: ``python bench/remembered.py`` (after ``bench/calibrate.py`` has built the set). Writes
"## Remembered second looks" in docs/benchmarks.md; ``--no-write`` prints only.

The second looks embed edited pictures again (turned, shrunk, greyed, cropped to their content): about
half of a first run on the dev set. The index now remembers those vectors (schema 7, ``edited_vectors``),
so the run after it, a person's review and then the clean-up, reads them instead. Each round, side by
side: a first run (the table emptied), a second run on the same collection, and a run on the index
opened afresh, as the next command would; the median of the rounds, the clusters compared.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from calibrate import MODEL, load_split  # noqa: E402
from report import machine, today, write_section  # noqa: E402

import lookalike  # noqa: E402

SECTION = "## Remembered second looks"


def timed_clusters(col) -> tuple[list[tuple[str, ...]], float]:
    started = time.perf_counter()
    clusters = col.duplicates()
    seconds = time.perf_counter() - started
    return sorted(tuple(m.path for m in c.members) for c in clusters), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    dev = load_split("dev")
    col = dev.collection
    seconds: dict[str, list[float]] = {"first run": [], "second run": [], "opened afresh": []}
    answers = set()
    for _ in range(args.rounds):
        col.store.forget_edited_vectors()
        for mode in ("first run", "second run"):
            clusters, took = timed_clusters(col)
            seconds[mode].append(took)
            answers.add(tuple(clusters))
        with lookalike.open(col.directory, model=MODEL) as fresh:
            clusters, took = timed_clusters(fresh)
        seconds["opened afresh"].append(took)
        answers.add(tuple(clusters))
    median = {mode: statistics.median(values) for mode, values in seconds.items()}
    first = median["first run"]
    body = "\n".join([
        f"`duplicates()` at the default on the dev half ({len(dev.paths)} images), median of {args.rounds} "
        "rounds, each a first run (remembered vectors forgotten), a second run on the same collection and "
        "a run on the index opened afresh (the model loaded only if something is left to embed).",
        "",
        "| run | `duplicates()` | against the first |",
        "|---|---:|---:|",
        *(f"| {mode} | {median[mode]:.1f} s | {median[mode] / first:.2f} |" for mode in seconds),
        "",
        f"Clusters identical in every run: {'yes' if len(answers) == 1 else 'NO'}.",
        "",
        f"`python bench/remembered.py --rounds {args.rounds}` on {today()}, {machine()}.",
    ])
    print(body)
    if not args.no_write:
        write_section(SECTION, body)
    col.close()


if __name__ == "__main__":
    main()

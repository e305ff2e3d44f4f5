"""What the second looks' remembered vectors and keypoint matches save: a second ``duplicates()`` run.

Run by hand: ``python bench/remembered.py`` (after ``bench/calibrate.py`` has built the set). Writes
"## Remembered second looks" in docs/benchmarks.md; ``--no-write`` prints only.

The second looks embed edited pictures again (turned, shrunk, greyed, cropped to their content) and read
files to match their keypoints (the geometric check, the keypoint look). The index remembers those
vectors (schema 7, ``edited_vectors``) and matches (schema 8, ``keypoint_matches``), so the run after
it, a person's review and then the clean-up, reads them instead. Each round, side by side: a first run
(both forgotten), a second run with the keypoints matched again (only the vectors remembered, as before
schema 8), a second run on the same collection, and a run on the index opened afresh, as the next
command would; the median of the rounds, the clusters compared.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from calibrate import MODEL, load_split  # noqa: E402
from report import machine, today, write_section  # noqa: E402

import lookalike  # noqa: E402
from lookalike.embedder.keypoints import KeypointFiles  # noqa: E402
from lookalike.index.collection import Collection  # noqa: E402

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
    unremembered = "second run, keypoints matched again (before schema 8)"
    modes = ("first run", unremembered, "second run", "opened afresh")
    seconds: dict[str, list[float]] = {mode: [] for mode in modes}
    answers = set()
    for _ in range(args.rounds):
        col.store.forget_remembered()
        for mode in ("first run", unremembered, "second run"):
            with mock.patch.object(Collection, "_keypoint_files", lambda self: KeypointFiles()) if (
                    mode == unremembered) else contextlib.nullcontext():
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
        "rounds, each a first run (remembered vectors and matches forgotten), a second run with the "
        "keypoints matched again from the files (the vectors remembered, as before schema 8), a second run "
        "on the same collection and a run on the index opened afresh (the model loaded only if something is "
        "left to embed).",
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

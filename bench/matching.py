"""A first ``duplicates()`` run's keypoint matching: FAISS's exact Hamming search against OpenCV's matcher.

Run by hand: ``python bench/matching.py`` (after ``bench/calibrate.py`` has built the set). Writes
"## Keypoint matching" in docs/benchmarks.md; ``--no-write`` prints only.

A first run on the dev half (its remembered vectors and matches forgotten) records every batch of pairs
the geometric check and the keypoint look match. Then every file they name is described once, and the
same batches are matched again from the described files with each matcher in turn (``ratio_tested`` as
shipped, and OpenCV's ``BFMatcher.knnMatch`` with the same ratio test in its place): only the matching is
timed, side by side, median of the rounds; the matches of both compared whole.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from unittest import mock

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from calibrate import load_split  # noqa: E402
from report import machine, today, write_section  # noqa: E402

from lookalike.embedder import keypoints  # noqa: E402
from lookalike.embedder.keypoints import RATIO, KeypointFiles  # noqa: E402

SECTION = "## Keypoint matching"
Batch = tuple[list[tuple[str, str]], bool]


def opencv_ratio_tested(mine: np.ndarray, theirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``keypoints.ratio_tested`` as it was written with OpenCV's matcher (before 2026-12-04)."""
    closest: dict[int, cv2.DMatch] = {}
    for found in cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(mine, theirs, k=2):
        if len(found) == 2 and found[0].distance < RATIO * found[1].distance:
            best = found[0]
            if best.trainIdx not in closest or best.distance < closest[best.trainIdx].distance:
                closest[best.trainIdx] = best
    return (np.array([m.queryIdx for m in closest.values()], np.int64),
            np.array(list(closest), np.int64))


def recorded_batches(col) -> tuple[list[Batch], float]:
    """The batches of pairs a first run matches, and the run's seconds."""
    batches: list[Batch] = []
    match = KeypointFiles.match

    def recording(self, pairs, mirrored=False):
        batches.append((list(pairs), mirrored))
        return match(self, pairs, mirrored)

    col.store.forget_remembered()
    with mock.patch.object(KeypointFiles, "match", recording):
        started = time.perf_counter()
        col.duplicates()
    return batches, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    dev = load_split("dev")
    batches, first_run = recorded_batches(dev.collection)
    dev.collection.close()
    files = {key for pairs, mirrored in batches for a, b in pairs for key in ((a, False), (b, mirrored))}
    described = KeypointFiles(budget=1 << 40)  # everything stays
    for pairs, mirrored in batches:  # every file described once, before anything is timed
        described.match(pairs, mirrored)
    matchers = {"OpenCV BFMatcher.knnMatch": opencv_ratio_tested, "FAISS knn_hamming": keypoints.ratio_tested}
    seconds: dict[str, list[float]] = {name: [] for name in matchers}
    answers: dict[str, list] = {}
    for _ in range(args.rounds):
        for name, matcher in matchers.items():
            with mock.patch.object(keypoints, "ratio_tested", matcher):
                started = time.perf_counter()
                answers[name] = [described.match(pairs, mirrored) for pairs, mirrored in batches]
                seconds[name].append(time.perf_counter() - started)
    median = {name: statistics.median(values) for name, values in seconds.items()}
    before = median["OpenCV BFMatcher.knnMatch"]
    pairs = sum(len(p) for p, _ in batches)
    body = "\n".join([
        f"A first `duplicates()` run on the dev half ({len(dev.paths)} images, {first_run:.1f} s) matched "
        f"{pairs:,} pairs of {len(files):,} described files (a file mirrored counts apart) in {len(batches)} "
        f"batches. The same batches matched again from the described files, each matcher in turn, median "
        f"of {args.rounds} rounds:",
        "",
        "| matcher | matching | per pair | against OpenCV |",
        "|---|---:|---:|---:|",
        *(f"| {name} | {median[name]:.1f} s | {1000 * median[name] / pairs:.2f} ms | "
          f"{median[name] / before:.2f} |" for name in matchers),
        "",
        "Matches identical: " + ("yes" if len({repr(a) for a in answers.values()}) == 1 else "NO") + ".",
        "",
        f"`python bench/matching.py --rounds {args.rounds}` on {today()}, {machine()}.",
    ])
    print(body)
    if not args.no_write:
        write_section(SECTION, body)


if __name__ == "__main__":
    main()

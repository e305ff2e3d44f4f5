"""What second looks cost on the dev half, beside the product without them, side by side in one run.

Run by hand: ``python bench/looks_cost.py [--rounds 3] [--compare NAME]``, NAME one of looks, checks,
thumbnails, keypoints, residual, solid, hues (after bench/calibrate.py has indexed the dev half). Each
comparison writes its own section of docs/benchmarks.md:

- ``looks`` ("## Second looks: enlarged, tiny and frame"): the scale look for copies the model enlarges,
  the pixel search for tiny ones and the frame look (bench/unseen.py showed them missing; its ``BEFORE``
  turns them off). They re-embed more pairs on a set with many small pictures.
- ``checks`` ("## Every pair verified"): the geometric check for every pair whose thumbnails disagree
  (not only within 0.3 of the threshold) and the chance fit, against the check as it was before them
  (``CHECKS_BEFORE``).
- ``thumbnails`` ("## Thumbnails do not vouch"): the geometric check reading pairs whose stored
  thumbnails agree too, against the check as it was before (:func:`thumbnails_vouching`).
- ``keypoints`` ("## The keypoint look"): pairs that only their density held under the threshold
  matched by their files (``VOUCHED_PAIRS``), against no such look.
- ``residual`` ("## The aligned residual"): pairs laid over each other pixel by pixel
  (lookalike/embedder/residual.py), against neither measuring nor judging it.
- ``solid`` ("## Solid parts: cost"): the solid parts two pictures laid over each other differ in
  (:func:`~lookalike.embedder.keypoints.solid_differences`), against neither measuring nor judging them.
- ``hues`` ("## Hues pixel by pixel: cost"): the hues of two pictures laid over each other
  (:func:`~lookalike.embedder.keypoints.turned_hues`), against neither measuring nor judging them.

``duplicates()`` at the default runs with and without, alternating, the median of the rounds each, in
one process on one index: the ratio is the number to trust on a shared machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from calibrate import evaluate, load_split, product  # noqa: E402
from report import constants, machine, search_settings, today, write_section  # noqa: E402
from unseen import BEFORE  # noqa: E402

from lookalike.embedder import keypoints  # noqa: E402
from lookalike.index import (  # noqa: E402
    collection,
    geometry,  # noqa: E402
    )
from lookalike.index.duplicates import DEFAULT_THRESHOLD  # noqa: E402
from lookalike.index.geometry import SAME_THUMBNAIL  # noqa: E402
from lookalike.index.records import Pair  # noqa: E402
from lookalike.index.thumbnails import pixel_agreements  # noqa: E402

CHECKS_BEFORE = ({"GEOMETRY_BAND": 0.3, "CHANCE_FIT": -1}, {})
"""Duplicates as before every pair was verified and the chance fit."""


LOOK = geometry.geometric_look


def thumbnails_vouching(pairs: list[Pair], threshold: float, records: dict, keypoints,
                        theirs: dict | None = None) -> list[Pair]:
    """``geometric_look`` as it was before thumbnails stopped vouching: a pair whose stored thumbnails
    agree (``SAME_THUMBNAIL``, not both framed) is kept unread."""
    theirs = records if theirs is None else theirs
    pairs = list(pairs)
    known = [i for i, p in enumerate(pairs) if p.a in records and p.b in theirs]
    agreement = pixel_agreements([records.thumbnail_of(records[pairs[i].a]) for i in known],
                                 [records.thumbnail_of(theirs[pairs[i].b]) for i in known])
    vouched = {i for i, agree in zip(known, agreement, strict=True) if agree >= SAME_THUMBNAIL
               and not (records[pairs[i].a].framed and theirs[pairs[i].b].framed)}
    read = [p for i, p in enumerate(pairs) if i not in vouched]
    kept = {id(p) for p in LOOK(read, threshold, records, keypoints, theirs)}
    return [p for i, p in enumerate(pairs) if i in vouched or id(p) in kept]


COMPARISONS = {
    "looks": ("## Second looks: enlarged, tiny and frame", "the enlarged, tiny and frame looks", BEFORE),
    "checks": ("## Every pair verified", "every pair verified (not only within 0.3 of the threshold) "
               "and the chance fit", CHECKS_BEFORE),
    "thumbnails": ("## Thumbnails do not vouch", "pairs whose stored thumbnails agree read too",
                   ({"geometric_look": thumbnails_vouching}, {})),
    "keypoints": ("## The keypoint look", "the keypoint look (pairs only their density held under the "
                  "threshold, matched by their files)", ({}, {"VOUCHED_PAIRS": 0})),
    "residual": ("## The aligned residual", "the aligned residual (measured and judged)",
                 ({}, {}, {"aligned_residual": lambda *_: None})),
    "solid": ("## Solid parts: cost", "the solid parts (measured and judged)",
              ({}, {}, {"solid_differences": lambda *_: None})),
    "hues": ("## Hues pixel by pixel: cost", "the hues compared pixel by pixel (measured and judged)",
             ({}, {}, {"turned_hues": lambda *_: None})),
}
"""Each comparison: its section, what it compares, and what turns it off: the duplicate search's
settings, Collection's constants and (optionally) the keypoint module's."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--compare", choices=COMPARISONS, default="looks")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    section, what, before = COMPARISONS[args.compare]
    dev = load_split("dev")
    seconds: dict[str, list[float]] = {"without": [], "with": []}
    results = {}
    for _ in range(args.rounds):
        for mode in seconds:
            off = (*before, {})[:3] if mode == "without" else ({}, {}, {})
            dev.collection.store.forget_remembered()  # every round embeds its second looks again
            with search_settings(**off[0]), constants(collection, **off[1]), constants(keypoints, **off[2]):
                started = time.perf_counter()
                results[mode] = evaluate(dev, product(DEFAULT_THRESHOLD))
                seconds[mode].append(time.perf_counter() - started)
    median = {mode: statistics.median(values) for mode, values in seconds.items()}
    rows = [f"| {mode} | {median[mode]:.1f} s | {results[mode].precision:.3f} | {results[mode].recall:.3f} | "
            f"{len(results[mode].mixed)} |" for mode in seconds]
    body = "\n".join([
        f"`duplicates()` at the default {DEFAULT_THRESHOLD} on the dev half ({len(dev.paths)} images, many "
        f"small stamps and drawings), with and without {what}, alternating, "
        f"median of {args.rounds} rounds each (evaluation included, the same in both; every run embeds "
        "its own turned pictures again: calibrate.py's memo is left out).",
        "",
        "| mode | `duplicates()` | precision | recall | mixed clusters |",
        "|---|---:|---:|---:|---:|",
        *rows,
        "",
        f"With them: **{median['with'] / median['without']:.2f} times** the time. "
        f"`python bench/looks_cost.py --rounds {args.rounds} --compare {args.compare}` on {today()}, "
        f"{machine()}.",
    ])
    print(body)
    if not args.no_write:
        write_section(section, body)
    dev.collection.close()


if __name__ == "__main__":
    main()

"""Solid parts that differ, measured: what keeps one artist's numbered drawings apart, and no copy.

Run by hand: ``python bench/solid_parts.py`` (after ``bench/calibrate.py``, ``bench/series.py``,
``bench/unseen.py`` and ``bench/artist_series.py`` have built their sets). Writes "## Solid parts" in
docs/benchmarks.md; ``--no-write`` prints only.

One artist's numbered drawings (a card's other pips, a clock's hands at other times, a smiley's tongue)
fit hundreds of keypoints where they are one drawing; the cells that differ are forgiven as details, and
at 64 pixels the difference is under a copy's noise. Laid over each other where the keypoints lay them
(or, too flat for keypoints, where the residual's search lays them: ``placed_solid_differences``), at the
detail scale, what differs is solid (lookalike/embedder/keypoints.py, ``solid_differences``), and the
pair is dropped over ``SOLID_APART``. Here every pair is matched as the product matches it, as drawn
and mirrored, and counted where one of the two passes every other check (the keypoints, cells, shades,
strokes, the residual): copies (pairs of one original's pictures, every kind, copy beside copy, drawn at
random as bench/aligned_residual.py draws them), each dev original beside each of bench/hue_turns.py's
everyday edits, and pairs of different pictures: every two originals of one series of
bench/artist_series.py's set, and of one hard-negative family of the dev half.

``--tiny``: pairs with a quarter-size copy in them, whose smaller picture
compares few pixels, counted as dropped by their solid parts at each floor of pixels compared
(``SOLID_PIXELS``) in ``FLOORS``: pairs of one picture's images of the dev, series, unseen and artist sets,
and of two pictures of one series of the artist set and of one hard-negative family of the dev half.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import artist_series  # noqa: E402
import dupset  # noqa: E402
from aligned_residual import COPIES, copy_pairs, described  # noqa: E402
from calibrate import library_state  # noqa: E402
from hue_turns import EDITS, edited  # noqa: E402
from report import machine, today, write_section  # noqa: E402

from lookalike.embedder import keypoints, residual  # noqa: E402
from lookalike.embedder.keypoints import (  # noqa: E402
    Keypoints,
    Match,
    _keypoint_match,
    file_keypoints,
    matched_keypoints,
    picture_keypoints,
    solid_differences,
)
from lookalike.index.geometry import SOLID_APART, geometry_disagrees  # noqa: E402

SECTION = "## Solid parts"
SHARES = tuple(sorted({0.0, 0.0025, SOLID_APART, 0.01, 0.02, 0.03}))
EVERYDAY = [name for name in EDITS if not name.startswith(("equalised", "hue turned"))]  # a copy's edits
TINY_SECTION = "## Solid parts of tiny pictures"
FLOORS = (64 * 64, 48 * 48, 32 * 32, 16 * 16)
TINY_SETS = {**COPIES, "one artist's series": (artist_series.CACHE / "manifest.json", None)}
FAMILIES = ("dev half", "one artist's series")  # the sets whose families are pictures to keep apart
COMPARED: list[int] = []  # the pixels each solid share a worker measures compared, in order


def passing_views(a: Keypoints | None, views: Iterable[Keypoints | None]
                  ) -> Iterator[tuple[Keypoints, Match]]:
    """Each of a pair's views (as drawn, mirrored) that passes every check but the solid parts, with its
    match: the views whose solid parts decide the pair. ``COMPARED`` then holds that view's measures only
    (``--tiny``'s workers note them; elsewhere it stays empty)."""
    for b in views:
        if a is None or b is None:
            continue
        COMPARED.clear()
        found = matched_keypoints(a, b, geometry_disagrees)  # solid parts only where not decided already
        if not geometry_disagrees(found._replace(solid=None)):
            yield b, found


def judged(a: Keypoints | None, views: tuple[Keypoints | None, ...]) -> tuple[float | None, float | None]:
    """The solid share that decides a pair, the least of its views (as drawn, mirrored) that pass every
    other check (None where none does); and the seconds the solid parts took for the first such view."""
    shares, took = [], None
    for b, found in passing_views(a, views):
        shares.append(found.solid or 0.0)
        if took is None and found.solid is not None:  # laid by the keypoints: time the solid parts alone
            _, laid = _keypoint_match(a, b)
            if laid is not None:  # else laid by the residual's search, not timed here
                start = time.perf_counter()
                solid_differences(a, b, laid)
                took = time.perf_counter() - start
    return (min(shares) if shares else None), took


def pair(paths: tuple[str, str]) -> tuple[float | None, float | None]:
    a, b = paths
    return judged(described(a), (described(b), file_keypoints(b, mirrored=True)))


def edits(path: str) -> list[float | None]:
    """Each of ``EVERYDAY`` made of a dev original, judged beside it."""
    original = described(path)
    with Image.open(path) as opened:
        picture = opened.convert("RGB")
    copies = [edited(picture, name) for name in EVERYDAY]
    return [judged(original, (picture_keypoints(copy), picture_keypoints(copy, mirrored=True)))[0]
            for copy in copies]


def series_pairs(manifest: Path, split: str | None) -> list[tuple[str, str]]:
    """Every two originals of one series (family)."""
    by_family: dict[str, list[str]] = defaultdict(list)
    for item in json.loads(manifest.read_text())["items"]:
        if item["kind"] == "original" and item["family"] and (split is None or item["split"] == split):
            by_family[item["family"]].append(item["path"])
    return [(a, b) for paths in by_family.values() for a, b in itertools.combinations(sorted(paths), 2)]


def quarter_size_pairs(name: str, count: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Up to ``count`` pairs of one picture's images in set ``name`` with its quarter-size copy in them, and
    up to ``count`` pairs of two pictures of one family with a quarter-size copy in them (beside the other's
    original, half-size or quarter-size image)."""
    manifest, split = TINY_SETS[name]
    items = [item for item in json.loads(manifest.read_text())["items"]
             if split is None or item["split"] == split]
    by_group: dict[str, list[dict]] = defaultdict(list)
    by_family: dict[str, list[dict]] = defaultdict(list)
    for item in items:
        by_group[item["group"]].append(item)
        if item["family"] and item["kind"] in ("original", "half size", "quarter size"):
            by_family[item["family"]].append(item)
    same = [(x["path"], y["path"]) for members in by_group.values() for x in members
            if x["kind"] == "quarter size" for y in members if y is not x]
    different = [(x["path"], y["path"]) for members in by_family.values()
                 for x, y in itertools.combinations(members, 2)
                 if x["group"] != y["group"] and "quarter size" in (x["kind"], y["kind"])]
    rng = np.random.default_rng(0)
    return tuple([pairs[i] for i in sorted(rng.choice(len(pairs), min(count, len(pairs)), replace=False))]
                  for pairs in (same, different))


def _counting_solid_share(laid: np.ndarray, target: np.ndarray, inside: np.ndarray, wide: int
                          ) -> float | None:
    COMPARED.append(int(np.count_nonzero(inside)))
    return residual.solid_share(laid, target, inside, wide)


def _floor_lifted() -> None:
    """A worker's set-up for ``--tiny``: every pair's solid parts measured, however few pixels it compares,
    and how many it compares noted."""
    residual.SOLID_PIXELS = 1
    keypoints.solid_share = _counting_solid_share


def tiny_views(paths: tuple[str, str]) -> list[tuple[float | None, int | None]]:
    """For each view of a pair (as drawn, mirrored) that passes every other check, its solid share and the
    fewest pixels compared for it (None where none was measured)."""
    a, b = paths
    return [(found.solid, min(COMPARED, default=None))
            for _, found in passing_views(described(a), (described(b), file_keypoints(b, mirrored=True)))]


def dropped_at(views: list[tuple[float | None, int | None]], floor: int) -> bool:
    """Whether a pair that passes every other check in some view is dropped by its solid parts in every
    such view, with solid parts measured only where ``floor`` pixels or more are compared."""
    return bool(views) and all(share is not None and share > SOLID_APART and compared >= floor
                               for share, compared in views)


def tiny(count: int, write: bool) -> None:
    """``--tiny``: the table of pairs with a quarter-size copy in them dropped at each of ``FLOORS``."""
    groups = {}
    for name in TINY_SETS:
        same, different = quarter_size_pairs(name, count)
        groups[f"copies, {name}"] = same
        if name in FAMILIES:
            groups[f"different pictures, {name}"] = different
    started = time.perf_counter()
    with Pool(2, initializer=_floor_lifted) as pool:
        found = {name: pool.map(tiny_views, pairs, chunksize=8) for name, pairs in groups.items()}
    seconds = time.perf_counter() - started
    rows = ["| pairs | measured | passing every other check | "
            + " | ".join(f"dropped at {round(floor ** 0.5)} x {round(floor ** 0.5)}" for floor in FLOORS)
            + " | pixels compared, median |", "|---|---:|---:|" + "---:|" * (len(FLOORS) + 1)]
    for name, views in found.items():
        passing = [pair for pair in views if pair]
        compared = [pixels for pair in passing for _, pixels in pair if pixels is not None]
        rows.append(f"| {name} | {len(views)} | {len(passing)} | "
                    + " | ".join(str(sum(dropped_at(pair, floor) for pair in passing)) for floor in FLOORS)
                    + f" | {np.median(compared):.0f} |")
    report(TINY_SECTION, 3, rows, f"At the product's ``SOLID_APART`` {SOLID_APART}; the product's floor: "
           f"``SOLID_PIXELS`` (lookalike/embedder/residual.py). Up to {count} pairs drawn at random per row.",
           " --tiny", seconds, write)


def report(section: str, paragraph: int, rows: list[str], note: str, flags: str, seconds: float,
           write: bool) -> None:
    """Print a table with this module docstring's ``paragraph`` above it and ``note`` below, stamped with the
    command run (``flags``), and write it as ``section`` of docs/benchmarks.md when asked to."""
    body = "\n".join([
        __doc__.split("\n\n")[paragraph].replace("\n", " "), "", *rows, "", note, "",
        f"`python bench/solid_parts.py{flags}` on {today()}, {machine()}; {library_state()}. "
        f"{seconds:.0f} s in all.",
    ])
    print(body)
    if write:
        write_section(section, body)


def counts(shares: list[float | None]) -> str:
    kept = np.array([share for share in shares if share is not None])
    over = " | ".join(f"{(kept > cut).sum()}" for cut in SHARES)
    return f"{len(shares)} | {len(kept)} | {over} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1500)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--tiny", action="store_true", help="pairs with a quarter-size copy, by floor")
    args = parser.parse_args()
    if args.tiny:
        tiny(args.pairs, not args.no_write)
        return
    groups = {f"copies, {name}": [(a, b) for a, b, *_ in copy_pairs(name, args.pairs)] for name in COPIES}
    groups["different pictures, one artist's series"] = series_pairs(artist_series.CACHE / "manifest.json",
                                                                      None)
    groups["different pictures, dev hard-negative families"] = series_pairs(dupset.CACHE / "manifest.json",
                                                                             "dev")
    originals = [item["path"] for item in json.loads(COPIES["dev half"][0].read_text())["items"]
                 if item["split"] == "dev" and item["kind"] == "original"]
    started = time.perf_counter()
    with Pool(2) as pool:
        found = {name: pool.map(pair, pairs, chunksize=8) for name, pairs in groups.items()}
        edited_shares = [share for shares in pool.map(edits, originals) for share in shares]
    seconds = time.perf_counter() - started
    rows = ["| pairs | measured | passing every other check | " + " | ".join(f"over {cut}" for cut in SHARES)
            + " |", "|---|---:|---:|" + "---:|" * len(SHARES)]
    rows += [f"| {name} | {counts([share for share, _ in shares])}" for name, shares in found.items()]
    rows.append(f"| everyday edits of the {len(originals)} dev originals | {counts(edited_shares)}")
    copy_ms = [1000 * took for name, shares in found.items() if name.startswith("copies")
               for _, took in shares if took is not None]
    report(SECTION, 2, rows, f"At the product's ``SOLID_APART`` {SOLID_APART}. Everyday edits: "
           f"{', '.join(EVERYDAY)}. The solid parts of a pair of copies take {np.median(copy_ms):.0f} ms, "
           "median (two processes on two cores).", "", seconds, not args.no_write)


if __name__ == "__main__":
    main()

"""The aligned residual, measured: what no tone curve explains once two pictures are laid over each other.

Run by hand: ``python bench/aligned_residual.py`` (after ``bench/calibrate.py``, ``bench/series.py``,
``bench/unseen.py`` and ``bench/originals_only.py``). Writes "## Aligned residual" in
docs/benchmarks.md; ``--no-write`` prints only.

Flat pictures (flags, pictograms, clip art) have too few keypoints to match, and detailed ones bearing
another emblem or figure on one field fit their keypoints where they are alike, the differing cells
forgiven as details. So every pair (but a flat pair whose layouts tell it apart already, a detailed
one the keypoints lay turned off the quarter turns, and one they tell apart) is laid over each other
(lookalike/embedder/residual.py: first where its keypoints lay it; then the eight turns and mirrors,
scales for a crop of up to a third, either picture inside the other, aligned on the three channels at 64
pixels; content box, whole, or on one side the whole less a caption band),
and the share of pixels no one tone curve explains (``aligned_residual``) vetoes a pair over
``RESIDUAL_APART``. Copies: pairs of one original's pictures (every kind, copy beside copy), ``--pairs``
drawn at random from the dev half and the series of drawings (flags, pictograms), on which it was
calibrated, and from the unseen sources (photographs, screenshots: a check), those the product measures
kept. Different pictures: the pairs the product merged among originals alone (docs/benchmarks.md,
"## Originals only", as listed before this veto: ``BEFORE_THE_VETO``). Edits: each dev original beside
each of bench/hue_turns.py's ``EDITS`` of it, a user's edits of a copy (which must stay explained) and
recolourings (which the residual may tell).
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import subprocess
import sys
import time
from collections import defaultdict
from functools import lru_cache
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import dupset  # noqa: E402
from calibrate import library_state  # noqa: E402
from hue_turns import EDITS, edited  # noqa: E402
from report import DOCS, machine, today, write_section  # noqa: E402

from lookalike.embedder.keypoints import (  # noqa: E402
    EXPECTED_KEYPOINTS,
    Keypoints,
    file_keypoints,
    matched_keypoints,
    picture_keypoints,
)
from lookalike.embedder.residual import EXPLAINED  # noqa: E402
from lookalike.index.geometry import RESIDUAL_APART, geometry_disagrees  # noqa: E402

SECTION = "## Aligned residual"
SHARES = (0.04, RESIDUAL_APART, 0.08, 0.12)
FOLDERS = {"dev half": "dev", "series of drawings": "series", "unseen sources": "unseen"}


@lru_cache(maxsize=6000)
def described(path: str) -> Keypoints | None:
    """A file's keypoints and the cuts it is aligned by, as the product finds them."""
    return file_keypoints(path)


def measured(pair: tuple[str, str]) -> tuple[float | None, bool, float]:
    """The residual the product measures for a pair (None where the keypoints tell it apart already, a
    flat pair's layouts do, or the keypoints lay it turned), whether a picture is flat, and the seconds
    the residual took, the files described already: the pair matched with it, less matched without."""
    a, b = described(pair[0]), described(pair[1])
    if a is None or b is None:
        return None, False, 0.0
    start = time.perf_counter()
    share = matched_keypoints(a, b, geometry_disagrees).residual
    middle = time.perf_counter()
    matched_keypoints(a, b, decided=lambda _: True)  # the keypoints alone
    took = max(0.0, 2 * middle - start - time.perf_counter())
    return share, min(len(a), len(b)) < EXPECTED_KEYPOINTS, took


COPIES = {"dev half": (dupset.CACHE / "manifest.json", "dev"),
          "series of drawings": (dupset.CACHE.parent / "series" / "manifest.json", "series"),
          "unseen sources": (dupset.CACHE.parent / "unseen" / "manifest.json", "unseen")}


def copy_pairs(name: str, count: int) -> list[tuple[str, str, str, str]]:
    """``count`` pairs of one original's pictures in a set of ``COPIES`` (a, b, kind of a, kind of b)."""
    manifest, split = COPIES[name]
    groups: dict[str, list[dict]] = defaultdict(list)
    for item in json.loads(manifest.read_text())["items"]:
        if item["split"] == split:
            groups[item["group"]].append(item)
    return drawn([(x["path"], y["path"], x["kind"], y["kind"])
                  for members in groups.values() for x, y in itertools.combinations(members, 2)], count)


def drawn(pairs: list, count: int) -> list:
    """``count`` of ``pairs`` drawn at random, the same every run, in their order."""
    chosen = np.random.default_rng(0).choice(len(pairs), min(count, len(pairs)), replace=False)
    return [pairs[i] for i in sorted(chosen)]


def edit_shares(path: str) -> list[float | None]:
    """The residual the product measures between a dev original and each of ``EDITS`` of it, made as
    bench/hue_turns.py makes them (re-encoded at JPEG q90, q20 for that edit)."""
    original = described(path)
    if original is None:
        return [None] * len(EDITS)
    with Image.open(path) as opened:
        picture = opened.convert("RGB")
    return [matched_keypoints(original, picture_keypoints(edited(picture, name)), geometry_disagrees).residual
            for name in EDITS]


BEFORE_THE_VETO = "dc78b49"
"""The commit whose docs/benchmarks.md lists the originals the product merged before the residual judged
every pair: the different pictures it was calibrated on stay those, not the fewer it lets through now."""


def merged_pairs() -> list[tuple[str, str, str]]:
    """The pairs of originals the product merged (set, a, b), as bench/originals_only.py listed them
    before the veto (``BEFORE_THE_VETO``)."""
    root = DOCS.parent.parent
    docs = subprocess.run(["git", "show", f"{BEFORE_THE_VETO}:{DOCS.relative_to(root)}"], cwd=root,
                          capture_output=True, text=True, check=True).stdout
    section = docs.split("## Originals only", 1)[1].split("\n## ", 1)[0]
    pairs = []
    for name, listed in re.findall(r"^- (dev half|series of drawings|unseen sources): (.*)$", section, re.M):
        folder = dupset.CACHE.parent / "originals-only" / FOLDERS[name] / "set"
        for pair in listed.split("; "):
            a, b = pair.split(" + ")
            pairs.append((name, str(folder / f"{a}.jpg"), str(folder / f"{b}.jpg")))
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=4000)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    strangers = merged_pairs()
    with Pool(2) as pool:
        sets = {name: copy_pairs(name, args.pairs) for name in COPIES}
        timed = {name: pool.map(measured, [(a, b) for a, b, *_ in pairs], chunksize=16)
                 for name, pairs in sets.items()}
        stranger_timed = pool.map(measured, [(a, b) for _, a, b in strangers])
        dev_originals = [item["path"] for item in json.loads(COPIES["dev half"][0].read_text())["items"]
                         if item["split"] == "dev" and item["kind"] == "original"]
        by_edit = dict(zip(EDITS, zip(*pool.map(edit_shares, dev_originals), strict=True), strict=True))
    shares = {name: [share for share, *_ in found] for name, found in timed.items()}
    copy_ms = np.median([1000 * took for found in timed.values()
                         for share, _, took in found if share is not None])
    stranger_ms = np.median([1000 * took for share, _, took in stranger_timed if share is not None])
    by_kind: dict[tuple[str, str], list[float]] = defaultdict(list)
    copies = [(name, *pair) for name, pairs in sets.items() for pair in pairs]
    copy_shares = [share for name in sets for share in shares[name]]
    for (name, *_, kind_a, kind_b), share in zip(copies, copy_shares, strict=True):
        if share is not None:
            for kind in {kind_a, kind_b}:
                by_kind[name, kind].append(share)
    flat = {name: [is_flat for share, is_flat, _ in found if share is not None]
            for name, found in timed.items()}
    measured_copies = {name: np.array([s for s in shares[name] if s is not None]) for name in sets}
    measured_strangers = [(name, a, b, s, is_flat)
                          for (name, a, b), (s, is_flat, _) in zip(strangers, stranger_timed, strict=True)
                          if s is not None]
    kinds = ["| set | copy kind | pairs measured | 99th percentile | most |", "|---|---|---:|---:|---:|"]
    kinds += [f"| {name} | {kind} | {len(v)} | {np.percentile(v, 99):.3f} | {max(v):.3f} |"
              for (name, kind), v in sorted(by_kind.items())]
    calibrated = np.concatenate([measured_copies["dev half"], measured_copies["series of drawings"]])
    cuts = ["| unexplained share over | pairs of copies flagged (dev, series) | unseen | "
            "pairs of different pictures flagged |", "|---:|---:|---:|---:|"]
    unseen = measured_copies["unseen sources"]
    cuts += [f"| {cut} | {(calibrated > cut).sum()} of {len(calibrated)} | "
             f"{(unseen > cut).sum()} of {len(unseen)} | "
             f"{sum(s > cut for *_, s, _ in measured_strangers)} of {len(measured_strangers)} |"
             for cut in SHARES]
    edits = ["| edit | pairs measured | over EXPLAINED | over RESIDUAL_APART |", "|---|---:|---:|---:|"]
    for name, found in by_edit.items():
        values = np.array([share for share in found if share is not None])
        edits.append(f"| {name} | {len(values)} | {(values > EXPLAINED).sum()} "
                     f"| {(values > RESIDUAL_APART).sum()} |")
    worst = sorted(zip(copies, copy_shares, strict=True), key=lambda c: -(c[1] or 0))[:6]
    strangers_listed = "; ".join(f"{Path(a).stem} + {Path(b).stem} {s:.3f}{' (flat)' if is_flat else ''}"
                                 for _, a, b, s, is_flat in sorted(measured_strangers, key=lambda x: -x[3]))
    counts = ", ".join(f"{name} {len(measured_copies[name])} ({sum(flat[name])} with a flat picture)"
                       for name in sets)
    vetoed = [(s, is_flat) for *_, s, is_flat in measured_strangers if s > RESIDUAL_APART]
    body = "\n".join([
        __doc__.split("\n\n")[2].replace("\n", " "), "",
        f"Pairs of copies measured, of {args.pairs} drawn from each set: {counts}; pairs of different "
        f"pictures the product merges: {len(measured_strangers)} of {len(strangers)} measured (the rest "
        "are flat pairs whose layouts tell them, or pairs the keypoints lay turned or tell apart).", "",
        *kinds, "", *cuts, "",
        "Copies furthest from explained: "
        + "; ".join(f"{Path(a).parent.name} {kind_a} + {kind_b} {share:.3f}"
                    for (_, a, _, kind_a, kind_b), share in worst)
        + ".", "",
        f"Different pictures: {strangers_listed}.", "",
        f"Edits of the {len(dev_originals)} dev originals (bench/hue_turns.py's; a pair is not measured "
        "where the keypoints tell it apart already): the first keep a copy's colours, as a user edits a "
        "copy; per-channel equalising and hue turns recolour it.", "", *edits, "",
        f"At the product's ``RESIDUAL_APART`` {RESIDUAL_APART}: {(calibrated > RESIDUAL_APART).sum()} pairs "
        f"of copies and {len(vetoed)} pairs of different pictures vetoed ({sum(f for _, f in vetoed)} with a "
        f"flat picture). Cost, the files described already (two processes on two cores): median "
        f"{copy_ms:.0f} ms a pair of copies (most are explained where their keypoints lay them, or stop at "
        f"the first cut explaining all but {EXPLAINED} of the pixels: shares under it read as it), "
        f"{stranger_ms:.0f} ms a pair of "
        "different pictures (every cut is tried). What it cannot tell: pictograms that are each other's turn "
        "or mirror (arrows, stairs) and one design drawn twice (Indonesia, Monaco), as no look can; emblems "
        "that differ in a few pixels at 64.", "",
        f"`python bench/aligned_residual.py` on {today()}, {machine()}; {library_state()}.",
    ])
    print(body)
    if not args.no_write:
        write_section(SECTION, body)


if __name__ == "__main__":
    main()

"""The aligned residual of flat pictures, measured: what no tone curve explains once two are aligned.

Run by hand: ``python bench/aligned_residual.py`` (after ``bench/calibrate.py``, ``bench/series.py`` and
``bench/originals_only.py``). Writes "## Aligned residual of flat pictures" in docs/benchmarks.md;
``--no-write`` prints only.

Flat pictures (flags, pictograms, clip art: under ``EXPECTED_KEYPOINTS`` keypoints) were judged by their
5 x 5 layouts alone, which Denmark's flag and Norway's share. The product now also lays them over each
other (lookalike/embedder/residual.py: the eight turns and mirrors, scales for a crop of up to a third,
either picture inside the other, aligned on the three channels at 64 pixels; content box, whole, or on
one side the whole less a caption band) and counts the share of pixels no tone curve per channel
explains (``aligned_residual``), vetoing a pair over ``RESIDUAL_APART``. Copies: pairs of one original's
pictures (every kind, copy beside copy), ``--pairs`` drawn at random from the dev half and from the
series of drawings (flags, pictograms), those with a flat picture kept. Different pictures: the flat
pairs the product merged among originals alone (docs/benchmarks.md, "## Originals only", as measured
before this veto).
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
import time
from collections import defaultdict
from functools import lru_cache
from multiprocessing import Pool
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import dupset  # noqa: E402
from calibrate import library_state  # noqa: E402
from report import DOCS, machine, today, write_section  # noqa: E402

from lookalike.embedder.keypoints import EXPECTED_KEYPOINTS, file_keypoints  # noqa: E402
from lookalike.embedder.residual import EXPLAINED, Cuts, aligned_residual  # noqa: E402
from lookalike.index.geometry import RESIDUAL_APART  # noqa: E402

SECTION = "## Aligned residual of flat pictures"
SHARES = (0.04, RESIDUAL_APART, 0.08, 0.12)
FOLDERS = {"dev half": "dev", "series of drawings": "series", "unseen sources": "unseen"}


@lru_cache(maxsize=20000)
def described(path: str) -> tuple[int, Cuts] | None:
    """A file's keypoint count and the cuts it is aligned by, as the product finds them."""
    found = file_keypoints(path)
    return None if found is None else (len(found), found.cuts)


def measured(pair: tuple[str, str]) -> tuple[float | None, float]:
    """The residual of a pair with a flat picture (None for two detailed ones: the keypoints judge them),
    and the seconds it took, the files described already."""
    a, b = described(pair[0]), described(pair[1])
    if a is None or b is None or min(a[0], b[0]) >= EXPECTED_KEYPOINTS:
        return None, 0.0
    start = time.perf_counter()
    return aligned_residual(a[1], b[1]), time.perf_counter() - start


COPIES = {"dev half": (dupset.CACHE / "manifest.json", "dev"),
          "series of drawings": (dupset.CACHE.parent / "series" / "manifest.json", "series")}


def copy_pairs(name: str, count: int) -> list[tuple[str, str, str, str]]:
    """``count`` pairs of one original's pictures in a set of ``COPIES`` (a, b, kind of a, kind of b)."""
    manifest, split = COPIES[name]
    groups: dict[str, list[dict]] = defaultdict(list)
    for item in json.loads(manifest.read_text())["items"]:
        if item["split"] == split:
            groups[item["group"]].append(item)
    pairs = [(x["path"], y["path"], x["kind"], y["kind"])
             for members in groups.values() for x, y in itertools.combinations(members, 2)]
    chosen = np.random.default_rng(0).choice(len(pairs), min(count, len(pairs)), replace=False)
    return [pairs[i] for i in sorted(chosen)]


def merged_pairs() -> list[tuple[str, str, str]]:
    """The pairs of originals the product merges (set, a, b), as bench/originals_only.py listed them."""
    section = DOCS.read_text().split("## Originals only", 1)[1].split("\n## ", 1)[0]
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
    shares = {name: [share for share, _ in found] for name, found in timed.items()}
    stranger_shares = [share for share, _ in stranger_timed]
    copy_ms = np.median([1000 * took for found in timed.values()
                         for share, took in found if share is not None])
    stranger_ms = np.median([1000 * took for share, took in stranger_timed if share is not None])
    by_kind: dict[tuple[str, str], list[float]] = defaultdict(list)
    copies = [(name, *pair) for name, pairs in sets.items() for pair in pairs]
    copy_shares = [share for name in sets for share in shares[name]]
    for (name, *_, kind_a, kind_b), share in zip(copies, copy_shares, strict=True):
        if share is not None:
            for kind in {kind_a, kind_b}:
                by_kind[name, kind].append(share)
    flat_copies = np.array([s for s in copy_shares if s is not None])
    flat_strangers = [(name, a, b, s) for (name, a, b), s in zip(strangers, stranger_shares, strict=True)
                      if s is not None]
    kinds = ["| set | copy kind | flat pairs | 99th percentile | most |", "|---|---|---:|---:|---:|"]
    kinds += [f"| {name} | {kind} | {len(v)} | {np.percentile(v, 99):.3f} | {max(v):.3f} |"
              for (name, kind), v in sorted(by_kind.items())]
    cuts = ["| unexplained share over | pairs of copies flagged | pairs of different pictures flagged |",
            "|---:|---:|---:|"]
    cuts += [f"| {cut} | {(flat_copies > cut).sum()} of {len(flat_copies)} | "
             f"{sum(s > cut for *_, s in flat_strangers)} of {len(flat_strangers)} |" for cut in SHARES]
    worst = sorted(zip(copies, copy_shares, strict=True), key=lambda c: -(c[1] or 0))[:6]
    strangers_listed = "; ".join(f"{Path(a).stem} + {Path(b).stem} {s:.3f}"
                                 for _, a, b, s in sorted(flat_strangers, key=lambda x: -x[3]))
    body = "\n".join([
        __doc__.split("\n\n")[2].replace("\n", " "), "",
        f"Pairs of copies with a flat picture: {len(flat_copies)} of {len(copies)} drawn ({args.pairs} from "
        f"each set); pairs of different "
        f"pictures the product merges: {len(flat_strangers)} of {len(strangers)} with a flat picture (the "
        "rest have the keypoints to be judged by them).", "", *kinds, "", *cuts, "",
        "Copies furthest from explained: "
        + "; ".join(f"{Path(a).parent.name} {kind_a} + {kind_b} {share:.3f}"
                    for (_, a, _, kind_a, kind_b), share in worst)
        + ".", "",
        f"Different pictures, flat: {strangers_listed}.", "",
        f"At the product's ``RESIDUAL_APART`` {RESIDUAL_APART}: {(flat_copies > RESIDUAL_APART).sum()} pairs "
        f"of copies and {sum(s > RESIDUAL_APART for *_, s in flat_strangers)} pairs of different pictures "
        f"vetoed. Cost, the files described already (two processes on two cores): median {copy_ms:.0f} ms "
        f"a pair of copies (most stop at the first cut explaining all but {EXPLAINED} of the pixels: "
        f"shares under it read as it), {stranger_ms:.0f} ms a pair of "
        "different pictures (every cut is tried). What it cannot tell: pictograms that are each other's turn "
        "or mirror (arrows, stairs) and one design drawn twice (Indonesia, Monaco), as no look can; flags "
        "told apart by an emblem or a few stars at 64 pixels.", "",
        f"`python bench/aligned_residual.py` on {today()}, {machine()}; {library_state()}.",
    ])
    print(body)
    if not args.no_write:
        write_section(SECTION, body)


if __name__ == "__main__":
    main()

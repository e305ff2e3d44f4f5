"""Hues compared pixel by pixel where the keypoints lay two colour pictures: what tells a design's other
colouring from a copy whose edits turned its colours.

Run by hand: ``python bench/hue_pixels.py`` (after ``bench/calibrate.py``, ``bench/series.py``,
``bench/unseen.py``, ``bench/artist_series.py`` and ``bench/colour_variants.py --near-hues`` have built
their sets). Writes "## Hues pixel by pixel" in docs/benchmarks.md; ``--no-write`` prints only.

For each pair the keypoints lay (lookalike/embedder/keypoints.py, ``turned_hues``), the share of the
pixels clearly coloured in both whose hue turned beyond what brightening, one tone curve, or the grey
pixels' change channel by channel explains; the product drops a pair over ``HUES_TURNED``. The lesser of
the pair as drawn and mirrored counts, as the product keeps a pair either way. Copies: pairs of one
original's pictures, every kind, copy beside copy, drawn at random as bench/aligned_residual.py draws
them, and the near-hue probe's copies (brightened, quarter size) beside their original, and
bench/artist_series.py's JPEG q30 copies beside its other pictures (drawings whose only colour may be a
pale edge). Edits: each dev original beside each of bench/hue_turns.py's edits of it, everyday ones and
hue turns. Different colourings: the near-hue probe's variants (turned by 30 to 60 degrees) beside each
other, originals and brightened copies.

``--hue-noise N``: measured with the product's ``HUE_NOISE`` (lookalike/embedder/keypoints.py) set to N,
printed only: 0 is every pixel's turn counted from ``PIXEL_TURN``, as before pale colours had to turn
further (the artist series' beige-edged cards at JPEG q30).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections import defaultdict
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import dupset  # noqa: E402
from aligned_residual import COPIES, copy_pairs, drawn  # noqa: E402
from calibrate import library_state  # noqa: E402
from hue_turns import EDITS, edited  # noqa: E402
from report import machine, today, write_section  # noqa: E402

from lookalike.embedder import keypoints  # noqa: E402
from lookalike.embedder.keypoints import (  # noqa: E402
    Keypoints,
    _keypoint_match,
    file_keypoints,
    picture_keypoints,
    turned_hues,
)
from lookalike.index.geometry import HUES_TURNED  # noqa: E402

SECTION = "## Hues pixel by pixel"
NEAR_HUES = dupset.CACHE / "near-hues" / "set"
ARTIST = dupset.CACHE.parent / "artist-series" / "manifest.json"
BESIDE = (("original", "original"), ("original", "brighter"), ("brighter", "original"))  # variants' images


def measured(a: Keypoints | None, b: Keypoints | None) -> tuple[float | None, float]:
    """``turned_hues`` where the keypoints lay ``a`` over ``b`` (None elsewhere), and its seconds."""
    if a is None or b is None:
        return None, 0.0
    _, laid = _keypoint_match(a, b)
    if laid is None:
        return None, 0.0
    started = time.perf_counter()
    share = turned_hues(a, b, laid)
    return share, time.perf_counter() - started


def pair(paths: tuple[str, str]) -> tuple[float | None, float]:
    """The lesser share of the pair as drawn and mirrored, and the seconds both took."""
    a = file_keypoints(paths[0])
    found = [measured(a, file_keypoints(paths[1], mirrored=mirrored)) for mirrored in (False, True)]
    shares = [share for share, _ in found if share is not None]
    return (min(shares) if shares else None), sum(took for _, took in found)


def edits(path: str) -> dict[str, float | None]:
    """Each of ``EDITS`` of a dev original beside it."""
    original = file_keypoints(path)
    with Image.open(path) as opened:
        picture = opened.convert("RGB")
    return {name: measured(original, picture_keypoints(edited(picture, name)))[0] for name in EDITS}


def near_hue_pairs() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The near-hue probe's copies beside their original, and its variants of one design beside each other
    (original beside original, and each beside the other's brightened copy)."""
    designs: dict[str, dict[str, Path]] = defaultdict(dict)
    for folder in sorted(NEAR_HUES.iterdir()):
        name, _, variant = folder.name.partition("--")
        designs[name][variant or "original"] = folder
    copies, variants = [], []
    for folders in designs.values():
        for folder in folders.values():
            copies += [(str(folder / "original.jpg"), str(folder / f"{kind}.jpg"))
                       for kind in ("brighter", "quarter-size")]
        for one, other in itertools.combinations(folders.values(), 2):
            variants += [(str(one / f"{a}.jpg"), str(other / f"{b}.jpg")) for a, b in BESIDE]
    return copies, variants


def recompressed_pairs(count: int) -> list[tuple[str, str]]:
    """``count`` of the artist series' JPEG q30 copies beside another picture of their original."""
    groups: dict[str, dict[str, str]] = defaultdict(dict)
    for item in json.loads(ARTIST.read_text())["items"]:
        groups[item["group"]][item["kind"]] = item["path"]
    return drawn([(kinds["jpeg q30"], path) for kinds in groups.values() if "jpeg q30" in kinds
                  for kind, path in kinds.items() if kind != "jpeg q30"], count)


def row(name: str, shares: list[float | None]) -> str:
    laid = np.array([share for share in shares if share is not None])
    if not len(laid):
        return f"| {name} | {len(shares)} | 0 | - | - | - |"
    return (f"| {name} | {len(shares)} | {len(laid)} | {np.percentile(laid, 99):.3f} | {laid.max():.3f} | "
            f"{int((laid > HUES_TURNED).sum())} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=800)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--hue-noise", type=float, help="the product's HUE_NOISE replaced (prints only)")
    args = parser.parse_args()
    if args.hue_noise is not None:  # set before the workers fork: they measure with it
        keypoints.HUE_NOISE = args.hue_noise
    groups = {f"copies, {name}": [(a, b) for a, b, *_ in copy_pairs(name, args.pairs)] for name in COPIES}
    near_copies, near_variants = near_hue_pairs()
    groups["copies, near-hue probe"] = near_copies
    groups["copies, artist series: JPEG q30 beside the rest"] = recompressed_pairs(args.pairs)
    groups["different colourings, near-hue probe"] = near_variants
    originals = [item["path"] for item in json.loads(COPIES["dev half"][0].read_text())["items"]
                 if item["split"] == "dev" and item["kind"] == "original"]
    started = time.perf_counter()
    with Pool(2) as pool:
        found = {name: pool.map(pair, pairs, chunksize=8) for name, pairs in groups.items()}
        edited_shares = pool.map(edits, originals, chunksize=4)
    seconds = time.perf_counter() - started
    rows = ["| pairs | of | laid by their keypoints | 99th pct. | max | over HUES_TURNED |",
            "|---|---:|---:|---:|---:|---:|"]
    rows += [row(name, [share for share, _ in shares]) for name, shares in found.items()]
    rows += [row(f"dev originals, {edit}", [shares[edit] for shares in edited_shares]) for edit in EDITS]
    took = [1000 * took for shares in found.values() for share, took in shares if share is not None]
    body = "\n".join([
        __doc__.split("\n\n")[2].replace("\n", " "), "", *rows, "",
        f"At the product's ``HUES_TURNED`` {HUES_TURNED}, ``HUE_NOISE`` {keypoints.HUE_NOISE}. A pair's "
        "hues (as drawn and mirrored) take "
        f"{np.median(took):.0f} ms, median, the files described already (two processes on two cores).", "",
        f"`python bench/hue_pixels.py` on {today()}, {machine()}; {library_state()}. {seconds:.0f} s in all.",
    ])
    print(body)
    if not args.no_write and args.hue_noise is None:
        write_section(SECTION, body)


if __name__ == "__main__":
    main()

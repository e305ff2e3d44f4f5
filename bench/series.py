"""Series of distinct drawings of one kind: national flags and AIGA pictograms, never to be merged.

Run by hand: ``python bench/series.py`` (after ``bench/dupset.py`` has unpacked openclipart-png). Builds
the set in ``~/.cache/lookalike-bench/series`` and writes "## Series of distinct drawings" in
docs/benchmarks.md; ``--no-write`` prints only.

The dupset's hard-negative families hold at most four pictures each, and half of them are on the test
side, which chooses nothing. This set is made of the same kind of hard negatives at scale, from the
openclipart files the dupset does not draw on: national and regional flags (stripes and crosses in a
few colours: one stripe recoloured is another flag), and the AIGA transport pictograms, each drawn
plain and as a white drawing in a black tile (the same symbol, not the same picture). US state flags
are left out (fifty blue fields with a seal would outweigh the rest), and so is a drawing that is
another one turned or mirrored (Guinea's flag is Mali's mirrored; a left arrow, a right one): that is
a copy. Each drawing gets the dupset's ten copies, as a series (a family) of its own. Nothing here
chooses a setting: the product runs at its default, beside plain cosine and phash at theirs.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import dupset  # noqa: E402
from calibrate import evaluate, index_split, library_state, product  # noqa: E402
from report import machine, today, write_section  # noqa: E402
from unseen import baselines, row  # noqa: E402

from lookalike.index.duplicates import DEFAULT_THRESHOLD  # noqa: E402

SECTION = "## Series of distinct drawings"
CACHE = dupset.CACHE.parent / "series"
VERSION = 2  # bump when the selection changes: the cached set is rebuilt
TWIN = 6.0  # dupset.select's "same picture" distance between colour thumbnails, here turned or mirrored
"""A drawing is an earlier one turned or mirrored when one of its seven other views is this close to it
and under half as far as it is unturned (a symmetric pictogram is as close either way: not a twin)."""


def candidates(openclipart: Path) -> list[dupset.Candidate]:
    """Flags and pictograms the dupset does not use, one file per name, each with its series."""
    used = {c.path.name for c in dupset.candidates(dupset.CACHE)}
    flags = sorted(p for region in ("africa", "america", "asia", "oceania", "europe")
                   for p in (openclipart / "signs_and_symbols/flags" / region).rglob("*.png")
                   if not re.search(r"map|^usa_", p.name))
    pictograms = sorted((openclipart / "transportation/aiga-symbols").glob("aiga_*.png"))
    found: dict[str, dupset.Candidate] = {}
    for paths, series in ((flags, "flags"), (pictograms, "aiga pictograms")):
        for path in paths:
            if path.name not in used:
                found.setdefault(path.name, dupset.Candidate(path, "openclipart-png", series))
    return list(found.values())


VIEWS = (Image.Transpose.FLIP_LEFT_RIGHT, Image.Transpose.FLIP_TOP_BOTTOM, Image.Transpose.ROTATE_90,
         Image.Transpose.ROTATE_180, Image.Transpose.ROTATE_270, Image.Transpose.TRANSPOSE,
         Image.Transpose.TRANSVERSE)


def turned_twin(plain: np.ndarray, views: list[np.ndarray], thumb: np.ndarray) -> bool:
    """Whether a drawing (its colour thumbnail ``plain`` and its seven other ``views``) is the one with
    thumbnail ``thumb`` turned or mirrored: alike so, and far more than as it is."""
    closest = min(np.abs(view - thumb).mean() for view in views)
    return closest < TWIN and closest < np.abs(plain - thumb).mean() / 2


def untwinned(kept: list[tuple[dupset.Candidate, Image.Image, str]]
              ) -> tuple[list[tuple[dupset.Candidate, Image.Image, str]], list[dict]]:
    """dupset.select's originals without those that are an earlier one turned or mirrored: those are
    copies."""
    found: list[tuple[dupset.Candidate, Image.Image, str]] = []
    seen: list[tuple[str, np.ndarray]] = []
    skipped = []
    for cand, image, name in kept:
        plain = dupset._thumb(image)
        views = [dupset._thumb(image.transpose(view)) for view in VIEWS]
        twin = next((other for other, thumb in seen if turned_twin(plain, views, thumb)), None)
        if twin is not None:
            skipped.append({"path": str(cand.path), "why": f"{twin} turned or mirrored"})
            continue
        found.append((cand, image, name))
        seen.append((cand.path.name, plain))
    return found, skipped


def build(force: bool = False, cache: Path = CACHE, version: int = VERSION,
          find: Callable[[Path], list[dupset.Candidate]] = candidates, smallest: int = dupset.MIN_SIDE,
          same: float = dupset.SAME_PICTURE, packages: tuple[str, ...] = ("openclipart-png",),
          folder: str = "openclipart-png/usr/share/openclipart/png") -> dict:
    """The set of ``find``'s candidates (each with its series as family) in ``cache``, with the dupset's
    ten copies each: built once, rebuilt when ``version`` changes (``smallest``, ``same``: as
    ``dupset.select``). ``find`` looks in ``folder`` of the Debian ``packages`` unpacked."""
    manifest_path = cache / "manifest.json"
    if not force and (manifest := dupset.cached_manifest(manifest_path, version)):
        return manifest
    versions = dupset.fetch_packages(dupset.CACHE, packages)
    shutil.rmtree(cache / "set", ignore_errors=True)  # groups of an older selection
    cands = find(dupset.CACHE / "x" / folder)
    # No family on the way in: dupset.select caps a family at four, and a series here is the point.
    kept, skipped = dupset.select([dupset.Candidate(c.path, c.source) for c in cands], smallest, same)
    kept, twins = untwinned(kept)
    series = {c.path: c.family for c in cands}
    items = []
    for cand, image, name in kept:
        member = dupset.Candidate(cand.path, cand.source, series[cand.path])
        items.extend(dupset.write_group(cache / "set" / "series", member, image, name, "series"))
    manifest = {"version": version, "sources": {n: {"version": v, "licence": dupset.PACKAGES[n]}
                                                for n, v in versions.items()},
                "items": [vars(i) for i in items], "skipped": skipped + twins}
    manifest_path.write_text(json.dumps(manifest, indent=1))
    return manifest


def main() -> None:
    run(build(), CACHE, SECTION, "bench/series.py",
        "Openclipart drawings the calibration set does not use (`bench/series.py`)")


def run(manifest: dict, cache: Path, section: str, script: str, described: str) -> None:
    """Cluster a series set (built by :func:`build`) at the product's default beside plain cosine and
    phash, and write its ``section``: ``described`` opens it."""
    parser = argparse.ArgumentParser(description=sys.modules["__main__"].__doc__.splitlines()[0])
    parser.add_argument("--model", default="efficientnet-lite2")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    split = index_split("series", manifest["items"], cache / "set" / "series", cache, args.model)
    indexed = time.perf_counter() - started
    started = time.perf_counter()
    ours = evaluate(split, product(DEFAULT_THRESHOLD))
    seconds = time.perf_counter() - started
    results = [(f"product, default {DEFAULT_THRESHOLD}", ours), *baselines(split)]
    originals = [i for i in manifest["items"] if i["kind"] == "original"]
    by_series: dict[str, int] = {}
    for item in originals:
        by_series[item["family"]] = by_series.get(item["family"], 0) + 1
    kinds = ", ".join(f"{kind} {found / total:.2f}" for kind, (found, total) in ours.kind_recall.items())
    wrong = sorted(" + ".join(sorted(pair)) for pair in ours.wrong_originals)
    merged = sorted({family for family, _, _ in ours.hard_negative_pairs})
    listed = ", ".join(f"{n} {s}" for s, n in sorted(by_series.items())) + " originals" if len(
        by_series) < 8 else f"{len(originals)} originals in {len(by_series)} series"
    body = "\n".join([
        f"{described}, each with the dupset's ten copies: {listed}, {len(manifest['items'])} images; "
        f"{len(manifest['skipped'])} files left out (turned or mirrored twins, same pictures, small). Each "
        "series is distinct pictures that must stay apart.",
        "",
        "| method | precision | recall | F1 | mixed clusters | originals wrongly paired | series merged |",
        "|---|---:|---:|---:|---:|---:|---|",
        *(row(method, result) for method, result in results),
        "",
        f"Product recall by copy kind: {kinds}.",
        "",
        f"Series the product merged ({len(merged)} of {len(by_series)}): {', '.join(merged) or 'none'}.",
        "",
        f"Originals wrongly paired by the product ({len(wrong)}): " + ("; ".join(wrong[:40]) or "none")
        + ("; ..." if len(wrong) > 40 else "") + ".",
        "",
        f"`python {script}` on {today()}, {machine()}; model {args.model}; {library_state()}. "
        f"Indexing {indexed:.0f} s (0 when cached), `duplicates()` {seconds:.1f} s.",
    ])
    print(body)
    if not args.no_write:
        write_section(section, body)
    split.collection.close()


if __name__ == "__main__":
    main()

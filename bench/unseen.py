"""Duplicates on pictures from sources the calibration never saw: does the default generalise?

Run by hand: ``python bench/unseen.py`` (downloads nine Debian packages, builds the set in
``~/.cache/lookalike-bench/unseen``, indexes it: a few minutes the first time). Writes "## Unseen
sources probe" in docs/benchmarks.md; ``--no-write`` prints only.

bench/calibrate.py chooses the threshold on dev and reports on test, but both halves come from the same
eleven sources. This set is built the same way (dupset's checks, its ten copy kinds and seeds) from
packages neither half draws on, chosen for what is hard: screenshots of games (games-thumbnails, 320 px,
many dark and busy: series of similar but distinct pictures), paper and canvas textures
(mypaint-data-extras: the texture-like pictures that sit close to everything in the model's space),
one game's screens (frozen-bubble-data), Debian Edu's theme wallpapers, and from stellarium-data
photographs of nebulae and galaxies (dark, a fuzzy shape on black: alike, and all different), the
tiles of one landscape panorama (neighbouring views) and constellation drawings of many sky cultures.
Nothing here chooses a setting: the product runs at its default, beside plain cosine and phash at theirs.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import dupset  # noqa: E402
from calibrate import (  # noqa: E402
    Result,
    Split,
    cosine_pairs,
    evaluate,
    index_split,
    library_state,
    phash_pairs,
    product,
)
from report import constants, machine, search_settings, today, write_section  # noqa: E402

from lookalike.index import collection  # noqa: E402
from lookalike.index.duplicates import DEFAULT_THRESHOLD  # noqa: E402

SECTION = "## Unseen sources probe"
BEFORE = ({"ENLARGED": 0, "FRAME_FLOOR": 2.0}, {"TINY": 0})
"""Duplicates and Collection as before the looks this set first showed were missing: the scale look for
enlarged copies, the pixel search for tiny ones and the frame look."""
CACHE = dupset.CACHE.parent / "unseen"
VERSION = 2  # bump when the selection changes: the cached set is rebuilt
GAMES = 150  # of games-thumbnails' 530 screenshots, a fixed sample
NEBULAE = 60  # of stellarium's 539 photographs of nebulae and galaxies
SKY_ART = 30  # of its constellation drawings, from every sky culture
PACKAGES = {
    "games-thumbnails": "BSD-3 / the games' own (screenshots)",
    "mypaint-data-extras": "CC0-1.0 / CC-BY-3.0 / GPL-2 (backgrounds)",
    "frozen-bubble-data": "GPL-2",
    "debian-edu-artwork-buster": "GPL-2+",
    "debian-edu-artwork-emerald": "GPL-2+",
    "debian-edu-artwork-homeworld": "GPL-2+",
    "debian-edu-artwork-softwaves": "GPL-2+",
    "debian-edu-artwork-spacefun": "GPL-2+",
    "stellarium-data": "GPL-2+ / per-image (nebula photographs: see its copyright file)",
}
SERIES = {  # package -> the series its pictures form: different pictures that must never be merged
    "games-thumbnails": "game screenshots",
    "mypaint-data-extras": "paper textures",
    "frozen-bubble-data": "frozen-bubble screens",
    "stellarium-data/nebulae": "nebula and galaxy photographs",
    "stellarium-data/landscapes": "tiles of one panorama",
    "stellarium-data/skycultures": "constellation drawings",
}  # and the Debian Edu wallpapers: "debian-edu themes"


def candidates(x: Path) -> list[dupset.Candidate]:
    games = sorted((x / "games-thumbnails/usr/share/games/thumbnails").glob("*.png"))
    games = sorted(random.Random(dupset.SEED).sample(games, min(GAMES, len(games))))
    papers = sorted((x / "mypaint-data-extras/usr/share/mypaint/backgrounds").glob("*/*.png"))
    screens = sorted((x / "frozen-bubble-data/usr/share/games/frozen-bubble/gfx").glob("back*.png"))
    themes = sorted(x.glob("debian-edu-artwork-*/usr/share/plymouth/themes/*/background.png"))
    sources = ((games, "games-thumbnails"), (papers, "mypaint-data-extras"), (screens, "frozen-bubble-data"))
    found = [(path, source) for paths, source in sources for path in paths]
    found += [(path, path.relative_to(x).parts[0]) for path in themes]
    sky = x / "stellarium-data/usr/share/stellarium"
    rng = random.Random(dupset.SEED)
    nebulae = sorted(rng.sample(sorted((sky / "nebulae/default").glob("*.png")), NEBULAE))
    tiles = sorted((sky / "landscapes/hurricane").glob("hurricane[0-9].png"))
    drawings = sorted(rng.sample(sorted(sky.glob("skycultures/*/*.png")), SKY_ART))
    kinds = ((nebulae, "nebulae"), (tiles, "landscapes"), (drawings, "skycultures"))
    found += [(path, f"stellarium-data/{kind}") for paths, kind in kinds for path in paths]
    # No family on the way in: dupset.select caps a family at four, and a series here is the point.
    return [dupset.Candidate(path, source) for path, source in found]


def build(force: bool = False) -> dict:
    manifest_path = CACHE / "manifest.json"
    if not force and (manifest := dupset.cached_manifest(manifest_path, VERSION)):
        return manifest
    versions = dupset.fetch_packages(CACHE, PACKAGES)
    shutil.rmtree(CACHE / "set", ignore_errors=True)  # groups of an older selection
    kept, skipped = dupset.select(candidates(CACHE / "x"))
    items = []
    for cand, image, name in kept:
        family = SERIES.get(cand.source, "debian-edu themes")
        cand = dupset.Candidate(cand.path, cand.source.split("/")[0])
        series = dupset.Candidate(cand.path, cand.source, family)
        items.extend(dupset.write_group(CACHE / "set" / "unseen", series, image, name, "unseen"))
    manifest = {"version": VERSION, "sources": {n: {"version": v, "licence": PACKAGES[n]}
                                                for n, v in versions.items()},
                "items": [vars(i) for i in items], "skipped": skipped}
    manifest_path.write_text(json.dumps(manifest, indent=1))
    return manifest


def row(method: str, result: Result) -> str:
    mixed = "-" if result.clusters is None else f"{len(result.mixed)}/{result.clusters}"
    families = {item_family for item_family, _, _ in result.hard_negative_pairs}
    return (f"| {method} | {result.precision:.3f} | {result.recall:.3f} | {result.f1:.3f} | {mixed} | "
            f"{len(result.wrong_originals)} | {', '.join(sorted(families)) or 'none'} |")


def baselines(split: Split) -> list[tuple[str, Result]]:
    """Plain cosine at the product's default and phash at its usual distance: the table's yardsticks."""
    return [(f"cosine pairs, {DEFAULT_THRESHOLD}", evaluate(split, cosine_pairs(DEFAULT_THRESHOLD))),
            ("phash, distance 10", evaluate(split, phash_pairs(10)))]


def load(model: str) -> Split:
    """The set built (cached) and indexed with ``model`` (cached): what every bench on it measures."""
    manifest = build()
    return index_split("unseen", manifest["items"], CACHE / "set" / "unseen", CACHE, model)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="efficientnet-lite2")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    manifest = build()
    started = time.perf_counter()
    split = load(args.model)
    indexed = time.perf_counter() - started
    started = time.perf_counter()
    with search_settings(**BEFORE[0]), constants(collection, **BEFORE[1]):
        before = evaluate(split, product(DEFAULT_THRESHOLD))
    before_seconds = time.perf_counter() - started
    started = time.perf_counter()
    ours = evaluate(split, product(DEFAULT_THRESHOLD))
    seconds = time.perf_counter() - started
    results = [(f"product before the enlarged, tiny and frame looks, {DEFAULT_THRESHOLD}", before),
               (f"product, default {DEFAULT_THRESHOLD}", ours), *baselines(split)]
    originals = [i for i in manifest["items"] if i["kind"] == "original"]
    series = sorted({i["family"] for i in originals if i["family"]})
    by_source: dict[str, int] = {}
    for item in originals:
        by_source[item["package"]] = by_source.get(item["package"], 0) + 1
    kinds = ", ".join(f"{kind} {found / total:.2f} (before {before.kind_recall[kind][0] / total:.2f})"
                      for kind, (found, total) in ours.kind_recall.items())
    mixed = [" + ".join(sorted({Path(p).parent.name for p in cluster})) for cluster in ours.mixed[:8]]
    body = "\n".join([
        "Pictures from packages neither half of the calibration set draws on (`bench/unseen.py`), with the "
        "same ten copies each: " + ", ".join(f"{n} {c}" for n, c in sorted(by_source.items())) +
        f" originals, {len(manifest['items'])} images. Nothing here chooses a setting. Series (different "
        "pictures that must stay apart): " + ", ".join(series) +
        ".",
        "",
        "| method | precision | recall | F1 | mixed clusters | originals wrongly paired | series merged |",
        "|---|---:|---:|---:|---:|---:|---|",
        *(row(method, result) for method, result in results),
        "",
        f"Product recall by copy kind: {kinds}.",
        "",
        "Mixed clusters (originals in them): " + ("; ".join(mixed) or "none") + ".",
        "",
        f"`python bench/unseen.py` on {today()}, {machine()}; model {args.model}; {library_state()}. "
        f"Indexing {indexed:.0f} s (0 when cached), `duplicates()` {seconds:.1f} s (before the three looks "
        f"{before_seconds:.1f} s, in the same run).",
    ])
    print(body)
    if not args.no_write:
        write_section(SECTION, body)
    split.collection.close()


if __name__ == "__main__":
    main()

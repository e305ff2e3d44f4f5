"""A picture kept in many versions (resized, recompressed, lightly cropped): are they found as one?

Run by hand: ``python bench/versions.py`` (after ``bench/dupset.py`` or ``bench/calibrate.py`` has
built the set). Writes "## Many versions of one picture" in docs/benchmarks.md.

The dupset gives every original ten copies of ten kinds. A real folder can hold forty versions of one
photo (exports at several sizes, forwarded copies), and then they are each other's nearest neighbours:
the density that lowers the scores of crowded neighbourhoods (``duplicates.density``) is taken among
them. Scenarios, from the dev half's originals only: five pictures with 15 and with 40 versions each
among 150 other originals, and one photo with 1,000 versions among 100. Each version is the picture at
30-100 % of its size, every third one cropped by up to 8 % a side, saved as JPEG at quality 50-95.

Side by side in one run: the product, and the product with its near-identical rules off
(``NEAR_IDENTICAL`` out of reach: versions counted in the density, no cap on the discount), as before.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import dupset  # noqa: E402
from report import clustered, machine, today, write_section  # noqa: E402

import lookalike  # noqa: E402
from lookalike.index import duplicates  # noqa: E402

SECTION = "## Many versions of one picture"
SCENARIOS = ((5, 15, 150), (5, 40, 150), (1, 1000, 100))  # (pictures, versions of each, other originals)


def versions_of(original: Path, count: int, folder: Path, rng: random.Random) -> list[Path]:
    with Image.open(original) as opened:
        image = opened.convert("RGB")
    made = []
    for number in range(count):
        scale = rng.uniform(0.3, 1.0)
        version = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
        if number % 3 == 1:
            width, height = version.size
            dx, dy = round(width * rng.uniform(0, 0.08)), round(height * rng.uniform(0, 0.08))
            version = version.crop((dx, dy, width - dx, height - dy))
        target = folder / f"{original.parent.name}--v{number}.jpg"
        version.save(target, quality=rng.randint(50, 95))
        made.append(target)
    return made


def build(folder: Path, pictures: int, versions: int, others: int) -> dict[str, str]:
    """Write one scenario's files; returns each file's picture (its dev group)."""
    originals = sorted((dupset.CACHE / "set" / "dev").glob("*/original.*"))
    if len(originals) < pictures + others:
        raise SystemExit("no dev set: run python bench/dupset.py first")
    rng = random.Random(9)
    rng.shuffle(originals)
    picture_of = {}
    for original in originals[:others]:
        target = folder / f"{original.parent.name}.jpg"
        shutil.copy(original, target)
        picture_of[str(target)] = original.parent.name
    for original in originals[others:others + pictures]:
        for path in versions_of(original, versions, folder, rng):
            picture_of[str(path)] = original.parent.name
    return picture_of


def judged(clusters: list, picture_of: dict[str, str], versioned: set[str], versions: int) -> dict:
    """Versions clustered with at least one other version of their picture, pictures found whole (all
    their versions in one cluster), clusters per picture (at most), clusters mixing two pictures."""
    holding: dict[str, Counter] = {name: Counter() for name in versioned}
    mixed = 0
    for number, cluster in enumerate(clusters):
        names = Counter(picture_of[m.path] for m in cluster.members)
        mixed += len(names) > 1
        for name, count in names.items():
            if name in holding and count > 1:
                holding[name][number] += count
    return {"clustered": sum(sum(c.values()) for c in holding.values()),
            "whole": sum(1 for c in holding.values() if list(c.values()) == [versions]),
            "pieces": max(len(c) for c in holding.values()), "mixed": mixed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="efficientnet-lite2")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    rows = []
    for pictures, versions, others in SCENARIOS:
        with tempfile.TemporaryDirectory(prefix="lookalike-versions-") as tmp:
            folder = Path(tmp) / "photos"
            folder.mkdir()
            picture_of = build(folder, pictures, versions, others)
            versioned = {name for path, name in picture_of.items() if "--v" in Path(path).name}
            with lookalike.open(Path(tmp) / "index", model=args.model) as col:
                col.add([folder])
                results = {}
                for mode, near_identical in (("before", 2.0), ("product", duplicates.NEAR_IDENTICAL)):
                    clusters, seconds = clustered(col, {"NEAR_IDENTICAL": near_identical})
                    results[mode] = judged(clusters, picture_of, versioned, versions) | {"seconds": seconds}
        for mode, found in results.items():
            rows.append(f"| {pictures} x {versions} among {others} | {mode} | {found['clustered']}/"
                        f"{pictures * versions} | {found['whole']}/{pictures} | {found['pieces']} | "
                        f"{found['mixed']} | {found['seconds']:.1f} s |")
        print(rows[-2], rows[-1], sep="\n", flush=True)
    body = "\n".join([
        "Dev originals only (`bench/versions.py`): pictures kept in many versions (30-100 % size, every "
        "third cropped up to 8 % a side, JPEG q50-95) among other originals, at the default threshold. "
        "*before*: the near-identical rules off (versions counted in the density, no cap on the "
        "discount: `NEAR_IDENTICAL` out of reach), in the same run on the same index.",
        "",
        "| pictures x versions | mode | versions clustered | pictures whole | clusters per picture (most) "
        "| mixed clusters | `duplicates()` |",
        "|---|---|---:|---:|---:|---:|---:|",
        *rows,
        "",
        f"`python bench/versions.py` on {today()}, {machine()}; model {args.model}.",
    ])
    print(body)
    if not args.no_write:
        write_section(SECTION, body)


if __name__ == "__main__":
    main()

"""A folder of distinct pictures, no copies at all: every cluster the clean-up makes there is wrong.

Run by hand: ``python bench/distinct.py`` (after ``bench/dupset.py`` or ``bench/calibrate.py`` has
built the set). Writes "## Distinct pictures, no copies" in docs/benchmarks.md.

The calibration set gives every original ten copies, and they fill the ten neighbours the density
skips, so there an image's density is its likeness to the nearest *other* picture. In a folder without
copies the density window holds ordinary pictures only, far less alike; this probe is the dev half's
originals alone (hard-negative families included), clustered at the default threshold and at two
others. Side by side in one run on one index: the product, and the product with its density floor and
geometric band as they were before (0.30 and 0.2: a sparse neighbourhood lifted a pair's score above
its cosine, and pairs over 0.2 above the threshold were never verified geometrically).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import dupset  # noqa: E402
from report import clustered, machine, today, write_section  # noqa: E402

import lookalike  # noqa: E402
from lookalike.index import duplicates  # noqa: E402

SECTION = "## Distinct pictures, no copies"
THRESHOLDS = (0.60, duplicates.DEFAULT_THRESHOLD, 0.68)
BEFORE = {"DENSITY_FLOOR": 0.30, "GEOMETRY_BAND": 0.2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="efficientnet-lite2")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    originals = sorted((dupset.CACHE / "set" / "dev").glob("*/original.*"))
    if not originals:
        raise SystemExit("no dev set: run python bench/dupset.py first")
    rows, examples = [], []
    with tempfile.TemporaryDirectory(prefix="lookalike-distinct-") as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        for original in originals:
            shutil.copy(original, folder / f"{original.parent.name}{original.suffix}")
        with lookalike.open(Path(tmp) / "index", model=args.model) as col:
            col.add([folder])
            for threshold in THRESHOLDS:
                for mode, settings in (("before", BEFORE), ("product", {})):
                    clusters, seconds = clustered(col, settings, threshold)
                    moved = sum(len(c.copies) for c in clusters)
                    rows.append(f"| {threshold:.2f} | {mode} | {len(clusters)} | {moved} | {seconds:.1f} s |")
                    if mode == "product" and threshold == duplicates.DEFAULT_THRESHOLD:
                        examples = [" + ".join(Path(m.path).stem for m in c.members) for c in clusters]
    body = "\n".join([
        f"The dev half's {len(originals)} originals alone, no copies (`bench/distinct.py`): every cluster is "
        "wrong, and its copies are pictures a clean-up would move. *before*: the density floor at 0.30 (a "
        "sparse neighbourhood lifted pairs above their cosine) and the geometric band at 0.2, in the same "
        "run on the same index.",
        "",
        "| threshold | mode | clusters (all wrong) | pictures a clean-up would move | `duplicates()` |",
        "|---:|---|---:|---:|---:|",
        *rows,
        "",
        "Left at the default: " + ("; ".join(examples) or "none") + ".",
        "",
        f"`python bench/distinct.py` on {today()}, {machine()}; model {args.model}.",
    ])
    print(body)
    if not args.no_write:
        write_section(SECTION, body)


if __name__ == "__main__":
    main()

"""Hard negatives with no copies beside them: do different pictures of one family stay apart?

Run by hand: ``python bench/originals_only.py`` (after ``bench/calibrate.py``, ``bench/series.py`` and
``bench/unseen.py`` have built their sets; a set not built yet is left out). Writes "## Originals only"
in docs/benchmarks.md; ``--no-write`` prints only.

In the calibration sets every original comes with ten copies, and a picture's copies help keep it apart
from its family's other pictures: a copy that matches its own original better than the stranger's
(``better_elsewhere``), a greyscale copy whose colour original is at hand. A photo library holds most
pictures once. Here each set's originals alone (hard links in the cache, no copies) are indexed and
clustered at the default threshold: any cluster is a mixed one, and the families merged are the failures
a clean-up must never make. The dupset's test half is left out: it is only reported by calibrate.py.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import dupset  # noqa: E402
from calibrate import evaluate, index_split, library_state, product  # noqa: E402
from report import machine, today, write_section  # noqa: E402
from unseen import baselines  # noqa: E402

from lookalike.index.duplicates import DEFAULT_THRESHOLD  # noqa: E402

SECTION = "## Originals only"
BENCH = dupset.CACHE.parent
CACHE = BENCH / "originals-only"
SETS = {  # name: (manifest, which of its items)
    "dev half": (dupset.CACHE / "manifest.json", "dev"),
    "series of drawings": (BENCH / "series" / "manifest.json", None),
    "unseen sources": (BENCH / "unseen" / "manifest.json", None),
    "artist series": (BENCH / "artist-series" / "manifest.json", None),
}


def originals(manifest: Path, split: str | None, folder: Path) -> list[dict]:
    """The set's originals as manifest items, each hard-linked into ``folder`` as ``<group>.jpg``."""
    items = [i for i in json.loads(manifest.read_text())["items"]
             if i["kind"] == "original" and (split is None or i["split"] == split)]
    folder.mkdir(parents=True, exist_ok=True)
    linked = []
    for item in items:
        path = folder / f"{item['group']}.jpg"
        if not path.exists():
            os.link(item["path"], path)
        linked.append({**item, "path": str(path)})
    return linked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="efficientnet-lite2")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    lines = ["| set | method | originals | mixed clusters | originals wrongly paired | families merged |",
             "|---|---|---:|---:|---:|---|"]
    merged = []
    started = time.perf_counter()
    for name, (manifest, split_name) in SETS.items():
        if not manifest.exists():
            print(f"{name}: not built, left out", flush=True)
            continue
        slug = name.split()[0]
        items = originals(manifest, split_name, CACHE / slug / "set")
        split = index_split(slug, items, CACHE / slug / "set", CACHE / slug, args.model)
        ours = evaluate(split, product(DEFAULT_THRESHOLD))
        for method, result in [(f"product, default {DEFAULT_THRESHOLD}", ours), *baselines(split)]:
            families = sorted({family for family, _, _ in result.hard_negative_pairs})
            mixed = "-" if result.clusters is None else f"{len(result.mixed)}/{result.clusters}"
            lines.append(f"| {name} | {method} | {len(items)} | {mixed} | {len(result.wrong_originals)} | "
                         f"{len(families)}: {', '.join(families) or 'none'} |")
            print(lines[-1], flush=True)
        merged.append(f"- {name}: " + ("; ".join(sorted(" + ".join(sorted(pair))
                                                         for pair in ours.wrong_originals)) or "none"))
    body = "\n".join([
        __doc__.split("\n\n")[2].replace("\n", " "), "", *lines, "",
        "Originals the product paired, by set:", "", *merged, "",
        f"`python bench/originals_only.py` on {today()}, {machine()}; model {args.model}; {library_state()}. "
        f"{time.perf_counter() - started:.0f} s in all.",
    ])
    print(body)
    if not args.no_write:
        write_section(SECTION, body)


if __name__ == "__main__":
    main()

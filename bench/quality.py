"""Retrieval quality with the offline model on the near-duplicate set (bench/neardup.py).

Two settings, each copy of each photo a query:
- whole set: the index holds every original and copy; a hit when the top-1 neighbour (itself left out)
  belongs to the copy's own group (its original or another copy of it);
- originals only: the index holds the originals alone (reverse image search: "where is this from?");
  a hit when the top-1 neighbour is the copy's own original.
Writes the "## Retrieval quality" section of docs/benchmarks.md, with per-transform shares.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from neardup import make_set  # noqa: E402
from report import machine, today, write_section  # noqa: E402

import lookalike  # noqa: E402

SECTION = "## Retrieval quality"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="efficientnet-lite2")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        items = make_set(Path(tmp) / "set")
        group_of = {str(item.path): item.group for item in items}
        whole = lookalike.open(Path(tmp) / "whole", model=args.model)
        whole.add([Path(tmp) / "set"])
        originals = lookalike.open(Path(tmp) / "originals", model=args.model)
        originals.add([item.path for item in items if item.transform == "original"])
        hits: dict[str, list[bool]] = defaultdict(list)
        origin_hits: dict[str, list[bool]] = defaultdict(list)
        misses = []
        for item in items:
            if item.transform == "original":
                continue
            top = whole.search(item.path, k=1).neighbours[0]
            hit = group_of[top.image.path] == item.group
            hits[item.transform].append(hit)
            if not hit:
                misses.append(f"{item.path.name} -> {Path(top.image.path).name} ({top.score:.2f})")
            top = originals.search(item.path, k=1).neighbours[0]
            origin_hits[item.transform].append(group_of[top.image.path] == item.group)
            if group_of[top.image.path] != item.group:
                misses.append(f"{item.path.name} -> {Path(top.image.path).name} ({top.score:.2f}, originals)")

    def share(values: list[bool]) -> str:
        return f"{sum(values)}/{len(values)} = {sum(values) / len(values):.3f}"

    every = [h for values in hits.values() for h in values]
    every_origin = [h for values in origin_hits.values() for h in values]
    table = ["| copies | whole set: top-1 from own group | originals only: top-1 is the original |",
             "|---|---:|---:|"]
    table += [f"| {name} | {sum(v)}/{len(v)} | {sum(origin_hits[name])}/{len(v)} |"
              for name, v in hits.items()]
    table.append(f"| **all** | **{share(every)}** | **{share(every_origin)}** |")
    groups = len({item.group for item in items})
    body = "\n".join(table) + (
        f"\n\nMisses: {', '.join(misses) or 'none'}.\n\n"
        f"`python bench/quality.py` on {today()}, {machine()}; model {args.model}; {groups} real photos "
        f"(data/ and scikit-image's sample photographs) with {len(every) // groups} copies each "
        f"({', '.join(hits)}); {len(items)} images in the index."
    )
    print(body)
    if not args.no_write:
        write_section(SECTION, body)


if __name__ == "__main__":
    main()

"""Which file a cluster keeps: is it the original, or one of its copies?

Run by hand: ``python bench/keepers.py`` (after ``bench/calibrate.py`` and ``bench/unseen.py`` have built
their sets; a set not built yet is left out). Writes "## Keepers" in docs/benchmarks.md; ``--no-write``
prints only.

Every original in the sets comes with ten copies (bench/dupset.py), and the original is the file a person
would keep: the whole picture, unframed, in colour, saved once (at JPEG quality 94, the copies at 60-90)
and written first. Here each cluster that holds an original is checked for its keeper, at the default
threshold and keeper policy, beside the rule before it in the same run (each member's content box
compared with the largest, and any colour over greyscale) and "most pixels" (``--keep
pixels,size,oldest``): the keeper decides membership too, so the pairwise precision and recall are
reported with it. A border the colour of the picture's own edge (a
white frame round a drawing on white, round a snowy field under a white sky) cannot be told from the
picture: such a framed copy has the largest content and may be kept. The dupset's test half is left out:
it is only reported by calibrate.py.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import dupset  # noqa: E402
import unseen  # noqa: E402
from calibrate import Split, evaluate, library_state, load_split  # noqa: E402
from report import constants, machine, today, write_section  # noqa: E402

from lookalike.index import duplicates  # noqa: E402
from lookalike.index.duplicates import (  # noqa: E402
    CONTENT_SHARE,
    DEFAULT_POLICY,
    DEFAULT_THRESHOLD,
    KeeperPolicy,
)

SECTION = "## Keepers"
BEFORE = {
    **duplicates._CRITERIA,
    "content": lambda r, largest: 0.0 if r.content_pixels >= CONTENT_SHARE * largest
    else 1 - r.content_pixels / max(largest, 1),
    "colour": lambda r, _: 1.0 if r.traits and r.traits.greyscale else 0.0,
}
"""The keeper criteria before: a member's content box against the largest, any colour over greyscale."""
MOST_PIXELS = KeeperPolicy.parse("pixels,size,oldest")
"""What other tools keep: the most pixels (a frame included), then the largest file, then the oldest."""


def kept(split: Split, policy: KeeperPolicy) -> tuple[list[list[str]], Counter]:
    """The product's clusters (keeper first) and, of those holding an original, what each one keeps."""
    found = split.collection.duplicates(DEFAULT_THRESHOLD, policy=str(policy))
    clusters = [[c.keeper.path, *(m.path for m in c.copies)] for c in found]
    keepers: Counter = Counter()
    for paths in clusters:
        group = split.group.get(paths[0])
        if any(split.kind.get(p) == "original" and split.group.get(p) == group for p in paths):
            keepers[split.kind[paths[0]]] += 1
    return clusters, keepers


def splits(model: str) -> dict[str, Split]:
    """The sets built so far, indexed (cached)."""
    found = {}
    if (dupset.CACHE / "manifest.json").exists():
        found["dev half"] = load_split("dev", model)
    if (unseen.CACHE / "manifest.json").exists():
        found["unseen sources"] = unseen.load(model)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="efficientnet-lite2")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    lines = ["| set | keeper rule | clusters with an original | original kept | a copy kept instead, by kind "
             "| precision | recall |", "|---|---|---:|---:|---|---:|---:|"]
    started = time.perf_counter()
    for name, split in splits(args.model).items():
        for rule, criteria, policy in (("before", BEFORE, DEFAULT_POLICY),
                                       ("product", duplicates._CRITERIA, DEFAULT_POLICY),
                                       ("most pixels", duplicates._CRITERIA, MOST_PIXELS)):
            with constants(duplicates, _CRITERIA=criteria):
                clusters, keepers = kept(split, policy)
            result = evaluate(split, lambda _, found=clusters: found)
            instead = ", ".join(f"{kind} {n}" for kind, n in keepers.most_common() if kind != "original")
            lines.append(f"| {name} | {rule} | {sum(keepers.values())} | {keepers['original']} | "
                         f"{instead or 'none'} | {result.precision:.3f} | {result.recall:.3f} |")
            print(lines[-1], flush=True)
        split.collection.close()
    body = "\n".join([
        __doc__.split("\n\n")[2].replace("\n", " "), "", *lines, "",
        f"`python bench/keepers.py` on {today()}, {machine()}; model {args.model}; {library_state()}. "
        f"{time.perf_counter() - started:.0f} s in all.",
    ])
    print(body)
    if not args.no_write:
        write_section(SECTION, body)


if __name__ == "__main__":
    main()

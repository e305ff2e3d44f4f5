"""Does the missing-colour look keep every copy, and what does it catch that the other colour looks miss?

Run by hand: ``python bench/missing_hues.py`` (after the benches that build and index the sets it reads:
``bench/calibrate.py``, ``bench/unseen.py``, ``bench/series.py``, ``bench/colour_variants.py`` with and
without ``--near-hues`` and ``--muted``, ``bench/shots.py``; a set not built yet is left out). Writes
"## Missing colours" in docs/benchmarks.md.

:func:`~lookalike.index.looks.missing_hues` tells two pictures apart when a colour fills a fifth of
one and the other has no trace of it. Here every pair of each set's pictures at cosine 0.6 and up
(stored vectors), neither greyscale, is looked at from the traits stored at indexing, as a duplicate run
does: pairs of one picture (the files of one folder: an original and its copies, or a variant and its
copies) must never be flagged; of pairs of different pictures, those flagged that no other colour look
(:func:`~lookalike.index.looks.other_colours`, ``recoloured_tints``, ``inversions``,
``blank_beside_content``) flags are the look's gain. Side by side in one run: the product; the look at
looser settings (a tenth of the cells, chroma 30, traces from 15, pale from 130), for the margin; and
the product without each of its two guards: pale cells counted (``PALE`` out of reach), and a picture
lacking the colour allowed to lack it though banded (a caption band may have covered it), at the
product's settings and at the looser ones; and the product with the band guard as it was before it
was bounded by the band's size (``ImageRecord.coverable``): a banded picture might lack any colour.
Only the dev half of the dupset is read: the test half stays unseen.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from unittest import mock

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import dupset  # noqa: E402
from report import machine, search_settings, today, write_section  # noqa: E402

import lookalike  # noqa: E402
from lookalike.index import (
    looks,  # noqa: E402
)
from lookalike.index.records import ImageRecord  # noqa: E402

SECTION = "## Missing colours"
PAIRED = 0.6  # cosine from which pairs are looked at: under the default threshold, so near misses count
LOOSER = {"HUE_AREA": 0.1, "HUE_CHROMA": 30.0, "TRACE_CHROMA": 15.0, "PALE": 130.0}
BENCH = dupset.CACHE.parent
SETS = {
    "dev half": dupset.CACHE / "index-efficientnet-lite2-dev",
    "unseen sources": BENCH / "unseen" / "index-efficientnet-lite2-unseen",
    "series of drawings": BENCH / "series" / "index-efficientnet-lite2-series",
    "colour variants": dupset.CACHE / "colour-variants" / "index-efficientnet-lite2",
    "near hues": dupset.CACHE / "near-hues" / "index-efficientnet-lite2",
    "muted variants": dupset.CACHE / "muted" / "index-efficientnet-lite2",
    "shots control, dev": BENCH / "shots" / "dev" / "control" / "index-efficientnet-lite2",
    "shots control, unseen": BENCH / "shots" / "unseen" / "control" / "index-efficientnet-lite2",
}


def coloured_pairs(index: Path) -> tuple[list[ImageRecord], list[ImageRecord], np.ndarray]:
    """The pairs at ``PAIRED`` and up of an index's colour pictures (both records), and whether each
    pair is of one picture (one folder)."""
    records, vectors = [], []
    with lookalike.open(index, model="efficientnet-lite2") as col:
        for ids, found in col.store.iter_vectors():
            rows = {row.id: row for row in col.store.get_many([int(i) for i in ids])}
            for image_id, vector in zip(ids, found, strict=True):
                record = ImageRecord.of(rows[int(image_id)])
                if record.traits is not None and not record.traits.greyscale:
                    records.append(record)
                    vectors.append(vector)
    unit = np.asarray(vectors, dtype=np.float32)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    first, second = np.nonzero(np.triu(unit @ unit.T >= PAIRED, 1))
    mine, theirs = [records[i] for i in first], [records[i] for i in second]
    same = np.array([Path(a.path).parent == Path(b.path).parent for a, b in zip(mine, theirs, strict=True)])
    return mine, theirs, same


def other_looks(mine: list[ImageRecord], theirs: list[ImageRecord]) -> np.ndarray:
    """The pairs the second look's other colour checks already tell apart."""
    hues = np.array([looks.other_colours(a.traits, b.traits) for a, b in zip(mine, theirs, strict=True)],
                    dtype=bool)
    return (looks.inversions(mine, theirs) | looks.blank_beside_content(mine, theirs)
            | looks.recoloured_tints(mine, theirs) | hues)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    rows = []
    for name, index in SETS.items():
        if not (index / "lookalike.db").exists():
            print(f"{name}: not built, left out", flush=True)
            continue
        mine, theirs, same = coloured_pairs(index)
        caught = other_looks(mine, theirs)
        product = looks.missing_hues(mine, theirs)
        with search_settings(**LOOSER):
            looser = looks.missing_hues(mine, theirs)
        with search_settings(PALE=256.0):
            pale_counted = looks.missing_hues(mine, theirs)
        with mock.patch.object(ImageRecord, "coverable", property(lambda record: float(record.banded))):
            unbounded = looks.missing_hues(mine, theirs)
        with mock.patch.object(ImageRecord, "banded", property(lambda record: False)):
            bands_ignored = looks.missing_hues(mine, theirs)
            with search_settings(**LOOSER):
                looser_bands_ignored = looks.missing_hues(mine, theirs)
        gained = ~same & ~caught
        rows.append(f"| {name} | {int((product & same).sum()):,} of {int(same.sum()):,} "
                    f"| {int((looser & same).sum()):,} | {int((pale_counted & same).sum()):,} "
                    f"| {int((bands_ignored & same).sum()):,} | {int((looser_bands_ignored & same).sum()):,} "
                    f"| {int((unbounded & same).sum()):,} | {int((product & gained).sum()):,} of "
                    f"{int(gained.sum()):,} | {int((looser & gained).sum()):,} "
                    f"| {int((unbounded & gained).sum()):,} |")
        print(rows[-1], flush=True)
    body = "\n".join([
        __doc__.split("\n\n", 2)[2].strip(),
        "",
        "| set | pairs of one picture flagged | looser | pale counted | bands ignored | both looser "
        "and bands ignored | any band covers all (before) | pairs of different pictures newly flagged (no "
        "other colour look flags them) | looser | any band covers all (before) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
        f"`python bench/missing_hues.py` on {today()}, {machine()}; model efficientnet-lite2.",
    ])
    print(body)
    if not args.no_write:
        write_section(SECTION, body)


if __name__ == "__main__":
    main()

"""Series one artist drew: numbered drawings of one kind that are different pictures, never to be merged.

Run by hand: ``python bench/artist_series.py`` (after ``bench/dupset.py`` has unpacked openclipart-png).
Builds the set in ``~/.cache/lookalike-bench/artist-series`` and writes "## Series one artist drew" in
docs/benchmarks.md; ``--no-write`` prints only.

Many of the dupset's hard-negative families are this kind: one artist's numbered drawings (a clock at
other times, a battery at other charge, a horse drawn six ways), where a hand, a bar or a pose is what
differs and the rest is one drawing. Four to a family and half of them on the test side, they are too
few to learn from, and bench/series.py has only flags and pictograms. Here every openclipart series of
three or more numbered files (``name_01.png``, ``name 2.png``) that no other set draws on: playing cards
with other pips, smileys, clocks, stick men, weather signs, patterns, one artist's animals. Files the
dupset leaves out of its singles (``dupset.NOT_SINGLES``: arrows, flowchart shapes, jigsaw pieces) stay
out, as do drawings that are another one turned or mirrored (``series.untwinned``), and a series keeps at
most ``SERIES_MAX`` drawings. Most are rendered small (100-170 pixels on the short side): from
``SMALLEST`` up they are enlarged to the dupset's 200. Two drawings are the same picture only where their
thumbnails are all but equal (``SAME``): the dupset's looser test takes a smiley with a tear for the one
without, a clock at 11:55 for the one at noon, and those are the pairs this set is for. Each drawing gets
the dupset's ten copies. Nothing here chooses a setting.
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import dupset  # noqa: E402
import series  # noqa: E402

SECTION = "## Series one artist drew"
CACHE = dupset.CACHE.parent / "artist-series"
VERSION = 1  # bump when the selection changes: the cached set is rebuilt
SERIES_MAX = 8  # more would let one series (23 stick men) outweigh the rest
NUMBERED = re.compile(r"^(?P<name>.+?)[_ -]?\d{1,2}$")
SERIES_MIN = 3
SMALLEST = 96  # pixels on the short side: clip art rendered small is enlarged to dupset.MIN_SIDE
SAME = 0.25  # thumbnail distance (dupset.select's ``same``): a smiley with a tear and without is 0.33 apart


def candidates(openclipart: Path) -> list[dupset.Candidate]:
    """Numbered openclipart drawings no other set uses, by series (folder and name without the number)."""
    used = {c.path.name for c in dupset.candidates(dupset.CACHE) + series.candidates(openclipart)}
    found: dict[tuple[Path, str], list[Path]] = defaultdict(list)
    for path in sorted(openclipart.rglob("*.png")):
        numbered = NUMBERED.match(path.stem)
        if numbered and path.name not in used and not dupset.NOT_SINGLES.search(str(path)):
            used.add(path.name)  # one file per name: openclipart files a drawing under several folders
            found[path.parent, numbered["name"].rstrip("_ -")].append(path)
    return [dupset.Candidate(path, "openclipart-png", f"{folder.name}/{name}")
            for (folder, name), paths in sorted(found.items()) if len(paths) >= SERIES_MIN
            for path in paths[:SERIES_MAX]]


def build(force: bool = False) -> dict:
    return series.build(force, CACHE, VERSION, candidates, SMALLEST, SAME)


if __name__ == "__main__":
    series.run(build(), CACHE, SECTION, "bench/artist_series.py",
               "Numbered openclipart drawings by one artist no other set uses (`bench/artist_series.py`)")

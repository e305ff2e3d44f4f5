"""Series from the dupset's own packages, of files it does not use: stamps, weather icons, screenshots.

Run by hand: ``python bench/package_series.py`` (after ``bench/dupset.py`` has unpacked its packages).
Builds the set in ``~/.cache/lookalike-bench/package-series`` and writes "## Series from the dupset's
packages" in docs/benchmarks.md; ``--no-write`` prints only.

Half of the dupset's hard-negative families are Tux Paint's and Kodi's (a hand spelling the letters a to
h, a gnu calf's poses, ladybugs, Kodi's screenshots, Tux Paint's world maps), four to a family, and the
other series sets are openclipart's. Here the series of those packages the dupset does not draw on: the
hand spelling the other letters and the digits, gravestones, flowers, yen coins and ceps among the
stamps; Kodi's weather icons (one artist's sun, clouds and rain in every combination) and the
screenshots of its touch skin; Tux Paint's manual's screenshots of its own screens. Alike in everything
but the part that makes them another letter, coin, sky or screen. A series longer than ``SERIES_MAX`` is
cut into series of that many in order (a pair across two is still counted as wrongly paired). Files the
dupset took (as a family's or a single) stay out. Each picture gets the dupset's ten copies. Nothing
here chooses a setting.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import artist_series  # noqa: E402
import dupset  # noqa: E402
import series  # noqa: E402

SECTION = "## Series from the dupset's packages"
CACHE = dupset.CACHE.parent / "package-series"
VERSION = 1  # bump when the selection changes: the cached set is rebuilt
SERIES_MAX = 8  # as bench/artist_series.py: no one series outweighs the rest
STAMPS = "tuxpaint-stamps-default/usr/share/tuxpaint/stamps"
KODI = "kodi-data/usr/share/kodi/addons"
MANUAL = "tuxpaint-data/usr/share/doc/tuxpaint-data"
SERIES = {  # name: (package, files)
    "asl hand": ("tuxpaint-stamps-default", f"{STAMPS}/symbols/alphabets/asl/asl_*.png"),
    "gravestones": ("tuxpaint-stamps-default", f"{STAMPS}/seasonal/halloween/grave-*.png"),
    "flowers": ("tuxpaint-stamps-default", f"{STAMPS}/plants/flowers/flower*.png"),
    "yen coins": ("tuxpaint-stamps-default", f"{STAMPS}/symbols/money/japanese/yen*.png"),
    "ceps": ("tuxpaint-stamps-default", f"{STAMPS}/plants/mushrooms/cep*.png"),
    "weather icons": ("kodi-data", f"{KODI}/resource.images.weathericons.default/resources/*.png"),
    "touch skin screenshots": ("kodi-data", f"{KODI}/skin.estouchy/resources/screenshot-*.jpg"),
    "tux paint manual": ("tuxpaint-data", f"{MANUAL}/html/images/*.*"),
    "tux paint manual captures": ("tuxpaint-data", f"{MANUAL}/fr_FR.UTF-8/html/images/captures/*.jpg"),
}
PACKAGES = tuple(sorted({package for package, _ in SERIES.values()}))


def candidates(unpacked: Path) -> list[dupset.Candidate]:
    """The files of each series in ``SERIES`` that the dupset has not taken, by series."""
    manifest = json.loads((dupset.CACHE / "manifest.json").read_text())
    used = {Path(item["source"]).resolve() for item in manifest["items"] if item["kind"] == "original"}
    found = []
    for name, (package, pattern) in SERIES.items():
        paths = [p for p in sorted(unpacked.glob(pattern), key=_natural)
                 if p.suffix in (".png", ".jpg") and p.resolve() not in used]
        for start in range(0, len(paths), SERIES_MAX):
            family = name if len(paths) <= SERIES_MAX else f"{name} {start // SERIES_MAX + 1}"
            found.extend(dupset.Candidate(p, package, family) for p in paths[start:start + SERIES_MAX])
    return found


def _natural(path: Path) -> list:
    """``path``'s name with its numbers as numbers: weather icon 2 before 10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def build(force: bool = False) -> dict:
    """As the artist set: small drawings enlarged, and two are one picture only where all but equal."""
    return series.build(force, CACHE, VERSION, candidates, artist_series.SMALLEST, artist_series.SAME,
                        packages=PACKAGES, folder="")  # the series' patterns name each package's folder


if __name__ == "__main__":
    series.run(build(), CACHE, SECTION, "bench/package_series.py",
               "Series of the dupset's packages' files it does not use (`bench/package_series.py`)")

"""Colour variants of one design are not duplicates: a probe made from the dev half's originals only.

Run by hand: ``python bench/colour_variants.py`` (after ``bench/calibrate.py`` or ``bench/dupset.py``
has built the set). Writes "## Colour variants probe" in docs/benchmarks.md.

The dupset's hard-negative families hold only a few colour variants (balloons, flags). This probe makes
many, the way a designer would: each of the dev half's most colourful originals with its hue turned by
120 and 240 degrees (the same design in other colours), its photographic negative, its lightness
turned over with hue and chroma kept (a dark mode of a light design, as wallpapers ship them), and, for
a drawing on white, the drawing on a dark background. Every variant
gets three copies (greyscale, 30 % brighter, quarter size), so a variant with its copies is one
picture, and two variants of one design are two. A greyscale copy of a recoloured design is the hard
case: the same drawing, and sometimes the same luminance. Only dev originals are used, so the probe
may guide the rules; the test half stays unseen.

``--near-hues`` makes the hardest colour variants instead: the hue turned by only 30 degrees either way
and by 60 (an orange and a yellow version of one design, a blue and a teal one), where a brightened
copy's clipped colours move its hues about as far. Written as "## Near-hue variants probe".

``--muted`` turns the hues of the dev originals with little colour (mean saturation from the
colour look's ``COLOURFUL`` to 0.15: photos, dark gradient wallpapers, muted drawings) by 45, 90 and 180
degrees: a blue and a teal version of one dark wallpaper, where there is little colour to tell them
apart by. Written as "## Muted colour variants probe".
"""

from __future__ import annotations

import argparse
import collections
import math
import sys
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import dupset  # noqa: E402
from report import machine, today, write_section  # noqa: E402

import lookalike  # noqa: E402
from lookalike.embedder.traits import COLOURFUL, image_traits  # noqa: E402

DESIGNS = 40
MIN_COLOURFULNESS = 0.15  # designs with colour to vary; the muted probe takes those under it
WHITE_SHARE = 0.25  # a drawing on white: at least this share of its pixels near white
VARIANTS = {
    "original": lambda image: image,
    "hue +120": lambda image: hue_turned(image, 120),
    "hue +240": lambda image: hue_turned(image, 240),
    "negative": ImageOps.invert,
    "lightness inverted": lambda image: lightness_inverted(image),
    "dark background": lambda image: dark_background(image),
}
NEAR_VARIANTS = {
    "original": lambda image: image,
    "hue +30": lambda image: hue_turned(image, 30),
    "hue -30": lambda image: hue_turned(image, -30),
    "hue +60": lambda image: hue_turned(image, 60),
}
MUTED_VARIANTS = {
    "original": lambda image: image,
    "hue +45": lambda image: hue_turned(image, 45),
    "hue +90": lambda image: hue_turned(image, 90),
    "hue +180": lambda image: hue_turned(image, 180),
}


class Probe(NamedTuple):
    variants: dict
    saturation: tuple[float, float]  # the designs' mean saturation, from and under
    folder: str
    section: str
    note: str


PROBES = {
    "colour": Probe(VARIANTS, (MIN_COLOURFULNESS, math.inf), "colour-variants", "## Colour variants probe",
                    "; a dark background for drawings on white only"),
    "near-hues": Probe(NEAR_VARIANTS, (MIN_COLOURFULNESS, math.inf), "near-hues",
                       "## Near-hue variants probe",
                       ". The dev set's balloons are one drawing in four colours: turned 30 to 90 degrees, "
                       "two of them can land on one colour, and those merge rightly"),
    "muted": Probe(MUTED_VARIANTS, (COLOURFUL, MIN_COLOURFULNESS), "muted", "## Muted colour variants probe",
                   ""),
}
COPIES = {
    "greyscale": lambda image: ImageOps.grayscale(image).convert("RGB"),
    "brighter": lambda image: ImageEnhance.Brightness(image).enhance(1.3),
    "quarter size": lambda image: image.resize((max(1, image.width // 4), max(1, image.height // 4))),
}


def hue_turned(image: Image.Image, degrees: int) -> Image.Image:
    hsv = np.asarray(image.convert("HSV")).copy()
    hsv[..., 0] = (hsv[..., 0].astype(np.int32) + round(degrees / 360 * 256)) % 256
    return Image.fromarray(hsv, "HSV").convert("RGB")


def lightness_inverted(image: Image.Image) -> Image.Image:
    """Dark mode made from a light design (or the other way round): lightness turned over, hue and chroma
    kept. Adding ``255 - max - min`` to every channel maps max to 255 - min and min to 255 - max."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.int16)
    shift = 255 - rgb.max(axis=2, keepdims=True) - rgb.min(axis=2, keepdims=True)
    return Image.fromarray((rgb + shift).clip(0, 255).astype(np.uint8), "RGB")


def dark_background(image: Image.Image) -> Image.Image | None:
    """A drawing on white moved onto a dark background (as icon themes and wallpapers ship a dark mode):
    the near-white pixels become dark grey, the drawing keeps its colours. None for a picture that is
    not a drawing on white (under ``WHITE_SHARE`` of its pixels near white)."""
    rgb = np.asarray(image.convert("RGB")).copy()
    white = rgb.min(axis=2) >= 230
    if white.mean() < WHITE_SHARE:
        return None
    rgb[white] = (30, 30, 34)
    return Image.fromarray(rgb, "RGB")


def build(folder: Path, probe: Probe) -> dict[Path, tuple[str, str, str]]:
    """Write the probe's files; returns each file's (design, variant, copy kind)."""
    originals = sorted((dupset.CACHE / "set" / "dev").glob("*/original.*"))
    if not originals:
        raise SystemExit("no dev set: run python bench/dupset.py first")
    made: dict[Path, tuple[str, str]] = {}
    designs = 0
    for path in originals:
        with Image.open(path) as opened:
            image = opened.convert("RGB")
        if not probe.saturation[0] <= image_traits(image).colourfulness < probe.saturation[1]:
            continue
        image.thumbnail((900, 900))
        for variant, make in probe.variants.items():
            if (picture := make(image)) is None:
                continue
            slug = variant.replace(" +", "").replace(" -", "minus").replace(" ", "-")
            where = folder / f"{path.parent.name}--{slug}"
            where.mkdir(parents=True, exist_ok=True)
            for kind, copy in {"original": lambda im: im, **COPIES}.items():
                target = where / f"{kind.replace(' ', '-')}.jpg"
                copy(picture).save(target, quality=90)
                made[target] = (path.parent.name, variant, kind)
        designs += 1
        if designs == DESIGNS:
            break
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="efficientnet-lite2")
    parser.add_argument("--no-write", action="store_true")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--near-hues", action="store_true", help="hue variants 30-60 degrees apart")
    which.add_argument("--muted", action="store_true", help="hue variants of pictures with little colour")
    args = parser.parse_args()
    name = "near-hues" if args.near_hues else "muted" if args.muted else "colour"
    probe = PROBES[name]
    root = dupset.CACHE / probe.folder
    folder = root / "set"
    files = build(folder, probe)
    started = time.perf_counter()
    with lookalike.open(root / f"index-{args.model}", model=args.model) as col:
        col.add([folder], prune=True)
        col.store.forget_remembered()  # timed as a first run
        indexed = time.perf_counter() - started
        started = time.perf_counter()
        clusters = col.duplicates()
        clustered = time.perf_counter() - started
    picture = {str(path): files[path][:2] for path in files}
    kind_of = {str(path): files[path][2] for path in files}
    mixed = [c for c in clusters if len({picture[m.path] for m in c.members}) > 1]
    combos = collections.Counter(" + ".join(sorted({picture[m.path][1] for m in c.members})) for c in mixed)
    clusters_of: dict[tuple[str, str], set[int]] = collections.defaultdict(set)
    clustered_files = collections.Counter()
    for number, c in enumerate(clusters):
        for m in c.members:
            clusters_of[picture[m.path]].add(number)
            clustered_files[picture[m.path]] += 1
    pictures = set(picture.values())
    whole = sum(1 for key in pictures
                if len(clusters_of[key]) == 1 and clustered_files[key] == 1 + len(COPIES))
    designs = len({design for design, _ in pictures})
    # a copy is found when it is in one cluster with its own variant's original file
    cluster_of = {m.path: number for number, c in enumerate(clusters) for m in c.members}
    original_of = {key: path for path, key in picture.items() if kind_of[path] == "original"}
    found = collections.Counter(
        kind_of[path] for path, key in picture.items()
        if kind_of[path] != "original" and cluster_of.get(path, -1) == cluster_of.get(original_of[key], -2)
    )

    def named(member, keeper) -> str:
        """variant/copy, with its design where the keeper's is another."""
        design, variant = Path(member.path).parent.name.split("--")
        other = "" if design == Path(keeper.path).parent.name.split("--")[0] else f"{design} "
        return f"{other}{variant}/{Path(member.path).stem}"

    command = "python bench/colour_variants.py" + ("" if name == "colour" else f" --{name}")
    low, high = probe.saturation
    lines = [
        f"{designs} designs from the dev half's originals (mean saturation {low}"
        + (" and up" if math.isinf(high) else f" to under {high}") + "), "
        f"each as up to {len(probe.variants)} variants ({', '.join(probe.variants)}"
        + f") with {len(COPIES)} copies each ({', '.join(COPIES)}): {len(files)} files, {len(pictures)} "
        "pictures. Default threshold; a cluster is mixed when it holds two variants (of one design or, "
        f"named in the list, of two){probe.note}.",
        "",
        "| clusters | mixed | pictures kept whole (the variant and its copies in one cluster) |",
        "|---:|---:|---:|",
        f"| {len(clusters)} | {len(mixed)} | {whole}/{len(pictures)} |",
        "",
        "Copies in one cluster with their own variant's original: "
        + ", ".join(f"{kind} {found[kind]}/{len(pictures)}" for kind in COPIES) + ".",
        "",
        "Mixed clusters by the variants they hold: "
        + (", ".join(f"{combo} {n}" for combo, n in sorted(combos.items())) or "none") + ".",
        "",
        *(f"- {picture[c.keeper.path][0]}: {', '.join(sorted(named(m, c.keeper) for m in c.members))}"
          for c in mixed[:12]),
        "",
        f"`{command}` on {today()}, {machine()}; model {args.model}. Indexing "
        f"{indexed:.0f} s (0 when cached), `duplicates()` {clustered:.1f} s.",
    ]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section(probe.section, body)


if __name__ == "__main__":
    main()

"""The duplicate-detection set: real originals from Debian and PyPI packages, ten kinds of copies each.

Built for issue 9 (calibrate on dev, report on test). ``python bench/dupset.py`` downloads what it
needs (``apt-get download`` + ``dpkg-deb -x``, no installation; scikit-image's photographs from the
installed package), picks the originals, writes every copy and a manifest into the cache
(``~/.cache/lookalike-bench/dupset``, or ``$LOOKALIKE_BENCH_CACHE/dupset``). Nothing is committed:
the images stay in the cache, and a rebuild with the same code gives the same set (fixed seeds).

Originals: wallpapers, photos, screenshots and clip art, at least 200 px on the short side, not near
blank, no two the same picture (pixel hash, then a colour thumbnail check that also catches one
picture shipped at two sizes). The wallpaper packages of GNOME, Plasma (KDE), MATE, UKUI and Lomiri
are left out on purpose (kept for an independent check), and so is artwork named after Plasma in
other packages.

**Hard negatives** are deliberate: *families* of originals that are different pictures a clean-up
must never merge - one design in several colours (wallpapers in light/dark/green, flags that are the
same tricolour in other colours, a balloon in six colours) and series of similar but distinct
pictures (screenshots of one program, photos of bark, hands spelling letters, a horse drawn six
ways, a clock face at other times). At most FAMILY_MAX (4) originals per family, so that no single
family outweighs the rest in pairwise scores. A family goes whole to one side of the split.

Copy kinds (each an independent file made from the original): half size, quarter size, crop 10-25 %,
mirror, brighter, greyscale, caption bar, quarter turn, wide uniform border, JPEG quality 30. Every
copy is re-encoded as JPEG at a random quality 60-90 (the ``jpeg q30`` one at 30); originals are
stored as JPEG quality 95, at most 1600 px on the long side.

Manifest (``manifest.json``): ``items`` with group (the original's name), kind ("original" or the
copy kind), split ("dev"/"test"), family (hard-negative family or null), path, source, package;
``sources`` with package versions and licences; ``families``; ``skipped`` with the reason per file.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageOps

VERSION = 3  # bump when the selection or the copies change: the cached set is rebuilt
SEED = 9
CACHE = Path(os.environ.get("LOOKALIKE_BENCH_CACHE", Path.home() / ".cache" / "lookalike-bench")) / "dupset"
MIN_SIDE = 200
MAX_SIDE = 1600
FAMILY_MAX = 4  # more would let one family outweigh the rest in pairwise scores
SAME_PICTURE = 6.0  # mean distance (0-255) of 16 x 16 colour thumbnails: one picture shipped at two sizes
MAX_PIXELS = 40_000_000  # some clip art is 13000 px wide: skipped rather than decoded at 670 MB

NOT_SINGLES = re.compile(
    r"/icons/|/buttons/|/arrows/|/gradients/|/flowchart/|/callouts/|/flags/|/aiga-symbols/|/map_symbols/"
    r"|/roadsigns/|/unsorted/duplicates/|/jigsaw/|/hummers/|_bw|b_w_|bw_")
"""Openclipart files no set draws as distinct pictures: icon themes, arrows, gradients, flowcharts, flags
(the series set's); black-and-white twins of colour drawings, which are "greyscale" copies; jigsaw pieces
and hummers, drawn as one shape turned or mirrored: copies, not distinct pictures."""

KINDS = ("half size", "quarter size", "crop", "mirror", "brighter", "greyscale", "caption",
         "quarter turn", "border", "jpeg q30")

# Debian packages (bookworm) and what to take from each. Licences as their copyright files state.
PACKAGES = {
    "desktop-base": "GPL-2+ / GPL-3+ or CC-BY-SA-3.0 (Debian themes)",
    "sway-backgrounds": "CC0 / MIT-like (sway wallpaper)",
    "xfdesktop4-data": "GPL-2+",
    "lxqt-themes": "LGPL-2.1+ / CC-BY-SA-3.0 (wallpapers per their copyright file)",
    "fluxbox": "Expat / CC-BY-SA-3",
    "kodi-data": "GPL-2+ (Estuary skin artwork)",
    "hugin-data": "GPL-2+ / GFDL (manual illustrations)",
    "tuxpaint-data": "GPL-2+ / public domain (templates and starters)",
    "tuxpaint-stamps-default": "GPL-2",
    "openclipart-png": "public domain (Open Clip Art Library 0.18)",
}
EXCLUDED_PACKAGES = ("gnome-backgrounds", "plasma-workspace-wallpapers", "mate-backgrounds",
                     "ukui-wallpapers", "lomiri-wallpapers")


@dataclass(frozen=True)
class Candidate:
    path: Path
    source: str  # package name or "scikit-image"
    family: str | None = None


@dataclass
class Entry:
    group: str
    kind: str
    split: str
    family: str | None
    path: str
    source: str
    package: str


def run(*cmd: str, cwd: Path | None = None) -> str:
    return subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True).stdout


def fetch_packages(cache: Path, packages: Iterable[str] = PACKAGES) -> dict[str, str]:
    """Download and unpack each package into ``cache/x/<name>`` (once); return name -> version."""
    debs, tree = cache / "debs", cache / "x"
    debs.mkdir(parents=True, exist_ok=True)
    versions = {}
    missing = [p for p in packages if not list(debs.glob(f"{p}_*.deb"))]
    if missing:
        try:
            run("apt-get", "download", *missing, cwd=debs)
        except subprocess.CalledProcessError:
            run("apt-get", "update")
            run("apt-get", "download", *missing, cwd=debs)
    for name in packages:
        deb, = sorted(debs.glob(f"{name}_*.deb"))
        versions[name] = run("dpkg-deb", "-f", str(deb), "Version").strip()
        if not (tree / name).exists():
            (tree / name).mkdir(parents=True)
            run("dpkg-deb", "-x", str(deb), str(tree / name))
    return versions


def _glob(root: Path, *patterns: str) -> list[Path]:
    return sorted({p for pattern in patterns for p in root.glob(pattern) if p.is_file()})


def candidates(cache: Path) -> list[Candidate]:
    """Every file offered as an original, with its hard-negative family where it has one."""
    x = cache / "x"
    out: list[Candidate] = []

    def add(package: str, paths: list[Path], family: str | None = None) -> None:
        out.extend(Candidate(p, package, family) for p in paths)

    # desktop-base: one picture per theme (its grub, login and plymouth images are one artwork).
    db = x / "desktop-base/usr/share"
    add("desktop-base", _glob(db, "desktop-base/emerald-theme/grub/grub-16x9.png",
                              "plymouth/themes/*/plymouth_background_*.png",
                              "plymouth/themes/*/background.png"))
    add("sway-backgrounds", _glob(x / "sway-backgrounds", "**/Sway_Wallpaper_Blue_1920x1080.png"))
    xfce = x / "xfdesktop4-data/usr/share/backgrounds/xfce"
    add("xfdesktop4-data", _glob(xfce, "xfce-blue.jpg", "xfce-teal.jpg"), "xfce blue/teal")
    add("xfdesktop4-data", _glob(xfce, "xfce-stripes.png", "xfce-verticals.png"), "xfce stripes/verticals")
    lx = x / "lxqt-themes/usr/share/lxqt/wallpapers"
    add("lxqt-themes", _glob(lx, "origami-dark.png", "origami-light.png", "lxqt-origami-green.png"),
        "lxqt origami colours")
    add("lxqt-themes", _glob(lx, "waves-logo.png", "waves-purple-logo.jpg"), "lxqt waves colours")
    add("lxqt-themes", [p for p in _glob(lx, "*") if "plasma" not in p.name and p.stem not in (
        "origami-dark", "origami-light", "lxqt-origami-green", "origami-bright-logo", "waves-logo",
        "waves-purple-logo", "triangles-logo")])
    add("fluxbox", _glob(x / "fluxbox/usr/share/images/fluxbox", "*"))
    kodi = x / "kodi-data/usr/share/kodi"
    estuary = kodi / "addons/skin.estuary"
    add("kodi-data", _glob(estuary, "resources/screenshot-0*.jpg"), "kodi screenshots")
    add("kodi-data", _glob(estuary, "extras/backgrounds/pattern*.jpg"), "kodi patterns")
    add("kodi-data", _glob(estuary, "extras/home-images/*.jpg", "resources/fanart.jpg",
                           "extras/backgrounds/primary.jpg") + _glob(kodi, "media/splash.jpg"))
    hugin = x / "hugin-data/usr/share/hugin/xrc/data/help_en_EN"
    add("hugin-data", _glob(hugin, "250px-LagardePont-defish.jpg", "250px-Little_planet.jpg",
                            "300px-Lamp_enfuse.jpg", "360px-Pantheon-150x100-rect-panini.jpg",
                            "800px-C_Marchi-GrandCentral-adj.jpg", "Big_ben_equirectangular.jpg",
                            "Medinet_habu_horizontal_fisheye.jpg", "SB_Parallax.jpg", "CA_tCA00.jpg",
                            "CA_fringes00.jpg", "Celeste_cpeditor_pre.jpg", "Autopano-searching.png"))
    add("hugin-data", _glob(hugin, "700px-Hugin2013_photos_tab.png", "700px-Hugin2013_preview_tab.png",
                            "700px-Autopano-done.png"), "hugin screenshots")
    tp = x / "tuxpaint-data/usr/share/tuxpaint"
    add("tuxpaint-data", _glob(tp, "templates/trees_above.jpg", "templates/trees_at_dusk.jpg",
                               "templates/redwoods_above.jpg"), "tuxpaint trees")
    add("tuxpaint-data", _glob(tp, "templates/ocean_splash.jpg", "templates/ocean_waves.jpg"),
        "tuxpaint ocean")
    bark = ("burnt_bark", "mossy_bark", "mossy_log", "mudstone", "rocks")
    add("tuxpaint-data", _glob(tp, *(f"templates/{name}.jpg" for name in bark)), "tuxpaint bark and rock")
    add("tuxpaint-data", _glob(tp, "templates/cliff.jpg", "templates/corn_maze.jpg",
                               "templates/jellyfish.jpg",
                               "templates/lighthouse.jpg", "templates/sheep.jpg", "templates/spiders_web.jpg",
                               "templates/sun_behind_clouds.jpg", "templates/sun_behind_leaves.jpg",
                               "templates/wool_mill_machine.jpg"))
    add("tuxpaint-data", _glob(tp, "starters/worldmap_*.png"), "tuxpaint world maps")
    add("tuxpaint-data", [p for p in _glob(tp, "starters/*.png") if not re.search(
        r"worldmap|frame_|-back|grid_|jigsaw_", p.name)])
    st = x / "tuxpaint-stamps-default/usr/share/tuxpaint/stamps"
    add("tuxpaint-stamps-default", _glob(st, "symbols/alphabets/asl/asl_[a-h].png"), "asl hands")
    add("tuxpaint-stamps-default", _glob(st, "animals/mammals/bovines/gnu*.png"), "gnu calf poses")
    add("tuxpaint-stamps-default", _glob(st, "animals/insects/cartoon/ladybug*.png"), "ladybugs")
    add("tuxpaint-stamps-default", [p for p in _glob(st, "**/*.png") if not re.search(
        r"mirror|/asl/|gnu|ladybug|inukshuk-outline|/houses/", str(p))])
    oc = x / "openclipart-png/usr/share/openclipart/png"
    families = {
        "flags vertical tricolour": ["signs_and_symbols/flags/europe/*/france.png", "*/*/europe/*/italy.png",
                                     "*/*/europe/*/belgium.png", "*/*/europe/ireland.png",
                                     "*/*/europe/romania.png"],
        "flags horizontal tricolour": ["*/*/europe/netherlands.png", "*/*/europe/russian_federation.png",
                                       "*/*/europe/hungary.png", "*/*/europe/bulgaria.png",
                                       "*/*/europe/lithuania.png", "*/*/europe/*/germany.png",
                                       "*/*/europe/estonia.png"],
        "balloon colours": ["recreation/party/balloon-*-aj.png"],
        "harlequin patterns": ["special/patterns/pattern-diamond-harlequin-*.png"],
        "moon phases": ["geography/astronomy/0*_openclipart*.png"],
        "horses drawn six ways": ["animals/mammals/horses/cavallo_architetto_franc_0*.png"],
        "bears by one artist": ["animals/mammals/bears/orso_architetto_francesc_0*.png"],
        "45 rpm records": ["recreation/music/45_rpm_record_gerald_g._0*.png"],
        "clock faces at other times": ["signs_and_symbols/clocks/clock0[1-6].png"],
        "lightbulb lit and unlit": ["electronics/bulb/lightbulb_*lit_benj*.png"],
        "button colours": ["shapes/button-*_benji_pa*_01.png"],
        "pill button colours": ["shapes/pill-button-*_01.png"],
        "batteries at other charge": ["electronics/battery/battery_snuatautisticido_0*.png"],
        "alarm clocks by one artist": ["signs_and_symbols/clocks/alarm_clock_gerald_g._0*.png"],
        "aiga bus": ["transportation/aiga-symbols/aiga_bus[1_].png"],
        "aiga bar": ["transportation/aiga-symbols/aiga_bar[1_].png"],
        "aiga car rental": ["transportation/aiga-symbols/aiga_car_rental[1_].png"],
    }
    in_family = set()
    for family, patterns in families.items():
        paths = _glob(oc, *patterns)
        in_family.update(p.name for p in paths)
        add("openclipart-png", paths, family)
    # Singles: a fixed random draw from the drawings and pictures (``NOT_SINGLES`` left out).
    pool = [p for p in _glob(oc, "**/*.png") if p.name not in in_family and not NOT_SINGLES.search(str(p))]
    by_name = {}
    for p in pool:  # one file per name: openclipart files the same drawing under several folders
        by_name.setdefault(p.name, p)
    singles = sorted(by_name.values())
    random.Random(SEED).shuffle(singles)
    add("openclipart-png", singles[:130])
    folder = Path(_skimage().__file__).parent / "data"
    add("scikit-image", _glob(folder, *(f"{name}.*" for name in (
        "astronaut", "brick", "camera", "chelsea", "coffee", "coins", "grass", "gravel",
        "hubble_deep_field", "ihc", "microaneurysms", "moon", "motorcycle_left", "page", "retina",
        "rocket", "text", "cell", "clock_motion", "horse", "color"))))
    return out


def _skimage():
    """scikit-image, whose photographs are part of the set: without it another set would be built (other
    originals, another split), and its numbers compared with these."""
    try:
        import skimage
    except ImportError:
        raise SystemExit("the set needs scikit-image's photographs: pip install -e '.[bench]'") from None
    return skimage


def _load(path: Path) -> Image.Image | None:
    """The picture as RGB, transparency over white, at most MAX_SIDE on its long side."""
    with Image.open(path) as opened:
        if opened.width * opened.height > MAX_PIXELS:
            return None
        opened.load()
        if opened.mode in ("P", "LA", "PA", "RGBA", "La") or "transparency" in opened.info:
            rgba = opened.convert("RGBA")
            image = Image.new("RGB", rgba.size, (255, 255, 255))
            image.paste(rgba, mask=rgba.getchannel("A"))
        else:
            image = opened.convert("RGB")
    if max(image.size) > MAX_SIDE:
        image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    return image


def _blank(image: Image.Image) -> bool:
    """Near blank: every channel almost flat, or under 2 % of the canvas away from the background.

    Kept low on purpose: dark, smooth wallpapers (lxqt's origami, Debian's emerald) are real pictures
    and among the hardest cases.
    """
    small = np.asarray(image.resize((64, 64), Image.Resampling.BILINEAR), dtype=np.float32)
    if small.std(axis=(0, 1)).max() < 5:
        return True
    background = np.median(small.reshape(-1, 3), axis=0)
    return (np.abs(small - background).max(axis=2) > 8).mean() < 0.02


def _thumb(image: Image.Image) -> np.ndarray:
    return np.asarray(image.resize((16, 16), Image.Resampling.BOX), dtype=np.float32)


def _caption(image: Image.Image, rng: random.Random) -> Image.Image:
    out = image.copy()
    draw = ImageDraw.Draw(out)
    band = max(16, image.height // rng.choice([7, 8, 10]))
    top = rng.random() < 0.5
    y0 = 0 if top else image.height - band
    fill, ink = rng.choice([((0, 0, 0), (255, 255, 255)), ((255, 255, 255), (0, 0, 0))])
    draw.rectangle((0, y0, image.width, y0 + band), fill=fill)
    words = rng.choice(["LOL", "when it's Monday", "me irl", "so true", "this is fine"])
    draw.text((band // 3, y0 + band // 6), words, fill=ink, font_size=max(10, band * 2 // 3))
    return out


def _crop(image: Image.Image, rng: random.Random) -> Image.Image:
    cut_w, cut_h = (round(side * rng.uniform(0.10, 0.25)) for side in image.size)
    left, top = rng.randint(0, cut_w), rng.randint(0, cut_h)
    return image.crop((left, top, left + image.width - cut_w, top + image.height - cut_h))


def _border(image: Image.Image, rng: random.Random) -> Image.Image:
    width = max(8, round(min(image.size) * rng.uniform(0.10, 0.18)))
    colour = rng.choice([(255, 255, 255), (0, 0, 0), (128, 128, 128), (240, 235, 220)])
    return ImageOps.expand(image, border=width, fill=colour)


def _resize(image: Image.Image, scale: float) -> Image.Image:
    return image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                        Image.Resampling.LANCZOS)


def make_copy(image: Image.Image, kind: str, rng: random.Random) -> Image.Image:
    if kind == "half size":
        return _resize(image, 0.5)
    if kind == "quarter size":
        return _resize(image, 0.25)
    if kind == "crop":
        return _crop(image, rng)
    if kind == "mirror":
        return ImageOps.mirror(image)
    if kind == "brighter":
        return ImageEnhance.Brightness(image).enhance(rng.uniform(1.3, 1.6))
    if kind == "greyscale":
        return ImageOps.grayscale(image).convert("RGB")
    if kind == "caption":
        return _caption(image, rng)
    if kind == "quarter turn":
        return image.rotate(rng.choice([90, 270]), expand=True)
    if kind == "border":
        return _border(image, rng)
    if kind == "jpeg q30":
        return image
    raise ValueError(kind)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()


def select(cands: list[Candidate], smallest: int = MIN_SIDE, same: float = SAME_PICTURE
           ) -> tuple[list[tuple[Candidate, Image.Image, str]], list[dict]]:
    """Originals that pass the checks, each with a unique group name; and what was skipped, why. A
    picture under ``MIN_SIDE`` on its short side but at least ``smallest`` is enlarged to it (clip art
    rendered small), so that its quarter-size copy is still a picture; one whose colour thumbnail is
    within ``same`` of a kept one's is that picture again."""
    kept: list[tuple[Candidate, Image.Image, str]] = []
    skipped: list[dict] = []
    digests: dict[str, str] = {}
    thumbs: list[tuple[np.ndarray, str]] = []
    names: set[str] = set()
    seen: set[Path] = set()
    family_size: dict[str, int] = defaultdict(int)
    for cand in cands:
        if cand.path in seen:
            continue
        seen.add(cand.path)
        try:
            image = _load(cand.path)
        except Exception as error:  # noqa: BLE001 - an undecodable file is just not an original
            skipped.append({"path": str(cand.path), "why": f"unreadable: {error}"})
            continue
        if image is None:
            skipped.append({"path": str(cand.path), "why": "over 40 MP"})
            continue
        if min(image.size) < smallest:
            skipped.append({"path": str(cand.path), "why": "small"})
            continue
        if min(image.size) < MIN_SIDE:
            scale = MIN_SIDE / min(image.size)
            image = image.resize((round(image.width * scale), round(image.height * scale)),
                                 Image.Resampling.LANCZOS)
        if _blank(image):
            skipped.append({"path": str(cand.path), "why": "near blank"})
            continue
        digest = hashlib.sha256(image.tobytes() + repr(image.size).encode()).hexdigest()
        if digest in digests:
            skipped.append({"path": str(cand.path), "why": f"same pixels as {digests[digest]}"})
            continue
        thumb = _thumb(image)
        twin = next((g for t, g in thumbs if np.abs(t - thumb).mean() < same), None)
        if twin:
            skipped.append({"path": str(cand.path), "why": f"same picture as {twin} (colour thumbnail)"})
            continue
        if cand.family and family_size[cand.family] >= FAMILY_MAX:
            skipped.append({"path": str(cand.path), "why": f"family {cand.family} has {FAMILY_MAX} already"})
            continue
        if cand.family:
            family_size[cand.family] += 1
        name = f"{_slug(cand.source.split('-')[0])}-{_slug(cand.path.stem)}"
        while name in names:
            name += "-b"
        names.add(name)
        digests[digest] = name
        thumbs.append((thumb, name))
        kept.append((cand, image, name))
    return kept, skipped


def _save(image: Image.Image, path: Path, quality: int) -> None:
    """Write the JPEG unless the same bytes are there already (an unchanged file keeps its mtime)."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    data = buffer.getvalue()
    if not path.exists() or path.read_bytes() != data:
        path.write_bytes(data)


def split_units(kept: list[tuple[Candidate, Image.Image, str]], seed: int = SEED) -> dict[str, str]:
    """group -> "dev"/"test": whole families on one side, about half the originals on each."""
    units: dict[str, list[str]] = defaultdict(list)
    for cand, _, name in kept:
        units[cand.family or f"single:{name}"].append(name)
    order = sorted(units)
    random.Random(seed).shuffle(order)
    order.sort(key=lambda u: -len(units[u]))  # big families first, so the sides balance (stable sort)
    size = {"dev": 0, "test": 0}
    side = {}
    for unit in order:
        split = "dev" if size["dev"] <= size["test"] else "test"
        size[split] += len(units[unit])
        for name in units[unit]:
            side[name] = split
    return side


def write_group(folder: Path, cand: Candidate, image: Image.Image, name: str, split: str) -> list[Entry]:
    """The original and its ten copies (``KINDS``) in ``folder/name``, with fixed seeds: their entries."""
    folder = folder / name
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"{SEED}:{name}")
    original = folder / "original.jpg"
    _save(image, original, 95)
    items = [Entry(name, "original", split, cand.family, str(original), str(cand.path), cand.source)]
    for kind in KINDS:
        copy = make_copy(image, kind, rng)
        quality = 30 if kind == "jpeg q30" else rng.randint(60, 90)
        path = folder / f"{_slug(kind)}.jpg"
        _save(copy, path, quality)
        items.append(Entry(name, kind, split, cand.family, str(path), str(cand.path), cand.source))
    return items


def cached_manifest(path: Path, version: int) -> dict | None:
    """The manifest at ``path`` if it is of ``version`` and all its files are there; else None (rebuild)."""
    if not path.exists():
        return None
    manifest = json.loads(path.read_text())
    if manifest.get("version") == version and all(Path(i["path"]).exists() for i in manifest["items"]):
        return manifest
    return None


def build(cache: Path = CACHE, force: bool = False) -> dict:
    """Build (or reuse) the set; return the manifest."""
    manifest_path = cache / "manifest.json"
    if not force and (manifest := cached_manifest(manifest_path, VERSION)):
        return manifest
    versions = fetch_packages(cache)
    versions["scikit-image"] = _skimage().__version__
    kept, skipped = select(candidates(cache))
    side = split_units(kept)
    root = cache / "set"
    items: list[Entry] = []
    for cand, image, name in kept:
        items.extend(write_group(root / side[name], cand, image, name, side[name]))
    wanted = {(side[name], name) for _, _, name in kept}
    for folder in sorted(root.glob("*/*")):  # groups dropped or moved since the last build
        if (folder.parent.name, folder.name) not in wanted:
            shutil.rmtree(folder)
    families: dict[str, list[str]] = defaultdict(list)
    for cand, _, name in kept:
        if cand.family:
            families[cand.family].append(name)
    manifest = {
        "version": VERSION,
        "seed": SEED,
        "kinds": list(KINDS),
        "sources": {name: {"version": v, "licence": PACKAGES.get(name, "BSD-3-Clause and per-image (see "
                                                                   "skimage/data/README.txt)")}
                    for name, v in versions.items()},
        "excluded_packages": list(EXCLUDED_PACKAGES),
        "families": {f: sorted(g) for f, g in sorted(families.items())},
        "items": [asdict(i) for i in items],
        "skipped": skipped,
    }
    manifest_path.write_text(json.dumps(manifest, indent=1))
    return manifest


def summary(manifest: dict) -> str:
    items = manifest["items"]
    lines = []
    for split in ("dev", "test"):
        originals = [i for i in items if i["split"] == split and i["kind"] == "original"]
        copies = [i for i in items if i["split"] == split and i["kind"] != "original"]
        fams = {i["family"] for i in originals if i["family"]}
        in_fam = sum(1 for i in originals if i["family"])
        by_source = defaultdict(int)
        for i in originals:
            by_source[i["package"]] += 1
        lines.append(f"{split}: {len(originals)} originals ({in_fam} in {len(fams)} hard-negative families), "
                     f"{len(copies)} copies; " + ", ".join(f"{k} {v}" for k, v in sorted(by_source.items())))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild even when the cached set is current")
    args = parser.parse_args()
    manifest = build(force=args.force)
    print(summary(manifest))
    print(f"manifest: {CACHE / 'manifest.json'}")
    reasons = defaultdict(int)
    for s in manifest["skipped"]:
        reasons[s["why"].split(" ")[0]] += 1
    print("skipped:", dict(reasons), file=sys.stderr)


if __name__ == "__main__":
    main()

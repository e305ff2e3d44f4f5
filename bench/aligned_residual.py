"""A candidate look for flat pictures, measured and not shipped: what no tone curve explains once aligned.

Run by hand: ``python bench/aligned_residual.py`` (after ``bench/calibrate.py``, ``bench/series.py`` and
``bench/originals_only.py``). Writes "## Aligned residual of flat pictures" in docs/benchmarks.md;
``--no-write`` prints only.

Flat pictures (flags, pictograms, clip art: under ``EXPECTED_KEYPOINTS`` keypoints) are judged by their
5 x 5 layouts alone, which Denmark's flag and Norway's share. Every copy kind is a picture's own pixels
moved (scaled, cropped, turned, mirrored, framed) and recoloured by one curve per channel (brightened,
greyed, recompressed), except a caption band. So here each pair's content is aligned at ``SIDE`` pixels
(the eight turns and mirrors, scales for a crop of up to a third, either picture inside the other, by
template matching on luminance; on either side the content box, the whole picture, or on one side the
whole less a fifth at the top or the bottom: a caption band the content box missed), one picture's
channels are mapped onto the other's by their median per level (a tone curve), and the share of pixels still
more than ``DIFFERENT`` apart (within one pixel's shift) is what a copy cannot have: the smaller of the
two directions, as brightening clips (orange and yellow both turn yellow) and is a curve one way only,
and leaving out a top or bottom band of rows that mostly differ (a caption). Copies: pairs of one
original's pictures (every kind, copy beside copy), ``--pairs`` drawn at random from the dev half and
from the series of drawings (flags, pictograms), those with a flat picture kept. Different pictures:
the flat pairs the product merges among originals alone (docs/benchmarks.md, "## Originals only").
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
from collections import defaultdict
from functools import lru_cache
from multiprocessing import Pool
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import dupset  # noqa: E402
from calibrate import library_state  # noqa: E402
from report import DOCS, machine, today, write_section  # noqa: E402

from lookalike.embedder.images import open_image  # noqa: E402
from lookalike.embedder.keypoints import file_keypoints  # noqa: E402
from lookalike.embedder.traits import MAX_CAPTION, content_box, thumbnail_pixels  # noqa: E402
from lookalike.index.geometry import EXPECTED_KEYPOINTS  # noqa: E402

SECTION = "## Aligned residual of flat pictures"
SIDE = 64  # long side of the content compared
SCALES = np.round(np.arange(1.0, 1.52, 0.04), 2)  # the inner picture enlarged: crops of up to a third
SLACK = 2  # pixels of edge added around the outer picture: rounding of sizes
DIFFERENT = 48.0  # 0-255: a pixel this far from any mapped neighbour is not explained
SHARES = (0.05, 0.08, 0.12)
FOLDERS = {"dev half": "dev", "series of drawings": "series", "unseen sources": "unseen"}
LUMINANCE = np.float32([0.299, 0.587, 0.114])


CUTS = ("box", "whole", "top", "bottom")
"""What of a picture is aligned: its content box, the whole of it, or the whole less a band of
``MAX_CAPTION`` at the top or the bottom (a caption band the content box missed)."""


@lru_cache(maxsize=20000)
def content(path: str, cut: str) -> tuple[np.ndarray, bool]:
    """One ``CUTS`` of the picture at ``SIDE`` on the long side [h, w, 3], and whether it is grey."""
    picture = open_image(path, min_size=4 * SIDE)
    pixels = thumbnail_pixels(picture)
    height, width = pixels.shape[:2]
    band = round(MAX_CAPTION * height)
    top, bottom, left, right = {"box": content_box(pixels), "whole": (0, height, 0, width),
                                "top": (band, height, 0, width), "bottom": (0, height - band, 0, width)}[cut]
    y, x = picture.height / pixels.shape[0], picture.width / pixels.shape[1]
    box = picture.crop((round(left * x), round(top * y), round(right * x), round(bottom * y)))
    scale = SIDE / max(box.size)
    size = (max(4, round(box.width * scale)), max(4, round(box.height * scale)))
    rgb = np.asarray(box.resize(size, resample=3), dtype=np.float32)
    return rgb, float(np.percentile(rgb.max(axis=2) - rgb.min(axis=2), 99)) < 10


def views(pixels: np.ndarray) -> list[np.ndarray]:
    turned = [np.rot90(pixels, k) for k in range(4)]
    return [np.ascontiguousarray(view) for grid in turned for view in (grid, grid[:, ::-1])]


def enlarged(outer: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """``outer`` at each of ``SCALES`` with ``SLACK`` of edge around it, and its luminance."""
    h, w = outer.shape[:2]
    found = []
    for scale in SCALES:
        grown = outer if scale == 1 else cv2.resize(outer, (round(w * scale), round(h * scale)))
        grown = cv2.copyMakeBorder(grown, SLACK, SLACK, SLACK, SLACK, cv2.BORDER_REPLICATE)
        found.append((grown, np.ascontiguousarray(grown @ LUMINANCE)))
    return found


def aligned(a: np.ndarray, b: np.ndarray) -> tuple[float, np.ndarray, np.ndarray] | None:
    """The best alignment (correlation, inner picture, the part of the outer one under it) of any view of
    ``a`` inside ``b`` or ``b`` inside it, the inner one enlarged by each of ``SCALES``. ``b`` is enlarged
    once for all eight views."""
    best = None
    b_enlarged = enlarged(b)
    for view in views(a):
        for inner, outers in ((view, b_enlarged), (b, enlarged(view))):
            inner_grey = np.ascontiguousarray(inner @ LUMINANCE)
            if inner_grey.std() < 1e-3:
                continue
            for grown, grown_grey in outers:
                room = np.array(grown.shape[:2]) - inner.shape[:2]
                if (room < 0).any() or (room > 0.45 * np.array(grown.shape[:2])).any():
                    continue
                found = cv2.matchTemplate(grown_grey, inner_grey, cv2.TM_CCOEFF_NORMED)
                _, score, _, (x, y) = cv2.minMaxLoc(found)
                if best is None or score > best[0]:
                    best = (score, inner, grown[y:y + inner.shape[0], x:x + inner.shape[1]])
    return best


def tone_mapped(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``source`` with each channel mapped to the median of ``target``'s where it has each level (8 wide)."""
    mapped = np.empty_like(source)
    for channel in range(source.shape[2]):
        mine, theirs = source[..., channel].ravel(), target[..., channel].ravel()
        levels = np.clip((mine // 8).astype(int), 0, 31)
        known = [(mine[levels == k].mean(), np.median(theirs[levels == k]))
                 for k in np.unique(levels) if (levels == k).sum() >= 3]
        xs, ys = zip(*known, strict=True) if known else ((0.0,), (float(theirs.mean()),))
        mapped[..., channel] = np.interp(source[..., channel], xs, ys)
    return mapped


def unexplained(mapped: np.ndarray, target: np.ndarray) -> float:
    """Share of pixels (two left out along each edge) further than ``DIFFERENT`` from every target pixel
    within one pixel's shift, a top or bottom band of rows that mostly differ left out (a caption)."""
    h, w = mapped.shape[:2]
    padded = cv2.copyMakeBorder(target, 1, 1, 1, 1, cv2.BORDER_REPLICATE).reshape(h + 2, w + 2, -1)
    nearest = np.min([np.abs(mapped - padded[dy:dy + h, dx:dx + w]).max(axis=2)
                      for dy in range(3) for dx in range(3)], axis=0)[2:-2, 2:-2]
    apart = nearest > DIFFERENT
    rows = apart.mean(axis=1) > 0.5
    limit = int(MAX_CAPTION * len(rows))
    top = next((i for i in range(limit) if not rows[i]), limit)
    bottom = len(rows) - next((i for i in range(limit) if not rows[len(rows) - 1 - i]), limit)
    kept = apart[top:bottom]
    return float(kept.mean()) if kept.size else 1.0


def residual(pair: tuple[str, str]) -> float | None:
    """The pair's unexplained share: the least over the ``CUTS`` of either side (a band cut from one side
    only); none is tried after a cut that explains every pixel."""
    shares = []
    for cut_a, cut_b in itertools.product(CUTS, repeat=2):
        if cut_a in CUTS[2:] and cut_b in CUTS[2:]:
            continue
        (a, grey_a), (b, grey_b) = content(pair[0], cut_a), content(pair[1], cut_b)
        found = aligned(a, b)
        if found is None:
            continue
        _, inner, outer = found
        if grey_a or grey_b:
            inner, outer = (inner @ LUMINANCE)[..., None], (outer @ LUMINANCE)[..., None]
        shares.append(min(unexplained(tone_mapped(inner, outer), outer),
                          unexplained(tone_mapped(outer, inner), inner)))
        if shares[-1] == 0:
            break
    return min(shares) if shares else None


@lru_cache(maxsize=20000)
def flat(path: str) -> bool:
    found = file_keypoints(path)
    return found is not None and len(found) < EXPECTED_KEYPOINTS


def measured(pair: tuple[str, str]) -> float | None:
    """The residual of a pair with a flat picture; None for two detailed ones (the keypoints judge them)."""
    return residual(pair) if flat(pair[0]) or flat(pair[1]) else None


COPIES = {"dev half": (dupset.CACHE / "manifest.json", "dev"),
          "series of drawings": (dupset.CACHE.parent / "series" / "manifest.json", "series")}


def copy_pairs(name: str, count: int) -> list[tuple[str, str, str, str]]:
    """``count`` pairs of one original's pictures in a set of ``COPIES`` (a, b, kind of a, kind of b)."""
    manifest, split = COPIES[name]
    groups: dict[str, list[dict]] = defaultdict(list)
    for item in json.loads(manifest.read_text())["items"]:
        if item["split"] == split:
            groups[item["group"]].append(item)
    pairs = [(x["path"], y["path"], x["kind"], y["kind"])
             for members in groups.values() for x, y in itertools.combinations(members, 2)]
    chosen = np.random.default_rng(0).choice(len(pairs), min(count, len(pairs)), replace=False)
    return [pairs[i] for i in sorted(chosen)]


def merged_pairs() -> list[tuple[str, str, str]]:
    """The pairs of originals the product merges (set, a, b), as bench/originals_only.py listed them."""
    section = DOCS.read_text().split("## Originals only", 1)[1].split("\n## ", 1)[0]
    pairs = []
    for name, listed in re.findall(r"^- (dev half|series of drawings|unseen sources): (.*)$", section, re.M):
        folder = dupset.CACHE.parent / "originals-only" / FOLDERS[name] / "set"
        for pair in listed.split("; "):
            a, b = pair.split(" + ")
            pairs.append((name, str(folder / f"{a}.jpg"), str(folder / f"{b}.jpg")))
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=4000)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    strangers = merged_pairs()
    with Pool(2) as pool:
        sets = {name: copy_pairs(name, args.pairs) for name in COPIES}
        shares = {name: pool.map(measured, [(a, b) for a, b, *_ in pairs], chunksize=16)
                  for name, pairs in sets.items()}
        stranger_shares = pool.map(measured, [(a, b) for _, a, b in strangers])
    by_kind: dict[tuple[str, str], list[float]] = defaultdict(list)
    copies = [(name, *pair) for name, pairs in sets.items() for pair in pairs]
    copy_shares = [share for name in sets for share in shares[name]]
    for (name, *_, kind_a, kind_b), share in zip(copies, copy_shares, strict=True):
        if share is not None:
            for kind in {kind_a, kind_b}:
                by_kind[name, kind].append(share)
    flat_copies = np.array([s for s in copy_shares if s is not None])
    flat_strangers = [(name, a, b, s) for (name, a, b), s in zip(strangers, stranger_shares, strict=True)
                      if s is not None]
    kinds = ["| set | copy kind | flat pairs | 99th percentile | most |", "|---|---|---:|---:|---:|"]
    kinds += [f"| {name} | {kind} | {len(v)} | {np.percentile(v, 99):.3f} | {max(v):.3f} |"
              for (name, kind), v in sorted(by_kind.items())]
    cuts = ["| unexplained share over | pairs of copies flagged | pairs of different pictures flagged |",
            "|---:|---:|---:|"]
    cuts += [f"| {cut} | {(flat_copies > cut).sum()} of {len(flat_copies)} | "
             f"{sum(s > cut for *_, s in flat_strangers)} of {len(flat_strangers)} |" for cut in SHARES]
    worst = sorted(zip(copies, copy_shares, strict=True), key=lambda c: -(c[1] or 0))[:6]
    strangers_listed = "; ".join(f"{Path(a).stem} + {Path(b).stem} {s:.3f}"
                                 for _, a, b, s in sorted(flat_strangers, key=lambda x: -x[3]))
    body = "\n".join([
        __doc__.split("\n\n")[2].replace("\n", " "), "",
        f"Pairs of copies with a flat picture: {len(flat_copies)} of {len(copies)} drawn ({args.pairs} from "
        f"each set); pairs of different "
        f"pictures the product merges: {len(flat_strangers)} of {len(strangers)} with a flat picture (the "
        "rest have the keypoints to be judged by them).", "", *kinds, "", *cuts, "",
        "Copies furthest from explained: "
        + "; ".join(f"{Path(a).parent.name} {kind_a} + {kind_b} {share:.3f}"
                    for (_, a, _, kind_a, kind_b), share in worst)
        + ".", "",
        f"Different pictures, flat: {strangers_listed}.", "",
        f"Verdict: not shipped yet; a candidate for the geometric look of flat pairs. At a share of "
        f"{SHARES[0]}, {(flat_copies > SHARES[0]).sum()} pairs of copies and "
        f"{sum(s > SHARES[0] for *_, s in flat_strangers)} pairs of different pictures are flagged (copies: "
        + ("; ".join(f"{Path(a).parent.name} {kind_a} + {kind_b}"
                     for (_, a, _, kind_a, kind_b), share in worst if share > SHARES[0]) or "none")
        + "). What "
        "it cannot tell: pictograms that are each other's turn or mirror (arrows, stairs) and one design "
        "drawn twice (Indonesia, Monaco), as no look can; flags told apart by an emblem or a few stars "
        "(El Salvador, Nicaragua; Micronesia) at 64 pixels. Before shipping: its cost (a pair aligns in "
        "about 30 ms a cut; different pictures try every cut), the dev, test and unseen clusters, "
        "brightened copies whose fine details clip unevenly, and captions cut at the content box's band "
        "rather than a fixed fifth.", "",
        f"`python bench/aligned_residual.py` on {today()}, {machine()}; {library_state()}.",
    ])
    print(body)
    if not args.no_write:
        write_section(SECTION, body)


if __name__ == "__main__":
    main()

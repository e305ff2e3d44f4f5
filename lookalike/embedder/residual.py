"""The aligned residual: what no tone curve explains once two pictures are laid over each other.

Flags, pictograms and clip art have too few keypoints to be matched, and their coarse layouts are all
a 5 x 5 grid sees: Denmark's flag and Norway's share it. A detailed flag bearing another emblem, a
pictogram with another figure, fits its keypoints where the two are alike, and the few cells that differ
are forgiven as details. But every copy kind is the picture's own pixels moved (scaled, cropped,
framed, turned, mirrored) and recoloured by one tone curve for every channel alike (brightened,
recompressed) or greyed, apart from a caption band. So the two pictures are aligned at ``SIDE`` pixels
(where matched keypoints lay them, else by template matching over the eight turns and mirrors and the
scales of a crop, either inside the other), one's pixels are mapped onto the other's by one tone
curve, and the share of pixels still far apart is what a copy cannot have: Norway's blue cross inside
the white one, Seychelles' rays where Congo has a diagonal band, Queensland's badge where Turks and
Caicos has its own, a blue balloon where the other is red.

Aligned on all three channels, each scaled to unit spread, not on luminance: a brightened flag's yellow
sun on light blue has hardly any luminance contrast left, and luminance alone laid it off its place.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import cv2
import numpy as np
from PIL import Image

from lookalike.embedder.traits import MAX_CAPTION, TURNED_VIEWS

SIDE = 64  # long side the pictures are aligned and compared at: a flag's stripes, not its JPEG noise
SCALES = np.round(np.arange(1.0, 1.52, 0.04), 2)  # the inner picture enlarged: crops of up to a third
SLACK = 2  # pixels of edge added around the outer picture: the rounding of sizes
MAX_ROOM = 0.45  # the outer picture at most this share larger a side than the inner: a crop, a frame
PLAIN_ROOM = (MAX_ROOM, 0)  # (share of the outer side, pixels) a cut may leave of the other: boxes, wholes
BANDED_ROOM = (MAX_CAPTION, 2 * SLACK)
"""The room a cut less a band (a caption the content box missed) may leave: the band it left out where the
caption was narrower, and the edge. A caption copy is not also a crop: with ``MAX_ROOM`` to spare, Sudan's
crop less its black stripe laid red over white inside Austria's flag, 0.031 unexplained (series set);
with this room it leaves 0.18."""
DIFFERENT = 48.0  # 0-255: a pixel this far from every mapped neighbour is not explained
BLUR = 0.7
"""Pixels (Gaussian sigma) both are blurred by before they are compared: a fine pattern (a flag's checked
edge, rows of fleurs-de-lis) resized to ``SIDE`` lands on the pixel grid differently in each copy, and a
caption copy beside a framed one of a French province's flag left 0.09 of its pixels unexplained; blurred,
0.03 at most (bench/aligned_residual.py). An emblem or a figure that differs is wider than the blur."""
LEVELS = 32  # of 8 each, 0-255: a tone curve's steps
LEVEL_PIXELS = 3  # a level with fewer pixels says nothing of the curve
UPRIGHT, TURNED = (0,), tuple(range(1, 8))  # the views (:func:`_view`) as drawn, and turned or mirrored
CANDIDATES = 6  # best placings at half size matched again at full size
EXPLAINED = 0.03
"""A share this low is a copy's (half the veto's ``RESIDUAL_APART`` in :mod:`lookalike.index.geometry`): no
other cut is tried after it, so a residual under it reads as found, not as the least. Stopping only at
0.01, the copies between it and the veto tried every cut, as two different pictures do (bench
aligned_residual.py: a pair of copies 8 ms, median, against 52 ms for different pictures)."""
MIN_SIDE = 8  # pixels: a thinner cut (a banner, a strip) has nothing to compare
LAID_INSIDE = 0.95  # share of the smaller frame a copy laid by its keypoints has inside the other's
GREY_SPREAD = 10.0  # a picture whose channels differ less than this (99th percentile) is grey
SOLID = 5  # pixels a side a difference fills to count in solid_share (at 256, or the smaller's own)
"""Where the residual's search laid the pair: flat pictures, whose colour fields' edges a greyscale copy
beside a JPEG q30 one moves by a few pixels in luminance (Guinea's flag: 0.016 at 3, none at 5)."""
LAID_SOLID = 3
"""As ``SOLID`` where the keypoints laid the pair: hundreds of them fit within a pixel, and a card's small
pips, a clock's thin hands, are strokes of 3-5 pixels. Copies (bench/solid_parts.py) leave none."""
SOLID_SHIFT = 2  # pixels each way a laid pixel may find its match: the keypoints' fit is that far off
SOLID_BLUR = 1.0
SOLID_PIXELS = 32 * 32
"""Fewer pixels compared and the pair is left to the other looks. A quarter-size copy of a playing card
(50 x 68) beside another compares about 1,900 (the median): at 64 x 64 two such copies of a four and a five
were never compared, and merged on their keypoints (artist series: 339 pairs of two drawings' quarter-size
copies kept). Pairs with a quarter-size copy in them, 1,500 of one picture's images drawn from each of the
dev, series, unseen and artist sets, that pass every other look: none more is dropped at any floor from
64 x 64 down to 16 x 16; of 495 such pairs of two drawings of one artist's series (1,500 drawn), 52 are
dropped at 64 x 64, 93 at 32 x 32, and no more at 16 x 16 (bench/solid_parts.py's ``--tiny``)."""
SATURATION = 2.5  # a copy is at most this many times more, or less, colourful than its original
MERGED_SHARE = 0.04  # of the pixels compared, each of two tones merged (a flag's copy 0.012, pantyhose 0.084)
MERGED_SLOPE = 0.25  # two tones mapped to less than this share of how far apart they were are merged
MID_TONES = (24.0, 231.0)  # mapped outside these, tones merge where an edit clips them
LUMINANCE = np.float32([0.299, 0.587, 0.114])


Frame = tuple[float, float, float, float]
"""Where a cut lies in its picture: (left, top, right, bottom) as shares of the whole picture's width and
height."""
WHOLE: Frame = (0.0, 0.0, 1.0, 1.0)


class Cuts(NamedTuple):
    """A picture at ``SIDE`` pixels on the long side, RGB [h, w, 3] uint8: inside its content box (added
    borders and caption bands left out) and whole (what the box got wrong is there); ``box_frame``, where
    the box lies in the picture."""

    box: np.ndarray
    whole: np.ndarray
    box_frame: Frame = WHOLE

    @property
    def nbytes(self) -> int:
        return self.box.nbytes + (0 if self.whole is self.box else self.whole.nbytes)


def picture_cuts(picture: Image.Image, box: tuple[int, int, int, int]) -> Cuts:
    """An RGB picture's :class:`Cuts`, its content box (top, bottom, left, right) in its own pixels."""
    top, bottom, left, right = box
    whole = _small(picture)
    if not (bottom > top and right > left):
        return Cuts(whole, whole)
    width, height = picture.size
    return Cuts(_small(picture.crop((left, top, right, bottom))), whole,
                (left / width, top / height, right / width, bottom / height))


def _small(picture: Image.Image) -> np.ndarray:
    scale = SIDE / max(picture.size)
    size = (max(4, round(picture.width * scale)), max(4, round(picture.height * scale)))
    return np.asarray(picture.resize(size, Image.Resampling.BICUBIC, reducing_gap=3.0))


class Residual(NamedTuple):
    """:func:`aligned_residual`: the ``share`` of pixels no tone curve explains, and where the search laid
    the two for it (``fit``: an affine map from ``a``'s frame to ``b``'s, in shares of each whole picture's
    width and height, as :func:`~lookalike.embedder.keypoints.placed_solid_differences` reads it; None
    where the keypoints' laying explained the pair)."""

    share: float
    fit: np.ndarray | None = None


def aligned_residual(a: Cuts, b: Cuts, laying: np.ndarray | None = None) -> Residual | None:
    """The share of pixels no tone curve explains with the two laid over each other at best: the least
    over :func:`_pairs_of_cuts` (none tried after one under ``EXPLAINED``), each the smaller of mapping
    ``a`` onto ``b`` and ``b`` onto ``a`` (brightening clips: orange and yellow both turn yellow, a curve
    one way only), with where it laid them. None where nothing could be aligned (a blank picture, a
    strip). Where ``laying`` explains the pair (:func:`laid_share` under ``EXPLAINED``), that share, and no
    cut is searched; a share it leaves over that is not counted: measured over the part the keypoints lay
    rather than over a cut, it reads lower for two pictures a few badges apart (blue ensigns: 0.058 where
    every cut leaves 0.064), and the veto was calibrated on cuts.

    A picture of a few flat colours maps within ``DIFFERENT`` onto a smooth, dim one (a tricolour's
    stripes onto a night sky), and onto the same colours in another order (the layouts tell those): the
    residual can miss a difference, never invent one."""
    laid = None if laying is None else laid_share(a, b, laying)
    if laid is not None and laid <= EXPLAINED:
        return Residual(laid)
    least = None
    (first, *others) = _pairs_of_cuts(a, b)
    tries = [(first, UPRIGHT), (first, TURNED)] + [(pair, UPRIGHT + TURNED) for pair in others]
    for (mine, theirs, room), turns in tries:  # most copies stand as their original does: that first, alone
        found = _aligned(mine, theirs, turns, room)
        if found is None:
            continue
        inner, part, fit = found
        share = _unexplained_both_ways(inner, part)
        if least is None or share < least.share:
            least = Residual(share, fit)
        if least.share <= EXPLAINED:
            break
    return least


def laid_share(a: Cuts, b: Cuts, laying: np.ndarray) -> float | None:
    """The share of pixels no tone curve explains with ``a`` laid over ``b`` by ``laying`` (an affine map
    from ``a.whole``'s pixels to ``b.whole``'s, as matched keypoints lay the two), over the part both
    frames share: most copies are found there at once, where the search tries every cut, turn and scale
    (a copy 9 ms searched, 2 ms laid so, on average). None where the laying is not a copy's: one frame
    not wholly inside the other (``LAID_INSIDE``: two shots of one scene) or further from it than a
    crop or a frame leaves (``MAX_ROOM``: the information sign inside a hotel pictogram at twice its
    size), or too little shared to compare."""
    height, width = b.whole.shape[:2]
    laid = cv2.warpAffine(a.whole.astype(np.float32), laying, (width, height), flags=cv2.INTER_LINEAR)
    frame = np.ones(a.whole.shape[:2], np.float32)
    shared = cv2.warpAffine(frame, laying, (width, height), flags=cv2.INTER_NEAREST)
    corners = cv2.transform(np.float32([[[0, 0], [a.whole.shape[1], 0], [0, a.whole.shape[0]],
                                         [a.whole.shape[1], a.whole.shape[0]]]]), laying)[0]
    spans = corners.max(axis=0) - corners.min(axis=0)  # laid a's width and height as b stands
    area = frame.size * abs(float(np.linalg.det(laying[:, :2])))
    if not (float(shared.sum()) >= LAID_INSIDE * min(area, width * height)
            and all(1 / (1 + MAX_ROOM) <= span / side <= 1 + MAX_ROOM
                    for span, side in zip(spans, (width, height), strict=True))):
        return None
    edge = np.ones((5, 5), np.uint8)  # two pixels in from the laid frame's edge: interpolated, then blurred
    inside = cv2.erode(shared, edge, borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0
    if min(np.count_nonzero(inside.any(axis=0)), np.count_nonzero(inside.any(axis=1))) < MIN_SIDE:
        return None
    return _unexplained_both_ways(laid, b.whole.astype(np.float32), inside)


def _unexplained_both_ways(inner: np.ndarray, outer: np.ndarray, inside: np.ndarray | None = None) -> float:
    """The share of pixels no tone curve explains, the smaller of mapping either onto the other."""
    inside = np.ones(inner.shape[:2], bool) if inside is None else inside
    if is_grey(inner[inside][None]) or is_grey(outer[inside][None]):  # greyed: luminance, channels alike
        inner, outer = (inner @ LUMINANCE)[..., None], (outer @ LUMINANCE)[..., None]
    return min(_unexplained(_tone_mapped(inner, outer, inside), outer, inside),
               _unexplained(_tone_mapped(outer, inner, inside), inner, inside))


class _Cut:
    """One cut of a picture as aligned: its pixels (float32) and, each channel at unit spread
    (:func:`_standard`), at full and at half size; those enlarged by ``SCALES`` with ``SLACK`` around
    as the search asks (:meth:`grown`), each made once however many pairs of cuts it is in; its
    ``frame`` in the picture."""

    def __init__(self, pixels: np.ndarray, frame: Frame = WHOLE) -> None:
        self.pixels = np.ascontiguousarray(pixels, dtype=np.float32)
        self.frame = frame
        self.standard = _standard(self.pixels)
        height, width = self.pixels.shape[:2]
        self.coarse = cv2.resize(self.standard, (max(2, width // 2), max(2, height // 2)),
                                 interpolation=cv2.INTER_AREA)
        self.comparable = min(height, width) >= MIN_SIDE and float(self.standard.std()) > 1e-3
        self._grown: dict[tuple[int, bool], tuple[np.ndarray, ...]] = {}

    def grown(self, scale: int, coarse: bool = False) -> tuple[np.ndarray, ...]:
        """At ``SCALES[scale]`` with its edge around: the coarse standard alone (1), else the pixels and
        the standard (2)."""
        key = scale, coarse
        if key not in self._grown:
            layers, edge = ((self.coarse,), SLACK // 2) if coarse else ((self.pixels, self.standard), SLACK)
            self._grown[key] = tuple(_grown(layer, float(SCALES[scale]), edge) for layer in layers)
        return self._grown[key]

    def to_picture(self) -> np.ndarray:
        """The affine map [3, 3] from this cut's pixels (0 at a pixel's edge) to shares of its picture."""
        left, top, right, bottom = self.frame
        height, width = self.pixels.shape[:2]
        return np.array([[(right - left) / width, 0.0, left], [0.0, (bottom - top) / height, top],
                         [0.0, 0.0, 1.0]])

    def grown_shape(self, scale: int) -> tuple[int, int]:
        """(height, width) of the full-size layers at ``SCALES[scale]``, without making them."""
        height, width = self.pixels.shape[:2]
        factor = float(SCALES[scale])
        return (height if scale == 0 else round(height * factor)) + 2 * SLACK, (
            width if scale == 0 else round(width * factor)) + 2 * SLACK


def _grown(layer: np.ndarray, scale: float, edge: int) -> np.ndarray:
    height, width = layer.shape[:2]
    grown = layer if scale == 1.0 else cv2.resize(layer, (round(width * scale), round(height * scale)))
    return cv2.copyMakeBorder(grown, edge, edge, edge, edge, cv2.BORDER_REPLICATE)


def _pairs_of_cuts(a: Cuts, b: Cuts) -> Iterator[tuple[_Cut, _Cut, tuple[float, int]]]:
    """What of each picture to align, most likely first, with the room the one may leave of the other
    (:func:`_fits`): the content boxes, the wholes, one of each (a box that is the whole picture only
    once; ``PLAIN_ROOM``), then on one side only the whole less a band of ``MAX_CAPTION`` at the top or
    the bottom (a caption the content box missed) against the other's box or whole (``BANDED_ROOM``)."""
    sides = []
    for cuts in (a, b):
        rows = len(cuts.whole)
        band = round(MAX_CAPTION * rows)
        framed = not np.array_equal(cuts.box, cuts.whole)
        plain = [_Cut(cuts.box, cuts.box_frame), _Cut(cuts.whole)] if framed else [_Cut(cuts.whole)]
        sides.append((plain, [_Cut(cuts.whole[band:], (0.0, band / rows, 1.0, 1.0)),
                              _Cut(cuts.whole[:rows - band], (0.0, 0.0, 1.0, (rows - band) / rows))]))
    (plain_a, banded_a), (plain_b, banded_b) = sides
    yield from ((mine, theirs, PLAIN_ROOM) for mine, theirs in itertools.product(plain_a, plain_b))
    yield from ((mine, theirs, BANDED_ROOM) for mine, theirs in itertools.product(banded_a, plain_b))
    yield from ((mine, theirs, BANDED_ROOM) for theirs, mine in itertools.product(banded_b, plain_a))


def is_grey(pixels: np.ndarray) -> bool:
    """Whether RGB pixels [h, w, 3] hold no colour: greyed, or drawn in black and white (JPEG's tints
    aside)."""
    return float(np.percentile(pixels.max(axis=2) - pixels.min(axis=2), 99)) < GREY_SPREAD


def _view(pixels: np.ndarray, turn: int) -> np.ndarray:
    """Turned ``turn // 2`` quarters, then mirrored if ``turn`` is odd: the order of
    :data:`~lookalike.embedder.traits.TURNED_VIEWS`."""
    turned = np.rot90(pixels, turn // 2)
    return np.ascontiguousarray(turned[:, ::-1] if turn % 2 else turned)


def _standard(pixels: np.ndarray) -> np.ndarray:
    """Each channel zero-mean and at unit spread (a faint channel at most 1/4 amplified): what the
    alignment compares, so a channel a recolouring kept is not drowned by one it flattened."""
    mean, spread = cv2.meanStdDev(pixels)
    return np.ascontiguousarray((pixels - mean.ravel()) / np.maximum(spread.ravel(), 4.0), dtype=np.float32)


def _aligned(a: _Cut, b: _Cut, turns: Sequence[int],
             room: tuple[float, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The inner picture and the part of the outer one under it, at their best alignment (correlation)
    of the ``turns`` (:func:`_view`) of either picture inside the other as drawn with at most ``room``
    to spare (:func:`_fits`), enlarged by each of ``SCALES`` (a view of
    ``b`` inside ``a`` is ``a`` inside the opposite view of ``b``), and that alignment as :func:`_placing`
    maps ``a``'s picture onto ``b``'s; None where either is one colour or thinner than ``MIN_SIDE``.
    Searched at half size over every other scale first; the ``CANDIDATES`` best placings are then
    matched at full size at their scale and the two beside it."""
    coarse = []
    for inner, outer in ((a, b), (b, a)):
        if not (inner.comparable and outer.comparable):
            continue
        height, width = inner.pixels.shape[:2]
        for turn in turns:
            view = _view(inner.coarse, turn)
            shape = (width, height) if TURNED_VIEWS[turn] else (height, width)  # as turned
            for scale in range(0, len(SCALES), 2):
                if not _fits(shape, outer.grown_shape(scale), room):
                    continue
                (grown_coarse,) = outer.grown(scale, coarse=True)
                if all(map(int.__ge__, grown_coarse.shape[:2], view.shape[:2])):
                    score = cv2.minMaxLoc(cv2.matchTemplate(grown_coarse, view, cv2.TM_CCOEFF_NORMED))[1]
                    coarse.append((score, inner, outer, turn, scale))
    best = None
    placings = sorted(coarse, key=lambda found: -found[0])[:CANDIDATES]
    tried = {(id(inner), turn, near) for _, inner, _, turn, scale in placings
             for near in range(max(scale - 1, 0), min(scale + 2, len(SCALES)))}
    for _, inner, outer, turn, scale in placings:
        view, view_standard = _view(inner.pixels, turn), _view(inner.standard, turn)
        for near in range(max(scale - 1, 0), min(scale + 2, len(SCALES))):
            if (id(inner), turn, near) not in tried:
                continue
            tried.discard((id(inner), turn, near))
            if not _fits(view.shape, outer.grown_shape(near), room):
                continue
            grown, grown_standard = outer.grown(near)
            scores = cv2.matchTemplate(grown_standard, view_standard, cv2.TM_CCOEFF_NORMED)
            _, score, _, (x, y) = cv2.minMaxLoc(scores)
            if best is None or score > best[0]:
                part = grown[y:y + view.shape[0], x:x + view.shape[1]]
                best = score, view, part, (inner, outer, turn, near, x, y)
    if best is None:
        return None
    _, view, part, (inner, outer, turn, near, x, y) = best
    inner_to_outer = _placing(inner, outer, turn, near, x, y)
    return view, part, (inner_to_outer if inner is a else np.linalg.inv(inner_to_outer))[:2]


def _placing(inner: _Cut, outer: _Cut, turn: int, scale: int, x: int, y: int) -> np.ndarray:
    """The affine map [3, 3] from shares of ``inner``'s picture to shares of ``outer``'s, with the
    ``turn`` (:func:`_view`) of ``inner`` found at (``x``, ``y``) in ``outer`` grown to ``SCALES[scale]``
    (:meth:`_Cut.grown`)."""
    height, width = inner.pixels.shape[:2]
    corners = np.stack(np.meshgrid(np.float32([0, width]), np.float32([0, height])), axis=-1)  # edges
    turned = _view(corners, turn)  # the inner cut's corners where the view has its own
    view_height, view_width = (width, height) if TURNED_VIEWS[turn] else (height, width)
    view_to_inner = cv2.getAffineTransform(
        np.float32([[0, 0], [view_width, 0], [0, view_height]]),
        np.float32([turned[0, 0], turned[0, 1], turned[1, 0]]))
    grown_height, grown_width = (size - 2 * SLACK for size in outer.grown_shape(scale))
    outer_height, outer_width = outer.pixels.shape[:2]
    across, down = outer_width / grown_width, outer_height / grown_height
    view_to_outer = np.array([[across, 0.0, (x - SLACK) * across], [0.0, down, (y - SLACK) * down],
                              [0.0, 0.0, 1.0]])
    inner_to_view = np.linalg.inv(np.vstack([view_to_inner, [0.0, 0.0, 1.0]]))
    return outer.to_picture() @ view_to_outer @ inner_to_view @ np.linalg.inv(inner.to_picture())


def _fits(shape: tuple[int, ...], grown: tuple[int, int], room: tuple[float, int]) -> bool:
    """Whether a picture of ``shape`` (height, width) lies inside one of the ``grown`` shape with at most
    ``room`` (a share of the outer side, and pixels) to spare on either side: a crop or a frame
    (``PLAIN_ROOM``), not a detail of the other."""
    share, pixels = room
    sizes = zip(shape[:2], grown, strict=True)
    return all(0 <= outer - side <= share * outer + pixels for side, outer in sizes)


class _Levels(NamedTuple):
    """``source``'s tones in levels 8 wide (of at least ``LEVEL_PIXELS`` inside the part compared): each
    level's mean in ``source``, the median of ``target`` where ``source`` has it, and its pixels."""

    means: np.ndarray
    medians: np.ndarray
    pixels: np.ndarray


def _levels(source: np.ndarray, target: np.ndarray, inside: np.ndarray) -> _Levels | None:
    """:class:`_Levels` of ``source`` against ``target``, all channels alike; None where no level has
    ``LEVEL_PIXELS``."""
    mine, theirs = source[inside].ravel(), target[inside].ravel()
    levels = np.clip((mine // 8).astype(np.int64), 0, LEVELS - 1)
    counts = np.bincount(levels, minlength=LEVELS)
    kept = counts >= LEVEL_PIXELS
    if not kept.any():
        return None
    # level by level, each level's values sorted: one sort of level * 1024 + value (values are 0-255, and
    # float64 holds both exactly), 4 times as fast as a lexsort of the two; the levels sorted are each
    # level repeated its count
    ordered = (np.sort(levels * 1024.0 + theirs)
               - np.repeat(np.arange(LEVELS) * 1024.0, counts)).astype(theirs.dtype)
    starts = np.cumsum(counts) - counts
    lower = ordered[(starts + (counts - 1) // 2)[kept]]
    upper = ordered[(starts + counts // 2)[kept]]
    means = np.bincount(levels, weights=mine, minlength=LEVELS)[kept] / counts[kept]
    return _Levels(means, (lower + upper) / 2, counts[kept])


def _tone_mapped(source: np.ndarray, target: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """``source`` mapped to the median of ``target`` where it has each level (:func:`_levels`) by one
    curve for all channels: brightening and recompressing move every channel alike (greying is compared
    in luminance). A curve per channel also mapped a design onto its other colours: a red balloon onto a
    blue one, red's channel onto blue's. Measured (bench/aligned_residual.py): no pair of copies and no
    everyday edit of one (saturation, white balance, auto-contrast included) over the veto, as with a
    curve per channel; hue turns of 45 degrees over it 26 of 172 (5 with a curve per channel), different
    pictures 22 of 67 (16)."""
    levels = _levels(source, target, inside)
    if levels is None:
        return np.full_like(source, target[inside].mean())
    return np.interp(source, levels.means, levels.medians).astype(np.float32)


def rising_tone_mapped(source: np.ndarray, target: np.ndarray, inside: np.ndarray) -> np.ndarray | None:
    """:func:`_tone_mapped` by a curve that never falls (levels' medians pooled where they would, weighted
    by their pixels): brightening, contrast, gamma, greying and recompressing keep light lighter than
    dark; a free curve also maps a level that only an added part has (a head's new brown hair) onto
    whatever lies under it in the other picture (the white behind the head), and so explains it. None
    where the curve merges tones no edit merges (:func:`_merges_mid_tones`)."""
    levels = _levels(source, target, inside)
    if levels is None:
        return np.full_like(source, target[inside].mean())
    curve = _rising(levels.medians, levels.pixels)
    if _merges_mid_tones(levels.means, curve, levels.pixels / levels.pixels.sum()):
        return None
    return np.interp(source, levels.means, curve).astype(np.float32)


def channels_mapped(source: np.ndarray, target: np.ndarray, learnt: np.ndarray) -> np.ndarray:
    """Pixels ``source`` [n, 3] mapped each channel by its own rising curve onto ``target`` [n, 3], learnt
    where ``learnt`` [n] (:func:`_levels`, :func:`_rising`); beyond the tones learnt, each channel keeps
    its offset from the curve's end. Learnt from grey pixels, it is the edit made to a copy's channels
    (white balance, levels, per-channel contrast or equalising), which a design's other colouring leaves
    grey."""
    mapped = np.empty_like(source)
    for channel in range(source.shape[1]):
        mine, theirs = source[:, channel], target[:, channel]
        levels = _levels(mine, theirs, learnt)
        if levels is None:  # no tone has pixels enough: the channel as it was
            mapped[:, channel] = mine
            continue
        curve = _rising(levels.medians, levels.pixels)
        first, last = levels.means[0], levels.means[-1]
        mapped[:, channel] = np.where(mine < first, curve[0] + mine - first,
                                      np.where(mine > last, curve[-1] + mine - last,
                                               np.interp(mine, levels.means, curve)))
    return np.clip(mapped, 0, 255)


def _merges_mid_tones(means: np.ndarray, curve: np.ndarray, shares: np.ndarray) -> bool:
    """Whether a tone curve (``curve`` at the levels' ``means``) maps two tones at least ``DIFFERENT``
    apart, each ``MERGED_SHARE`` of the pixels, to less than ``MERGED_SLOPE`` of that apart, both in
    ``MID_TONES``: one drawing's dark grey panty and light grey legs onto the other's one light grey.
    Brightening and contrast merge tones only where they clip, at white or black, and lessening contrast
    keeps them apart (bench/solid_parts.py: no copy or everyday edit merges two, one artist's drawings
    in other shades of grey do)."""
    apart = means[None, :] - means[:, None]
    rises = curve[None, :] - curve[:, None]
    counted = (shares >= MERGED_SHARE) & (curve >= MID_TONES[0]) & (curve <= MID_TONES[1])
    merged = (apart >= DIFFERENT) & (rises < MERGED_SLOPE * apart) & counted[:, None] & counted[None, :]
    return bool(merged.any())


def _rising(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The closest non-decreasing sequence to ``values`` (least squares, ``weights``): adjacent violators
    pooled into their weighted mean."""
    pooled: list[list[float]] = []  # [value, weight, how many values]
    for value, weight in zip(values.tolist(), weights.tolist(), strict=True):
        pooled.append([value, weight, 1])
        while len(pooled) > 1 and pooled[-2][0] > pooled[-1][0]:
            (first, first_weight, first_count), (last, last_weight, last_count) = pooled.pop(-2), pooled.pop()
            total = first_weight + last_weight
            pooled.append([(first * first_weight + last * last_weight) / total, total,
                           first_count + last_count])
    return np.repeat([value for value, _, _ in pooled], [count for _, _, count in pooled])


def _unexplained(mapped: np.ndarray, target: np.ndarray, inside: np.ndarray) -> float:
    """Share of pixels ``inside`` the part compared (two left out along each edge) further than
    ``DIFFERENT`` from every target pixel within one pixel's shift. A caption band is not left out here:
    the cuts without it are aligned too (:func:`_pairs_of_cuts`), and leaving out a band of differing
    lines at a side let a tricolour's outer stripes go unseen (bench: copies as explained without it,
    more different pictures told)."""
    nearest = _apart(mapped, target, 1, BLUR)[2:-2, 2:-2]
    compared = nearest[inside[2:-2, 2:-2]]
    return float((compared > DIFFERENT).mean()) if compared.size else 1.0


def _apart(mapped: np.ndarray, target: np.ndarray, shift: int, blur: float) -> np.ndarray:
    """Per pixel, how far (0-255, the largest over channels) ``mapped`` lies from the nearest of ``target``'s
    pixels within ``shift`` pixels each way, both blurred by ``blur`` (sigma): a copy's edges land a
    pixel or so off the original's."""
    height, width = mapped.shape[:2]
    mapped, target = (cv2.GaussianBlur(np.ascontiguousarray(pixels), (0, 0), blur).reshape(pixels.shape)
                      for pixels in (mapped, target))
    padded = cv2.copyMakeBorder(target, shift, shift, shift, shift, cv2.BORDER_REPLICATE).reshape(
        height + 2 * shift, width + 2 * shift, -1)
    nearest = None
    for dy, dx in itertools.product(range(2 * shift + 1), repeat=2):  # OpenCV's per-pixel ops: 12 x numpy's
        apart = cv2.absdiff(mapped, padded[dy:dy + height, dx:dx + width]).reshape(height, width, -1)
        farthest = functools.reduce(cv2.max, (apart[..., channel] for channel in range(apart.shape[2])))
        nearest = farthest if nearest is None else cv2.min(nearest, farthest)
    return nearest


def solid_share(laid: np.ndarray, target: np.ndarray, inside: np.ndarray, wide: int) -> float | None:
    """The share of ``inside`` where two pictures (luminance [h, w] or RGB [h, w, 3]) laid over each other
    differ beyond ``DIFFERENT`` after one tone curve for all channels, counting only parts at least
    ``wide`` pixels across (an opening: what a copy leaves is its edges a little off, strokes thinned by
    shrinking), the smaller of mapping either onto the other. A pixel differs where it lies far from every
    pixel of the other within ``SOLID_SHIFT``, or the other's from every one of its own: compared one way
    only, a stroke up to 5 pixels wide which only the other picture has finds the paper beside it (a
    clock's thin second hand, a magnifier's plus beside its minus), and the lesser way counted nothing
    (bench/solid_parts.py: one artist's different drawings over the veto 526 -> 551 of 603, copies none
    either way). A clock's hour hand at other times, a playing card's other pips, a smiley's tongue: a few
    per cent of the picture, under what the whole picture's residual at 64 pixels can tell from a copy's
    noise, but solid. In colour, a red mouth on an orange face, one level in luminance, is solid too; a
    copy made less or more colourful is mapped again with its saturation matched (:func:`_mappings`). None
    where under ``SOLID_PIXELS`` are compared."""
    compared = np.count_nonzero(inside)
    if compared < SOLID_PIXELS:
        return None
    kernel = np.ones((wide, wide), np.uint8)
    least = 1.0
    for mapped, other in _mappings(laid, target, inside):
        mine, theirs = channels(mapped), channels(other)
        solid = cv2.bitwise_or(_solid_parts(mine, theirs, inside, kernel),
                               _solid_parts(theirs, mine, inside, kernel))
        least = min(least, np.count_nonzero(solid) / compared)
        if not least:  # one mapping explains every pixel: the rest cannot lower it
            break
    return float(least)


def _solid_parts(one: np.ndarray, other: np.ndarray, inside: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Where ``one`` lies beyond ``DIFFERENT`` from every pixel of ``other`` within ``SOLID_SHIFT``, in
    parts as wide as ``kernel`` (an opening), as uint8. Opened one way at a time: a laying a few pixels
    off leaves a thin sliver along each edge each way, side by side, which together are wide enough to
    count (a flag's stripes laid by the residual's search, 0.02 of a copy)."""
    beyond = (_apart(one, other, SOLID_SHIFT, SOLID_BLUR) > DIFFERENT) & inside
    return cv2.morphologyEx(beyond.astype(np.uint8), cv2.MORPH_OPEN, kernel)


def _mappings(laid: np.ndarray, target: np.ndarray, inside: np.ndarray
              ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Each of two pictures mapped onto the other by one rising tone curve, with the other; then, in colour,
    each with its saturation matched to the other's first (:func:`_saturation_matched`): one curve for
    all channels maps brightening and its clipping, but not a copy made less colourful (its red and its
    yellow, on one level of the curve before, move to two). A curve that merges mid tones is no edit's
    and is left out (:func:`rising_tone_mapped`): where none is left, no pixel is explained."""
    tried = itertools.chain(((laid, target), (target, laid)), _saturation_matched(laid, target, inside))
    for source, other in tried:
        mapped = rising_tone_mapped(source, other, inside)
        if mapped is not None:
            yield mapped, other


def _saturation_matched(a: np.ndarray, b: np.ndarray, inside: np.ndarray
                        ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """RGB ``a`` and ``b``, each moved toward or away from its own grey (its luminance) by the one factor
    that brings its colours nearest the other's ``inside`` the part compared (least squares, at most
    ``SATURATION`` either way): what making a picture less or more colourful does, every hue kept. Each
    with the other as it was; nothing for luminance."""
    if a.ndim != 3:
        return
    greys = [pixels @ LUMINANCE for pixels in (a, b)]
    colours = [pixels - grey[..., None] for pixels, grey in zip((a, b), greys, strict=True)]
    mine, theirs = (colour[inside] for colour in colours)
    shared = float((mine * theirs).sum())
    for grey, colour, own, other in zip(greys, colours, (mine, theirs), (b, a), strict=True):
        factor = min(max(shared / max(float((own * own).sum()), 1e-6), 1 / SATURATION), SATURATION)
        yield np.clip(grey[..., None] + factor * colour, 0, 255).astype(np.float32), other


def channels(pixels: np.ndarray) -> np.ndarray:
    """Pixels as [h, w, channels]: luminance as one channel."""
    return pixels if pixels.ndim == 3 else pixels[..., None]

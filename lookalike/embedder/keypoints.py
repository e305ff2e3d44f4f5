"""Local features for geometric verification: do two pictures show the same arrangement of details?

An ImageNet model puts two different drawings of one hand sign, two poses of one stamp or two
screenshots of one program close together: it sees *what* is there, not *where*. A copy - shrunk,
cropped, framed, captioned, turned, mirrored, brightened, greyed or recompressed - keeps its details
in the same places up to one similarity transform, so many of its ORB keypoints match the original's
under a single RANSAC fit. Two distinct pictures rarely do. This is the geometric verification of
the copy-detection literature, made cheap by OpenCV's ORB (binary descriptors, Hamming matching).

Keypoints that fit one transform are not enough on their own: two screenshots of one program share
their window frame, two poses of one stamp share the head. So once aligned by the fitted transform,
the two pictures are compared cell by cell where both show their own content (added borders and caption
bands left out): a copy's details correlate nearly everywhere, another picture's do not; and a copy's
light and dark parts stay where they were, where a drawing moved onto a dark background has them the
other way round (:func:`opposed_shades`).

Flat pictures (flags, clip art, smooth gradients) have too few keypoints for either comparison. Their
layout still tells: each picture's content, shrunk to a coarse grid, against the other's, over turns,
mirrors and the crops a copy may have had (:func:`layout_agreement`). Two flags of the same three colours
in another order are alike to the model, not in layout.

Keypoints are found on the luminance at ``SIDE`` pixels on the long side and details compared at
``DETAIL_SIDE``, so a quarter-size copy and its original are compared at one scale. A mirror image is
described separately when needed: ORB descriptors are not mirror-invariant, and mirrored copies are
common.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import NamedTuple, Protocol

import cv2
import faiss
import numpy as np
from PIL import Image, ImageOps

from lookalike.embedder.images import open_image
from lookalike.embedder.residual import (
    LAID_SOLID,
    SOLID,
    Cuts,
    aligned_residual,
    channels,
    channels_mapped,
    is_grey,
    picture_cuts,
    rising_tone_mapped,
    solid_share,
)
from lookalike.embedder.residual import SIDE as CUTS_SIDE
from lookalike.embedder.traits import (
    MAX_CAPTION,
    TURNED_VIEWS,
    across_channels,
    content_box,
    hue_sixths,
    orientations,
    thumbnail_pixels,
    turn_beyond_brightening,
)
from lookalike.errors import ImageError

SIDE = 512  # long side the keypoints are found at: small copies are scaled up to it
EXPECTED_KEYPOINTS = 150
"""Both pictures need this many keypoints for the keypoints to judge a pair (the geometric check in
:mod:`lookalike.index.geometry`): flat drawings, flags and smooth gradients have a handful, and their
copies match few. A pair with a picture under it is judged by layouts (:func:`layout_agreement`) instead,
and like every pair by the aligned residual (:func:`~lookalike.embedder.residual.aligned_residual`)."""
FEATURES = 1000  # ORB keypoints kept per picture
RATIO = 0.8  # Lowe's ratio test: a match must be clearly better than the second best
REPROJECTION = 6.0  # pixels at SIDE an inlier may be off the fitted transform
CACHE_BYTES = 1 << 30
"""Described files kept in memory by one run, at most (and at most an eighth of the machine's memory):
a file takes 70-110 KB, so about 12,000 files. A run asks for a file again and again, in several
batches and in no order of files (a picture's pairs with each of its look-alikes); a first run on
the series of distinct drawings asked for 8,621 described files 22,578 times while 2,048 were kept."""
MATCH_CHUNK = 1024  # pairs matched per step: their files (at most twice this) all stay cached
MAX_SCALE = 3.0  # both are drawn at SIDE: a copy is at most a 25 % crop or a wide frame away (1.4)
ORB_EDGE = 31  # ORB's border without keypoints: a strip this thin has none (one pixel wide, OpenCV fails)
DETAIL_SIDE = 256  # long side of the luminance kept to compare details once aligned
CELL = 16  # pixels a side, at DETAIL_SIDE, of the cells compared one by one
EDGE = 4  # pixels at DETAIL_SIDE left out along the shared part's edge: the blur and the box's rounding
BAND_EDGE = 0.03  # share of the content's height (width) along a side whose colour a band there has
BAND_TEXT = 2  # pixels at DETAIL_SIDE from a band's colour that may be its text (strokes up to 4 wide)
BAND_FLAT = 32.0
"""0-255: a caption band someone added is one flat colour, its pixels this near the colour along the side
(:func:`_maybe_a_band`); its text is ``BAND_TEXT``'s. At 48 (``DIFFERENT``), a pattern's dark corner piece
on its grey field, white in its other colouring, was taken for a band and left out of the solid parts (the
artist series' x-hatch tiles: solid 0.0, now 0.16; at 24, 0.21 and that series no longer merged). At 24,
JPEG's ringing beside a black band's white text was no band, and the text, further than ``BAND_TEXT`` from
the band's colour, a solid part: of 3,460 pairs of a dev caption copy beside another copy of its original,
one was dropped (the moon drawing's caption beside its crop: 0.012), kept at 32 and 48. Measured at 24 and
again at 32: bench/solid_parts.py the same as at 48 for every row of copies and everyday edits,
bench/calibrate.py every row the same; the artist series at 32, 96 originals wrongly paired (98 at 48)."""
REFINING = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 1e-4)  # ECC: steps at most, least gain
TEXTURED = 8.0  # luminance spread (0-255) over which a cell shows details; flat cells say nothing
STROKED = 4.0  # spread of the change from pixel to next pixel (row or column) over which a cell has strokes
CELL_AGREEMENT = 0.5  # aligned cells whose details correlate less than this differ
SHADE_STEP = 10.0  # a cell this far (0-255) from the median cell's mean is lighter or darker than it
ALIGNED_INLIERS = 12  # fewer inliers and the fit may be chance: details are not compared
OFF_TURN = 2.0  # degrees off the quarter turns a copy the aligned residual lays over its original stands
TEXTURED_CELLS = 8  # fewer textured cells in the shared part: too little to compare
LAYOUT_GRID = 5  # cells a side of the coarse layout flat pictures are compared by (8: copies less alike)
LAYOUT_CROPS = (1.0, 0.87, 0.75)  # share of a side a copy may keep: a crop of up to 25 % (as MAX_SCALE)
LAYOUT_FLAT = 2.0  # a layout spread less than this (0-255) is blank: it says nothing
LAYOUT_COLOURFUL = 8.0  # opponent colours spread less than this: too faint to compare (JPEG tints them)
LAYOUT_GAIN = 3.0
"""Between two pictures without a border or band, a crop window must have the other whole's contrast
(luminance spread) within this factor to be where that copy came from: a copy is brightened, greyed or
recompressed (1.6 times the contrast at most in the dupset). A flag with its white band turned dark
keeps the order of its shades at an eighth of the contrast, and a crop of one matched the other at 0.78.
Where a border was found, it may have taken a band of the picture's own colour with it (a white stripe
beside a white border): the contrast inside says nothing there. (Windows restricted to the other's
shape as well changed nothing on the dev set or the probes: left out.)"""


VIVID = 48.0
GREY = 16.0
HUE_PIXELS = 50
PIXEL_TURN = 12.0
HUE_BLUR = 1.0
HUE_NOISE = 16.0
"""See :func:`turned_hues`: a pixel's hue is clear where its channels spread ``VIVID`` apart (out of 255) in
both pictures (twice the colour grid's ``TURN_CHROMA``: a pixel is noisier than a cell's mean), both blurred
by ``HUE_BLUR`` (sigma, at ``DETAIL_SIDE``: the keypoints' fit lies a pixel or so off); a pixel spreading
less than ``GREY`` is grey (white balance tints a white 31 apart, a grey beside it less). Under
``HUE_PIXELS`` clear pixels say nothing. A hue turned more than ``PIXEL_TURN`` degrees (the colour grid's
``HUE_TURN``) is turned, and where that moved the colour less than ``HUE_NOISE`` (out of 255), more
(:func:`_clear_turn`): JPEG at quality 30 moves a pale colour that far. At ``PIXEL_TURN`` alone, 16 of the
artist series' 447 JPEG q30 copies (playing cards with a beige edge) were taken for recoloured beside their
original, none with ``HUE_NOISE``, which tells 8 fewer of the near-hue probe's 527 pairs of variants (401
to 393) and 1 fewer of 122 dev photos with their hues turned 30 degrees (bench/hue_pixels.py)."""

LAYOUT_AGREEMENT = 0.6
"""A pair of pictures too flat for the keypoints to judge (under ``EXPECTED_KEYPOINTS`` on either side)
is not a copy when their coarse layouts, in luminance and (both coloured) in colour, correlate under this
however one is cropped, turned or mirrored (:func:`layout_agreement`; the verdict is
:func:`lookalike.index.geometry.geometry_disagrees`'s): two tricolour flags of the same colours in another
order, two fruits drawn on white. Dev set, such pairs scoring from 0.54 that pass the colour checks, at
``LAYOUT_GRID`` 5: 1,688 pairs of copies (every kind) agree at 0.71 at least (1st percentile 0.80), a
margin of 0.1 kept for pictures unlike the dev set's; of 273 pairs of different pictures from 0.58, 144
under 0.6 (113 under 0.5; luminance alone, about 100). An 8x8 grid caught 152 but brought copies down to
0.67 (1st percentile 0.73): too thin a margin (on the test half it cost recall, 0.915 -> 0.910). Dev at
threshold 0.58: precision 0.973 -> 0.989, the flags family no longer merged, recall 0.963 -> 0.970; the
default unchanged on dev. Where they agree less, the aligned residual is not measured: the pair is told
apart already."""


@dataclass(frozen=True, eq=False)
class Layout:
    """A picture's content (inside its content box) as ``LAYOUT_GRID`` x ``LAYOUT_GRID`` cells: ``shades``
    of mean luminance, ``colours`` of the two opponent colours (red-green, yellow-blue; None for a
    picture without colour). Each is (whole, windows): the whole content in the eight quarter turns and
    mirrors [8, cells], and the crops a copy may keep (``LAYOUT_CROPS``, at the corners, edges and
    centre) [n, cells]; every row zero-mean and unit-norm, so two multiplied and summed are their
    correlation; ``contrasts``, the luminance spread of the whole [1] and of each window [n], which
    that leaves out. ``blank``: nothing to compare; ``framed``: the content box leaves part of the
    picture out."""

    shades: tuple[np.ndarray, np.ndarray]
    colours: tuple[np.ndarray, np.ndarray] | None
    contrasts: tuple[np.ndarray, np.ndarray]
    blank: bool
    framed: bool = False


@dataclass(frozen=True, eq=False)
class Keypoints:
    """One picture as drawn, described for matching: ORB keypoints' positions [n, 2] at ``SIDE`` and
    32-byte descriptors [n, 32]; its luminance at ``DETAIL_SIDE`` and, there, the box (top, bottom,
    left, right) of its own content inside added borders or a caption band; its colours (RGB) at
    ``DETAIL_SIDE`` for solid parts, None for a grey picture; the coarse layout of that
    content; the small colour :class:`~lookalike.embedder.residual.Cuts` a flat pair is aligned by; the
    long side of the picture as decoded (``resolution``: the detail it holds)."""

    points: np.ndarray
    descriptors: np.ndarray
    luminance: np.ndarray
    content: tuple[int, int, int, int]
    layout: Layout
    cuts: Cuts
    resolution: int
    colour: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.points)

    @property
    def nbytes(self) -> int:
        """Memory the arrays take, for bounding a cache of described files."""
        layout = self.layout
        arrays = (self.points, self.descriptors, self.luminance, *layout.shades, *(layout.colours or ()),
                  *layout.contrasts, *(() if self.colour is None else (self.colour,)))
        return sum(array.nbytes for array in arrays) + self.cuts.nbytes

    def content_mask(self) -> np.ndarray:
        mask = np.zeros(self.luminance.shape, np.float32)
        top, bottom, left, right = self.content
        mask[top:bottom, left:right] = 1.0
        return mask


def _orb(grey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    found, descriptors = (cv2.ORB_create(nfeatures=FEATURES).detectAndCompute(grey, None)
                          if min(grey.shape) > 2 * ORB_EDGE else ((), None))
    if descriptors is None:
        return np.empty((0, 2), np.float32), np.empty((0, 32), np.uint8)
    return np.float32([k.pt for k in found]).reshape(-1, 2), descriptors


def _scaled(box: tuple[int, int, int, int], shape: tuple[int, ...], size: tuple[int, int]
            ) -> tuple[int, int, int, int]:
    """A box (top, bottom, left, right) in pixels of ``shape`` (height, width) as in pixels of ``size``
    (width, height)."""
    top, bottom, left, right = box
    scale_y, scale_x = size[1] / shape[0], size[0] / shape[1]
    return round(top * scale_y), round(bottom * scale_y), round(left * scale_x), round(right * scale_x)


def picture_keypoints(picture: Image.Image, mirrored: bool = False) -> Keypoints:
    """A decoded picture (or its mirror image) described: keypoints at ``SIDE`` on the long side,
    luminance and content box at ``DETAIL_SIDE``."""
    picture = ImageOps.mirror(picture) if mirrored else picture
    scale = SIDE / max(picture.size)
    size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
    grey = picture.convert("L").resize(size, Image.Resampling.BILINEAR)
    detail_size = (max(1, round(size[0] * DETAIL_SIDE / SIDE)), max(1, round(size[1] * DETAIL_SIDE / SIDE)))
    luminance = np.asarray(grey.resize(detail_size, Image.Resampling.BOX))
    pixels = thumbnail_pixels(picture)  # the content box and the layout, from one thumbnail
    box = content_box(pixels)
    cuts = picture_cuts(picture, _scaled(box, pixels.shape, picture.size))
    colour = None if is_grey(cuts.whole) else np.asarray(  # scaled down as the luminance is
        picture.convert("RGB").resize(size, Image.Resampling.BILINEAR).resize(detail_size,
                                                                              Image.Resampling.BOX))
    return Keypoints(*_orb(np.asarray(grey)), luminance, _scaled(box, pixels.shape, detail_size),
                     content_layout(pixels, box), cuts, max(picture.size), colour)


def file_keypoints(path: str, mirrored: bool = False) -> Keypoints | None:
    """:func:`picture_keypoints` of an image file; None if it no longer reads as an image."""
    try:
        return picture_keypoints(open_image(path, min_size=SIDE), mirrored)
    except (ImageError, OSError):
        return None


def _window_grids(values: np.ndarray, windows: Sequence[tuple[float, float, float, float]]) -> np.ndarray:
    """Mean of ``values`` [h, w, channels] over a ``LAYOUT_GRID`` grid inside each window (left and top
    as shares of the room left, width and height as shares of the side), from one summed-area table:
    [windows, channels, grid, grid]."""
    height, width = values.shape[:2]
    summed = np.zeros((height + 1, width + 1, values.shape[2]))
    summed[1:, 1:] = values.cumsum(axis=0).cumsum(axis=1)
    steps = np.arange(LAYOUT_GRID + 1) / LAYOUT_GRID
    left, top, share_x, share_y = np.array(windows, dtype=np.float64).T[:, :, None]
    xs = np.round((1 - share_x) * width * left + share_x * width * steps).astype(int)  # [windows, grid + 1]
    ys = np.round((1 - share_y) * height * top + share_y * height * steps).astype(int)
    corners = summed[ys[:, :, None], xs[:, None, :]]  # [windows, grid + 1, grid + 1, channels]
    sums = corners[:, 1:, 1:] - corners[:, :-1, 1:] - corners[:, 1:, :-1] + corners[:, :-1, :-1]
    area = np.maximum(np.diff(ys)[:, :, None] * np.diff(xs)[:, None, :], 1)[..., None]
    return (sums / area).transpose(0, 3, 1, 2)


def _unit_rows(grids: np.ndarray) -> np.ndarray:
    """Grids [n, channels, grid, grid] as rows, each channel zero-mean and the row unit-norm; a flat
    one as zeros (it correlates with nothing). Half precision: a cached file's layout stays small."""
    centred = grids - grids.mean(axis=(2, 3), keepdims=True)
    rows = centred.reshape(len(grids), -1)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.where(norms > 1e-6, rows / np.maximum(norms, 1e-6), 0.0).astype(np.float16)


def _views(grids: np.ndarray) -> np.ndarray:
    """One set of grids [channels, grid, grid] in the eight quarter turns and mirrors."""
    turned = [np.rot90(grids, k, axes=(1, 2)) for k in range(4)]
    return np.array([view for grid in turned for view in (grid, grid[:, :, ::-1])])


_WINDOWS = [(left, top, share_x, share_y) for share_x in LAYOUT_CROPS for share_y in LAYOUT_CROPS
            for left in ((0.0, 0.5, 1.0) if share_x < 1 else (0.0,))
            for top in ((0.0, 0.5, 1.0) if share_y < 1 else (0.0,))]
_WINDOW_SHARES = np.array([(share_x, share_y) for *_, share_x, share_y in _WINDOWS])  # [windows, 2]


def content_layout(pixels: np.ndarray, content: tuple[int, int, int, int]) -> Layout:
    """The :class:`Layout` of RGB pixels [h, w, 3] inside their content box."""
    top, bottom, left, right = content
    inside = pixels[top:bottom, left:right].astype(np.float64)
    if min(inside.shape[:2]) < LAYOUT_GRID:  # a sliver: the box says little, the whole picture more
        inside = pixels.astype(np.float64)
    if min(inside.shape[:2]) < LAYOUT_GRID:
        return Layout((np.zeros((0, 0)),) * 2, None, (np.zeros(0),) * 2, True)
    red, green, blue = inside[..., 0], inside[..., 1], inside[..., 2]
    channels = np.stack([0.299 * red + 0.587 * green + 0.114 * blue, red - green, (red + green) / 2 - blue],
                        axis=2)
    whole = _window_grids(channels, [(0.0, 0.0, 1.0, 1.0)])[0]
    windows = _window_grids(channels, _WINDOWS)
    spread = whole.std(axis=(1, 2))
    shades = _unit_rows(_views(whole[:1])), _unit_rows(windows[:, :1])
    colourless = spread[1:].max() < LAYOUT_COLOURFUL
    colours = None if colourless else (_unit_rows(_views(whole[1:])), _unit_rows(windows[:, 1:]))
    contrasts = spread[:1], windows[:, 0].std(axis=(1, 2))
    framed = inside.shape[:2] != pixels.shape[:2]
    return Layout(shades, colours, contrasts, bool(spread[0] < LAYOUT_FLAT), framed)


def layout_agreement(a: Keypoints, b: Keypoints) -> float | None:
    """How well the two pictures' coarse layouts agree at best: either one cropped as a copy may be
    (``LAYOUT_CROPS``; between unframed pictures, windows of the other whole's contrast only:
    ``LAYOUT_GAIN``) against the other whole, turned or mirrored any way, in luminance and, where both
    have colour, in colour too (the lower of the two correlations). None if either is blank."""
    if a.layout.blank or b.layout.blank:
        return None
    layouts = (a.layout, b.layout)
    contrast_counts = not (a.layout.framed or b.layout.framed)
    kinds = [(a.layout.shades, b.layout.shades)]
    if a.layout.colours is not None and b.layout.colours is not None:
        kinds.append((a.layout.colours, b.layout.colours))

    sides = (a, b)

    def best(whole: int, cropped: int) -> float:
        """The best over one side's crops against the other side whole (0: a, 1: b), in the turns the
        shapes allow (a window as wide as high as the whole, unturned; else turned; near-squares any)."""
        found = np.minimum.reduce([np.float32(kind[cropped][1]) @ np.float32(kind[whole][0]).T
                                   for kind in kinds])  # [windows, views]
        top, bottom, left, right = sides[whole].content
        whole_way = orientations(right - left, bottom - top)
        top, bottom, left, right = sides[cropped].content
        share_x, share_y = _WINDOW_SHARES.T
        windows_way = orientations((right - left) * share_x, (bottom - top) * share_y)
        relation = (windows_way * whole_way)[:, None]  # 1: one orientation, -1: swapped, 0: a near-square
        ruled_out = np.where(TURNED_VIEWS, relation > 0, relation < 0)  # [windows, views]
        found = np.where(ruled_out, -1.0, found)
        if not contrast_counts:
            return float(found.max())
        gains = layouts[cropped].contrasts[1] / max(float(layouts[whole].contrasts[0][0]), 1e-6)
        fits = (gains <= LAYOUT_GAIN) & (gains >= 1 / LAYOUT_GAIN)  # [windows]
        return float(np.where(fits[:, None], found, -1.0).max())

    return max(best(0, 1), best(1, 0))


class Match(NamedTuple):
    """How two pictures' keypoints match: ``inliers`` of the ``matches`` (ratio-tested) fit one
    rotation, scale and shift; ``keypoints_a``/``_b`` are how many each picture has. ``differing`` is
    the share of textured cells whose details differ once the two are laid over each other
    (:func:`differing_cells`), None where too few matches fit or the pictures are too flat to say.
    ``layout`` is :func:`layout_agreement`, for pictures too flat for keypoints; ``opposed``
    is :func:`opposed_shades` and ``strokes`` :func:`differing_strokes`, None where ``differing`` is
    (``strokes`` also where too few cells have strokes). ``contained`` is ``LaidCells.contained``, None
    where too few matches fit to lay the two over each other. ``askew`` is how many degrees the fitted
    rotation lies off the nearest quarter turn (a copy is upright, turned a quarter or half; what RANSAC
    fits to a handful of chance matches turns any way), None where nothing fits. ``residual`` is
    :func:`~lookalike.embedder.residual.aligned_residual`, None where :func:`matched_keypoints` leaves it
    to the layouts or the keypoints. ``solid`` is :func:`solid_differences` where the keypoints lay the
    two over each other, else :func:`placed_solid_differences` where the residual's search does; None
    where neither lays them or too little is compared. ``turned`` is :func:`turned_hues` where the
    keypoints lay the two over each other, None there too where either is grey or few pixels are clearly
    coloured in both."""

    inliers: int
    matches: int
    keypoints_a: int
    keypoints_b: int
    differing: float | None = None
    layout: float | None = None
    opposed: float | None = None
    strokes: float | None = None
    contained: float | None = None
    askew: float | None = None
    residual: float | None = None
    solid: float | None = None
    turned: float | None = None


def ratio_tested(mine: np.ndarray, theirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Matches of two sets of ORB descriptors [n, 32] as indices into each: every descriptor of
    ``mine`` whose nearest of ``theirs`` (Hamming distance) is clearly nearer than the second nearest
    (Lowe's ``RATIO``), then one match per descriptor of ``theirs``, its nearest (of equals, the first):
    several onto one point fit any transform that shrinks them together. In the order ``theirs`` are
    first matched, so RANSAC, which draws by position, gives one pair the same answer every run.

    Exact search with FAISS's ``knn_hamming``, which returns arrays: OpenCV's matcher finds the same
    matches but hands each over as a Python object; a first run's pairs on the dev set match in 0.65
    of the time this way (docs/benchmarks.md, "Keypoint matching")."""
    distances, nearest = faiss.knn_hamming(np.ascontiguousarray(mine), np.ascontiguousarray(theirs), 2)
    queries = np.flatnonzero(distances[:, 0] < RATIO * distances[:, 1])
    targets = nearest[queries, 0]
    by_target = np.lexsort((queries, distances[queries, 0], targets))  # each target's nearest first
    firsts = np.ones(len(by_target), bool)
    firsts[1:] = targets[by_target[1:]] != targets[by_target[:-1]]
    kept = by_target[firsts]  # one per target, in target order
    _, first_seen = np.unique(targets, return_index=True)
    order = np.argsort(first_seen, kind="stable")
    return queries[kept][order], targets[kept][order]


Decided = Callable[[Match], bool]
"""Whether a pair's keypoints alone (its :class:`Match` without a residual) already decide it is two
pictures, a verdict no residual could change (the geometric check's veto, which any residual only adds
to): such a pair is not laid over itself pixel by pixel."""


def matched_keypoints(a: Keypoints, b: Keypoints, decided: Decided | None = None) -> Match:
    """Match ``a``'s keypoints to ``b``'s (Hamming distance, Lowe's ratio test), then fit one rotation, scale
    and shift to the matches with RANSAC; where ``ALIGNED_INLIERS`` fit, lay ``a`` over ``b`` and ``b`` over
    ``a`` (:func:`_laying`, :func:`laid_cells`) and compare their details (:func:`differing_cells`), shading
    (:func:`opposed_shades`) and strokes (:func:`differing_strokes`), each the larger of the two ways
    (:func:`_either_way`), and unless the keypoints have ``decided`` the pair already, their solid parts
    (:func:`solid_differences`), then unless those have, their hues (:func:`turned_hues`). Then lay the two
    over each other pixel by pixel (:func:`aligned_residual`): a flag bearing another emblem, a pictogram with
    another figure, fits its keypoints where the two are alike, and however many of them fit, the cells that
    differ are forgiven as details (a hotel pictogram beside the information sign in it: 39 fitting, 3 % of
    the cells differing, 19 % of the pixels). Laid first where the keypoints lay them, which explains most
    copies without a search (:func:`~lookalike.embedder.residual.laid_share`); where no keypoints laid them,
    their solid parts are compared where the search lays them (:func:`placed_solid_differences`), unless the
    residual has ``decided`` the pair. Not where a flat pair's layouts tell it apart already, nor where the
    keypoints lay two detailed pictures over each other turned in a way the residual does not try
    (:func:`_beyond_alignment`), nor where the keypoints or the solid parts have ``decided`` the pair already:
    on the dev half, 38 % of the residual's time went to pairs the keypoints had told apart. The verdict only
    adds vetoes, so a look skipped after one cannot change it."""
    found, laid = _keypoint_match(a, b)
    if decided is not None and decided(found):
        return found
    if laid is not None:
        found = found._replace(solid=solid_differences(a, b, laid))
        if decided is not None and decided(found):  # told apart by a solid part: its hues cannot undo that
            return found
        found = found._replace(turned=turned_hues(a, b, laid))
    flat = min(len(a), len(b)) < EXPECTED_KEYPOINTS
    told = flat and found.layout is not None and found.layout < LAYOUT_AGREEMENT
    if told or (not flat and _beyond_alignment(found)):
        return found
    laying = None if laid is None else laid * np.array([1.0, 1.0, CUTS_SIDE / SIDE])  # shifts at cut size
    searched = aligned_residual(a.cuts, b.cuts, laying)
    if searched is None:
        return found
    found = found._replace(residual=searched.share)
    if laid is not None or searched.fit is None or (decided is not None and decided(found)):
        return found
    return found._replace(solid=placed_solid_differences(a, b, searched.fit))


def _beyond_alignment(found: Match) -> bool:
    """Whether the keypoints lay two pictures over each other (``contained`` is measured only where they
    do) turned off the quarter turns (``OFF_TURN``), which the residual does not try: a photo tilted 15
    degrees. Their keypoints judge it alone; the residual would find a copy's pixels misplaced. Scaled
    past the residual's crops (a third), the smaller may be a detail of the other (the information sign
    inside a hotel pictogram, at twice its size), so such a pair is measured, and a photo's middle half
    is kept apart."""
    return found.contained is not None and found.askew is not None and found.askew > OFF_TURN


def _keypoint_match(a: Keypoints, b: Keypoints) -> tuple[Match, np.ndarray | None]:
    """:func:`matched_keypoints` but the residual, and the affine map laying ``a`` over ``b`` (at
    ``SIDE``) where enough matches fit one (:func:`_laying`), for the residual to try first."""
    layout = layout_agreement(a, b)
    if len(a) < 2 or len(b) < 2:
        return Match(0, 0, len(a), len(b), layout=layout), None
    mine, theirs = ratio_tested(a.descriptors, b.descriptors)
    if len(mine) < 3:
        return Match(0, len(mine), len(a), len(b), layout=layout), None
    source, target = a.points[mine], b.points[theirs]
    cv2.setRNGSeed(0)  # RANSAC draws at random: the same pair gets the same answer every run
    fit, inlying = cv2.estimateAffinePartial2D(source, target, method=cv2.RANSAC,
                                               ransacReprojThreshold=REPROJECTION)
    if fit is None or not 1 / MAX_SCALE <= float(np.hypot(*fit[:, 0])) <= MAX_SCALE:
        return Match(0, len(mine), len(a), len(b), layout=layout), None
    inliers = int(inlying.sum())
    askew = _off_quarter_turns(fit)
    laid = _laying(source, target) if inliers >= ALIGNED_INLIERS else None
    if laid is None:
        return Match(inliers, len(mine), len(a), len(b), layout=layout, askew=askew), None
    cells = laid_cells(a, b, laid)
    back = laid_cells(b, a, cv2.invertAffineTransform(laid))
    return Match(inliers, len(mine), len(a), len(b), _either_way(differing_cells, cells, back), layout,
                 _either_way(opposed_shades, cells, back), _either_way(differing_strokes, cells, back),
                 cells.contained, askew), laid


def _either_way(measure: Callable[[LaidCells], float | None], *ways: LaidCells) -> float | None:
    """The larger of ``measure`` taken with each picture laid over the other and cut into the other's
    cells: whose grid the cells follow must not decide the verdict, and the cells of one grid may
    straddle what the other's split (two screenshots of one program around other pictures: 0.60 of the
    cells differing one way, 0.66 the other). None where neither way says."""
    known = [found for found in map(measure, ways) if found is not None]
    return max(known) if known else None


def _off_quarter_turns(fit: np.ndarray) -> float:
    """Degrees a rotation-scale-shift ``fit`` turns away from the nearest multiple of 90."""
    degrees = float(np.degrees(np.arctan2(fit[1, 0], fit[0, 0])))
    return abs((degrees + 45.0) % 90.0 - 45.0)


def _laying(source: np.ndarray, target: np.ndarray) -> np.ndarray | None:
    """The affine map (a stretched copy too, which one rotation and scale cannot lay right) most of the
    matches fit, to lay one picture over the other; None if too few fit or it shrinks or grows too far."""
    cv2.setRNGSeed(0)
    fit, inlying = cv2.estimateAffine2D(source, target, method=cv2.RANSAC, ransacReprojThreshold=REPROJECTION)
    if fit is None or int(inlying.sum()) < ALIGNED_INLIERS:
        return None
    scales = np.linalg.svd(fit[:, :2], compute_uv=False)
    return fit if scales.min() >= 1 / MAX_SCALE and scales.max() <= MAX_SCALE else None


class LaidCells(NamedTuple):
    """Two pictures laid over each other, cut into ``CELL``-pixel cells mostly inside the part where both
    show their own content: each one's pixels [cells, CELL * CELL] (lightly blurred), the weights of the
    shared part, and each cell's height in that part (0 top, 1 bottom) as the other picture stands and as
    the one laid over it stands (``laid_heights``: a caption band added to a picture lies at its own top
    or bottom, which a quarter turn puts at the other's side). ``contained``: the share of the smaller
    one's frame that lies inside the other's (a copy, however cropped, lies wholly inside its original;
    two shots of one scene each show what the other does not)."""

    mine: np.ndarray
    theirs: np.ndarray
    weights: np.ndarray
    heights: np.ndarray
    laid_heights: np.ndarray
    contained: float


def laid_cells(a: Keypoints, b: Keypoints, fit: np.ndarray) -> LaidCells:
    """Lay ``a`` over ``b`` by ``fit`` (from ``a``'s points at ``SIDE`` to ``b``'s) and cut both into
    :class:`LaidCells` (added borders and caption bands left out, by the content boxes)."""
    fit, laid, shared = _laid_over(a, b, _at_detail(fit))
    height, width = b.luminance.shape
    overlap = cv2.warpAffine(np.ones(a.luminance.shape, np.float32), fit, (width, height),
                             flags=cv2.INTER_NEAREST).sum()  # of the frames: content boxes can be off
    area_a = a.luminance.size * abs(float(np.linalg.det(fit[:, :2])))  # as laid over b
    contained = float(overlap) / max(min(area_a, b.luminance.size), 1.0)
    shared = cv2.erode(shared, np.ones((2 * EDGE + 1, 2 * EDGE + 1), np.uint8),
                       borderType=cv2.BORDER_CONSTANT, borderValue=0)
    rows, columns = height // CELL, width // CELL

    def cells(values: np.ndarray) -> np.ndarray:
        """[rows * columns, CELL * CELL] pixels, cell by cell."""
        cut = values[:rows * CELL, :columns * CELL]
        return cut.reshape(rows, CELL, columns, CELL).swapaxes(1, 2).reshape(rows * columns, CELL * CELL)

    weights = cells(shared)
    inside = weights.mean(axis=1) >= 0.75  # cells mostly in the shared part, measured on that part only
    across, down = np.meshgrid((np.arange(columns) + 0.5) * CELL, (np.arange(rows) + 0.5) * CELL)
    heights, laid_heights = _heights_as_each_stands(a, shared, fit, across.ravel(), down.ravel())
    mine = cells(cv2.GaussianBlur(laid, (0, 0), 1))[inside]
    theirs = cells(cv2.GaussianBlur(b.luminance.astype(np.float32), (0, 0), 1))[inside]
    return LaidCells(mine, theirs, weights[inside], heights[inside], laid_heights[inside],
                     min(contained, 1.0))


def _at_detail(fit: np.ndarray) -> np.ndarray:
    """A fit between keypoints at ``SIDE`` as one between luminances at ``DETAIL_SIDE``."""
    fit = fit.astype(np.float32)
    fit[:, 2] *= DETAIL_SIDE / SIDE
    return fit


def _laid_over(a: Keypoints, b: Keypoints, fit: np.ndarray, in_colour: bool = False
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``a``'s luminance (``in_colour``: its colours) laid over ``b``'s by ``fit`` (at ``DETAIL_SIDE``):
    the fit as float32, the laid pixels in ``b``'s frame, and the part of that frame inside both content
    boxes (1.0, else 0.0)."""
    fit = fit.astype(np.float32)
    height, width = b.luminance.shape
    laid = cv2.warpAffine(_detail(a, in_colour), fit, (width, height), flags=cv2.INTER_LINEAR)
    shared = b.content_mask() * cv2.warpAffine(a.content_mask(), fit, (width, height),
                                               flags=cv2.INTER_NEAREST)
    return fit, laid, shared


def solid_differences(a: Keypoints, b: Keypoints, fit: np.ndarray) -> float | None:
    """The share of the part two pictures laid over each other by ``fit`` both show (their content, away
    from its edge, and not where a caption band someone added may cover it: :func:`_maybe_a_band`)
    where they differ in solid parts
    (:func:`~lookalike.embedder.residual.solid_share`): a card's other pips, a clock's hands at other
    times. Their keypoints fit where the two are one drawing, and the cells that differ are forgiven as
    details (``DETAILS_DIFFER`` in :mod:`lookalike.index.geometry`); a copy's own pixels differ only at its
    edges. Compared at the smaller picture's own resolution where it holds less than ``DETAIL_SIDE``.
    A fit can lie off (a few keypoints, a quarter-size copy beside a crop: a pixel or two; keypoints on a
    flag's or a pattern's repeats: tens of pixels): where it shows solid parts, it is refined
    (:func:`_least_solid_differences`). In colour where both pictures have it."""
    return _least_solid_differences(a, b, _at_detail(fit), LAID_SOLID, in_colour=True)


def _least_solid_differences(a: Keypoints, b: Keypoints, fit: np.ndarray, wide: int, in_colour: bool
                             ) -> float | None:
    """:func:`_solid_differences_at_detail` at ``fit``, and where that shows solid parts, also at the
    alignment refined from it (:func:`_refined`): the lesser counts, as a copy needs one laying that
    explains it."""
    solid = _solid_differences_at_detail(a, b, fit, wide, in_colour)
    if not solid:
        return solid
    refined = _refined(a, b, fit)
    again = None if refined is None else _solid_differences_at_detail(a, b, refined, wide, in_colour)
    return solid if again is None else min(solid, again)


def _detail(found: Keypoints, in_colour: bool) -> np.ndarray:
    """A picture's pixels at ``DETAIL_SIDE`` as float32: its colours or its luminance."""
    return (found.colour if in_colour else found.luminance).astype(np.float32)


def _solid_differences_at_detail(a: Keypoints, b: Keypoints, fit: np.ndarray, wide: int, in_colour: bool
                                 ) -> float | None:
    """:func:`solid_differences` with ``fit`` between the luminances at ``DETAIL_SIDE``, counting parts at
    least ``wide`` pixels across; ``in_colour`` where both pictures have colour: a red mouth on an orange
    face is one level in luminance, which a tone curve maps onto the face."""
    in_colour = in_colour and a.colour is not None and b.colour is not None
    fit, laid, shared = _laid_over(a, b, fit, in_colour)
    inside = _away_from_edge(shared)
    height, width = b.luminance.shape
    across, down = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    heights_b, heights_a = _heights_as_each_stands(a, shared, fit, across, down)
    target = _detail(b, in_colour)
    captions_lie = ~_middle(heights_b, heights_a)  # a band added at either's top or bottom
    inside &= ~(captions_lie & (_maybe_a_band(b, target, in_colour) | _maybe_a_band(a, laid, in_colour)))
    scale = min(a.resolution, b.resolution) / DETAIL_SIDE
    if scale < 1:  # compared at the detail the smaller holds: a quarter-size copy's strokes are blurs
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        laid, target = (cv2.resize(pixels, size, interpolation=cv2.INTER_AREA) for pixels in (laid, target))
        inside = cv2.resize(inside.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    return solid_share(laid, target, inside, wide)


def _away_from_edge(shared: np.ndarray) -> np.ndarray:
    """The part both pictures show (:func:`_laid_over`) without ``EDGE`` pixels along its edge."""
    return cv2.erode(shared, np.ones((2 * EDGE + 1, 2 * EDGE + 1), np.uint8),
                     borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0


def turned_hues(a: Keypoints, b: Keypoints, fit: np.ndarray) -> float | None:
    """Of the pixels clearly coloured in both pictures laid over each other by ``fit`` (at ``SIDE``;
    ``VIVID``), the share whose hue turned (``PIXEL_TURN``) beyond what a copy's edits explain, the least turn
    for each pixel: brightening (:func:`~lookalike.embedder.traits.turn_beyond_brightening`), one tone curve
    for all channels (contrast, which clips at both ends:
    :func:`~lookalike.embedder.residual.rising_tone_mapped`), or what the edit did to the grey pixels
    (``GREY``), channel by channel (:func:`~lookalike.embedder.residual.channels_mapped`); either picture onto
    the other. White balance, levels and equalising act on a copy's greys as on its colours; a design's other
    colouring keeps its white text white and its black background black while its blue logo turns violet:
    Kodi's splash turned by 30 degrees of hue beside it turned by 60, whose keypoints fit at 531, with no
    solid part or residual differing. None where either is grey or under ``HUE_PIXELS`` are clearly coloured
    in both; the colour grid's cells (:func:`lookalike.index.looks.recoloured_tints`) judge those pairs that
    their thumbnails line up."""
    if a.colour is None or b.colour is None:
        return None
    _, laid, shared = _laid_over(a, b, _at_detail(fit), in_colour=True)
    inside = _away_from_edge(shared)
    mine, theirs = (cv2.GaussianBlur(pixels.astype(np.float32), (0, 0), HUE_BLUR)[inside]
                    for pixels in (laid, b.colour))
    spread_mine, spread_theirs = (across_channels(np.maximum, pixels) - across_channels(np.minimum, pixels)
                                  for pixels in (mine, theirs))
    vivid = (spread_mine >= VIVID) & (spread_theirs >= VIVID)
    if np.count_nonzero(vivid) < HUE_PIXELS:
        return None
    turned = turn_beyond_brightening(mine[vivid], theirs[vivid])
    clear = _clear_turn(np.minimum(spread_mine[vivid], spread_theirs[vivid]))
    for mapped, target in _edits_explaining(mine, theirs, spread_mine < GREY, spread_theirs < GREY):
        if not np.any(turned > clear):  # explained already: no edit can lower it
            break
        if mapped is not None:
            apart = np.abs(hue_sixths(mapped[vivid]) - hue_sixths(target[vivid])) % 6
            turned = np.minimum(turned, 60 * np.minimum(apart, 6 - apart))
    return float(np.count_nonzero(turned > clear) / len(turned))


def _clear_turn(spread: np.ndarray) -> np.ndarray:
    """Degrees a pixel's hue must turn to be turned (``PIXEL_TURN``), more where its colour is pale: a
    turn moves a colour by 2 sin(turn / 2) times its spread, and JPEG moves a pale colour's by up to
    ``HUE_NOISE`` (a playing card's beige edge at quality 30: 15 degrees at a spread of 53)."""
    noise = np.degrees(2 * np.arcsin(np.minimum(1.0, HUE_NOISE / (2 * np.maximum(spread, 1e-3)))))
    return np.maximum(PIXEL_TURN, noise)


def _edits_explaining(mine: np.ndarray, theirs: np.ndarray, grey_mine: np.ndarray, grey_theirs: np.ndarray
                      ) -> Iterator[tuple[np.ndarray | None, np.ndarray]]:
    """For :func:`turned_hues`, each picture's pixels [n, 3] mapped onto the other's as a copy's edits
    would map them, with the other: by the grey pixels' change channel by channel (where there are
    ``HUE_PIXELS`` grey ones), then by one tone curve for all channels (None where it merges mid tones),
    the cheaper first. Made one at a time: most copies are explained before the last."""
    pictures = ((mine, theirs, grey_mine), (theirs, mine, grey_theirs))
    for source, target, grey in pictures:
        if np.count_nonzero(grey) >= HUE_PIXELS:
            yield channels_mapped(source, target, grey), target
    everywhere = np.ones(len(mine), dtype=bool)
    for source, target, _ in pictures:
        yield rising_tone_mapped(source, target, everywhere), target


def _maybe_a_band(found: Keypoints, pixels: np.ndarray, in_colour: bool) -> np.ndarray:
    """Where ``found``'s ``pixels`` (laid in the frame compared) may be a caption band someone added that
    its content box missed (a white band on a drawing on white): of a colour its content has along one of
    its sides (a band covers a side from end to end; a quarter turn puts it at the left or the right),
    within ``BAND_FLAT``, or within ``BAND_TEXT`` pixels of it (the band's text). A band is one flat
    colour: a part of the picture's own a few tones off its background is not one (a pattern's dark
    corner piece on its grey field, white in the pattern's other colouring: 47 from the field, it was
    taken for a band and left out)."""
    own = channels(found.colour if in_colour else found.luminance)
    top, bottom, left, right = found.content
    rows, columns = max(1, round(BAND_EDGE * (bottom - top))), max(1, round(BAND_EDGE * (right - left)))
    sides = [own[top:top + rows, left:right], own[bottom - rows:bottom, left:right],
             own[top:bottom, left:left + columns], own[top:bottom, right - columns:right]]
    near = np.zeros(pixels.shape[:2], np.uint8)
    for side in sides:
        if side.size:
            colour = np.median(side.reshape(-1, own.shape[2]), axis=0)
            low, high = tuple((colour - BAND_FLAT).tolist()), tuple((colour + BAND_FLAT).tolist())
            near |= cv2.inRange(pixels, low, high)  # every channel within BAND_FLAT
    return cv2.dilate(near, np.ones((2 * BAND_TEXT + 1, 2 * BAND_TEXT + 1), np.uint8)) > 0


def placed_solid_differences(a: Keypoints, b: Keypoints, placing: np.ndarray) -> float | None:
    """:func:`solid_differences` of a pair too flat for its keypoints to lay it, laid where the residual's
    search placed it (``placing``: ``Residual.fit``, from shares of ``a``'s picture to shares of
    ``b``'s): a pictogram with another figure in one frame, a flag with another emblem on one field. That
    search aligns at 64 pixels, its scales 0.04 apart, so a crop it lays can lie a few pixels off at the
    detail scale: where that shows solid parts, it is refined (:func:`_least_solid_differences`). In
    luminance only: a colour wheel's hues change faster than its lightness, and laid a pixel or two off,
    a copy of it brightened 2.5 times differs in colour (0.12 solid; none in luminance)."""
    height_a, width_a = a.luminance.shape
    height_b, width_b = b.luminance.shape
    fit = (np.diag([width_b, height_b, 1.0]) @ np.vstack([placing, [0.0, 0.0, 1.0]])
           @ np.diag([1 / width_a, 1 / height_a, 1.0]))[:2]  # at DETAIL_SIDE, 0 at a pixel's edge
    fit[:, 2] += fit[:, :2] @ [0.5, 0.5] - 0.5  # 0 at the first pixel's centre, as OpenCV warps
    return _least_solid_differences(a, b, fit, SOLID, in_colour=False)


def _refined(a: Keypoints, b: Keypoints, fit: np.ndarray) -> np.ndarray | None:
    """``fit`` (``a``'s luminance onto ``b``'s) refined by maximising their correlation (OpenCV's ECC:
    brightness and contrast left aside, as a copy changes them); None where it does not converge."""
    warp = cv2.invertAffineTransform(fit.astype(np.float32))  # ECC maps b's pixels to a's
    try:
        _, warp = cv2.findTransformECC(b.luminance.astype(np.float32), a.luminance.astype(np.float32), warp,
                                       cv2.MOTION_AFFINE, REFINING, None, 3)
    except cv2.error:
        return None
    return cv2.invertAffineTransform(warp)


def _heights_as_each_stands(a: Keypoints, shared: np.ndarray, fit: np.ndarray, across: np.ndarray,
                            down: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where points of ``b``'s frame (``across``, ``down``) lie in the part ``shared`` that both show, as
    ``b`` stands and as ``a``, laid over ``b`` by ``fit`` (at ``DETAIL_SIDE``), stands: a caption band
    added to a picture lies at its own top or bottom, which a quarter turn puts at the other's side."""
    back = cv2.invertAffineTransform(fit)  # b's frame -> a's
    shared_in_a = cv2.warpAffine(shared, fit, a.luminance.shape[::-1],
                                 flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP)
    return (_heights(shared, down),
            _heights(shared_in_a, back[1, 0] * across + back[1, 1] * down + back[1, 2]))


def _middle(*heights: np.ndarray) -> np.ndarray:
    """Whether points lie in the middle rows of every picture, at ``heights`` as each stands: away from
    where a caption band someone added (at most ``MAX_CAPTION`` of the height) may cover it."""
    return np.all([(each > MAX_CAPTION) & (each < 1 - MAX_CAPTION) for each in heights], axis=0)


def _heights(shared: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Where the pixel rows ``rows`` lie in the part of a picture's frame that ``shared`` covers: 0 at its
    top, 1 at its bottom."""
    covered = np.flatnonzero(shared.any(axis=1))
    top, bottom = (covered[0], covered[-1] + 1) if len(covered) else (0, 1)
    return (rows - top) / max(bottom - top, 1)


def _cell_means(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Each cell's mean [cells] over its part in the shared content (``weights``)."""
    return (values * weights).sum(axis=1) / weights.sum(axis=1)


def differing_cells(cells: LaidCells) -> float | None:
    """Two pictures laid over each other, compared cell by cell: the share of cells with details
    (``TEXTURED`` on either side) whose luminance correlates under ``CELL_AGREEMENT``. Correlation
    leaves brightness, contrast and greying alone. None when fewer than ``TEXTURED_CELLS`` cells have
    details."""
    return _share_differing(cells.mine, cells.theirs, cells.weights, TEXTURED)


def differing_strokes(cells: LaidCells) -> float | None:
    """As :func:`differing_cells`, but comparing how the luminance changes from pixel to pixel along a
    cell's rows, and along its columns (cells with ``STROKED`` change): the larger of the two shares.
    Two pages of other text in one layout have their lines where each other's are, so their cells agree
    as wholes, but not the letters along the lines; a profile across the lines (lines, bands, gradients)
    has no change along them and drops out, whichever way the pages are turned."""
    shares = []
    for axis in (2, 1):  # along rows, along columns
        mine_before, mine_after = _neighbours(cells.mine, axis)
        theirs_before, theirs_after = _neighbours(cells.theirs, axis)
        weights_before, weights_after = _neighbours(cells.weights, axis)
        shares.append(_share_differing(mine_after - mine_before, theirs_after - theirs_before,
                                       weights_before * weights_after, STROKED))
    known = [share for share in shares if share is not None]
    return max(known) if known else None


def _neighbours(values: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Cells' pixels [cells, CELL * CELL] as two [cells, CELL * (CELL - 1)]: each pixel, and the next one
    along the rows (``axis`` 2) or the columns (1)."""
    grid = values.reshape(-1, CELL, CELL)
    size = (len(values), CELL * (CELL - 1))
    return (grid.take(range(CELL - 1), axis=axis).reshape(size),
            grid.take(range(1, CELL), axis=axis).reshape(size))


def _share_differing(mine: np.ndarray, theirs: np.ndarray, weights: np.ndarray,
                     spread: float) -> float | None:
    """The share of cells [cells, values] spread more than ``spread`` on either side whose values
    correlate under ``CELL_AGREEMENT`` (over the ``weights``); None under ``TEXTURED_CELLS`` such."""
    count = weights.sum(axis=1)
    mine = mine - _cell_means(mine, weights)[:, None]
    theirs = theirs - _cell_means(theirs, weights)[:, None]
    spread_mine = np.sqrt((mine * mine * weights).sum(axis=1) / count)
    spread_theirs = np.sqrt((theirs * theirs * weights).sum(axis=1) / count)
    textured = np.maximum(spread_mine, spread_theirs) > spread
    if textured.sum() < TEXTURED_CELLS:
        return None
    covariance = (mine * theirs * weights).sum(axis=1)[textured] / count[textured]
    correlation = covariance / np.maximum(spread_mine[textured] * spread_theirs[textured], 1e-6)
    return float((correlation < CELL_AGREEMENT).mean())


def opposed_shades(cells: LaidCells) -> float | None:
    """Two pictures laid over each other: of the cells clearly lighter or darker
    (``SHADE_STEP``) than the median cell in both, the share that is lighter in one and darker in the
    other. A copy, brightened, greyed or recompressed, keeps where its light and dark parts are; a
    drawing moved from white onto a dark background does not, though its own pixels (and keypoints)
    are unchanged. Only the middle rows of both pictures, each as it stands, count: a caption band
    someone added (at most ``MAX_CAPTION`` of the height, at the top or the bottom) may have been missed
    by the content box, and a quarter turn puts it at the other's side. None when fewer than
    ``TEXTURED_CELLS`` cells are clear."""
    middle = _middle(cells.heights, cells.laid_heights)
    weights = cells.weights[middle]
    means_mine = _cell_means(cells.mine[middle], weights)
    means_theirs = _cell_means(cells.theirs[middle], weights)
    if len(means_mine) < TEXTURED_CELLS:
        return None
    mine_step, theirs_step = means_mine - np.median(means_mine), means_theirs - np.median(means_theirs)
    clear = (np.abs(mine_step) > SHADE_STEP) & (np.abs(theirs_step) > SHADE_STEP)
    if clear.sum() < TEXTURED_CELLS:
        return None
    return float((mine_step * theirs_step < 0)[clear].mean())


@cache
def matching_code(decided: Decided | None = None) -> str:
    """What measures a :class:`Match`, for matches kept between runs (:class:`MatchMemory`): a digest of
    this module's source, of the aligned residual's, of the decoding and content box it reads the
    files through, and of the module whose verdict ``decided`` which pairs need no residual. Any change to
    that code forgets the matches kept rather than trusting them; a version
    number bumped by hand would be forgotten in some change, and old measurements would silently decide.
    Where that source cannot be read (a frozen build), a name no run shares: nothing kept is trusted."""
    digest = hashlib.sha256()
    verdict = () if decided is None else (decided.__module__,)
    try:
        for name in (__name__, "lookalike.embedder.images", "lookalike.embedder.traits",
                     "lookalike.embedder.residual", *verdict):
            digest.update(Path(sys.modules[name].__file__).read_bytes())
    except (OSError, TypeError):  # TypeError: a module without a file
        return f"unknown {uuid.uuid4()}"
    return digest.hexdigest()[:16]


class MatchMemory(Protocol):
    """Where matches measured in an earlier run are kept (an index keeps its images' pairs): a
    :class:`KeypointFiles` reads them instead of reading and describing the files again, most of a
    second clean-up run's time."""

    def recall(self, code: str, pairs: Sequence[tuple[str, str]], mirrored: bool) -> Mapping[int, Match]:
        """The matches kept for these pairs of files (the second mirrored or not), by position, that were
        measured by the code named ``code`` (:func:`matching_code`)."""

    def keep(self, code: str, pairs: Sequence[tuple[str, str]], mirrored: bool,
             found: Sequence[Match | None]) -> None:
        """Keep what matching these pairs found (None: a file did not read), as far as it can."""


class KeypointFiles:
    """Keypoints of image files for matching pairs of them, several files and pairs at a time.

    Keyed by path, with the most recently used files kept up to ``budget`` bytes (``cache_budget()``):
    one clean-up run reads a file once however many pairs it is in, while memory stays bounded however
    large the collection. The mirror image's keypoints are found only when asked for (a pair that does
    not match as it is drawn), so most files are described once. With a ``memory``, pairs matched in an
    earlier run are read from it, and those matched now are kept in it. ``progress(done, total)`` hears
    how many of a batch's pairs read from files are matched, a chunk at a time. Pairs the keypoints have
    ``decided`` are not measured pixel by pixel (:func:`matched_keypoints`)."""

    def __init__(self, budget: int | None = None, memory: MatchMemory | None = None,
                 progress: Callable[[int, int], None] | None = None, decided: Decided | None = None) -> None:
        self._found: OrderedDict[tuple[str, bool], Keypoints | None] = OrderedDict()
        self._bytes = 0
        self._budget = cache_budget() if budget is None else budget
        self._workers = min(4, os.cpu_count() or 1)
        self._memory = memory
        self._progress = progress
        self._decided = decided

    def match(self, pairs: Sequence[tuple[str, str]], mirrored: bool = False) -> list[Match | None]:
        """:func:`matched_keypoints` for each pair of files, the second mirrored if asked; None where a
        file does not read. Decoding, ORB and matching release the GIL: threads share the work."""
        code = matching_code(self._decided)
        known = self._memory.recall(code, pairs, mirrored) if self._memory is not None else {}
        rest = [i for i in range(len(pairs)) if i not in known]
        matched = self._match_files([pairs[i] for i in rest], mirrored)
        if self._memory is not None and rest:
            self._memory.keep(code, [pairs[i] for i in rest], mirrored, matched)
        found = {**known, **dict(zip(rest, matched, strict=True))}
        return [found[i] for i in range(len(pairs))]

    def _match_files(self, pairs: Sequence[tuple[str, str]], mirrored: bool) -> list[Match | None]:
        found: list[Match | None] = []
        # Each worker matches on one core: FAISS's OpenMP threads on top of them only contend (on a
        # busy machine its waiting threads made the search 1.5 to 6 times slower). Set per thread.
        with ThreadPoolExecutor(self._workers, initializer=faiss.omp_set_num_threads, initargs=(1,)) as pool:
            for start in range(0, len(pairs), MATCH_CHUNK):
                chunk = [(a, b, mirrored) for a, b in pairs[start:start + MATCH_CHUNK]]
                self._describe([key for a, b, _ in chunk for key in ((a, False), (b, mirrored))], pool)
                found.extend(pool.map(self._match_one, chunk))
                if self._progress:
                    self._progress(len(found), len(pairs))
        return found

    def _describe(self, keys: list[tuple[str, bool]], pool: ThreadPoolExecutor) -> None:
        """Find the keypoints of the files (path, mirrored) not cached; keep these, and forget the least
        recently used others while over the budget (these stay whatever the budget: their pairs are
        matched next)."""
        keys = list(dict.fromkeys(keys))
        missing = [key for key in keys if key not in self._found]
        for key, found in zip(missing, pool.map(_file_keypoints, missing), strict=True):
            self._found[key] = found
            self._bytes += _nbytes(found)
        for key in keys:
            self._found.move_to_end(key)
        for _ in range(len(self._found) - len(keys)):
            if self._bytes <= self._budget:
                break
            self._bytes -= _nbytes(self._found.popitem(last=False)[1])

    def _match_one(self, pair: tuple[str, str, bool]) -> Match | None:
        a, b = self._found[pair[0], False], self._found[pair[1], pair[2]]
        return None if a is None or b is None else matched_keypoints(a, b, self._decided)


def _file_keypoints(key: tuple[str, bool]) -> Keypoints | None:
    return file_keypoints(*key)


def _nbytes(found: Keypoints | None) -> int:
    return 0 if found is None else found.nbytes


def cache_budget() -> int:
    """``CACHE_BYTES``, or an eighth of the memory this process may use where that is less: a small
    machine, or a container held to less than its host has, keeps fewer described files and reads more
    of them twice rather than swap or be killed."""
    usable = usable_memory()
    return CACHE_BYTES if usable is None else min(CACHE_BYTES, usable // 8)


CGROUP_LIMITS = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")  # v2, v1


def usable_memory() -> int | None:
    """Bytes of memory this process may use: the machine's, or its container's limit (cgroup) where that
    is lower, as the machine's own count does not show it; None where neither can be read."""
    sizes = []
    with contextlib.suppress(AttributeError, ValueError, OSError):  # not POSIX, or it will not say
        sizes.append(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    for limit in CGROUP_LIMITS:
        with contextlib.suppress(OSError, ValueError):  # none, or "max": no limit
            sizes.append(int(Path(limit).read_text().strip()))
    sizes = [size for size in sizes if size > 0]
    return min(sizes) if sizes else None

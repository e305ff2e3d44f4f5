"""The geometric look: a candidate pair's files read again, their keypoints matched, and the pair
dropped when the details are not where a copy's would be (``geometry_disagrees``), or joined when
they show one picture beyond what the vectors' density doubts (``fit_vouches``).

Reading files is the costly look, so each image's pairs are bounded (``GEOMETRY_PAIRS``,
``VOUCHED_PAIRS``); OpenCV is imported only when a look runs (:mod:`~lookalike.embedder.keypoints`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from lookalike.index.records import ImageRecord, Pair, thumbnail_of
from lookalike.index.thumbnails import pixel_agreements

if TYPE_CHECKING:  # OpenCV is imported only when a geometric look runs (it takes 0.1 s to import)
    from lookalike.embedder.keypoints import KeypointFiles, Match


GEOMETRY_PAIRS = 16
"""Each image's borderline pairs are verified geometrically (:func:`geometric_look`) up to its this many
best-scoring ones; a pair among neither image's best is not read (below). A photo kept in a thousand
versions pairs each with up to a thousand others, and every one of those pairs would read two files:
bounded, the check costs at most this many matches per image. Dev set at the default, every pair
read whatever its thumbnails: at most 22 pairs an image (99th percentile 16, 18 images over it); 8 of
9,554 pairs beyond both images' best, kept unread only where their thumbnails agree
(``SAME_THUMBNAIL``)."""

GEOMETRY_BAND = 1.0
"""Pairs whose score is less than this above the threshold are verified geometrically
(:func:`geometric_look`): in practice every pair. Once 0.2, then 0.3 for collections without copies,
whose hard negatives score high (in a folder of the 173 dev originals alone, two tricolour flags at
0.92, a chessboard beside a disco dancer at 0.92: 7 false clusters -> 3). No score is sure: thirty
random textures, which EfficientNet-Lite2 finds alike at cosine 0.95-0.98 with each other, each had so
many near-identical neighbours that ``NEAR_IDENTICAL`` took them for versions of one picture, scored
them at their cosine and made one cluster of 17 different pictures; their keypoints match none of each
other's. The pairs scoring past 0.3 above the default threshold are few and nearly all copies: dev
882, unseen 346, series 102 (2 of its 3 pairs of different flags vetoed)."""

SAME_THUMBNAIL = 0.95
"""Pairs beyond every image's ``GEOMETRY_PAIRS`` best are kept unverified where their luminance
thumbnails correlate this well (:func:`pixel_agreements`, over turns and mirrors), not both framed: one
picture at 16x16, a photo kept in many versions. Within the bound they are read like any other pair,
for a thumbnail does not vouch for the details: pages of other text in one layout agree at 0.98, and
the model finds them alike at 0.99 (bench/hostile.py). Two framed pictures are mostly border at 16x16
(two bordered photos of other star clusters in bench/unseen.py agreed at 0.98-1.0). Reading the pairs
whose thumbnails agree, dev at 0.56: 14,676 pair matches against 8,456; of 5,188 pairs of copies newly
read, 1 vetoed, of 30 pairs of different pictures, 2; unseen, 3 of 5,451 and 16 of 19. Dev
``duplicates()`` at the default took 1.15 times as long (bench/looks_cost.py), recall 0.959 -> 0.958."""

INLIER_SHARE = 0.015
MATCH_SHARE = 0.4
"""A pair of pictures with enough keypoints is not a copy when the matches that fit one transform are
fewer than ``INLIER_SHARE`` of the smaller keypoint count *and* fewer than ``MATCH_SHARE`` of the
matches offered to the fit: a copy's details land where the original's are (dev set: 2 % of its
keypoints and up), and when a small copy has few matches, most of them fit (2 of 3, 10 of 20), where
what RANSAC finds between unrelated photos by chance is 2-4 of 10-25. Dev set, pairs scoring 0.60-0.90
that pass the colour and pixel checks (5,874 pairs of copies, every kind, copy beside copy included;
491 pairs of different pictures): no copy vetoed, 182 false pairs vetoed, 33 of the 123 at the default
threshold. With 100 keypoints, 2 copies are vetoed; with a 2 % share, 1; with 30 % of the matches,
30 false pairs of 123. But any two matches fit a rotation, scale and shift exactly, so "most of few"
proves little: such a pair is judged by its layout too, as flat pictures are (``LAYOUT_AGREEMENT``).
Dev set, pairs from cosine 0.5 kept by "most of few" alone: 4 pairs of copies, laid out alike at 0.81
and up; 1,224 pairs of different pictures, 513 of them laid out apart (a logo and a word on white,
2 of 4 matches fitting). Dev at threshold 0.56: precision 0.978 -> 0.982, recall 0.965 -> 0.968; from
0.58 up unchanged. A fit of under ``ALIGNED_INLIERS`` (12) may be chance however large its share (4 of a
242-keypoint pictogram fit its white-on-black twin mirrored): the layouts judge it too. Dev set at 0.56,
every pair the look matched: 317 pairs of copies fit so weakly (mostly a crop beside a mirrored copy),
laid out alike at 0.71 and up, none vetoed; 13 more pairs of different pictures vetoed."""

CHANCE_FIT = 3
"""Any two matches fit a rotation, scale and shift exactly, and among a handful a third lands within the
reprojection tolerance by chance: between two pictures with the keypoints to show a copy
(``EXPECTED_KEYPOINTS``), a fit of this few inliers, however large its share of the matches, shows
nothing, and the pair is not shown to be a copy, however alike their coarse layouts (a starfield and
another, two dark game screens, two landscapes: sky above, land below). Thirty random textures (cosine
0.95-0.98 to each other) kept 2 of 3 and 3 of 7 matches fitting and made 6 clusters of different
pictures. Recorded matches of a ``duplicates()`` run each (dev at 0.56, unseen, the AIGA probe), pairs
without a layout: copies fit 4 to 11 inliers (unseen, 11 pairs), different pictures 0 to 5, 3 or fewer in
78 of 83. With a layout (dev at 0.56, unseen, series; every pair tried as drawn and mirrored), pairs
that only such a fit let through: copies 0, 0 and 5 (quarter-size pictograms, enlarged to a blur),
different pictures 84, 6 and 2; two shots of one scene, each beside a stranger's (bench/shots.py)."""

ASKEW = 2.0
"""A fit of under ``ALIGNED_INLIERS`` between two detailed pictures (``EXPECTED_KEYPOINTS``) shows no copy
when its rotation lies more than this many degrees off a quarter turn (``Match.askew``): a copy stands
upright, turned a quarter or a half, and even its weak fits find that, while what RANSAC fits to a
handful of chance matches turns any way, and the coarse layouts that judged such a fit do not see two
drawings on white (a golf flag and a rocket: 4 of 9 matches fitting, turned 13 degrees). Recorded
matches of a ``duplicates()`` run each (dev at 0.56, series, colour variants probe), every pair a weak
fit let through, matched again as drawn and mirrored: fits of 9-11 inliers between copies, 62 of 64
within 2 degrees; of 4-5 inliers, 23 of 41 (the rest chance fits of copies whose other fit stands).
With the rule, of those pairs: dev at 0.56, 1 of 104 pairs of copies dropped (a caption beside a
quarter-size copy), 31 of 59 pairs of different pictures; series 2 of 218 and 15 of 67. Clusters
(bench/calibrate.py): dev at 0.56 and 0.60 precision and recall up 0.001 each, the default unchanged;
series mixed 51 -> 50 of 485."""

DETAILS_DIFFER = 0.6
"""A pair whose keypoints fit one transform is still not a copy when, laid over each other by it, more
than this share of their textured cells differ (:func:`~lookalike.embedder.keypoints.differing_cells`):
two screenshots of one program share the window frame, two poses of one stamp the head. Dev set, pairs
scoring 0.54-0.84 that pass the colour and pixel checks and the keypoint shares: of 4,815 pairs of
copies (every kind, copy beside copy included), none dropped (99th percentile 0.33; the one over 0.6 a
fit of 10 inliers, hence ``ALIGNED_INLIERS`` 12); of 606 pairs of different pictures from 0.58, 105
dropped: all 61 of the screenshots, 43 of 46 of the stamp poses. At 0.5 (prototype), 2 copies dropped
(a caption over a small picture; a crop beside a caption); at 0.7 the stamp poses caught 12 times of 46."""

STROKES_DIFFER = 0.9
"""A pair whose keypoints fit one transform is still not a copy when, laid over each other by it, more
than this share of their stroked cells change along their rows, or along their columns, unlike each
other (:func:`~lookalike.embedder.keypoints.differing_strokes`): two pages of other text in one layout have
their lines where each other's are, so their cells agree as wholes (``DETAILS_DIFFER`` sees 0.01-0.05),
while the letters along the lines do not (bench/hostile.py, 24 pages: 39 of the 40 pairs the other
checks let through over 0.97, the one under it a page beside its own copy; sideways, 0.96-0.97).
Recorded matches of a ``duplicates()`` run each, every pair read whatever its thumbnails (dev at 0.56,
unseen, series), the fits that decide: copies (every kind, copy beside copy included; 9,217, 9,906 and
17,539 pairs) at most 0.75, 0.83 and 0.81 (a caption beside a crop, a brightened copy beside a
quarter-size one, a border beside a quarter size), 99th percentile 0.36, 0.33 and 0.35; different
pictures the other checks let through at most 0.36, 0.60 and 0.83: nothing else is dropped there."""

SHADES_OPPOSED = 0.21
"""A pair whose keypoints fit one transform is still not a copy when, laid over each other by it, more
than this share of their clearly light or dark cells are light in one and dark in the other
(:func:`~lookalike.embedder.keypoints.opposed_shades`): a drawing moved from white onto a dark
background keeps its own pixels, and so its keypoints and details. Dev set, every original with each of
its copies where a fit lays them over each other: 1,583 pairs, at most 0.11 (a brightened copy, its
highlights clipped; 99.5th percentile 0.03), so the veto sits 0.1 above. Colour variants probe (from dev
originals only, bench/colour_variants.py): 23 of the 32 pairs of a drawing on white and on a dark
background that a fit lays over each other are over it (0.06-0.69); hue variants 0; the probe's mixed
clusters 17 -> 13 of 212, dev and test at the default unchanged. Counted over the whole shared part, an
undetected caption band took copies to 0.23."""

CONTAINED = 0.8
"""A pair whose keypoints fit one transform is still not a copy when, laid over each other by it, less
than this share of the smaller picture's frame lies inside the other's (``Match.contained``): a copy,
however shrunk, cropped, framed or turned, lies wholly inside its original or holds it wholly, while
two shots of one scene, the camera moved between them, each show what the other does not, and their
shared part agrees in every detail. Dev originals as two overlapping shots (bench/shots.py): 0.75 when
each keeps 80 % of the scene's width, 0.46 at 65 %. Recorded matches of a ``duplicates()`` run each (dev at
0.56, unseen, series), every pair tried as drawn and mirrored, the fit that lets it through: copies
(8,149, 9,277 and 14,310 pairs, every kind, copy beside copy included) at least 0.89 and 0.94 on dev
and unseen (1st percentile 0.99); in the series, 10 pairs under 0.8, flags whose stripes or checks
repeat, so the fit lands a stripe over the next one (a check-patterned flag beside its own mirror
image). Different pictures the other checks let through: unseen 2 of 6 under it (two game backgrounds
sharing a part), series 4 of 498. At the default (bench/shots.py), shots keeping 80 % in one cluster:
dev 163 -> 39 of 173, unseen 214 -> 39 of 221; each picture beside its middle 80 % crop, 167 of 173 and
212 -> 213 of 221 together; dev and test halves, recall 0.958 -> 0.957 and 0.920 -> 0.917 (with
``CHANCE_FIT``)."""

RESIDUAL_APART = 0.06
"""A pair is not a copy when, laid over each other at best, more than this share of their pixels is further
apart than one tone curve explains (``Match.residual``,
:func:`~lookalike.embedder.residual.aligned_residual`), however their keypoints fit: Denmark's flag and
Norway's, one layout at 5 x 5, differ by Norway's blue cross; blue ensigns fit their keypoints on the Union
Jack, and the cells of their other badges are forgiven as details. Calibrated on the dev half and the series
of drawings (bench/aligned_residual.py): of 4,000 pairs of one original's pictures drawn from each (every
kind, copy beside copy), the 7,099 measured reach 0.03 at most, as do 3,337 of the unseen sources
(photographs, screenshots); first for flat pictures alone (2,059 pairs, 0.037 at most before the pixels were
blurred). Of the 67 pairs of different pictures measured that the product merged among originals alone (dev,
series and unseen folders, bench/originals_only.py) 22 are over it (Queensland's flag and Turks and Caicos'
0.12, ground transportation and taxi pictograms 0.23), besides the flat pairs it told before (Congo and
Seychelles 0.26, Denmark and Norway 0.20). What it cannot tell: pictograms that are each other's turn or
mirror, one design drawn twice (Indonesia and Monaco), emblems that differ in a few pixels at 64, a few flat
colours in another order (the layouts tell those). Clusters: dev and test at the default unchanged, dev at
0.54-0.58 hard-negative pairs 44-55 -> 11, originals alone in the series 68 -> 54 pairs wrongly paired, and
50 since one curve maps all channels (16 -> 22 of the 67 over it). Cost: ``duplicates()`` on dev 1.41 times
the time without it (bench/looks_cost.py): a pair is laid first where its keypoints lay it, and not at all
where they tell it apart already (2.33 times when every pair was searched; flat pairs alone, 1.22)."""

SOLID_APART = 0.005
"""A pair is not a copy when, laid over each other where their keypoints fit (or, too flat for them, where the
residual's search lays them), more than this share of the part both show differs in solid parts
(``Match.solid``, :func:`~lookalike.embedder.keypoints.solid_differences`,
:func:`~lookalike.embedder.keypoints.placed_solid_differences`): pieces at least three pixels across at the
detail scale (256) where the keypoints lay the pair (``LAID_SOLID``), five where the search does (``SOLID``),
that no rising tone curve explains (in colour where the keypoints lay two colourful pictures, also with the
saturation matched), at the laying refined by ECC where the first one shows any. One artist's numbered
drawings fit hundreds of keypoints where they are one drawing, and what differs (a card's other pips, a
clock's hands at other times, a smiley's tongue, a head's hair) is a few per cent of the picture: cells
forgiven as details (``DETAILS_DIFFER``), pixels under what the residual at 64 tells from a copy's noise
(``RESIDUAL_APART``). Measured with the product's matching (bench/solid_parts.py), every pair as drawn and
mirrored, counted where one of the two passes every other check: of pairs of one original's pictures (every
kind, copy beside copy, 1,500 drawn from each of the dev, series and unseen sets) none has a solid part at
all, and of 2,584 everyday edits of the dev originals one (a screenshot brightened 2.5 times: 0.0029); of the
554 pairs of one artist's different drawings that pass the other checks (bench/artist_series.py's set), 478
are over it (445 over 0.01, where it stood first: a card's five beside its four, its middle pip, is
0.007-0.008; 317 with five pixels everywhere and no refining, 400 in luminance alone, 436 in colour in the
middle rows only). Among originals alone (bench/originals_only.py) that set's wrongly paired originals fall
333 -> 172 (five pixels) -> 140 (three where keypoints lay) -> 116 (colour) -> 108 (top and bottom compared,
merging curves left out) -> 87 (over 0.005, not 0.01), the series of drawings' 50 -> 33 -> 26 (search
placings) -> 24 -> 20 -> 18 -> 18. The refining matters to copies: keypoints on a flag's or a pattern's
repeats can lay a copy tens of pixels off (of 1,000 pairs of copies drawn from each of the artist and series
sets, 11 and 12 views over the veto as laid, under it refined, most moved 7-60 pixels; of the artist's
different drawings, 4 views: two lightning bolts as drawn and mirrored, moved 30 pixels, two sailing boats 9,
two cards 0.3). Each picture's pixels are compared with the other's and the other's with its own (a stroke
only one has, a clock's second hand, was explained the lesser way round): over it 526 -> 551 of 603 such pairs
at 2520d03, copies still none. Not told: strokes under three pixels, a part of a few pixels (a tear on a
smiley's cheek: 0.003). In colour, the one everyday edit of a copy that leaves solid parts is per-channel
auto-contrast of a striped wallpaper (its stripes' hues change: 0.038 as drawn, laid by its keypoints; its
mirror image, laid by the search and compared in luminance, keeps the pair). Compared at the smaller picture's
own resolution (a quarter-size copy's strokes are blurs at 256), leaving out at the top and bottom only what
may be a caption band someone added (a colour the picture has along a side, and text on it), by a curve that
never falls (a free one maps an added part's own colour onto whatever lies under it) and merges no two common
mid tones far apart (no edit does)."""

HUES_TURNED = 0.4
"""A pair is not a copy when, laid over each other where their keypoints fit, more than this share of the
pixels clearly coloured in both turned their hue beyond what a copy's edits explain (``Match.turned``,
:func:`~lookalike.embedder.keypoints.turned_hues`: brightening, one tone curve for all channels, or the
grey pixels' own change channel by channel): a design in another colouring, its white text and dark
background kept. Kodi's splash turned by 30 degrees of hue beside it turned by 60 fits 531 keypoints, its
residual and solid parts 0.0, its colour grid's cells within ``HUE_TURN``. Measured on the pairs the
keypoints lay, the lesser of as drawn and mirrored (a pair is kept either way; bench/hue_pixels.py): pairs
of one original's pictures, every kind, copy beside copy (800 drawn from each of the dev, series and unseen
sets: 1,222 laid), 0.048, 0.060 and 0.148 at most, and 800 of the artist series' JPEG q30 copies beside its
other pictures (477 laid), 0.236; the near-hue probe's copies (brightened, quarter size) 0.046;
bench/hue_turns.py's everyday edits of the dev originals (101-124 laid each), 0.24 at most (contrast 1.4
times), none over it but per-channel equalising (5 of 103; light bulbs and a cake). Different colourings:
the near-hue probe's variants (turned by 30 to 60 degrees), 393 of 527 over it; the dev originals turned
by 15, 30, -30 and 45 degrees, 9, 72, 75 and 108 of 122-123 (a pale colour must turn further:
:data:`~lookalike.embedder.keypoints.HUE_NOISE`). Not
told: a turn of hues the pair has few clear pixels of (``HUE_PIXELS``), a turn towards the secondary colour
beside a hue where a brightest channel reaches ``CLIPS`` (a brightened copy of Kodi's splash turned -30
beside the original, 0.31), and a two-colour design, which one curve for all channels may map onto its
other colouring. A floor of 240 for clipping pixels (``CLIPS`` is a cell's mean's) took the variants
401 -> 417 but a brightened copy to 0.43."""

MIRROR_FIT = 0.5
"""Two shots of one scene fit hundreds of keypoints as drawn, every detail alike where they overlap, and
neither holds the other (``CONTAINED``); mirrored, a symmetric part of the scene (a logo, a rocket, a
record's label) may fit a few dozen more, laid over each other with details differing under
``DETAILS_DIFFER``, and that mirrored fit let the pair through as a mirrored copy. A mirrored fit of at
most this share of the drawn fit's inliers is such a part, not a mirrored copy (:func:`chance_beside_fit`).
Dev originals as two shots (bench/shots.py), the pairs a mirrored fit let through: 19 of 173 keeping
80 %, 12 of 173 keeping 65 %, 25 of 221 of the unseen set's: the mirrored fit had 0-0.29 of the drawn
fit's inliers in all but three (0.38, 0.59, 0.67). Pairs of one original's pictures (every copy kind,
copy beside copy) that a mirrored fit let through beside a drawn fit laying them over each other: dev
(of 9,515 pairs) and unseen (12,155) none affected, the mirrored fit 1.76 times the drawn one's at
least where details matched; series (23,595, flags whose stripes repeat, so the drawn fit lands a stripe
over the next) 1 pair under it (a crop beside a greyscale copy, 16 of 37), most at 0.7-1.0. At the
default, one picture's two shots in one cluster: dev 34 -> 17 (80 %) and 31 -> 22 (65 %), unseen 29 -> 6
and 25 -> 10; dev, test and series clusters unchanged (docs/benchmarks.md, "Two shots of one scene")."""

SURE_FIT = 30
SAME_DETAILS = 0.1
VOUCHED_PAIRS = 16
"""The keypoint look. The density discount is a guess from the vectors alone: a photograph among others
of its kind (nebulae, one panorama's tiles, one game's screens) sits in a crowd, and its re-encoded,
shrunk or cropped copies are discounted with it (bench/unseen.py: copies at cosine 0.80-0.92 with their
original, densities 0.80-0.87, scores 0.55-0.63; 185 of its 2,210 copies missed that way). So where the
density alone holds a pair under the threshold (its cosine reaches the threshold), each image's
``VOUCHED_PAIRS`` best such pairs are matched by their files, and those whose keypoints show one
picture join at the threshold (:func:`fit_vouches`): ``SURE_FIT`` keypoints or more fitting one
transform, and laid over each other at most ``SAME_DETAILS`` of their textured cells differing, besides
every test of :func:`geometry_disagrees`. Held pairs scoring 0.50-0.64, each image's 16 best: dev, 419 of
580 pairs of copies vouched for and 424 of 3,385 pairs of different pictures, every one a design in other
colours (balloons, light bulbs), which the colour checks still judge; bench/series.py, 3,243 of 5,144 and
197 of 16,961 (flags of one design, a pictogram with one part changed); unseen, 1,464 of 1,723 and none of
10,484 (a game's background beside its screens with the pieces drawn over it fits 200 keypoints, but 0.19
of its cells differ). 20 inliers vouch for more pairs of different pictures in the series (271), 40 for
fewer copies; 0.05 of the cells for fewer copies (dev 405), 0.2 for a game's screens (unseen 52). Each
image's pairs are bounded as the geometric check's are (``GEOMETRY_PAIRS``): at most this many files
matched per image, whatever the crowd."""


def geometry_disagrees(match: Match) -> bool:
    """Both pictures have the keypoints to show it (``EXPECTED_KEYPOINTS``), and too few of them match
    under one transform for one to be a copy of the other (``CHANCE_FIT``; ``INLIER_SHARE``,
    ``MATCH_SHARE``: with only a handful of matches, most of which fit, or with a fit of under
    ``ALIGNED_INLIERS``, the layouts judge, and such a fit turned off the quarter turns, ``ASKEW``, is
    chance); or they do, and the details the transform lays over each
    other differ (``DETAILS_DIFFER``) or their light and dark parts are the other way round
    (``SHADES_OPPOSED``) or the strokes along their lines differ (``STROKES_DIFFER``: other text in one
    layout) or neither lies inside the other (``CONTAINED``: two shots of one scene) or solid parts of
    them differ (``SOLID_APART``: a card's other pips, a clock's hands) or their hues turned
    (``HUES_TURNED``: a design in another colouring); or one is too flat
    for keypoints, and their coarse layouts differ (``LAYOUT_AGREEMENT``); or, laid over each other,
    their pixels differ (``RESIDUAL_APART``), however the keypoints fit."""
    from lookalike.embedder.keypoints import (  # a Match means OpenCV is loaded already
        ALIGNED_INLIERS,
        EXPECTED_KEYPOINTS,
        LAYOUT_AGREEMENT,
    )

    fewest = min(match.keypoints_a, match.keypoints_b)
    laid_apart = match.layout is not None and match.layout < LAYOUT_AGREEMENT
    weak = match.inliers < ALIGNED_INLIERS  # a fit that may be chance
    askew = weak and match.askew is not None and match.askew > ASKEW
    if fewest < EXPECTED_KEYPOINTS:
        placed_apart = laid_apart
    elif match.inliers <= CHANCE_FIT:  # no evidence of a copy, however alike their layouts
        placed_apart = True
    elif match.inliers < INLIER_SHARE * fewest:
        placed_apart = match.inliers < MATCH_SHARE * match.matches or laid_apart or askew
    else:
        placed_apart = weak and (laid_apart or askew)
    shaded_apart = match.opposed is not None and match.opposed > SHADES_OPPOSED
    stroked_apart = match.strokes is not None and match.strokes > STROKES_DIFFER
    detailed_apart = match.differing is not None and match.differing > DETAILS_DIFFER
    overlapping = match.contained is not None and match.contained < CONTAINED
    solidly_apart = match.solid is not None and match.solid > SOLID_APART
    hued_apart = match.turned is not None and match.turned > HUES_TURNED
    return (placed_apart or pixels_unexplained(match) or shaded_apart or stroked_apart or detailed_apart
            or overlapping or solidly_apart or hued_apart)


def pixels_unexplained(match: Match) -> bool:
    """A pair whose pixels, laid over each other at best, no tone curve explains (``RESIDUAL_APART``).
    The alignment tries every turn and mirror: the pair's mirror image matched again would have the same
    residual, so it is not matched again for this."""
    return match.residual is not None and match.residual > RESIDUAL_APART


def geometric_look(pairs: Iterable[Pair], threshold: float, records: Mapping[int, ImageRecord],
                   keypoints: KeypointFiles, theirs: Mapping[int, ImageRecord] | None = None) -> list[Pair]:
    """Drop borderline pairs (score under threshold + ``GEOMETRY_BAND``) whose details are not where a
    copy's would be (:func:`geometry_disagrees`): two hand signs, two poses of one figure, two
    screenshots of one program, two pages of other text. Each file is read again, so an image's pairs
    only up to ``GEOMETRY_PAIRS``; the rest are dropped unverified unless their stored thumbnails agree
    (``SAME_THUMBNAIL``) and not both are framed. A record missing leaves the pair as it was; a file that
    no longer reads drops it (:func:`files_unlike`). Across two sets, ``b`` is looked up in ``theirs``."""
    theirs = records if theirs is None else theirs
    pairs = list(pairs)
    borderline = [(i, records[p.a], theirs[p.b]) for i, p in enumerate(pairs)
                  if p.rank < threshold + GEOMETRY_BAND and p.a in records and p.b in theirs]
    checked = best_per_image([(i, a.path, b.path, pairs[i].rank) for i, a, b in borderline], GEOMETRY_PAIRS)
    verified = [(i, a.path, b.path) for i, a, b in borderline if i in checked]
    beyond = [(i, a, b) for i, a, b in borderline if i not in checked]
    agreement = pixel_agreements([thumbnail_of(a) for _, a, _ in beyond],
                                 [thumbnail_of(b) for *_, b in beyond])
    dropped = {i for (i, a, b), agree in zip(beyond, agreement, strict=True)
               if agree < SAME_THUMBNAIL or a.framed and b.framed}
    unlike = files_unlike([(a, b) for _, a, b in verified], keypoints)
    dropped |= {i for (i, _, _), differs in zip(verified, unlike, strict=True) if differs}
    return [p for i, p in enumerate(pairs) if i not in dropped]


def fit_vouches(match: Match | None) -> bool:
    """Whether a keypoint match shows one picture beyond what the vectors' density doubts: a fit no chance
    gives (``SURE_FIT``), details the same nearly everywhere once laid over each other (``SAME_DETAILS``),
    and nothing else :func:`geometry_disagrees` with (contained, shades, strokes)."""
    return (match is not None and match.inliers >= SURE_FIT and match.differing is not None
            and match.differing <= SAME_DETAILS and not geometry_disagrees(match))


def files_vouch(pairs: Sequence[tuple[str, str]], keypoints: KeypointFiles) -> list[bool]:
    """For each pair of files, whether their keypoints vouch for one picture (:func:`fit_vouches`) as
    drawn or, the way a mirrored copy would, mirrored; a file that does not read vouches for nothing."""
    plain = keypoints.match(pairs)
    vouched = [fit_vouches(found) for found in plain]
    rest = [i for i, found in enumerate(plain) if found and not vouched[i] and not pixels_unexplained(found)]
    for i, found in zip(rest, keypoints.match([pairs[i] for i in rest], mirrored=True), strict=True):
        vouched[i] = fit_vouches(found)
    return vouched


def best_per_image(pairs: Iterable[tuple[int, Hashable, Hashable, float]], limit: int) -> set[int]:
    """Of pairs (number, one image, the other, score), the numbers of those among the ``limit``
    best-scoring pairs of either of their images."""
    by_image: dict[Hashable, list[tuple[float, int]]] = defaultdict(list)
    for number, a, b, score in pairs:
        by_image[a].append((score, number))
        by_image[b].append((score, number))
    return {number for ranked in by_image.values() for _, number in sorted(ranked, reverse=True)[:limit]}


def files_unlike(pairs: Sequence[tuple[str, str]], keypoints: KeypointFiles) -> list[bool]:
    """For each pair of files, whether its geometry disagrees (:func:`geometry_disagrees`) as drawn and,
    the way a mirrored copy would match, mirrored too (unless the mirror image fits by chance beside a
    fit that showed another picture: :func:`chance_beside_fit`). A file that no longer reads (gone since
    it was indexed, or no image now) cannot be verified, so its pairs count as unlike: a report must not
    show pictures clustered on a check that never ran (strangers around a keeper that is gone)."""
    plain = keypoints.match(pairs)
    unlike = [found is None or pixels_unexplained(found) for found in plain]
    unmatched = [i for i, found in enumerate(plain) if not unlike[i] and geometry_disagrees(found)]
    mirrored = keypoints.match([pairs[i] for i in unmatched], mirrored=True)
    for i, found in zip(unmatched, mirrored, strict=True):
        unlike[i] = found is None or geometry_disagrees(found) or chance_beside_fit(plain[i], found)
    return unlike


def chance_beside_fit(drawn: Match, mirrored: Match) -> bool:
    """As drawn, a fit showed two pictures, and the mirrored fit is what chance or a symmetric part gives
    beside it. A mirrored copy fits its original far better mirrored than as drawn; here:

    - as drawn, enough keypoints fit to lay two detailed pictures (``EXPECTED_KEYPOINTS`` each) over
      each other, and what that showed made them two pictures; mirrored, too few fit to lay them over
      each other (under ``ALIGNED_INLIERS``), which chance does. Such a mirrored fit proves nothing, and
      the layouts it would leave the verdict to do not see a drawing moved onto a dark background (the
      colour variants probe: a light bulb, 53 keypoints fitting as drawn, its shades turned over, 6 of
      20 mirrored) nor a pictogram with another figure in it (no dogs beside no parking: 21 and 10).
      Flat pictures (fewer keypoints), whose details a small copy blurs, are still left to their layouts;
    - or, as drawn, the two lay over each other with the same details (``SAME_DETAILS``) yet each shows
      what the other does not (``CONTAINED``: two shots of one scene), and mirrored no more than
      ``MIRROR_FIT`` of the drawn fit's inliers fit: a symmetric part of the scene."""
    from lookalike.embedder.keypoints import EXPECTED_KEYPOINTS  # a Match means OpenCV is loaded already

    if drawn.contained is None:
        return False
    if min(drawn.keypoints_a, drawn.keypoints_b) >= EXPECTED_KEYPOINTS and mirrored.contained is None:
        return True
    return (drawn.contained < CONTAINED and drawn.differing is not None and drawn.differing <= SAME_DETAILS
            and mirrored.inliers <= MIRROR_FIT * drawn.inliers)

"""Second looks at a candidate pair from what indexing stored (colour grid, thumbnail, content box):
is it the same design in other colours, a picture and its negative, a blank page beside a picture, a
picture turned without its shape turning?

The model's vectors are nearly blind to colour and lightness (a blue and a gold version of one texture
score 0.79-0.93), which is the mistake a clean-up must never make, so every pair near the threshold is
looked at (``duplicates.second_look``). No file is read: the checks cost nothing measurable. Each rule's
constant says what it was measured on.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from lookalike.embedder.traits import (
    COLOURFUL,
    THUMBNAIL_SIDE,
    TINT_SIDE,
    TURNED_VIEWS,
    Traits,
    across_channels,
    cell_luminance,
    colour_distance,
    greyed_cells,
    hue_sixths,
    orientations,
    thumbnail_matrix,
    tint_colours,
    turn_beyond_brightening,
)
from lookalike.index.records import UNFRAMED, ImageRecord, thumbnail_of, tint_of
from lookalike.index.thumbnails import (
    PIXEL_AGREEMENT,
    aligned_correlation_range,
    aligned_views,
    luminance_difference,
    luminance_differences,
    pixel_agreements,
    view_correlations,
)

COLOUR_MAX = 0.5
"""A pair of two colourful images whose hues share less than half (:func:`colour_distance` over this)
is the same design in another colour, not a copy. Brightened copies reach 0.45 (95th percentile)."""

INVERSION = 0.6
""":func:`inversions`: thumbnails anti-correlated past this are a picture and its negative. Dev set, pairs at
the threshold between pictures without a frame: no copy pair is flagged (the most anti-correlated,
captioned against cropped, reach -0.25); a negatives probe of 40 dev designs
(bench/colour_variants.py): 120 of 120 pairs flagged."""

FRAMED_ALIKE = 0.05
SAME_SHAPE = 0.03
FRAMED_AGREEMENT = 0.3
"""Two framed pictures whose content boxes keep the same share of their pixels (within ``FRAMED_ALIKE``)
and whose long/short side ratios agree (within ``SAME_SHAPE``) are framed alike: no frame was added
to one only, so their thumbnails line up, and they are inverses when they anti-correlate past
``INVERSION`` and correlate under ``FRAMED_AGREEMENT`` in every alignment. Dev set, copies framed
alike: one pair anti-correlates past 0.6 (a brightened and a captioned copy, -0.71), and it correlates
at 0.70; a probe of 40 dev designs with their lightness turned over (bench/colour_variants.py):
framed ones correlate at 0.13 at most, most of them at -0.15 or less."""

LIGHTNESS_RATIO = 0.55
"""See :func:`inversions`: a darker copy is darkened evenly and keeps its layout; a copy brightened 1.6
times is 0.625 as light. Dev set, the 81 copy pairs compared for inversion that correlate under 0.3 in
every alignment (crops, captions): 0.69 as light at least; drawings on white moved onto a dark
background (bench/colour_variants.py), their brightened copies included: 0.15-0.51."""

LIGHTNESS_SHIFT = 32
"""See :func:`inversions`: a background turned dark moves the typical (median) lightness of the
thumbnail by at least this much (out of 255), not only its mean. A caption band over a dark photo (an
eighth of it, white) lifts the mean up to four times and rules the thumbnail, so the two never
correlate, yet leaves the median within 8; a dark game's brightened copy beside its crop, within 27
(unseen set, bench/unseen.py: 25 pairs of copies taken for a dark mode, their recall for captions 202 ->
206 of 221, nothing merged). Colour variants probe: of 1,375 pairs of two variants that only the
lightness ratio caught, 116 have medians closer than this, and no cluster changed."""

TINT_CHROMA = 12.0
TINT_CELLS = 4
TINTS_OPPOSED = 0.5
"""See :func:`recoloured_tints`: colour cells (``tint_grid``, on the R - G scale) this strong in both
pictures count, at least this many of them, and over this share pointing apart is another colouring.
Every pair of pictures of one original on the dev set (9,515, every copy kind; most copies that line up
have none of their cells apart, a crop beside a half-size copy 0.14) and of one variant in the colour
probes (2,274): none flagged. Pairs of different colourings: the colour variants probe's 1,400 of 7,920
(hues turned by 120 and 240 degrees, negatives, lightness turned over, where they line up), 41 of them
with hues too alike for :func:`other_colours` (a negative beside the lightness turned over: the probe's
mixed clusters 15 -> 11); the near-hue probe's 238 of 3,840 (turned by 30 to 60 degrees, hues mostly stay
within a quarter turn); the dev set's hard-negative families, 177 of 5,929, all other hues already."""

PATCH_OPPOSED = 0.2
"""See :func:`recoloured_tints`: a part of a design recoloured to a far hue (one stripe of a tricolour
flag, blue beside green) is another colouring too, though most of its cells keep their colour: at
least this share of the colour cells point more than a quarter turn apart and lie in patches (each with
two such cells among its four neighbours; a copy's stray cells, at edges that JPEG or a shift blurred,
lie alone). Pairs of pictures of one original, lined up: dev set 3,015, unseen set 3,820, the colour,
near-hue and muted probes 1,438, a probe of 285 national flags with their ten copies 6,958: none over
0.094 (0.143 counting stray cells too). Chad's flag beside Mali's (blue and green thirds): 0.25."""

HUE_TURN = 12.0
TURN_CHROMA = 24.0
"""A colour cell also counts as apart (:func:`recoloured_tints`) when, colourful in both pictures
(``TURN_CHROMA``, twice ``TINT_CHROMA``: a dark cell's hue wanders with JPEG), its hue turned more than
``HUE_TURN`` degrees beyond what brightening explains
(:func:`~lookalike.embedder.traits.turn_beyond_brightening`, whose constants were measured with it here).
Pairs of pictures of one design, dev originals and the near-hue probe (bench/hue_turns.py): copies 0 of
6,338 told apart (one from ``HUE_TURN`` 10 down: a bordered copy beside a brightened one, its cells
shifted by the border; still 0 with ``BRIGHTENING`` at 1.3), variants turned by 30 degrees 593 of
1,080, by 60 degrees 501 of 720 (0 and 0 without the turn test). Unseen set: copies 0 of 8,185 (6
without the rule for cells whose channels all rose: a puzzle game's brightened screenshot)."""

HUE_AREA = 0.2
HUE_CHROMA = 40.0
TRACE_CHROMA = 20.0
TRACE_TURN = 0.75
PALE = 100.0
"""See :func:`missing_hues`: a hue fills a picture's area when colour cells filling at least ``HUE_AREA`` of
its own content (``tint_grid``, rebuilt as RGB; inside an added border or band) are clearly of it (channels
spread by ``HUE_CHROMA`` out of 255, within 30 degrees of it) and not pale (darkest channel under ``PALE``:
brightened twice over, the bench brightens 1.3-1.6 times, such a cell stays coloured; a pale blue brightened
turns white). The other picture has no trace of it when not one of its cells is within ``TRACE_TURN`` sixths
of a turn (45 degrees) of it at ``TRACE_CHROMA``: once 60 degrees, which took a yellow stripe for a trace of
green (Gabon's flag beside Ukraine's). Pairs of one picture as below, at 45 degrees: none flagged in any set
(at 36 degrees, brightened copies: dev 4, series 37, the colour variants 4, near hues 8); pairs of different
pictures flagged that no other colour look caught: dev 286 -> 531, unseen 992 -> 1,075, series 77,832 ->
96,373, colour variants 61 -> 80, shots controls 3 -> 16 and 46 -> 51 (2026-12-05). The clusters: series
42 -> 40 mixed (bench/series.py), its originals alone 48 -> 45 (bench/originals_only.py); dev and test
unchanged. Pairs of pictures of one original scoring 0.6 and up, neither greyscale
(bench/missing_hues.py): dev 6,038, unseen 7,871, series 14,065, the colour probes 1,469, each picture
beside its middle 80 % crop 332: none flagged; with a hue over a tenth of the cells at chroma 30, traces
from 15, pale from 130, two (a crop that cut a colour away, hence a fifth; a bordered copy of a drawing
beside its brightened copy, whose faint colour turned white), and 6 more once a banded picture may lack a
colour (caption bands over a colour part, hence ``ImageRecord.banded``, bounded by the band's height:
``ImageRecord.coverable``); with pale cells counted, 9 (a brightened flag whose pale blue turned white).
Pairs of different pictures (from 0.6) that no other colour look caught, flagged: dev 286 of 2,028, unseen
992 of 19,982, series 77,832 of 303,943 (Luxembourg's flag beside Austria's: the light blue stripe), the
colour probes 66 of 1,128; before the band was bounded (any banded picture might lack any colour) and areas
were shares of the content (they were of the whole grid), 240, 874, 46,578 and 66. The picture with the
colour may be framed: a frame could be that colour, but a drawing's white surround and a flag's white margin
are frames to the content box too, and requiring both unframed lost most of the catches in a trial; a
coloured frame around a picture lacking its colour is the loss taken."""

BLANK = 2.0
"""A luminance thumbnail (0-255) spread less than this (standard deviation) is a blank picture: JPEG
noise on a white page spreads 0.4 (dev set)."""

CONTENT = 8.0
"""A luminance thumbnail spread more than this has a picture in it (the faintest drawing that the model
took for a blank page on the dev set: 12.4)."""

TURN_AGREEMENT = 0.75
TURN_MARGIN = 0.2
""":func:`turned_against_shape`: the alignments the shapes rule out (quarter turns, or those that keep the
picture's orientation: as drawn, mirrored, upside down) must line up at ``TURN_AGREEMENT`` at least
and beat every other by ``TURN_MARGIN``. Lower than ``PIXEL_AGREEMENT``, at which thumbnails vouch for
a copy: a flag with its arms over the stripes lines up with the plain flag turned at 0.70-0.80 only.
Symmetric designs line up nearly as well either way; so may a brightened copy whose clipped colours
shift its thumbnail (series set: 0.02 better turned than as drawn), and a caption band or a crop
shifts a copy's thumbnail out of line as drawn (0.1-0.3) while a symmetric design (a chessboard, a
game board) lines up turned by chance. Pairs of one picture's images from cosine 0.5, flagged at
(0.75, 0.2): dev 0 of 6,281, unseen 0 of 8,550, series 0 of 14,194; at (0.7, 0.2) dev 6 (captioned
copies of a chessboard and of a boot screen), unseen 1; at (0.75, 0.1) unseen 2, series 1 (each a
captioned copy beside a brightened or a cropped one)."""

GREY_MATCH = 12.0
"""A grey picture and a colour one are compared greyed alike (the greyscale second look) only when the
grey one has the colour one's own luminance: their thumbnails differ by at most this on average
(:func:`luminance_difference`, 0-255). Greyscale made by the formulas of PIL and OpenCV (Rec. 601) or
scikit-image (Rec. 709) stays under 11 on the dev set's originals (the channels' plain average reaches
19, HSL lightness 41: such copies keep their plain score). Two balloons of other colours are 16.5 apart
once greyed, though they correlate at 0.98. Dev set, with the colour rules of :func:`colour_conflict`:
at 20, two hard-negative families merged and 3 mixed clusters; at 12, none and 1."""

LUMINANCE_TIE = 2.0
"""Two colour pictures whose luminance a greyscale copy matches within this of each other
(:func:`luminance_difference`) are both its possible originals (a recolouring that kept the
luminance): it is not moved for either. JPEG re-encoding moves a greyscale copy about 0.1-0.2 from its
original's (dev set)."""


GREY_DESIGN = 20.0
"""See :func:`grey_design`: a grey picture lined up with a colour one (``PIXEL_AGREEMENT``) is its
greyscale copy only within this of its luminance under one of the common conversions
(:func:`~lookalike.embedder.traits.greyed_cells`, mean absolute difference out of 255, the best of the
eight turns and mirrors). Greyscale copies (Rec. 601) beside the nearest colour picture of their own
original that lines up with them: dev 1.7 at most, unseen 9.1 (a cropped copy), series 0.9, the colour
probes 4.9; copies made by the five conversions from 636 colour originals (dev, unseen, series): 18 at
most (L*). The black balloon beside the blue one: 26.8 (dev originals, bench/originals_only.py)."""


def has_colours(traits: Traits | None) -> bool:
    """Whether a picture has colours to tell: colourful (``COLOURFUL``) and not greyscale. Mean
    saturation alone counts JPEG noise in near-black pixels as colour (a dark terminal screenshot, grey
    to the eye and to the greyscale test on chroma: 0.13, three times ``COLOURFUL``), and so took a
    grey picture's brightened or cropped copy for one that gained colours (unseen set, bench/unseen.py)."""
    return traits is not None and not traits.greyscale and traits.colourfulness >= COLOURFUL


def other_colours(a: Traits | None, b: Traits | None) -> bool:
    """The second look: two colourful pictures whose hues differ, a recoloured design, not a copy.

    Greyscale (or unknown) on either side says nothing: a greyscale copy has lost its colours.
    """
    if not (has_colours(a) and has_colours(b)):
        return False
    distance = colour_distance(a.colours, b.colours)
    return distance is not None and distance > COLOUR_MAX


def other_colouring(a: ImageRecord, b: ImageRecord) -> bool:
    """Two pictures in other colourings: other hues (:func:`other_colours`), the same hues in other
    places (:func:`recoloured_tints`), or a hue filling one that the other lacks (:func:`missing_hues`)."""
    return (other_colours(a.traits, b.traits) or bool(recoloured_tints([a], [b])[0])
            or bool(missing_hues([a], [b])[0]))


def grey_design(grey: ImageRecord, colours: Sequence[ImageRecord]) -> bool:
    """Whether a grey picture is a design drawn grey, not a greyscale copy of any of ``colours``: it
    lines up with one of them (``PIXEL_AGREEMENT``) yet none of them, greyed by any common conversion,
    has its luminance (``GREY_DESIGN``). The model and the layout cannot tell a black balloon from a blue
    one's greyscale copy (cosine 0.83, thumbnails correlating at 0.98); the greys they turn to can. A
    grey copy that lines up with none (cropped or captioned as well) is left to the other rules, and so
    is any picture whose thumbnail or colour grid is unrecorded."""
    members = [c for c in colours if has_colours(c.traits) and _gridded(c)]
    mine = thumbnail_of(grey)
    if not members or len(mine) != THUMBNAIL_SIDE * THUMBNAIL_SIDE:
        return False
    theirs = [thumbnail_of(c) for c in members]
    square = (-1, THUMBNAIL_SIDE, THUMBNAIL_SIDE)
    tints = np.frombuffer(b"".join(tint_of(c) for c in members), dtype=np.int8).astype(np.float32)
    greyed = greyed_cells(thumbnail_matrix(theirs).astype(np.float32).reshape(square),
                          tints.reshape(-1, TINT_SIDE, TINT_SIDE, 2))  # [members, formulas, side, side]
    cells = cell_luminance(thumbnail_matrix([mine]).astype(np.float32).reshape(square))
    greyed = greyed.reshape(-1, TINT_SIDE, TINT_SIDE)
    nearest = float(luminance_differences(np.broadcast_to(cells, greyed.shape), greyed).min())
    if nearest <= GREY_DESIGN:
        return False
    return bool((pixel_agreements([mine] * len(members), theirs) >= PIXEL_AGREEMENT).any())


def colour_original(grey: ImageRecord, matches: Iterable[tuple[ImageRecord, float]]) -> ImageRecord | None:
    """The colour picture among a grey one's ``matches`` (pictures with their scores) that could be its
    original, the best scoring: colourful, and with the grey one's luminance (``GREY_MATCH``; a grey
    picture drawn grey matches no colour picture's)."""
    originals = [(record, found) for record, found in matches
                 if has_colours(record.traits)
                 and luminance_difference(grey.traits.thumbnail, record.traits.thumbnail) <= GREY_MATCH]
    return max(originals, key=lambda match: match[1])[0] if originals else None


def colour_conflict(keeper: ImageRecord, copy: ImageRecord, score: float,
                    rivals: Iterable[tuple[ImageRecord, float]], kin: Iterable[ImageRecord] = (),
                    keeper_rivals: Iterable[tuple[ImageRecord, float]] = ()) -> bool:
    """Whether colour says that ``copy`` (paired with the keeper at ``score``), though alike enough, is
    not the keeper's copy:

    - it has colours the greyscale keeper lacks: a copy cannot gain colour (a lit bulb is not the copy
      of an unlit grey one, nor a brightened black balloon of a blue one);
    - it is greyscale and a picture outside the cluster that it also pairs with (``rivals``, with their
      scores), of another colouring than the keeper's (:func:`other_colouring`, or grey against colour),
      is the better match. Against a colour rival, the better match is the one whose luminance it has
      (:func:`luminance_difference`; ``LUMINANCE_TIE``): a greyscale copy keeps its original's, and its
      original may be any colour member (``kin``: a brightened copy can be the keeper). A grey keeper
      with the rival's luminance too is a greyscale copy of it as well: the two stay together. Scores
      cannot judge there, as the greyscale look lifts any colour picture with the copy's luminance to
      near 1 (an unlit bulb drawn grey, 0.2 from its greyscale copy, and the lit yellow one, 5.9 from it:
      the copy went with the lit one once the pixel search found it). Otherwise, or with
      a thumbnail unrecorded, it is the higher score; but a grey rival does not count when the copy has a
      colour member's very luminance (greyscale copies of one design's colour variants look alike, each
      with its own original's luminance), and a grey rival whose luminance the copy has where no colour
      member's it has counts whatever the scores (an unlit bulb drawn grey, beside the lit yellow one: its
      quarter turn scored 0.79 with the lit bulb, 0.62 with its own original; 5.7 from the lit bulb's
      luminance, 0.4 from its original's. Dev set at threshold 0.60: the lightbulb family no longer
      merged, recall unchanged; the colour probes unchanged);
    - it is greyscale, so is the keeper, and their colour originals (:func:`colour_original`, among its
      ``rivals`` and the keeper's ``keeper_rivals``) are other colourings of each other
      (:func:`other_colouring`): greyscale copies of two colour variants, two pictures.

    A greyscale copy cannot show which colouring it lost (an orange balloon's is, to the model, a
    green one's): left out, it is never moved on the wrong picture's account. Unknown traits (rows
    indexed before schema 3) say nothing.
    """
    if keeper.traits is None or copy.traits is None:
        return False
    if keeper.traits.greyscale and has_colours(copy.traits):
        return True
    if not copy.traits.greyscale:
        return False
    kin = list(kin)
    if has_colours(keeper.traits) and grey_design(copy, [keeper, *kin]):
        return True
    rivals = list(rivals)
    if keeper.traits.greyscale:
        mine, theirs = colour_original(keeper, keeper_rivals), colour_original(copy, rivals)
        if mine is not None and theirs is not None and other_colouring(mine, theirs):
            return True
    colourless_keeper = not has_colours(keeper.traits)
    own = math.nan  # measured at the first rival of another colouring: most copies have none

    for other, other_score in rivals:
        traits = other.traits
        if traits is None or not (has_colours(traits) == colourless_keeper
                                  or other_colouring(keeper, other)):
            continue
        if math.isnan(own):
            own = min([luminance_difference(copy.traits.thumbnail, member.traits.thumbnail) for member in kin
                       if has_colours(member.traits)]
                      + [luminance_difference(copy.traits.thumbnail, keeper.traits.thumbnail)])
        theirs = luminance_difference(copy.traits.thumbnail, traits.thumbnail)
        if has_colours(traits) and not math.isinf(min(own, theirs)):
            siblings = colourless_keeper and luminance_difference(
                keeper.traits.thumbnail, traits.thumbnail) < LUMINANCE_TIE  # both its greyscale copies
            if theirs < own + LUMINANCE_TIE and not siblings:
                return True
        elif (colourless_keeper or own > LUMINANCE_TIE) and other_score > score:
            return True
        elif not colourless_keeper and not math.isinf(own) and theirs + LUMINANCE_TIE < own:
            return True  # a grey picture with its very luminance, where no colour member has it
    return False


def inversions(a: Sequence[ImageRecord | None], b: Sequence[ImageRecord | None]) -> np.ndarray:
    """For each pair (``a[i]``, ``b[i]``), whether one picture is the other's negative, its lightness
    turned over (a dark mode of a light design) or its drawing on a dark background instead of a light
    one: the model finds a photo and its negative alike (cosine 0.92-0.98), and hues do not tell them
    apart when they are kept. A darker or brighter copy keeps its thumbnail's layout.

    Their luminance thumbnails anti-correlate (below ``-INVERSION`` in some alignment of the eight
    turns and mirrors). Between pictures without a detected border or caption band, more strongly than
    they correlate in any alignment; between pictures framed alike (``FRAMED_ALIKE``: a drawing on its
    own background, a screenshot with its bars), also correlating under ``FRAMED_AGREEMENT`` in every
    one. Or, between either, their thumbnails correlate under ``FRAMED_AGREEMENT`` in every alignment
    and one is on average less than ``LIGHTNESS_RATIO`` as light as the other, its typical lightness
    ``LIGHTNESS_SHIFT`` away (a background turned dark, not a caption band over a dark photo). A frame
    added to one picture only shifts its thumbnail and can anti-correlate a true copy: such pairs are
    not compared. Unknown traits or thumbnails say nothing. In numpy: every pair is checked.
    """

    def framing(record: ImageRecord | None) -> tuple[float, float]:
        """(share of the picture inside its frame, long side / short side); NaN when unknown."""
        if record is None or record.traits is None:
            return math.nan, math.nan
        return record.content_pixels / max(1, record.pixels), max(record.width, record.height) / max(
            1, min(record.width, record.height))

    share_a, shape_a = np.array([framing(x) for x in a], dtype=np.float64).reshape(-1, 2).T
    share_b, shape_b = np.array([framing(y) for y in b], dtype=np.float64).reshape(-1, 2).T
    unframed = (share_a >= UNFRAMED) & (share_b >= UNFRAMED)
    alike = (np.abs(share_a - share_b) <= FRAMED_ALIKE) & (np.abs(shape_a / shape_b - 1) <= SAME_SHAPE)
    compared = np.flatnonzero(unframed | alike)
    found = np.zeros(len(a), dtype=bool)
    if len(compared):
        rows = np.arange(len(compared))
        thumbnails_a = thumbnail_matrix([a[i].traits.thumbnail for i in compared])
        thumbnails_b = thumbnail_matrix([b[i].traits.thumbnail for i in compared])
        lowest, highest = aligned_correlation_range(thumbnails_a, thumbnails_b, rows, rows)
        opposite = np.where(unframed[compared], -lowest > highest, highest < FRAMED_AGREEMENT)
        mean_a, mean_b = thumbnails_a.mean(axis=1), thumbnails_b.mean(axis=1)
        darkened = (np.minimum(mean_a, mean_b) < LIGHTNESS_RATIO * np.maximum(mean_a, mean_b)) & (
            np.abs(np.median(thumbnails_a, axis=1) - np.median(thumbnails_b, axis=1)) >= LIGHTNESS_SHIFT)
        found[compared] = ((lowest < -INVERSION) & opposite) | ((highest < FRAMED_AGREEMENT) & darkened)
    return found


def turned_against_shape(a: Sequence[ImageRecord | None], b: Sequence[ImageRecord | None]) -> np.ndarray:
    """For each pair (``a[i]``, ``b[i]``), whether their luminance thumbnails line up only in alignments
    their shapes rule out (``TURN_AGREEMENT``, ``TURN_MARGIN`` better than in any other): turned a
    quarter though both pictures have one orientation (:func:`~lookalike.embedder.traits.orientations`),
    or unturned though one is landscape and the other portrait. A turned copy swaps its width and height
    and a copy as drawn keeps its orientation; but a landscape picture that is another landscape one's
    quarter turn is another design: Bolivia's flag (red, yellow and green stripes across) beside Guinea's
    (the same stripes upright), and Bolivia's flag turned upright beside Guinea's at its own shape. The
    thumbnails squeeze every picture to a square, so only the shapes can tell. Squares and near-squares,
    and unknown thumbnails, say nothing. Pairs from cosine 0.5, none of one picture's images flagged
    (dev, unseen and series sets); pairs of distinct series flags and pictograms that no colour look
    flags: 2,607 (833 when it asked for ``PIXEL_AGREEMENT`` and a margin of 0.05)."""
    def shapes(records: Sequence[ImageRecord | None]) -> np.ndarray:
        sizes = np.array([(r.width, r.height) if r else (0, 0) for r in records]).reshape(-1, 2)
        return orientations(sizes[:, 0], sizes[:, 1])

    orientation_a, orientation_b = shapes(a), shapes(b)
    compared = np.flatnonzero(orientation_a * orientation_b != 0)
    found = np.zeros(len(a), dtype=bool)
    if len(compared):
        alignments, valid = view_correlations(thumbnail_matrix([thumbnail_of(a[i]) for i in compared]),
                                              thumbnail_matrix([thumbnail_of(b[i]) for i in compared]))
        turned, kept = alignments[TURNED_VIEWS].max(axis=0), alignments[~TURNED_VIEWS].max(axis=0)
        swapped = orientation_a[compared] != orientation_b[compared]
        ruled_out, allowed = np.where(swapped, kept, turned), np.where(swapped, turned, kept)
        found[compared] = valid & (ruled_out >= TURN_AGREEMENT) & (ruled_out > allowed + TURN_MARGIN)
    return found


def recoloured_tints(a: Sequence[ImageRecord | None], b: Sequence[ImageRecord | None],
                     chunk: int = 8192) -> np.ndarray:
    """For each pair (``a[i]``, ``b[i]``), whether one is the other recoloured: their luminance thumbnails
    line up (``PIXEL_AGREEMENT``, in one of the eight turns and mirrors), and in every alignment that lines
    them up, more than ``TINTS_OPPOSED`` of the colour cells
    (:func:`~lookalike.embedder.traits.tint_grid`) clearly coloured in both (``TINT_CHROMA``) are apart:
    they point more than a quarter turn apart in opponent-colour space, or their hues turned in a way no
    brightening explains (:func:`~lookalike.embedder.traits.turn_beyond_brightening`); or ``PATCH_OPPOSED`` of
    them point apart in patches (one part of the design recoloured). A copy, brightened, recompressed or
    shrunk, keeps each part's colour; a negative beside a dark mode of one wallpaper, or a two-colour design
    with its colours swapped, keeps the same hues (:func:`other_colours` cannot tell) in other places; a
    design turned by 30 degrees of hue moves its colours about as far as brightening moves a copy's, but the
    other way or too far. Unknown tints or thumbnails, grey pictures and pairs that do not line up (crops,
    frames) say nothing. ``chunk`` pairs at a time (each holds eight views of its colour grid and of the
    colours rebuilt from it: 10 KB a pair)."""
    compared = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if _gridded(x) and _gridded(y)]
    found = np.zeros(len(a), dtype=bool)
    for start in range(0, len(compared), chunk):
        rows = compared[start : start + chunk]
        found[rows] = _tints_apart([a[i] for i in rows], [b[i] for i in rows])
    return found


def _tints_apart(a: Sequence[ImageRecord], b: Sequence[ImageRecord]) -> np.ndarray:
    """:func:`recoloured_tints` for pairs whose tints and thumbnails are all recorded; the colour grids
    are read only for pairs whose thumbnails line up (most pairs of different pictures do not)."""
    thumbnails_a = thumbnail_matrix([thumbnail_of(x) for x in a])
    thumbnails_b = thumbnail_matrix([thumbnail_of(y) for y in b])
    alignments, valid = view_correlations(thumbnails_a, thumbnails_b)
    lined_up = valid & (alignments >= PIXEL_AGREEMENT)  # [8, pairs]
    rows = np.flatnonzero(lined_up.any(axis=0))
    found = np.zeros(len(a), dtype=bool)
    if not len(rows):
        return found

    def grids(records: Sequence[ImageRecord]) -> np.ndarray:
        stored = np.frombuffer(b"".join(tint_of(records[i]) for i in rows), dtype=np.int8)
        return stored.reshape(-1, TINT_SIDE, TINT_SIDE, 2).astype(np.float32)

    def colours(thumbnails: np.ndarray, tints: np.ndarray) -> np.ndarray:
        return tint_colours(thumbnails[rows].reshape(-1, THUMBNAIL_SIDE, THUMBNAIL_SIDE).astype(np.float32),
                            tints)

    # Each pair in each alignment that lines it up [m]: most pairs line up in one of the eight only.
    views, pairs = np.nonzero(lined_up[:, rows])
    grids_a, grids_b = grids(a), grids(b)
    mine = grids_a[pairs] * 2  # on the R - G scale
    theirs = np.stack(aligned_views(grids_b))[views, pairs] * 2
    colours_b = colours(thumbnails_b, grids_b)
    turned = turn_beyond_brightening(colours(thumbnails_a, grids_a)[pairs],
                                      np.stack(aligned_views(colours_b))[views, pairs])
    chroma_mine, chroma_theirs = np.linalg.norm(mine, axis=-1), np.linalg.norm(theirs, axis=-1)
    coloured = (chroma_mine >= TINT_CHROMA) & (chroma_theirs >= TINT_CHROMA)
    vivid = (chroma_mine >= TURN_CHROMA) & (chroma_theirs >= TURN_CHROMA)
    opposed = ((mine * theirs).sum(axis=-1) < 0) & coloured
    apart = (opposed | ((turned > HUE_TURN) & vivid)).sum(axis=(1, 2))  # vivid cells are coloured
    cells = coloured.sum(axis=(1, 2))
    recoloured = (cells >= TINT_CELLS) & ((apart > TINTS_OPPOSED * cells)
                                          | (_in_patches(opposed).sum(axis=(1, 2)) >= PATCH_OPPOSED * cells))
    # Every alignment that lines the thumbnails up must say so: a design symmetric in luminance but not
    # in colour lines up mirrored too, and its mirrored copy would otherwise be read as swapped colours.
    copy_like = np.zeros(len(rows), dtype=bool)
    copy_like[pairs[~recoloured]] = True
    found[rows] = ~copy_like
    return found


def _in_patches(cells: np.ndarray) -> np.ndarray:
    """Which of the marked cells [..., rows, columns] have at least two marked cells among their four
    neighbours: the part of a mark that covers an area, not a line or a speck."""
    padded = np.pad(cells, [(0, 0)] * (cells.ndim - 2) + [(1, 1), (1, 1)])
    neighbours = (padded[..., :-2, 1:-1].astype(np.int8) + padded[..., 2:, 1:-1] + padded[..., 1:-1, :-2]
                  + padded[..., 1:-1, 2:])
    return cells & (neighbours >= 2)


def missing_hues(a: Sequence[ImageRecord | None], b: Sequence[ImageRecord | None],
                 chunk: int = 65536) -> np.ndarray:
    """For each pair (``a[i]``, ``b[i]``), whether one picture has a hue filling much of it that the other
    has no trace of (``HUE_AREA``). A copy, brightened, recompressed, shrunk or cropped a little, keeps
    every colour that fills a fifth of its original, wherever it sits; but red on white is not red on
    green (Japan's flag and Bangladesh's), nor red, white and blue red and white, though the hue
    histograms, which weigh colour against colour and not against the white, share most of their hues,
    and the thumbnails do not line up for :func:`recoloured_tints` to compare cell by cell. The picture
    lacking the colour may be banded (``ImageRecord.banded``): a caption band may have covered it, where a
    border all round covers nothing. So the colour must fill more of the other than the band could have
    covered (``ImageRecord.coverable``), or the other lack one of its own: a flag drawn on a page keeps a
    strip of the page under it, about a twentieth of its height, which is taken for a band but hides no
    stripe (series set: Austria's flag beside Luxembourg's, whose light blue fills a quarter). Unknown
    tints or thumbnails and grey pictures say nothing. Each picture's hues are read once, ``chunk`` at a
    time."""
    readable = {id(r): r for r in (*a, *b) if _gridded(r)}
    row_of = {key: row for row, key in enumerate(readable)}
    pictures = list(readable.values())
    areas = np.zeros((len(pictures), 6))
    traces = np.zeros((len(pictures), 6), dtype=bool)
    for start in range(0, len(pictures), chunk):
        part = slice(start, start + chunk)
        areas[part], traces[part] = _hue_areas(pictures[part])
    coverable = np.array([r.coverable for r in pictures])[:, None]
    compared = [(i, row_of[id(x)], row_of[id(y)]) for i, (x, y) in enumerate(zip(a, b, strict=True))
                if id(x) in row_of and id(y) in row_of]
    found = np.zeros(len(a), dtype=bool)
    if not compared:
        return found
    pairs, mine, theirs = np.array(compared).T
    a_lacks = (areas[mine] >= HUE_AREA) & ~traces[theirs]
    b_lacks = (areas[theirs] >= HUE_AREA) & ~traces[mine]
    a_only, b_only = a_lacks.any(axis=1), b_lacks.any(axis=1)
    uncovered = (a_lacks & (areas[mine] > coverable[theirs])) | (b_lacks & (areas[theirs] > coverable[mine]))
    found[pairs] = (a_only & b_only) | uncovered.any(axis=1)
    return found


def _hue_areas(records: Sequence[ImageRecord]) -> tuple[np.ndarray, np.ndarray]:
    """For pictures with recorded tints and thumbnails, the share of their own content (inside an added
    border or caption band, ``content_pixels``) that colour cells clearly of each of the six primary and
    secondary hues fill [n, 6] (``HUE_CHROMA``, ``PALE``), and whether any cell has a trace of it
    (``TRACE_CHROMA``) [n, 6]. A frame dilutes the grid: in a copy with a border a sixth as wide as its
    side, a stripe filling a third of the picture fills a seventh of the grid. Only a detected frame is
    left out (a caption band the content box misses still dilutes). Content under a quarter of the
    picture counts as a quarter."""
    thumbnails = thumbnail_matrix([thumbnail_of(r) for r in records]).astype(np.float32)
    tints = np.frombuffer(b"".join(tint_of(r) for r in records), dtype=np.int8)
    cells = np.clip(tint_colours(thumbnails.reshape(-1, THUMBNAIL_SIDE, THUMBNAIL_SIDE),
                                 tints.reshape(-1, TINT_SIDE, TINT_SIDE, 2).astype(np.float32)), 0, 255)
    cells = cells.reshape(len(records), -1, 3)
    darkest = across_channels(np.minimum, cells)
    chroma = (across_channels(np.maximum, cells) - darkest)[..., None]
    turn = np.abs((hue_sixths(cells)[..., None] - np.arange(6) + 3) % 6 - 3)  # sixths from each hue
    clear = (chroma >= HUE_CHROMA) & (turn <= 0.5) & (darkest[..., None] < PALE)
    traced = (chroma >= TRACE_CHROMA) & (turn <= TRACE_TURN)
    content = np.array([r.content_share for r in records])
    return clear.mean(axis=1) / np.maximum(content, 0.25)[:, None], traced.any(axis=1)


def _gridded(record: ImageRecord | None) -> bool:
    """Whether a record's colour grid and luminance thumbnail are both stored (not grey, not unknown)."""
    return (len(tint_of(record)) == TINT_SIDE * TINT_SIDE * 2
            and len(thumbnail_of(record)) == THUMBNAIL_SIDE * THUMBNAIL_SIDE)


def blank_beside_content(a: Sequence[ImageRecord | None], b: Sequence[ImageRecord | None]) -> np.ndarray:
    """For each pair, whether one picture is blank (its luminance thumbnail flat: spread under
    ``BLANK``) and the other clearly is not (over ``CONTENT``). The model cannot tell a blank page from
    a faint drawing whose lines vanish at its input size (dev set: a white page and a chessboard
    outline, cosine 1.0000); a blank page is a duplicate of blank pages only. Unrecorded thumbnails
    say nothing."""

    def spread(record: ImageRecord | None) -> float:
        thumbnail = thumbnail_of(record)
        if len(thumbnail) != THUMBNAIL_SIDE * THUMBNAIL_SIDE:
            return float("nan")
        return float(np.frombuffer(thumbnail, dtype=np.uint8).std())

    spread_a = np.array([spread(r) for r in a], dtype=np.float64).reshape(-1)
    spread_b = np.array([spread(r) for r in b], dtype=np.float64).reshape(-1)
    return ((spread_a < BLANK) & (spread_b > CONTENT)) | ((spread_b < BLANK) & (spread_a > CONTENT))

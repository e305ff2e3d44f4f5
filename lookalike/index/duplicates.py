"""Exact and near-duplicate clusters, found without an N x N similarity matrix.

Near-duplicate candidates come from a k-nearest-neighbour self-search over the collection's own
FAISS index (exact or inverted file, see ``vectors.py``), chunk by chunk, so memory stays at
``chunk_size x k`` results however large the collection (an N x N matrix is what makes other tools
die with MemoryError at 60k images). Exact duplicates come from content digests and need no model.

Grouping is *centre-first, keeper-verified*, chosen because plain transitive closure chains: A~B and
B~C put A and C together even when they look nothing alike, and a clean-up tool would then delete C
on the strength of a photo it does not resemble. Here the most central image not yet placed (the most
accepted pairs) and its neighbours are a cluster's candidate members; the keeper policy chooses the
keeper among them (moving to a better file next to that keeper, such as the original beside a mirrored
centre, with that file's own neighbours); the keeper's neighbours that another member also pairs with
join the candidates; and only members that are duplicates *of the keeper itself*, whose colours do
not say otherwise (:func:`colour_conflict`) and that do not match other pictures' images better
(:func:`better_elsewhere`), become its copies. So:

- every copy is verified against the very file that is kept (similarity reported per copy), which
  is what justifies moving or deleting it;
- a cluster's diameter is bounded by the threshold around its keeper, so chains cannot form;
- membership starts from the most central image, not from the file the policy prefers (under
  ``pixels``, a copy in a wide frame, which makes it alike to other framed pictures);
- an image similar only to a copy (not to the keeper) stays out of the cluster: it is never removed
  on second-hand evidence.

Two copies of the same keeper may be less similar to each other than the threshold (a left crop and
a right crop of one photo): they are both copies of the kept original, which is what the user needs.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import faiss
import numpy as np
from numpy.typing import ArrayLike

from lookalike.embedder.traits import (
    COLOURFUL,
    THUMBNAIL_SIDE,
    TINT_SIDE,
    TURNED_VIEWS,
    Traits,
    across_channels,
    colour_distance,
    hue_sixths,
    orientations,
    thumbnail_matrix,
    thumbnail_signals,
    tint_colours,
)
from lookalike.errors import InvalidOption
from lookalike.index.vectors import TRAIN_PER_LIST, VectorIndex
from lookalike.paths import FileSet

if TYPE_CHECKING:  # OpenCV is imported only when a geometric look runs (it takes 0.1 s to import)
    from lookalike.embedder.keypoints import KeypointFiles, Match
    from lookalike.index.store import ImageRow


@dataclass(frozen=True)
class ImageRecord:
    """What the keeper policy and the report need to know about one indexed image."""

    id: int
    path: str
    width: int
    height: int
    size: int
    mtime: float
    digest: str | None = None
    device: int | None = None
    inode: int | None = None
    traits: Traits | None = None

    @classmethod
    def of(cls, row: ImageRow) -> ImageRecord:
        """The record of a store row (its vector and labels left behind)."""
        return cls(row.id, row.path, row.width, row.height, row.size, row.mtime, row.digest, row.device,
                   row.inode, row.traits)

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def content_pixels(self) -> int:
        """The picture's own pixels: without an added border or caption band (``embedder/traits.py``)."""
        return self.traits.content_pixels if self.traits else self.pixels

    @property
    def banded(self) -> bool:
        """Framed with its content the whole width or height: a caption band may cover part of it."""
        traits = self.traits
        return self.framed and traits is not None and (traits.content_width >= UNFRAMED * self.width
                                                       or traits.content_height >= UNFRAMED * self.height)

    @property
    def content_share(self) -> float:
        """The share of the picture's pixels that its own content keeps; 1.0 when unknown."""
        return self.content_pixels / self.pixels if 0 < self.content_pixels < self.pixels else 1.0

    @property
    def coverable(self) -> float:
        """The share of a picture that its caption band may have covered in the original, 0 when not
        banded: the band's own share and one row of the colour grid (``TINT_SIDE``), whose cells a band
        ending inside them may have covered all but a trace too faint to count."""
        return 1.0 - self.content_share + 1.0 / TINT_SIDE if self.banded else 0.0

    @property
    def framed(self) -> bool:
        """Inside an added border or caption band (``FRAMED``), which its thumbnail shares with every
        picture framed alike."""
        return self.content_pixels < FRAMED * self.pixels

    def is_one_of(self, files: FileSet) -> bool:
        return (self.path, self.device, self.inode) in files

    def same_file_as(self, other: ImageRecord) -> bool:
        """The same file under another path (a hard link, a bind mount): removing it frees nothing."""
        return self.path == other.path or bool(self.inode) and (self.device, self.inode) == (
            other.device, other.inode)


@dataclass(frozen=True)
class Pair:
    """Two images at or above the similarity threshold (cosine of their L2-normalised vectors).

    Within one set ``a < b``; across two sets ``a`` is the query image and ``b`` the archive image.
    """

    a: int
    b: int
    similarity: float
    score: float | None = None  # the similarity less the pair's density (:func:`pair_score`)

    @property
    def rank(self) -> float:
        return self.similarity if self.score is None else self.score


@dataclass(frozen=True)
class Member:
    """One image of a cluster, with its similarity to the cluster's keeper (1.0 for the keeper)."""

    id: int
    path: str
    width: int
    height: int
    size: int
    mtime: float
    similarity: float
    exact: bool
    same_file: bool = False
    """The keeper's own file under another name (a hard link): shown, never moved or deleted."""

    @property
    def pixels(self) -> int:
        return self.width * self.height


@dataclass(frozen=True)
class Cluster:
    """A keeper and its copies; ``exact`` copies share the keeper's content digest byte for byte.

    A copy that is the keeper's very file under another name (``same_file``: a hard link) is listed
    for honesty but frees nothing and is never acted on.
    """

    keeper: Member
    copies: tuple[Member, ...]

    @property
    def members(self) -> tuple[Member, ...]:
        return (self.keeper, *self.copies)

    @property
    def reclaimable(self) -> int:
        """Bytes freed by removing the copies: what a user weighs before cleaning up."""
        return sum(c.size for c in self.copies if not c.same_file)


CONTENT_SHARE = 0.8
"""``content``: every member whose picture is at least this share of the largest one's is a candidate
keeper; the next criteria choose among them. Copies scaled to half size or less drop out; a bordered
or captioned copy no longer wins by its added pixels."""

# Each criterion maps (record, largest content in its cluster) to a sort key: smaller is a better keeper.
_CRITERIA: dict[str, Callable[[ImageRecord, int], float]] = {
    "content": lambda r, largest: 0.0 if r.content_pixels >= CONTENT_SHARE * largest else 1 - r.content_pixels
    / max(largest, 1),
    "colour": lambda r, _: 1.0 if r.traits and r.traits.greyscale else 0.0,
    "quality": lambda r, _: -(r.traits.quality if r.traits else 100),
    "pixels": lambda r, _: -r.pixels,
    "size": lambda r, _: -r.size,
    "oldest": lambda r, _: r.mtime,
    "newest": lambda r, _: -r.mtime,
    "shortest-path": lambda r, _: len(r.path),
}


@dataclass(frozen=True)
class KeeperPolicy:
    """Which image of a cluster to keep: criteria applied in order, ties broken by path then id.

    The default keeps the picture, not the file: among the members whose own content (borders and
    caption bands left out) is near the largest (``content``), the colour one over a greyscale copy
    (``colour``), then the least recompressed (``quality``: lossless, else the highest JPEG quality),
    then the largest file, then the oldest (most likely the original). ``pixels`` (all pixels, frame
    included) is still there for those who want it.
    """

    criteria: tuple[str, ...] = ("content", "colour", "quality", "size", "oldest")

    def __post_init__(self) -> None:
        unknown = [c for c in self.criteria if c not in _CRITERIA]
        if unknown or not self.criteria:
            raise InvalidOption(
                "--keep",
                f"unknown keeper criterion {', '.join(unknown) or '(none)'}; "
                f"choose from {', '.join(_CRITERIA)}"
            )

    @classmethod
    def parse(cls, spec: str) -> KeeperPolicy:
        """Read a comma-separated spec such as ``"content,colour,quality,size,oldest"`` or ``"newest"``."""
        return cls(tuple(part.strip() for part in spec.split(",") if part.strip()))

    def key(self, record: ImageRecord, largest: int | None = None) -> tuple:
        largest = record.content_pixels if largest is None else largest
        return (*(_CRITERIA[c](record, largest) for c in self.criteria), record.path, record.id)

    def choose(self, records: Iterable[ImageRecord]) -> ImageRecord:
        """The keeper among ``records``."""
        records = list(records)
        largest = max(r.content_pixels for r in records)
        return min(records, key=lambda r: self.key(r, largest))

    def __str__(self) -> str:
        return ",".join(self.criteria)


DEFAULT_POLICY = KeeperPolicy()

PAIR_NPROBE = 8
"""Inverted lists visited per query in the self-search. Fewer than for interactive search: a
near-duplicate sits in (or next to) its original's list, and the self-search asks N queries.
docs/benchmarks.md: at 100k nprobe 4/8/16 take 15/23/31 s and all find every planted pair; 1M at
nprobe 8 takes 6.4 minutes with recall 0.99999."""


KEEPER_ROUNDS = 3
"""How many times a cluster may move to a better keeper found among its keeper's neighbours."""

BETTER_ELSEWHERE = 2
"""A candidate copy that this many images outside the cluster match better than its keeper does is left
for them (:func:`better_elsewhere`): the most central picture otherwise takes a similar picture's small
copy before that picture's own cluster forms (a kiwi's cluster took a quarter-size mince pie). Dev set:
at the default threshold the same precision (1.000) and recall (0.956); at 0.58, precision 0.990 ->
0.993, recall 0.971 -> 0.974, mixed clusters 5 -> 4; at 0.56, 0.970 -> 0.977, 12 -> 10. With one better
image enough, two quarter-turned flags each left their own cluster and formed one together."""

TURNING_AWAY_ROUNDS = 3
"""How often a cluster looks at its greyscale candidates again after turning some away (each one turned
away is a rival of the rest, :func:`colour_conflict`): the unlit bulb's quarter turn, whose original was
turned away from the lit bulb's cluster, needs two. Bounded, so a cluster of thousands costs a few
passes over its members, not one per member turned away."""

DEFAULT_THRESHOLD = 0.64
"""The duplicate score (:func:`pair_score`: cosine similarity corrected for the pair's density) at which
two images count as near-duplicates. Chosen on the dev half of bench/dupset.py's set (highest F1 with
precision >= 0.97, no hard-negative family merged and no cluster mixing two originals: F1 0.978,
precision 1.000; 0.60 merges no family either, F1 0.980, but mixes 3 clusters, precision 0.992); the
test half is only reported: docs/benchmarks.md, "Duplicate threshold calibration" (bench/calibrate.py).
Checked again after the keypoint look (``VOUCHED_PAIRS``), 0.58-0.68: still the choice (F1 0.983,
precision 1.000, no cluster mixed); 0.62 reaches F1 0.985 but mixes a cluster, 0.66 mixes one too (a lit
bulb's bordered copy beside the brighter-lit bulb, which its keypoints cannot tell from a brightened copy)."""

DENSITY_RANKS = (10, 20)
"""Neighbours (by rank, the image itself and its own versions left out: ``SAME_PICTURE``) whose mean
similarity is an image's density: past the few copies a picture usually has, among its ordinary
neighbours."""
SAME_PICTURE = 0.995
"""Neighbours this alike are the image itself (byte-identical backups, lossless re-saves), not its
ordinary neighbours: :func:`density` leaves them out. Counted, a photo with ten backups had its density
taken among them: simulated on the dev vectors, 390 of the 1,730 copies stayed at the threshold with
their original (1,598 with no backups), and with thirty none; left out, 1,518 and 1,607. Only near
identity: at 0.97, the colour variants probe (bench/colour_variants.py) mixed 15 clusters instead of
13, at 0.93 (a re-encoded or half-size copy's cosine) 20, though dev's pairwise F1 rose to 0.979 at
0.66; hue variants of a pale picture sit that close."""
DENSITY_DEPTH = 32
"""How deep each image's search goes for its density: the first search's depth anyway (``LOOK_K``), so
the window has room for twelve of the image's own backups (``SAME_PICTURE``); with more, too few
ordinary neighbours are left there, and it takes ``DENSITY_PRIOR``."""
DENSITY_PRIOR = 0.57
"""The density of an image in a collection too small to have those neighbours: the median on the dev set."""
DENSITY_FLOOR = DENSITY_PRIOR
"""No image's density is taken to be lower: a sparse neighbourhood never makes a pair score above its
cosine, it is crowded ones that need more. A folder of the dev set's 173 originals alone (no copies;
densities 0.28-0.50, median 0.39) with the floor at 0.30: every pair scored up to 0.18 above its cosine
(an orange and a kiwi at cosine 0.42 scored 0.67, two screenshots at 0.63 scored 0.90, past the
geometric band) and the clean-up made 16 clusters of different pictures; at the prior, 7 (3 with
``GEOMETRY_BAND`` 0.3). The dev set, where every original has ten copies, hardly used the lift: recall
at the default 0.959 -> 0.956, precision 1.000 both. The self-search only collects pairs whose cosine
reaches the threshold, which bounds its work."""

NEAR_IDENTICAL = 0.95
MAX_DISCOUNT = NEAR_IDENTICAL - DEFAULT_THRESHOLD
"""Pairs at cosine ``NEAR_IDENTICAL`` or more are versions of one picture (resized, recompressed,
lightly cropped). A picture kept in many versions has them for its nearest neighbours: forty versions
of a photo made each one's density 0.97, and not one pair of them reached the threshold. So an image
with more near-identical neighbours than the density window reaches (``DENSITY_RANKS``, the window
all its own versions) has them left out of its density, as its backups are (:func:`density`); and a
near-identical pair loses at most ``MAX_DISCOUNT`` to density (:func:`pair_score`), so it reaches the
default threshold however crowded its neighbourhood. The second looks still judge every such pair.
Dev set: no image has more than ten such neighbours (its densest, tricolour flags at 0.88-0.92, pair
with each other under 0.95), and the cap gains 19 pairs, 18 of them copies (the other, two flags, is
vetoed by its layout): recall at the default 0.957 -> 0.959. Forty versions of each of five dev
pictures among 150 dev originals: 28 of the 200 clustered before, 191 now; a thousand versions of one
photo, 891 -> 999 (bench/versions.py)."""

COLOUR_MARGIN = 1.0
"""Pairs whose score is less than this above the threshold get the colour second look: in practice
every pair. Measured on the dev set at threshold 0.66: every pair (1.0) gives F1 0.937, precision 0.992
and 6 hard-negative families merged, against 0.936, 0.989 and 7 when only pairs within 0.08 of the
threshold are looked at; the look reads traits stored at indexing, so it costs nothing measurable."""
COLOUR_MAX = 0.5
"""A pair of two colourful images whose hues share less than half (:func:`colour_distance` over this)
is the same design in another colour, not a copy. Brightened copies reach 0.45 (95th percentile)."""

INVERSION = 0.6
""":func:`inversions`: thumbnails anti-correlated past this are a picture and its negative. Dev set, pairs at
the threshold between pictures without a frame: no copy pair is flagged (the most anti-correlated,
captioned against cropped, reach -0.25); a negatives probe of 40 dev designs
(bench/colour_variants.py): 120 of 120 pairs flagged."""
UNFRAMED = 0.98
"""A picture whose content box (``Traits``) keeps this share of its pixels has no added border or band;
one that keeps this share of a side spans it (``ImageRecord.banded``: a band at most along the other)."""
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
BRIGHTENING = 2.0
TURN_CHROMA = 24.0
CLIPS = 150.0
DROP = 12.0
EVEN = 1.1
EVEN_TOL = 0.05
"""See :func:`_turn_beyond_brightening`: a colour cell also counts as apart (:func:`recoloured_tints`)
when, colourful in both pictures (``TURN_CHROMA``, twice ``TINT_CHROMA``: a dark cell's hue wanders
with JPEG), its hue turned more than ``HUE_TURN`` degrees beyond what brightening by up to
``BRIGHTENING`` times (the bench brightens 1.3 to 1.6 times) explains. Brightening explains a turn only
where the lighter cell's brightest channel reaches ``CLIPS`` (out of 255; under it nothing clipped) and
none of its channels fell by more than ``DROP``; and any turn of a cell whose channels all rose, by
``EVEN`` times at least, by ``BRIGHTENING`` at most, the darkest channel most (within ``EVEN_TOL``).
Pairs of pictures of one design, dev originals and the near-hue probe (bench/hue_turns.py): copies 0 of
6,338 told apart (one from ``HUE_TURN`` 10 down: a bordered copy beside a brightened one, its cells
shifted by the border; still 0 with ``BRIGHTENING`` at 1.3), variants turned by 30 degrees 593 of
1,080, by 60 degrees 501 of 720 (0 and 0 without the turn test). Unseen set: copies 0 of 8,185 (6
without the rule for cells whose channels all rose: a puzzle game's brightened screenshot)."""

HUE_AREA = 0.2
HUE_CHROMA = 40.0
TRACE_CHROMA = 20.0
PALE = 100.0
"""See :func:`missing_hues`: a hue fills a picture's area when colour cells filling at least ``HUE_AREA`` of
its own content (``tint_grid``, rebuilt as RGB; inside an added border or band) are clearly of it (channels
spread by ``HUE_CHROMA`` out of 255, within 30 degrees of it) and not pale (darkest channel under ``PALE``:
brightened twice over, the bench brightens 1.3-1.6 times, such a cell stays coloured; a pale blue brightened
turns white). The other picture has no trace of it when not one of its cells is within 60 degrees of it at
``TRACE_CHROMA``. Pairs of pictures of one original scoring 0.6 and up, neither greyscale
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

LOOK_FLOOR = 0.40
"""Neighbours from this cosine up, among an image's first ``LOOK_K``, whose shapes say "a quarter turn
apart" or "one many times the other's size" get a second look (:func:`worth_a_look`): a rotated photo's
plain similarity to its original can be as low as 0.44, a thumbnail's 0.43 (dev set)."""
LOOK_K = 32
"""How deep in an image's neighbours the second looks reach. An original is often not among its
quarter-size copy's first 8 (its other copies come first; dev set: rank up to 31)."""
TURN_TOLERANCE = 0.25  # how far width/height ratios may be from swapped and still count as a turn
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

SCALE_RATIO = 6.0
"""Close neighbours one of which has this many times the other's pixels (a quarter-size copy has 16)
get the scale second look: the larger picture shrunk to the smaller one's size and embedded again, so
both are compared at the same, small resolution. A tiny copy's plain similarity to its original is
often 0.6; shrunk alike, 0.84 or more (dev set, 10th percentile)."""

FRAMED = 0.95
FRAME_ASPECT = 0.05
FRAME_FLOOR = 0.75
"""The frame look: a picture keeping under ``FRAMED`` of its pixels inside an added border or caption band
(``Traits``' content box), whose content has the aspect ratio of a neighbour without one (within
``FRAME_ASPECT``) and a cosine of ``FRAME_FLOOR`` or more with it, is embedded again cropped to its
content (:func:`~lookalike.embedder.traits.content_crop`) and compared with it. A wide border makes a
copy alike to every bordered picture and less alike to its original: among game screenshots
(bench/unseen.py) bordered copies kept a cosine of 0.80-0.91 with their originals and 15 of 137 stayed
under the threshold, 7 with this look, no cluster mixing pictures added; dev set at the default, border
recall 0.942 -> 0.954, precision 1.000. Its pixels cannot vouch for such a pair (the frame shifts the
thumbnail), so the cosine floor bounds the re-embedding instead: dev set, 389 framed pictures with a
neighbour from the look floor ``LOOK_FLOOR``, far fewer from 0.75 (bench/calibrate.py counts them); the
bordered copies it missed were mostly at 0.83 and up."""

ENLARGED = 256
ENLARGED_RATIO = 3.0
"""A picture under ``ENLARGED`` pixels on its short side is enlarged to the model's input (260 for
EfficientNet-B2 and Lite2), its detail smoothed away where a larger copy's is shrunk and kept: so it gets
the scale look from ``ENLARGED_RATIO`` times fewer pixels (a half-size copy has 4). Screenshots of games
at 320 x 240 (bench/unseen.py, sources the calibration never saw): their half-size copies' plain
similarity 0.53-0.87, 105 of 137 found; with this look 134, no cluster mixing pictures added. The dev set
at the default unchanged (its originals are larger); at 0.60 one half-size stamp joins another drawing."""

TINY = 128
PIXEL_K = 8
"""A picture under ``TINY`` pixels on its short side is enlarged more than twice by the model, and its
vector sits among other tiny pictures': an 80 x 60 copy of a 320 x 240 screenshot has its original 32
to 900 deep in its neighbours among 1,500 images (bench/unseen.py), out of the second looks' reach
(``LOOK_K``). So a tiny picture's larger versions are sought by their pixels (:func:`pixel_neighbours`,
its ``PIXEL_K`` best thumbnails from ``PIXEL_AGREEMENT`` up) and offered to the scale look: there,
quarter-size copies found 74 -> 130 of 137, and no cluster mixing pictures added. The search costs
nothing where no picture is tiny, and grows with tiny pictures times all pictures (docs/benchmarks.md)."""

PIXEL_COMPARISONS = 2_000_000_000
PIXEL_LISTS = 1024
PIXEL_NPROBE = 16
"""From ``PIXEL_COMPARISONS`` query-thumbnail comparisons on (and ``TRAIN_PER_LIST`` thumbnails a list to
learn from, as for the vectors), the pixel search (:func:`pixel_neighbours`) goes through an inverted file
of ``PIXEL_LISTS`` lists, ``PIXEL_NPROBE`` of them visited per query: comparing every tiny or grey picture
with every picture costs their product, and a library of old black-and-white photos has a hundred thousand
grey pictures without a colour original. Synthetic thumbnails (bench/tiny_search.py), among a million:
1,000 queries 12 s compared with everything, 26 s through the file; 10,000 queries 105 s and 29 s,
every planted original found either way."""

PIXEL_AGREEMENT = 0.85
"""A pair joined only by a second look must also agree pixel by pixel: the correlation of the two
pictures' luminance thumbnails (:func:`~lookalike.embedder.traits.thumbnail_signal`), the best over
quarter turns and mirrors. Checked first, from the stored thumbnails, so only pairs that pass are
re-embedded. Re-embedded at a tiny size or turned, unrelated pictures can look
alike to the model (textures, screenshots); a turned or shrunk copy is the same picture. Dev set, pairs
a look had raised to the threshold: copies and their originals 0.81-1.0 (median 0.998), different
pictures median 0.45; at 0.85 the looks' false pairs fall from 330 to 37 and every copy-original pair but
one stays."""

GREY_MATCH = 12.0
"""A grey picture and a colour one are compared greyed alike (the greyscale second look) only when the
grey one has the colour one's own luminance: their thumbnails differ by at most this on average
(:func:`luminance_difference`, 0-255). Greyscale made by the formulas of PIL and OpenCV (Rec. 601) or
scikit-image (Rec. 709) stays under 11 on the dev set's originals (the channels' plain average reaches
19, HSL lightness 41: such copies keep their plain score). Two balloons of other colours are 16.5 apart
once greyed, though they correlate at 0.98. Dev set, with the colour rules of :func:`colour_conflict`:
at 20, two hard-negative families merged and 3 mixed clusters; at 12, none and 1."""


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
EXPECTED_KEYPOINTS = 150
"""Both pictures need this many keypoints (:mod:`~lookalike.embedder.keypoints`) for the geometric
check to judge: flat drawings, flags and smooth gradients have a handful, and their copies match few."""
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
LAYOUT_AGREEMENT = 0.6
"""A pair of pictures too flat for the keypoints to judge (under ``EXPECTED_KEYPOINTS`` on either side)
is not a copy when their coarse layouts, in luminance and (both coloured) in colour, correlate under this
however one is cropped, turned or mirrored (:func:`~lookalike.embedder.keypoints.layout_agreement`): two
tricolour flags of the same colours in another order, two fruits drawn on white. Dev set, such pairs
scoring from 0.54 that pass the colour checks, at ``LAYOUT_GRID`` 5: 1,688 pairs of copies (every kind)
agree at 0.71 at least (1st percentile 0.80), a margin of 0.1 kept for pictures unlike the dev set's;
of 273 pairs of different pictures from 0.58, 144 under 0.6 (113 under 0.5; luminance alone, about 100).
An 8x8 grid caught 152 but brought copies down to 0.67 (1st percentile 0.73): too thin a margin (on the
test half it cost recall, 0.915 -> 0.910). Dev at threshold 0.58: precision 0.973 -> 0.989, the flags
family no longer merged, recall 0.963 -> 0.970; the default unchanged on dev."""

LUMINANCE_TIE = 2.0
"""Two colour pictures whose luminance a greyscale copy matches within this of each other
(:func:`luminance_difference`) are both its possible originals (a recolouring that kept the
luminance): it is not moved for either. JPEG re-encoding moves a greyscale copy about 0.1-0.2 from its
original's (dev set)."""


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


ShapeTest = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
"""(query ids, neighbour ids, cosine similarities) -> which pairs deserve a second look
(:func:`worth_a_look` on their shapes)."""


def could_be_scaled(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Whether one of two (width, height) shapes is ``SCALE_RATIO`` times the other's pixels or more, or
    ``ENLARGED_RATIO`` times when the smaller one is ``ENLARGED`` (shapes [..., 2]: one pair or many)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    pa, pb = a[..., 0] * a[..., 1], b[..., 0] * b[..., 1]
    smaller = np.where((pa <= pb)[..., None], a, b)
    ratio = np.where(smaller.min(axis=-1) < ENLARGED, ENLARGED_RATIO, SCALE_RATIO)
    return (np.minimum(pa, pb) > 0) & (np.maximum(pa, pb) >= ratio * np.minimum(pa, pb))


def could_be_turned(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Whether ``b`` (width, height) could be ``a`` turned a quarter: swapped aspect ratios, or squares
    (shapes [..., 2]: one pair or many).

    Re-embedding is the costly part of the second look, and most photo pairs fail this free test.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    sane = np.minimum(a.min(axis=-1), b.min(axis=-1)) > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        turned = np.abs(a[..., 0] / a[..., 1] * (b[..., 0] / b[..., 1]) - 1) <= TURN_TOLERANCE
    return sane & turned


def could_be_unframed(shapes_a: ArrayLike, contents_a: ArrayLike, shapes_b: ArrayLike,
                      contents_b: ArrayLike) -> np.ndarray:
    """Whether one of two pictures could be the other with a border or a caption band added: it keeps
    under ``FRAMED`` of its pixels inside its frame, the other has no frame (``UNFRAMED``), and its
    content has the other's aspect ratio (within ``FRAME_ASPECT``). (width, height) of each picture and
    of its content box, [..., 2]: one pair or many; an unknown content box (zeros) never counts."""
    def share_and_aspect(shapes: ArrayLike, contents: ArrayLike) -> tuple[np.ndarray, np.ndarray,
                                                                       np.ndarray]:
        shapes, contents = np.asarray(shapes, dtype=np.float64), np.asarray(contents, dtype=np.float64)
        known = (shapes.min(axis=-1) > 0) & (contents.min(axis=-1) > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            share = contents.prod(axis=-1) / shapes.prod(axis=-1)
            return (np.where(known, share, np.nan), shapes[..., 0] / shapes[..., 1],
                    contents[..., 0] / contents[..., 1])

    share_a, aspect_a, content_aspect_a = share_and_aspect(shapes_a, contents_a)
    share_b, aspect_b, content_aspect_b = share_and_aspect(shapes_b, contents_b)
    with np.errstate(invalid="ignore"):
        a_framed = (share_a < FRAMED) & (share_b >= UNFRAMED) & (
            np.abs(content_aspect_a / aspect_b - 1) <= FRAME_ASPECT)
        b_framed = (share_b < FRAMED) & (share_a >= UNFRAMED) & (
            np.abs(content_aspect_b / aspect_a - 1) <= FRAME_ASPECT)
    return a_framed | b_framed


def frame_test(my_shapes: np.ndarray, my_contents: np.ndarray, their_shapes: np.ndarray,
               their_contents: np.ndarray) -> ShapeTest:
    """The pairs the frame look takes (:func:`could_be_unframed` from ``FRAME_FLOOR``), from tables of
    every image's shape and content box indexed by id (:meth:`Store.shapes`, ``content_shapes``)."""
    def framed(a: np.ndarray, b: np.ndarray, sims: np.ndarray) -> np.ndarray:
        return (np.asarray(sims) >= FRAME_FLOOR) & could_be_unframed(
            by_id(my_shapes, a, 0), by_id(my_contents, a, 0), by_id(their_shapes, b, 0),
            by_id(their_contents, b, 0))

    return framed


def could_be_greyed(grey_a: ArrayLike, grey_b: ArrayLike) -> np.ndarray:
    """Whether one of two pictures could be the other's greyscale copy: one grey, the other in colour
    (greyscale flags 1/0; -1, unknown, never counts)."""
    a, b = np.asarray(grey_a), np.asarray(grey_b)
    return ((a == 1) & (b == 0)) | ((a == 0) & (b == 1))


def worth_a_look(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Which pairs of shapes a second look could join: a quarter turn or a many-times scale apart."""
    return could_be_turned(a, b) | could_be_scaled(a, b)


def pixel_agreements(thumbnails_a: Sequence[bytes], thumbnails_b: Sequence[bytes]) -> np.ndarray:
    """For each pair of luminance thumbnails, their correlation, the best over the eight quarter turns
    and mirrors of ``b``: 1.0 for the same picture however it was turned; -1.0 if either is missing or
    flat."""
    rows = np.arange(len(thumbnails_a))
    return aligned_correlations(thumbnail_matrix(thumbnails_a), thumbnail_matrix(thumbnails_b), rows, rows)


def aligned_correlations(thumbnails_a: np.ndarray, thumbnails_b: np.ndarray, rows_a: np.ndarray,
                         rows_b: np.ndarray) -> np.ndarray:
    """:func:`pixel_agreements` for pairs (``thumbnails_a[rows_a[i]]``, ``thumbnails_b[rows_b[i]]``) of
    two thumbnail matrices: millions of pairs, a chunk at a time, each thumbnail stored once."""
    return aligned_correlation_range(thumbnails_a, thumbnails_b, rows_a, rows_b)[1]


def aligned_correlation_range(thumbnails_a: np.ndarray, thumbnails_b: np.ndarray, rows_a: np.ndarray,
                              rows_b: np.ndarray, chunk: int = 65_536) -> tuple[np.ndarray, np.ndarray]:
    """The lowest and the highest correlation of each pair over the eight quarter turns and mirrors of
    ``b`` (see :func:`aligned_correlations`); where either thumbnail is missing or flat, (0, -1): never
    alike, never opposite."""
    lowest = np.zeros(len(rows_a), dtype=np.float32)
    highest = np.full(len(rows_a), -1.0, dtype=np.float32)
    for start in range(0, len(rows_a), chunk):
        found, valid = _alignments(thumbnails_a[rows_a[start : start + chunk]],
                                   thumbnails_b[rows_b[start : start + chunk]])
        lowest[start : start + chunk] = np.where(valid, found.min(axis=0), 0.0)
        highest[start : start + chunk] = np.where(valid, found.max(axis=0), -1.0)
    return lowest, highest


def _alignments(thumbnails_a: np.ndarray, thumbnails_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Correlations [8, n] of aligned rows of two thumbnail matrices in each of ``b``'s eight turns and
    mirrors (:func:`_aligned_views` order), and which pairs say anything (neither thumbnail flat)."""
    a, valid_a = thumbnail_signals(thumbnails_a)
    b, valid_b = thumbnail_signals(thumbnails_b)
    return np.array([np.einsum("nij,nij->n", a, view) for view in _aligned_views(b)]), valid_a & valid_b


def _aligned_views(grids: np.ndarray) -> list[np.ndarray]:
    """Square grids [n, side, side, ...] in the eight quarter turns and mirrors, always in this order."""
    turns = [np.rot90(grids, k, axes=(1, 2)) for k in range(4)]
    return [view for turn in turns for view in (turn, turn[:, :, ::-1])]


def pixel_neighbours(queries: np.ndarray, thumbnails: np.ndarray, same: np.ndarray | None = None,
                     k: int = PIXEL_K, block: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """(query rows, thumbnail rows) of each query thumbnail's up to ``k`` best-correlated ``thumbnails``
    (as drawn: a tiny copy is seldom turned as well) from ``PIXEL_AGREEMENT`` up; ``same[i]``, the
    thumbnail row that is query ``i`` itself, is left out. Both are thumbnail matrices
    (:func:`~lookalike.embedder.traits.thumbnail_matrix`); flat or missing thumbnails match nothing.
    From ``PIXEL_COMPARISONS`` on, through an inverted file (:func:`_indexed_pixel_neighbours`);
    below, every query against every thumbnail, in blocks of ``block`` queries by 16 times as many
    thumbnails: memory stays at one block of correlations (64 MiB) and ``k`` candidates per query."""
    learnable = len(thumbnails) >= TRAIN_PER_LIST * PIXEL_LISTS
    if len(queries) * len(thumbnails) >= PIXEL_COMPARISONS and learnable:
        return _indexed_pixel_neighbours(queries, thumbnails, same, k)
    k = max(1, min(k, len(thumbnails)))
    best = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_rows = np.full((len(queries), k), -1, dtype=np.int64)
    signals, valid = thumbnail_signals(queries)
    signals = signals.reshape(len(queries), -1)
    width = block * 16
    for start in range(0, len(thumbnails), width):
        found_signals, found_valid = thumbnail_signals(thumbnails[start : start + width])
        found_signals = found_signals.reshape(len(found_signals), -1)
        for first in range(0, len(queries), block):
            rows = slice(first, first + block)
            found = signals[rows] @ found_signals.T
            found[:, ~found_valid] = -np.inf
            if same is not None:
                mine = (same[rows] >= start) & (same[rows] < start + len(found_signals))
                found[np.nonzero(mine)[0], same[rows][mine] - start] = -np.inf
            top = np.argpartition(-found, min(k, found.shape[1]) - 1, axis=1)[:, :k]
            merged = np.concatenate([best[rows], np.take_along_axis(found, top, 1)], axis=1)
            merged_rows = np.concatenate([best_rows[rows], top + start], axis=1)
            keep = np.argpartition(-merged, k - 1, axis=1)[:, :k]
            best[rows] = np.take_along_axis(merged, keep, 1)
            best_rows[rows] = np.take_along_axis(merged_rows, keep, 1)
    query_rows, slots = np.nonzero((best >= PIXEL_AGREEMENT) & valid[:, None])
    return query_rows, best_rows[query_rows, slots]


def _indexed_pixel_neighbours(queries: np.ndarray, thumbnails: np.ndarray, same: np.ndarray | None,
                              k: int, chunk: int = 65_536) -> tuple[np.ndarray, np.ndarray]:
    """:func:`pixel_neighbours` through an inverted file of the thumbnails' signals (the vector index's
    own, :meth:`~lookalike.index.vectors.VectorIndex.empty`: 8-bit scalar quantized, ``PIXEL_LISTS`` lists
    learnt from a sample, ``PIXEL_NPROBE`` visited per query): each query compares with a few thousand
    thumbnails instead of all. A copy's thumbnail correlates with its original's at 0.95 and up, so
    both land in one list (bench/tiny_search.py counts the planted originals found). Added a chunk at a
    time: memory stays at 256 bytes a thumbnail."""
    side = THUMBNAIL_SIDE * THUMBNAIL_SIDE
    sample = np.random.default_rng(0).choice(
        len(thumbnails), min(len(thumbnails), TRAIN_PER_LIST * PIXEL_LISTS), replace=False)
    train, usable = thumbnail_signals(thumbnails[np.sort(sample)])
    index = VectorIndex.empty(side, "ivf", train[usable].reshape(-1, side), PIXEL_LISTS)
    for start in range(0, len(thumbnails), chunk):
        signals, valid = thumbnail_signals(thumbnails[start : start + chunk])
        rows = np.nonzero(valid)[0]
        index.add(rows + start, signals[rows].reshape(-1, side))
    signals, valid = thumbnail_signals(queries)
    hits = index.search(signals.reshape(-1, side), k, min_score=PIXEL_AGREEMENT, nprobe=PIXEL_NPROBE,
                        exclude=None if same is None else [(row,) for row in same.tolist()])
    counts = np.array([len(h.ids) for h in hits], dtype=np.int64) * valid  # flat queries match nothing
    found = np.concatenate([np.empty(0, np.int64)] + [h.ids for h, ok in zip(hits, valid, strict=True) if ok])
    return np.repeat(np.arange(len(queries)), counts), found


def luminance_difference(thumbnail_a: bytes, thumbnail_b: bytes) -> float:
    """The mean absolute difference of two luminance thumbnails (0-255), the least over the eight quarter
    turns and mirrors of ``b``; infinite if either is missing. Unlike correlation, it sees brightness:
    a greyscale copy has its original's own luminance, a recoloured design's grey is lighter or darker."""
    side = THUMBNAIL_SIDE * THUMBNAIL_SIDE
    if len(thumbnail_a) != side or len(thumbnail_b) != side:
        return float("inf")
    return float(luminance_differences(thumbnail_matrix([thumbnail_a]), thumbnail_matrix([thumbnail_b]))[0])


def luminance_differences(thumbnails_a: np.ndarray, thumbnails_b: np.ndarray) -> np.ndarray:
    """:func:`luminance_difference` of each row of one thumbnail matrix with the same row of another."""
    a = thumbnails_a.reshape(-1, THUMBNAIL_SIDE, THUMBNAIL_SIDE).astype(np.float32)
    b = thumbnails_b.reshape(-1, THUMBNAIL_SIDE, THUMBNAIL_SIDE).astype(np.float32)
    return np.min([np.abs(a - view).mean(axis=(1, 2)) for view in _aligned_views(b)], axis=0)


def orientation_pixels(pixels: np.ndarray) -> np.ndarray:
    """A preprocessed square image rotated by 90 and 270 degrees: [2, s, s, 3].

    The model's centre crop commutes with quarter turns, so turning the preprocessed square equals
    embedding a turned file, without decoding the file again.
    """
    return np.ascontiguousarray(np.stack([np.rot90(pixels, turn) for turn in (1, 3)]))


def recheck_orientations(
    pairs: Iterable[Pair],
    threshold: float,
    variants: Mapping[int, np.ndarray],
    targets: Mapping[int, np.ndarray],
) -> list[Pair]:
    """The pairs that reach ``threshold`` once ``a``'s orientations are compared with ``b``'s vector.

    ``variants[a]`` holds a's L2-normalised orientation embeddings [m, dim], ``targets[b]`` b's stored
    vector; a pair missing either (an unreadable file) is dropped. Each kept pair carries the best
    similarity seen, so the report shows what justified it.
    """
    kept = []
    for p in pairs:
        if p.a not in variants or p.b not in targets:
            continue
        best = max(p.similarity, float(np.max(variants[p.a] @ targets[p.b])))
        if best >= threshold:
            kept.append(Pair(p.a, p.b, best))
    return kept


class Found(NamedTuple):
    """One search's harvest: pairs at their row's floor, and those below it worth a second look."""

    rows: np.ndarray  # query rows (of the chunk, offset by its start)
    labels: np.ndarray  # neighbour ids
    sims: np.ndarray
    densities: np.ndarray  # one per row of the chunk, from its first search (empty after)
    look_rows: np.ndarray
    look_labels: np.ndarray
    look_sims: np.ndarray


def _neighbours(
    index: faiss.Index, vectors: np.ndarray, ids: np.ndarray, threshold: float, k: int, max_k: int,
    chunk_size: int, nprobe: int, self_search: bool = True, by_density: bool = False,
    look: ShapeTest | None = None,
) -> Iterator[Found]:
    """Search ``vectors`` (stored as ``ids``) chunk by chunk; yield what each search found.

    Every neighbour at or above the threshold is yielded; with ``by_density`` the threshold is a score
    and each row's cosine floor is the lowest that can reach it given the row's own density
    (:func:`cosine_floor`), so crowded rows collect few pairs. A row whose k-th neighbour is still
    above its floor may have more: it is searched again with twice the k (up to ``max_k``), so a burst
    of 100 near-identical shots is found whole while the common case pays for a small k only. With
    ``look``, the first search also yields its first ``LOOK_K`` neighbours from ``LOOK_FLOOR`` to the
    row's floor that ``look`` accepts: the second looks' candidates, from the same pass.
    """
    limit = max(1, min(max_k, index.ntotal))
    # anything but a FAISS index is the large layout's scan (OnDiskIndex.pair_search): IVF lists too
    is_ivf = not isinstance(index, faiss.Index) or faiss.try_extract_index_ivf(index) is not None
    params = faiss.SearchParametersIVF(nprobe=nprobe) if is_ivf else None
    nothing = np.empty(0, dtype=np.int64)
    for start in range(0, len(vectors), chunk_size):
        chunk = np.ascontiguousarray(vectors[start : start + chunk_size], dtype=np.float32)
        rows = np.arange(len(chunk))
        kk = min(max(k, DENSITY_DEPTH, LOOK_K if look else 0), limit)
        densities = floors = bursts = None
        while len(rows):
            sims, labels = index.search(chunk[rows], kk, params=params)
            looks = (nothing, nothing, np.empty(0, dtype=np.float32))
            if densities is None:
                densities = density(sims, labels, self_search)
                floors = cosine_floor(threshold, densities) if by_density else np.full(len(rows), threshold)
                # A burst (many near-identical shots) shares one density: searching deeper pays only
                # while the k-th neighbour could still pair with a neighbour as dense as the row.
                bursts = threshold + np.maximum(densities, DENSITY_FLOOR) - DENSITY_PRIOR if by_density \
                    else floors
                if look is not None:
                    looks = _look_candidates(sims[:, :LOOK_K], labels[:, :LOOK_K], floors, ids[start + rows],
                                             look)
            row_floor = floors[rows][:, None]
            # Not deeper when the k-th neighbour is the image itself again (``SAME_PICTURE``): a thousand
            # backups of one file would pair with each other a thousand deep; their digest groups them.
            saturated = (sims[:, -1] >= bursts[rows]) & (sims[:, -1] < SAME_PICTURE) & (kk < limit)
            done_rows, sims, labels = rows[~saturated], sims[~saturated], labels[~saturated]
            hit_row, hit_col = np.nonzero((sims >= row_floor[~saturated]) & (labels >= 0))
            yield Found(start + done_rows[hit_row], labels[hit_row, hit_col], sims[hit_row, hit_col],
                        densities, start + looks[0], looks[1], looks[2])
            densities = np.empty(0)
            rows, kk = rows[saturated], min(kk * 2, limit)


def _look_candidates(sims: np.ndarray, labels: np.ndarray, floors: np.ndarray, query_ids: np.ndarray,
                     look: ShapeTest) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, labels, sims) of neighbours between ``LOOK_FLOOR`` and their row's floor that ``look`` takes."""
    row, col = np.nonzero((sims >= LOOK_FLOOR) & (sims < floors[:, None]) & (labels >= 0))
    if not len(row):
        return row, labels[row, col], sims[row, col]
    labels, sims = labels[row, col], sims[row, col]
    keep = look(query_ids[row], labels, sims)
    return row[keep], labels[keep], sims[keep]


def cosine_floor(threshold: float, densities: np.ndarray) -> np.ndarray:
    """The lowest cosine at which a pair with an image of these densities can reach a score threshold
    (the other image taken at ``DENSITY_FLOOR``, the least dense any image counts as): never under the
    threshold itself."""
    by_density = threshold + (np.maximum(densities, DENSITY_FLOOR) + DENSITY_FLOOR) / 2 - DENSITY_PRIOR
    return np.minimum(by_density, near_identical_floor(threshold))


def near_identical_floor(threshold: float) -> float:
    """The cosine from which a pair reaches ``threshold`` whatever its density (``MAX_DISCOUNT``)."""
    return max(NEAR_IDENTICAL, threshold + MAX_DISCOUNT)


def density(sims: np.ndarray, labels: np.ndarray, self_search: bool = True) -> np.ndarray:
    """How alike each query is to its ordinary neighbours: the mean similarity at ``DENSITY_RANKS``.

    Abstract textures sit close to everything in ImageNet feature space, photos of distinct scenes far
    apart; one plain threshold cannot fit both. Subtracting each image's density from its pair scores
    (:func:`pair_score`) is the score normalisation of the copy-detection literature (the descriptor
    track of the 2021 Image Similarity Challenge). The ranks count ordinary neighbours only: not the
    query itself, nor its backups (``SAME_PICTURE``), nor, when they fill the whole window, its
    near-identical versions (``NEAR_IDENTICAL``), or a photo kept in twenty backups or forty resized
    versions would be dense with its own copies and none of its copies would reach the threshold. Too
    few ordinary neighbours in ``sims`` (``DENSITY_DEPTH`` deep): ``DENSITY_PRIOR``.
    """
    ordinary = (labels >= 0) & (sims < SAME_PICTURE)
    if self_search:
        ordinary[:, 0] = False  # itself, whatever an approximate index measured
    versions = ordinary & (sims >= NEAR_IDENTICAL)
    ordinary &= ~(versions & (versions.sum(axis=1, keepdims=True) > DENSITY_RANKS[1]))
    rank = np.cumsum(ordinary, axis=1) - 1
    window = ordinary & (rank >= DENSITY_RANKS[0]) & (rank < DENSITY_RANKS[1])
    counts = window.sum(axis=1)
    total = np.where(window, sims, 0.0).sum(axis=1)
    enough = counts >= DENSITY_RANKS[1] - DENSITY_RANKS[0]  # the whole window, or it is noise
    return np.where(enough, total / np.maximum(counts, 1), DENSITY_PRIOR).astype(np.float32)


def pair_score(similarity: float, density_a: float | None, density_b: float | None) -> float:
    """A pair's duplicate score: its cosine similarity less how much denser than usual the two images'
    neighbourhoods are (their mean density less ``DENSITY_PRIOR``, each at least ``DENSITY_FLOOR``), at
    most ``MAX_DISCOUNT`` for a near-identical pair (``NEAR_IDENTICAL``). An unknown density is the prior.

    So the score reads as a cosine similarity: for two images of typical density it is exactly their
    cosine, and in a collection too small to measure density (every density the prior) it is too.
    """
    unknown = np.nan
    return float(pair_scores(np.float64(similarity), np.float64(unknown if density_a is None else density_a),
                             np.float64(unknown if density_b is None else density_b)))


def pair_scores(similarities: np.ndarray, densities_a: np.ndarray, densities_b: np.ndarray) -> np.ndarray:
    """:func:`pair_score` over arrays of pairs; a NaN density is unknown."""
    a = np.where(np.isnan(densities_a), DENSITY_PRIOR, np.maximum(densities_a, DENSITY_FLOOR))
    b = np.where(np.isnan(densities_b), DENSITY_PRIOR, np.maximum(densities_b, DENSITY_FLOOR))
    discount = (a + b) / 2 - DENSITY_PRIOR
    capped = np.where(similarities >= NEAR_IDENTICAL, np.minimum(discount, MAX_DISCOUNT), discount)
    return similarities - capped


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
        alignments, valid = _alignments(thumbnail_matrix([_thumbnail(a[i]) for i in compared]),
                                        thumbnail_matrix([_thumbnail(b[i]) for i in compared]))
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
    brightening explains (:func:`_turn_beyond_brightening`); or ``PATCH_OPPOSED`` of them point apart
    in patches (one part of the design recoloured). A copy, brightened, recompressed or shrunk,
    keeps each part's colour; a negative beside a dark mode of one wallpaper, or a two-colour design with
    its colours swapped, keeps the same hues (:func:`other_colours` cannot tell) in other places; a design
    turned by 30 degrees of hue moves its colours about as far as brightening moves a copy's, but the
    other way or too far. Unknown tints or thumbnails, grey pictures and pairs that do not line up
    (crops, frames) say nothing. ``chunk`` pairs at a time (each holds eight views of its colour grid
    and of the colours rebuilt from it: 10 KB a pair)."""
    compared = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if _gridded(x) and _gridded(y)]
    found = np.zeros(len(a), dtype=bool)
    for start in range(0, len(compared), chunk):
        rows = compared[start : start + chunk]
        found[rows] = _tints_apart([a[i] for i in rows], [b[i] for i in rows])
    return found


def _tints_apart(a: Sequence[ImageRecord], b: Sequence[ImageRecord]) -> np.ndarray:
    """:func:`recoloured_tints` for pairs whose tints and thumbnails are all recorded; the colour grids
    are read only for pairs whose thumbnails line up (most pairs of different pictures do not)."""
    thumbnails_a = thumbnail_matrix([_thumbnail(x) for x in a])
    thumbnails_b = thumbnail_matrix([_thumbnail(y) for y in b])
    alignments, valid = _alignments(thumbnails_a, thumbnails_b)
    lined_up = valid & (alignments >= PIXEL_AGREEMENT)  # [8, pairs]
    rows = np.flatnonzero(lined_up.any(axis=0))
    found = np.zeros(len(a), dtype=bool)
    if not len(rows):
        return found

    def grids(records: Sequence[ImageRecord]) -> np.ndarray:
        stored = np.frombuffer(b"".join(_tint(records[i]) for i in rows), dtype=np.int8)
        return stored.reshape(-1, TINT_SIDE, TINT_SIDE, 2).astype(np.float32)

    def colours(thumbnails: np.ndarray, tints: np.ndarray) -> np.ndarray:
        return tint_colours(thumbnails[rows].reshape(-1, THUMBNAIL_SIDE, THUMBNAIL_SIDE).astype(np.float32),
                            tints)

    # Each pair in each alignment that lines it up [m]: most pairs line up in one of the eight only.
    views, pairs = np.nonzero(lined_up[:, rows])
    grids_a, grids_b = grids(a), grids(b)
    mine = grids_a[pairs] * 2  # on the R - G scale
    theirs = np.stack(_aligned_views(grids_b))[views, pairs] * 2
    colours_b = colours(thumbnails_b, grids_b)
    turned = _turn_beyond_brightening(colours(thumbnails_a, grids_a)[pairs],
                                      np.stack(_aligned_views(colours_b))[views, pairs])
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


def _turn_beyond_brightening(mine: np.ndarray, theirs: np.ndarray) -> np.ndarray:
    """Degrees by which the hue of each cell [..., 3] (RGB, :func:`~lookalike.embedder.traits.tint_colours`)
    turned beyond what brightening the darker of the two could do to it.

    Brightening by k (a brightness slider, exposure) clips the brightest channel first, which moves a hue
    away from its primary (red, green or blue: the brightest channel) towards the secondary beside it
    (the next brightest joins in), never past it, and by at most k (255 - n) / (255 - kn) times its
    distance from the primary (n the darkest channel, unclipped); a pure primary does not turn at all,
    nor does a cell where nothing clipped (``CLIPS``) or a channel went down (``DROP``). A hue that
    turned towards the primary, past the secondary, or further than ``BRIGHTENING`` allows, was
    recoloured: a design turned by 30 degrees of hue moves its colours about as far as brightening moves
    a copy's (bench/hue_turns.py), but not the same way."""
    luminance = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    theirs_lighter = (theirs @ luminance >= mine @ luminance)[..., None]
    dark, light = np.where(theirs_lighter, mine, theirs), np.where(theirs_lighter, theirs, mine)
    hue_dark, hue_light = hue_sixths(dark), hue_sixths(light)
    primary = 2 * np.round(hue_dark / 2) % 6

    def from_primary(hue: np.ndarray) -> np.ndarray:  # signed, in sixths of a turn, -3 to 3
        return (hue - primary + 3) % 6 - 3

    start, ended = from_primary(hue_dark), from_primary(hue_light)
    side = np.sign(start)
    reached = np.where(side != 0, ended * side, np.abs(ended))
    start = np.abs(start)
    darkest = across_channels(np.minimum, dark)
    unclipped = np.clip(darkest, 0, 254)
    headroom = 255 - BRIGHTENING * unclipped
    reach = np.where(headroom > 0, np.minimum(1, start * BRIGHTENING * (255 - unclipped)
                                              / np.maximum(headroom, 1e-3)), 1)
    clipped = across_channels(np.maximum, light) >= CLIPS
    reach = np.where(clipped & (across_channels(np.maximum, dark - light) <= DROP), reach, start)
    turned = 60 * np.maximum(np.maximum(start - reached, reached - reach), 0)
    # Brightened cell by cell, a cell of many small colours (pixel art) clips some of its pixels and not
    # others, and its average hue may go anywhere; but every channel rises, the darkest (which clips
    # last) the most, and none more than ``BRIGHTENING`` times.
    ratios = light / np.maximum(dark, 1)
    most = across_channels(np.maximum, ratios)
    darkest_ratio = np.where(dark[..., 0] == darkest, ratios[..., 0],
                             np.where(dark[..., 1] == darkest, ratios[..., 1], ratios[..., 2]))
    evenly = ((across_channels(np.minimum, ratios) >= EVEN) & (most <= BRIGHTENING)
              & (darkest_ratio * (1 + EVEN_TOL) >= most))
    return np.where(evenly, 0.0, turned)


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
    thumbnails = thumbnail_matrix([_thumbnail(r) for r in records]).astype(np.float32)
    tints = np.frombuffer(b"".join(_tint(r) for r in records), dtype=np.int8)
    cells = np.clip(tint_colours(thumbnails.reshape(-1, THUMBNAIL_SIDE, THUMBNAIL_SIDE),
                                 tints.reshape(-1, TINT_SIDE, TINT_SIDE, 2).astype(np.float32)), 0, 255)
    cells = cells.reshape(len(records), -1, 3)
    darkest = across_channels(np.minimum, cells)
    chroma = (across_channels(np.maximum, cells) - darkest)[..., None]
    turn = np.abs((hue_sixths(cells)[..., None] - np.arange(6) + 3) % 6 - 3)  # sixths from each hue
    clear = (chroma >= HUE_CHROMA) & (turn <= 0.5) & (darkest[..., None] < PALE)
    traced = (chroma >= TRACE_CHROMA) & (turn <= 1.0)
    content = np.array([r.content_share for r in records])
    return clear.mean(axis=1) / np.maximum(content, 0.25)[:, None], traced.any(axis=1)


def _gridded(record: ImageRecord | None) -> bool:
    """Whether a record's colour grid and luminance thumbnail are both stored (not grey, not unknown)."""
    return (len(_tint(record)) == TINT_SIDE * TINT_SIDE * 2
            and len(_thumbnail(record)) == THUMBNAIL_SIDE * THUMBNAIL_SIDE)


def _tint(record: ImageRecord | None) -> bytes:
    """A record's stored colour grid; empty when unknown or grey."""
    return b"" if record is None or record.traits is None else record.traits.tint


def _thumbnail(record: ImageRecord | None) -> bytes:
    """A record's stored luminance thumbnail; empty when unknown."""
    return b"" if record is None or record.traits is None else record.traits.thumbnail


def blank_beside_content(a: Sequence[ImageRecord | None], b: Sequence[ImageRecord | None]) -> np.ndarray:
    """For each pair, whether one picture is blank (its luminance thumbnail flat: spread under
    ``BLANK``) and the other clearly is not (over ``CONTENT``). The model cannot tell a blank page from
    a faint drawing whose lines vanish at its input size (dev set: a white page and a chessboard
    outline, cosine 1.0000); a blank page is a duplicate of blank pages only. Unrecorded thumbnails
    say nothing."""

    def spread(record: ImageRecord | None) -> float:
        thumbnail = _thumbnail(record)
        if len(thumbnail) != THUMBNAIL_SIDE * THUMBNAIL_SIDE:
            return float("nan")
        return float(np.frombuffer(thumbnail, dtype=np.uint8).std())

    spread_a = np.array([spread(r) for r in a], dtype=np.float64).reshape(-1)
    spread_b = np.array([spread(r) for r in b], dtype=np.float64).reshape(-1)
    return ((spread_a < BLANK) & (spread_b > CONTENT)) | ((spread_b < BLANK) & (spread_a > CONTENT))


def second_look(pairs: Iterable[Pair], threshold: float, records: Mapping[int, ImageRecord],
                theirs: Mapping[int, ImageRecord] | None = None,
                keypoints: KeypointFiles | None = None) -> list[Pair]:
    """Drop borderline pairs (score under threshold + ``COLOUR_MARGIN``) that are the same design in
    other colours (:func:`other_colours`, :func:`recoloured_tints`, :func:`missing_hues`), a picture and
    its negative (:func:`inversions`), a blank page beside a picture (:func:`blank_beside_content`) or a
    picture turned a quarter without its shape turning, or the other way round
    (:func:`turned_against_shape`);
    sure pairs pass untouched, so the cost stays with the few near the threshold. With ``keypoints``,
    those left are verified geometrically too (:func:`geometric_look`). Across two sets, ``b`` is looked
    up in ``theirs``."""
    theirs = records if theirs is None else theirs
    pairs = list(pairs)
    mine_of = [records.get(p.a) for p in pairs]
    theirs_of = [theirs.get(p.b) for p in pairs]
    unlike = (inversions(mine_of, theirs_of) | blank_beside_content(mine_of, theirs_of)
              | turned_against_shape(mine_of, theirs_of) | recoloured_tints(mine_of, theirs_of)
              | missing_hues(mine_of, theirs_of))
    kept = [p for p, a, b, pixels_differ in zip(pairs, mine_of, theirs_of, unlike, strict=True)
            if p.rank >= threshold + COLOUR_MARGIN
            or not (pixels_differ or a is not None and b is not None and other_colours(a.traits, b.traits))]
    return kept if keypoints is None else geometric_look(kept, threshold, records, keypoints, theirs)


def geometry_disagrees(match: Match) -> bool:
    """Both pictures have the keypoints to show it (``EXPECTED_KEYPOINTS``), and too few of them match
    under one transform for one to be a copy of the other (``CHANCE_FIT``; ``INLIER_SHARE``,
    ``MATCH_SHARE``: with only a handful of matches, most of which fit, or with a fit of under
    ``ALIGNED_INLIERS``, the layouts judge, and such a fit turned off the quarter turns, ``ASKEW``, is
    chance); or they do, and the details the transform lays over each
    other differ (``DETAILS_DIFFER``) or their light and dark parts are the other way round
    (``SHADES_OPPOSED``) or the strokes along their lines differ (``STROKES_DIFFER``: other text in one
    layout) or neither lies inside the other (``CONTAINED``: two shots of one scene); or one is too flat
    for keypoints, and their coarse layouts differ (``LAYOUT_AGREEMENT``)."""
    from lookalike.embedder.keypoints import ALIGNED_INLIERS  # a Match means OpenCV is loaded already

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
    return placed_apart or shaded_apart or stroked_apart or detailed_apart or overlapping


def geometric_look(pairs: Iterable[Pair], threshold: float, records: Mapping[int, ImageRecord],
                   keypoints: KeypointFiles, theirs: Mapping[int, ImageRecord] | None = None) -> list[Pair]:
    """Drop borderline pairs (score under threshold + ``GEOMETRY_BAND``) whose details are not where a
    copy's would be (:func:`geometry_disagrees`): two hand signs, two poses of one figure, two
    screenshots of one program, two pages of other text. Each file is read again, so an image's pairs
    only up to ``GEOMETRY_PAIRS``; the rest are dropped unverified unless their stored thumbnails agree
    (``SAME_THUMBNAIL``) and not both are framed. An unreadable file or a record missing leaves the pair
    as it was. Across two sets, ``b`` is looked up in ``theirs``."""
    theirs = records if theirs is None else theirs
    pairs = list(pairs)
    borderline = [(i, records[p.a], theirs[p.b]) for i, p in enumerate(pairs)
                  if p.rank < threshold + GEOMETRY_BAND and p.a in records and p.b in theirs]
    checked = best_per_image([(i, a.path, b.path, pairs[i].rank) for i, a, b in borderline], GEOMETRY_PAIRS)
    verified = [(i, a.path, b.path) for i, a, b in borderline if i in checked]
    beyond = [(i, a, b) for i, a, b in borderline if i not in checked]
    agreement = pixel_agreements([_thumbnail(a) for _, a, _ in beyond], [_thumbnail(b) for *_, b in beyond])
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
    vouched = [fit_vouches(found) for found in keypoints.match(pairs)]
    rest = [i for i, sure in enumerate(vouched) if not sure]
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
    fit that showed another picture: :func:`chance_beside_fit`); a file that does not read says
    nothing."""
    plain = keypoints.match(pairs)
    unmatched = [i for i, found in enumerate(plain) if found and geometry_disagrees(found)]
    mirrored = keypoints.match([pairs[i] for i in unmatched], mirrored=True)
    unlike = [False] * len(pairs)
    for i, found in zip(unmatched, mirrored, strict=True):
        unlike[i] = found is not None and (geometry_disagrees(found) or chance_beside_fit(plain[i], found))
    return unlike


def chance_beside_fit(drawn: Match, mirrored: Match) -> bool:
    """As drawn, enough keypoints fit to lay two detailed pictures (``EXPECTED_KEYPOINTS`` each) over
    each other, and what that showed made them two pictures; mirrored, too few fit to lay them over
    each other (under ``ALIGNED_INLIERS``), which chance does. Such a mirrored fit proves nothing, and
    the layouts it would leave the verdict to do not see a drawing moved onto a dark background (the
    colour variants probe: a light bulb, 53 keypoints fitting as drawn, its shades turned over, 6 of 20
    mirrored) nor a pictogram with another figure in it (no dogs beside no parking: 21 and 10). A
    mirrored copy fits its original far better mirrored; flat pictures (fewer keypoints), whose details
    a small copy blurs, are still left to their layouts."""
    return (min(drawn.keypoints_a, drawn.keypoints_b) >= EXPECTED_KEYPOINTS and drawn.contained is not None
            and mirrored.contained is None)


@dataclass(frozen=True)
class PairArrays:
    """Many pairs as three aligned arrays: a million images' candidates without a Python object each."""

    a: np.ndarray  # int64 ids
    b: np.ndarray  # int64 ids
    sims: np.ndarray  # float32 cosine similarities

    def __len__(self) -> int:
        return len(self.a)

    @classmethod
    def concat(cls, parts: Iterable[PairArrays]) -> PairArrays:
        parts = list(parts)
        if not parts:
            return cls(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32))
        return cls(*(np.concatenate(column) for column in zip(*((p.a, p.b, p.sims) for p in parts),
                                                                 strict=True)))

    @classmethod
    def of(cls, pairs: Iterable[Pair]) -> PairArrays:
        pairs = list(pairs)
        return cls(np.array([p.a for p in pairs], dtype=np.int64),
                   np.array([p.b for p in pairs], dtype=np.int64),
                   np.array([p.similarity for p in pairs], dtype=np.float32))

    def take(self, which: np.ndarray) -> PairArrays:
        return PairArrays(self.a[which], self.b[which], self.sims[which])

    def unordered(self) -> PairArrays:
        """Pairs within one set: ``a < b``, each once with its higher similarity (approximate indexes
        can measure the two directions differently)."""
        keep = self.a != self.b
        lo, hi, s = np.minimum(self.a, self.b)[keep], np.maximum(self.a, self.b)[keep], self.sims[keep]
        order = np.lexsort((-s, hi, lo))
        lo, hi, s = lo[order], hi[order], s[order]
        first = np.ones(len(lo), dtype=bool)
        first[1:] = (lo[1:] != lo[:-1]) | (hi[1:] != hi[:-1])
        return PairArrays(lo[first], hi[first], s[first])

    def pairs(self, scores: np.ndarray | None = None) -> list[Pair]:
        if scores is None:
            return [Pair(int(x), int(y), float(s)) for x, y, s in zip(self.a, self.b, self.sims, strict=True)]
        return [Pair(int(x), int(y), float(s), float(c))
                for x, y, s, c in zip(self.a, self.b, self.sims, scores, strict=True)]


def similar_pair_arrays(
    index: faiss.Index,
    vectors: np.ndarray,
    ids: np.ndarray,
    threshold: float,
    k: int = 32,
    *,
    max_k: int = 1024,
    chunk_size: int = 4096,
    nprobe: int = PAIR_NPROBE,
    densities: dict[int, float] | None = None,
    by_density: bool = False,
    look: ShapeTest | None = None,
    self_search: bool = True,
) -> tuple[PairArrays, PairArrays]:
    """(pairs at or above a plain cosine ``threshold`` (a score with ``by_density``), pairs below it that
    ``look`` accepts for a second look (see :func:`_neighbours`)): ``vectors``, stored as ``ids``,
    searched against ``index``.

    ``vectors`` may be float16 or a memmap: only one chunk at a time is converted to float32. ``nprobe``
    is the lists an inverted file visits per query (ignored by exact indexes). ``densities``, when given,
    receives each query's :func:`density`. Within one set (``self_search``: ``index`` holds ``vectors``
    under ``ids``) each unordered pair comes once, ``a < b``, with the higher of its two measured
    similarities (approximate indexes can differ). Across two sets (``self_search=False``) ``a`` is the
    query's id and ``b`` the index's, and an equal id on both sides is not a self-match.
    """
    ids = np.asarray(ids, dtype=np.int64)
    found, candidates = [], []
    start = 0
    for hits in _neighbours(index, vectors, ids, threshold, k, max_k, chunk_size, nprobe,
                            self_search=self_search, by_density=by_density, look=look):
        found.append(PairArrays(ids[hits.rows], hits.labels, hits.sims))
        candidates.append(PairArrays(ids[hits.look_rows], hits.look_labels, hits.look_sims))
        start = _take_densities(densities, ids, start, hits.densities)
    found_all, candidates_all = PairArrays.concat(found), PairArrays.concat(candidates)
    if self_search:
        return found_all.unordered(), candidates_all.unordered()
    return found_all, candidates_all


def split_at_threshold(
    pairs: PairArrays, density_by_id: np.ndarray, threshold: float, look: ShapeTest, across: bool = False,
) -> tuple[list[Pair], PairArrays, PairArrays]:
    """Score found pairs (:func:`pair_scores`, densities from a table indexed by id, NaN unknown) into
    (the scored pairs at the threshold, the rest that ``look`` accepts for a second look, the rest whose
    cosine alone reaches the threshold: held under it by their density, for the keypoint look), in numpy:
    a million images have tens of millions of neighbours under the threshold. ``across``: ``b`` is in
    another set, scored with its query's density."""
    mine = by_id(density_by_id, pairs.a, np.nan)
    scores = pair_scores(pairs.sims, mine, mine if across else by_id(density_by_id, pairs.b, np.nan))
    sure = scores >= threshold
    short = pairs.take(~sure)
    return (pairs.take(sure).pairs(scores[sure]), short.take(look(short.a, short.b, short.sims)),
            short.take(short.sims >= threshold))


def by_id(table: np.ndarray, ids: np.ndarray, missing: float) -> np.ndarray:
    """Rows of a table indexed by image id (:meth:`Store.shapes`, densities) for ``ids``; ``missing``
    for an id beyond it (an image added since the table was read)."""
    inside = (ids >= 0) & (ids < len(table))
    rows = table[np.where(inside, ids, 0)]
    return np.where(inside.reshape(inside.shape + (1,) * (rows.ndim - 1)), rows, missing)


def similar_pairs(index: faiss.Index, vectors: np.ndarray, ids: np.ndarray, threshold: float, k: int = 32,
                  **options) -> list[Pair]:
    """The pairs :func:`similar_pair_arrays` finds at the threshold, as :class:`Pair` objects: for callers
    with few pairs (tests, benchmarks); a collection keeps them in arrays."""
    return similar_pair_arrays(index, vectors, ids, threshold, k, **options)[0].pairs()


def _take_densities(densities: dict[int, float] | None, ids: np.ndarray, start: int,
                    found: np.ndarray) -> int:
    """Record a chunk's densities (``found``, for ``ids[start:]``); the start of the next chunk's."""
    if densities is not None and len(found):
        densities.update(zip(ids[start : start + len(found)].tolist(), found.tolist(), strict=True))
    return start + len(found)


def exact_groups(rows: Iterable[tuple[int, str | None]]) -> list[list[int]]:
    """Ids sharing a content digest, in groups of two or more (rows without a digest are skipped)."""
    by_digest: dict[str, list[int]] = defaultdict(list)
    for image_id, digest in rows:
        if digest:
            by_digest[digest].append(image_id)
    return sorted(sorted(group) for group in by_digest.values() if len(group) > 1)


def _member(record: ImageRecord, similarity: float, exact: bool, same_file: bool = False) -> Member:
    return Member(record.id, record.path, record.width, record.height, record.size, record.mtime,
                  similarity, exact, same_file)


def _cluster(keeper: ImageRecord, copies: Iterable[tuple[ImageRecord, float]]) -> Cluster:
    members = []
    for record, similarity in copies:
        exact = bool(keeper.digest) and record.digest == keeper.digest
        members.append(_member(record, 1.0 if exact else similarity, exact, record.same_file_as(keeper)))
    members.sort(key=lambda m: (-m.similarity, m.path, m.id))
    return Cluster(_member(keeper, 1.0, False), tuple(members))


Verify = Callable[[int, int], "Pair | None"]


def better_elsewhere(neighbours: Mapping[int, Pair], keeper_pair: Pair, *taken: set[int]) -> bool:
    """Whether ``BETTER_ELSEWHERE`` images in none of the ``taken`` sets (this cluster's members, those
    placed in earlier clusters) match a candidate copy better than the keeper does (``keeper_pair``): it
    is then another picture's copy, left free for that picture's cluster. One better match is not enough:
    two quarter turns of two flags match each other better than their own keepers, and would leave both
    pictures for a cluster of the two. Equal scores go by similarity: the keypoint look scores every pair
    it vouches for at the threshold, and a lit bulb's bordered copy vouched for beside the brighter-lit
    bulb (dev, at 0.66) is nearer its own picture's copies."""
    better = sum((pair.rank, pair.similarity) > (keeper_pair.rank, keeper_pair.similarity)
                 for other, pair in neighbours.items() if not any(other in images for images in taken))
    return better >= BETTER_ELSEWHERE


def colours_agreeing(keeper: ImageRecord, candidates: Mapping[int, Pair],
                     adjacent: Mapping[int, Mapping[int, Pair]], exact: set[int],
                     by_id: Mapping[int, ImageRecord]) -> set[int]:
    """The candidate copies of ``keeper`` (each with its pair to it) whose colours do not turn them
    away (:func:`colour_conflict`). A greyscale copy's rivals are the images the cluster does not take,
    the candidates it turns away included (another picture's copies, drawn in around the centre with
    it), so a round that turns one away looks again at the rest (``TURNING_AWAY_ROUNDS``); ``exact``
    are the keeper's byte-identical copies, in the cluster whatever their colours."""
    accepted = set(candidates)
    def outside(image_id: int, taken: set[int]) -> Iterator[tuple[ImageRecord, float]]:
        """An image's pairs with pictures the cluster does not take, as (picture, score): read only for
        greyscale copies, so lazily."""
        return ((by_id[r], pair.rank) for r, pair in adjacent.get(image_id, {}).items() if r not in taken)

    for _ in range(TURNING_AWAY_ROUNDS):
        taken = accepted | exact | {keeper.id}
        keeper_rivals = list(outside(keeper.id, taken)) if keeper.traits and keeper.traits.greyscale else []
        kept = {i for i in accepted if not colour_conflict(
            keeper, by_id[i], candidates[i].rank, outside(i, taken), (by_id[k] for k in accepted if k != i),
            keeper_rivals)}
        if kept == accepted:
            break
        accepted = kept
    return accepted


def _copies_of(keeper: ImageRecord, members: set[int], adjacent: Mapping[int, Mapping[int, Pair]],
               twins: Mapping[int, list[int]], by_id: Mapping[int, ImageRecord], placed: set[int],
               verify: Verify | None) -> dict[int, float]:
    """The ``members`` that are copies of ``keeper`` itself, with their similarity to it: its
    byte-identical files, and the members it pairs with (or that ``verify`` pairs with it) that match
    no other pictures better (:func:`better_elsewhere`) and whose colours agree
    (:func:`colours_agreeing`); a copy's byte-identical twins too."""
    copies: dict[int, float] = {}
    verified: dict[int, Pair] = {}
    for image_id in sorted(members - {keeper.id}):
        if keeper.digest and by_id[image_id].digest == keeper.digest:
            copies[image_id] = 1.0
            continue
        pair = adjacent.get(keeper.id, {}).get(image_id)
        if pair is None and verify is not None:
            pair = verify(keeper.id, image_id)
        if pair is not None:
            verified[image_id] = pair
    candidates = {i: pair for i, pair in verified.items()
                  if not better_elsewhere(adjacent.get(i, {}), pair, members, placed)}
    accepted = colours_agreeing(keeper, candidates, adjacent, set(copies), by_id)
    copies.update((i, candidates[i].similarity) for i in accepted)
    for image_id in sorted(members - {keeper.id} - set(copies)):
        # A verified copy's byte-identical twins look exactly the same: copies too.
        twin = next((t for t in twins.get(image_id, ()) if t in copies), None)
        if twin is not None:
            copies[image_id] = copies[twin]
    return copies


def build_clusters(
    records: Iterable[ImageRecord] | Mapping[int, ImageRecord],
    pairs: Iterable[Pair] = (),
    policy: KeeperPolicy = DEFAULT_POLICY,
    verify: Verify | None = None,
) -> list[Cluster]:
    """Centre-first clusters (see the module docstring) from exact digests and accepted pairs.

    Membership is decided around the most central image (the most accepted pairs, then the strongest);
    the keeper is then chosen among the members by ``policy``, and every copy must be a duplicate of
    that keeper itself: an accepted pair, or ``verify(keeper, copy)`` (scored from the stored vectors)
    when the search did not pair them, and not match other images better (:func:`better_elsewhere`)
    nor, greyscale, match better a picture of another colouring that the cluster does not take
    (:func:`colours_agreeing`). When the policy's keeper takes none of them (a larger picture in another
    colour beside many copies of one), the members the centre itself takes are kept by the best of
    them instead. Members that fail stay free for other clusters. ``records`` must include
    every id named in ``pairs``; with no pairs (no model) this still reports byte-identical files.
    Clusters come sorted by keeper path, copies by similarity to the keeper.
    """
    by_id = dict(records) if isinstance(records, Mapping) else {r.id: r for r in records}
    adjacent: dict[int, dict[int, Pair]] = defaultdict(dict)
    for p in pairs:
        if p.a in by_id and p.b in by_id and (p.b not in adjacent[p.a] or p.rank > adjacent[p.a][p.b].rank):
            adjacent[p.a][p.b] = adjacent[p.b][p.a] = p
    twins: dict[int, list[int]] = {}
    for group in exact_groups((r.id, r.digest) for r in by_id.values()):
        for image_id in group:
            twins[image_id] = group

    def centrality(image_id: int) -> tuple:
        links = adjacent.get(image_id, {})
        return (-len(links) - len(twins.get(image_id, ())), -sum(p.rank for p in links.values()),
                policy.key(by_id[image_id]))

    def around(image_id: int) -> set[int]:
        """An image, its accepted neighbours, and their byte-identical twins."""
        found = {image_id, *twins.get(image_id, ())}
        for neighbour in adjacent.get(image_id, {}):
            found.update(twins.get(neighbour, [neighbour]))
        return found

    placed: set[int] = set()
    clusters = []
    for centre in sorted(set(adjacent) | set(twins), key=centrality):
        if centre in placed:
            continue
        members = around(centre) - placed
        if len(members) < 2:
            continue
        keeper = policy.choose(by_id[i] for i in sorted(members))
        for _ in range(KEEPER_ROUNDS):
            # A better file among the keeper's own neighbours (the original, next to a centre that was
            # its mirrored copy) becomes the keeper, and brings its neighbours: otherwise it would
            # start a second cluster of the same picture.
            better = policy.choose(by_id[i] for i in sorted(members | (around(keeper.id) - placed)))
            if better.id in members:
                break
            members |= around(better.id) - placed
            keeper = policy.choose(by_id[i] for i in sorted(members))
        # The keeper's own neighbours that are also another member's join the candidates (checked
        # against the keeper like every member): a picture whose copies sit around the centre and
        # around the keeper stays one cluster, while a pair with the keeper alone (a framed picture of
        # another original) is not enough.
        members |= {twin for n in adjacent.get(keeper.id, {})
                    if any(m in members for m in adjacent[n] if m != keeper.id)
                    for twin in twins.get(n, [n])} - placed
        copies = _copies_of(keeper, members, adjacent, twins, by_id, placed, verify)
        if not copies and keeper.id != centre:
            # The policy's keeper took none of them (a larger picture in another colour, next to many
            # copies of one): the members the centre itself keeps are one picture, kept by the best.
            kept = {centre, *_copies_of(by_id[centre], members - {keeper.id}, adjacent, twins, by_id, placed,
                                        verify)}
            keeper = policy.choose(by_id[i] for i in sorted(kept))
            copies = _copies_of(keeper, kept, adjacent, twins, by_id, placed, verify) if len(kept) > 1 else {}
        if not copies:
            continue
        placed.add(keeper.id)
        placed.update(copies)
        clusters.append(_cluster(keeper, ((by_id[i], s) for i, s in copies.items())))
    return sorted(clusters, key=lambda c: (c.keeper.path, c.keeper.id))


def build_matches(
    queries: Iterable[ImageRecord],
    archive: Iterable[ImageRecord],
    pairs: Iterable[Pair] = (),
) -> list[Cluster]:
    """Which query images (set A) are already in the archive (set B)? One cluster per archive image.

    The archive image is always the keeper, whatever the policy: the question is "can I drop my new
    copy?", not "which file is best". Each query image joins its most similar archive image; a
    byte-identical archive file (same digest) beats any near match.
    """
    queries_by_id = {r.id: r for r in queries}
    archive_by_id = {r.id: r for r in archive}
    archive_by_digest: dict[str, int] = {}
    for r in sorted(archive_by_id.values(), key=DEFAULT_POLICY.key):  # the best of identical files
        if r.digest:
            archive_by_digest.setdefault(r.digest, r.id)
    best: dict[int, tuple[float, int]] = {}
    for p in pairs:
        if p.rank > best.get(p.a, (-9.0, 0, 0.0))[0]:
            best[p.a] = (p.rank, p.b, p.similarity)
    for query in queries_by_id.values():
        if query.digest in archive_by_digest:
            best[query.id] = (9.0, archive_by_digest[query.digest], 1.0)
    copies: dict[int, list[tuple[ImageRecord, float]]] = defaultdict(list)
    for query_id, (_, archive_id, similarity) in best.items():
        copies[archive_id].append((queries_by_id[query_id], similarity))
    clusters = [_cluster(archive_by_id[a], found) for a, found in copies.items()]
    return sorted(clusters, key=lambda c: (c.keeper.path, c.keeper.id))

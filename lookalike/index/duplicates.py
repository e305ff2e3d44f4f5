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

The pair search, which pairs get which second look, and the clustering live here; the looks themselves
beside it, each on its own: ``looks.py`` (from stored traits: other colours, negatives, blank pages),
``geometry.py`` (keypoints matched from the files), ``thumbnails.py`` (pixel comparisons and the pixel
search), over the data of ``records.py``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import faiss
import numpy as np
from numpy.typing import ArrayLike

from lookalike.errors import InvalidOption
from lookalike.index.geometry import geometric_look
from lookalike.index.looks import (
    blank_beside_content,
    colour_conflict,
    inversions,
    missing_hues,
    other_colours,
    recoloured_tints,
    turned_against_shape,
)
from lookalike.index.records import FRAMED, UNFRAMED, Cluster, ImageRecord, Member, Pair

if TYPE_CHECKING:  # OpenCV is imported only when a geometric look runs (it takes 0.1 s to import)
    from lookalike.embedder.keypoints import KeypointFiles


CONTENT_SHARE = 0.8
"""``content``: every member whose pixels, frame and all, reach this share of the largest picture in the
cluster (borders and caption bands left out: ``content_pixels``) is a candidate keeper; the next criteria
choose among them. Copies scaled to half size or less drop out, and a bordered or captioned copy wins
nothing by its added pixels. A member's own pixels, not its content box, are what must reach it: the box
is a lower bound that peels a picture's own flat margins as if they were a frame (a nebula on black, a
drawing on white), and peels them in one copy and not in another (brightening or JPEG lifts the black
above the frame's tolerance; a crop cuts the subject on one side), so that a crop, a brightened or a
captioned copy, or the one whose margins stayed, looked larger than the original. Comparing box with
box kept a copy over its original in 23 of the dev half's 173 clusters and 19 of the unseen set's 221
(bench/keepers.py)."""

FAINT_COLOUR = 0.01
"""``colour`` prefers a colour member to a greyscale one only when its colour is more than JPEG's: a grey
drawing re-saved at a lower quality gains chroma noise that the greyscale test (on the 99th percentile of
chroma) counts as colour, at a mean saturation of 0.007 at most (dev set); such a copy is not the colour
original of a grey one. Some colour pictures are fainter still (a game's screenshot at 0.005, unseen set):
under this the criterion says nothing, and quality, size and age decide, as between two colour copies."""

# Each criterion maps (record, largest content in its cluster) to a sort key: smaller is a better keeper.
_CRITERIA: dict[str, Callable[[ImageRecord, int], float]] = {
    "content": lambda r, largest: 0.0 if r.pixels >= CONTENT_SHARE * largest
    else 1 - r.pixels / max(largest, 1),
    "colour": lambda r, _: 1.0 if r.traits and (r.traits.greyscale or r.traits.colourfulness < FAINT_COLOUR)
    else 0.0,
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


LOOK_FLOOR = 0.40
"""Neighbours from this cosine up, among an image's first ``LOOK_K``, whose shapes say "a quarter turn
apart" or "one many times the other's size" get a second look (:func:`worth_a_look`): a rotated photo's
plain similarity to its original can be as low as 0.44, a thumbnail's 0.43 (dev set)."""
LOOK_K = 32
"""How deep in an image's neighbours the second looks reach. An original is often not among its
quarter-size copy's first 8 (its other copies come first; dev set: rank up to 31)."""
TURN_TOLERANCE = 0.25  # how far width/height ratios may be from swapped and still count as a turn

SCALE_RATIO = 6.0
"""Close neighbours one of which has this many times the other's pixels (a quarter-size copy has 16)
get the scale second look: the larger picture shrunk to the smaller one's size and embedded again, so
both are compared at the same, small resolution. A tiny copy's plain similarity to its original is
often 0.6; shrunk alike, 0.84 or more (dev set, 10th percentile)."""

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
                  similarity, exact, same_file, record.digest, record.device, record.inode)


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

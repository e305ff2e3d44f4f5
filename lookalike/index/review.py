"""A cluster as a person reviews it: a keeper they chose, the copies they picked, checked again here.

``lookalike duplicates`` picks each cluster's keeper by policy; a person looking at the cluster may
prefer another member (the one with the right name, the one in the right folder). Every copy's
similarity must then be to the *new* keeper, or a copy would be moved on the strength of a file that
is itself about to go. :func:`recentre` recomputes them from the stored vectors (cosine, plus the
same second looks and colour checks as clustering), and :func:`move_copies` moves only the picked copies
that still reach the threshold against the keeper that stays, through
:meth:`Collection.move_duplicates <lookalike.index.collection.Collection.move_duplicates>`: the same
manifest, checks and ``undo`` as ``lookalike duplicates --move-to``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lookalike.arguments import check_score
from lookalike.errors import ImageNotFound, InvalidOption
from lookalike.index.duplicates import (
    DEFAULT_THRESHOLD,
    LOOK_FLOOR,
    LOOK_K,
    PairArrays,
    _cluster,
    pair_score,
    second_look,
)
from lookalike.index.geometry import files_vouch
from lookalike.index.looks import colour_conflict
from lookalike.index.quarantine import MoveResult, Problem
from lookalike.index.records import Cluster, ImageRecord, Pair
from lookalike.index.vectors import normalized

if TYPE_CHECKING:
    from lookalike.index.collection import Collection

MAX_MEMBERS = 1000
"""Most images one review names: a cluster is looked at by a person, not a whole collection."""


@dataclass(frozen=True)
class Review:
    """A cluster around a chosen keeper: each copy's similarity to it, and which ones fall short.

    ``below`` lists the copies (not byte-identical ones) whose similarity to this keeper is under
    ``threshold``; ``unlike`` those that reach it but whose colours, pixels or details say they are not
    its copies (another colouring, a negative, a blank page, colours a greyscale keeper lacks, details
    that do not fit one transform: the checks clustering makes). Neither is ever moved on this keeper's
    account.
    """

    cluster: Cluster
    threshold: float
    below: tuple[int, ...]
    unlike: tuple[int, ...] = ()


def _check(keeper_id: int, member_ids: Iterable[int], threshold: float | None) -> tuple[list[int], float]:
    threshold = DEFAULT_THRESHOLD if threshold is None else threshold
    threshold = check_score("threshold", threshold, "threshold", 0, 1, above_low=True)
    ids = list(dict.fromkeys(int(i) for i in member_ids))
    if keeper_id in ids:
        raise InvalidOption("copies", f"image {keeper_id} is the keeper: a keeper is never a copy")
    if len(ids) > MAX_MEMBERS:
        raise InvalidOption("copies", f"at most {MAX_MEMBERS} images at once, not {len(ids)}")
    return ids, threshold


def recentre(
    collection: Collection, keeper_id: int, member_ids: Iterable[int], threshold: float | None = None
) -> Review:
    """The cluster of ``keeper_id`` and ``member_ids`` with each member's similarity to that keeper.

    Similarities come from the stored vectors (cosine), with the second looks clustering gives
    pairs from ``LOOK_FLOOR`` up, and scores with the keypoint look where only the density holds a
    member under (:func:`files_vouch`); byte-identical files are 1.0. Raises ImageNotFound for
    an id not in the index, InvalidOption when the keeper is among the members or the threshold is
    outside (0, 1].
    """
    ids, threshold = _check(keeper_id, member_ids, threshold)
    with collection._lock:
        rows = {row.id: row for row in collection.store.get_many([keeper_id, *ids], vector=True)}
    for image_id in (keeper_id, *ids):
        if image_id not in rows:
            raise ImageNotFound(image_id, collection.directory)
    records = {i: ImageRecord.of(r) for i, r in rows.items()}
    unit = {i: normalized(r.vector)[0] for i, r in rows.items()}
    target = unit[keeper_id]
    similarity = {i: float(np.clip(unit[i] @ target, -1.0, 1.0)) for i in ids}
    densities = collection.densities([keeper_id, *ids])  # scored as clustering scores: density-adaptive

    def score(image_id: int) -> float:
        return pair_score(similarity[image_id], densities.get(keeper_id), densities.get(image_id))

    short = [Pair(i, keeper_id, s) for i, s in similarity.items() if score(i) < threshold]
    looks = [p for p in short if p.similarity >= LOOK_FLOOR]
    good = lambda p: pair_score(p.similarity, densities.get(keeper_id), densities.get(p.a)) >= threshold  # noqa: E731
    for p in collection._second_looks(PairArrays.of(looks), collection.store, good):
        similarity[p.a] = max(similarity[p.a], p.similarity)
    keypoints = collection._keypoint_files()
    held = [i for i in ids if score(i) < threshold <= similarity[i]]  # only the density holds them under
    vouched = {i for i, sure in zip(held, files_vouch([(records[i].path, records[keeper_id].path)
                                                       for i in held], keypoints), strict=True) if sure}
    scores = {i: threshold if i in vouched else score(i) for i in ids}

    cluster = _cluster(records[keeper_id], ((records[i], s) for i, s in similarity.items()))
    below = tuple(c.id for c in cluster.copies if not c.exact and scores[c.id] < threshold)
    reaching = [Pair(keeper_id, c.id, c.similarity, scores[c.id]) for c in cluster.copies
                if not c.exact and c.id not in below]
    passed = {p.b for p in second_look(reaching, threshold, records, keypoints=keypoints)}
    greys = [i for i in (keeper_id, *(p.b for p in reaching))
             if records[i].traits is not None and records[i].traits.greyscale]
    rivals = _rivals(collection, greys, {keeper_id, *ids}, threshold, densities)
    kin = [records[p.b] for p in reaching if p.b in passed]
    unlike = tuple(p.b for p in reaching if p.b not in passed or colour_conflict(
        records[keeper_id], records[p.b], p.rank, rivals.get(p.b, ()), (r for r in kin if r.id != p.b),
        rivals.get(keeper_id, ())))
    return Review(cluster, threshold, below, unlike)


def _rivals(collection: Collection, grey_ids: list[int], members: set[int], threshold: float,
            densities: dict[int, float]) -> dict[int, list[tuple[ImageRecord, float]]]:
    """For each greyscale member (the keeper too), the pictures outside the review that it pairs with at
    the threshold (among its first ``LOOK_K`` neighbours), with their scores: what clustering weighs a
    greyscale copy against (:func:`colour_conflict`: one closer to another colouring is not this
    keeper's copy, nor one whose colour original is another colouring than a grey keeper's).
    ``densities`` holds the members'; the outsiders' are looked up here."""
    found = {i: collection.search_id(i, LOOK_K).neighbours for i in grey_ids}
    outside = {n.image.id for neighbours in found.values() for n in neighbours} - members
    if not outside:
        return {}
    densities = {**densities, **collection.densities(outside)}
    with collection._lock:
        records = {row.id: ImageRecord.of(row) for row in collection.store.get_many(sorted(outside))}
    scored = {i: [(n.image.id, pair_score(n.score, densities.get(i), densities.get(n.image.id)))
                  for n in neighbours if n.image.id in records] for i, neighbours in found.items()}
    return {i: [(records[other], score) for other, score in pairs if score >= threshold]
            for i, pairs in scored.items()}


def move_copies(
    collection: Collection,
    keeper_id: int,
    copy_ids: Iterable[int],
    quarantine_dir: str | Path,
    threshold: float | None = None,
    *,
    wait: float = 0.0,
) -> tuple[MoveResult, Review]:
    """Move the picked copies of ``keeper_id`` into ``quarantine_dir``, never the keeper itself.

    The cluster is built again from the ids (:func:`recentre`); a copy under the threshold against
    this keeper is reported and left alone, and the rest go through
    :meth:`Collection.move_duplicates`: re-checked right before moving (changed, replaced, the
    keeper's own file, keeper gone), manifest written ahead, nothing overwritten, the index kept in
    step. ``result.manifest`` is what :meth:`Collection.undo` takes.
    """
    review = recentre(collection, keeper_id, copy_ids, threshold)
    below, unlike = set(review.below), set(review.unlike)
    left: list[Problem] = []
    for copy in review.cluster.copies:
        if copy.id in below:
            left.append(Problem(Path(copy.path), f"similarity {copy.similarity:.3f} to the keeper is "
                                                 f"below {review.threshold}"))
        elif copy.id in unlike:
            left.append(Problem(Path(copy.path), "not a copy of the keeper: its colours or pixels differ, "
                                                 "or its details lie elsewhere (another colouring or its "
                                                 "greyscale copy, a negative or dark mode, a blank page)"))
        elif copy.same_file:
            left.append(Problem(Path(copy.path), "the keeper's own file under another name (a hard link); "
                                                 "left alone"))
    cluster = Cluster(review.cluster.keeper, tuple(
        c for c in review.cluster.copies if c.id not in below | unlike and not c.same_file))
    result = collection.move_duplicates([cluster], quarantine_dir, wait=wait)
    return MoveResult(result.manifest, result.moved, (*left, *result.problems)), review

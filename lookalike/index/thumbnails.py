"""Pixel comparisons of the small thumbnails stored at indexing: do two pictures line up, and which
larger pictures does a tiny one line up with.

Cheap enough to run on every candidate pair (no file is read), so the duplicate search asks them first:
a pair a second look raised must agree pixel by pixel (``PIXEL_AGREEMENT``), a tiny picture's larger
versions are found by their pixels (``pixel_neighbours``), a grey copy is matched to the colour picture
with its luminance (``luminance_difference``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from lookalike.embedder.traits import THUMBNAIL_SIDE, thumbnail_matrix, thumbnail_signals
from lookalike.index.vectors import TRAIN_PER_LIST, VectorIndex

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
        found, valid = view_correlations(thumbnails_a[rows_a[start : start + chunk]],
                                         thumbnails_b[rows_b[start : start + chunk]])
        lowest[start : start + chunk] = np.where(valid, found.min(axis=0), 0.0)
        highest[start : start + chunk] = np.where(valid, found.max(axis=0), -1.0)
    return lowest, highest


def view_correlations(thumbnails_a: np.ndarray, thumbnails_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Correlations [8, n] of aligned rows of two thumbnail matrices in each of ``b``'s eight turns and
    mirrors (:func:`aligned_views` order), and which pairs say anything (neither thumbnail flat)."""
    a, valid_a = thumbnail_signals(thumbnails_a)
    b, valid_b = thumbnail_signals(thumbnails_b)
    return np.array([np.einsum("nij,nij->n", a, view) for view in aligned_views(b)]), valid_a & valid_b


def aligned_views(grids: np.ndarray) -> list[np.ndarray]:
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


def luminance_differences(grids_a: np.ndarray, grids_b: np.ndarray) -> np.ndarray:
    """:func:`luminance_difference` of each row of one thumbnail matrix with the same row of another; also
    of square grids of any side ([n, side, side]: a thumbnail's cells, a colour grid greyed)."""
    a, b = _squares(grids_a), _squares(grids_b)
    return np.min([np.abs(a - view).mean(axis=(1, 2)) for view in aligned_views(b)], axis=0)


def _squares(grids: np.ndarray) -> np.ndarray:
    """Rows of a thumbnail matrix ([n, side * side]) as square float grids; square grids as they are."""
    grids = np.asarray(grids, dtype=np.float32)
    if grids.ndim == 2:
        side = math.isqrt(grids.shape[1])
        grids = grids.reshape(-1, side, side)
    return grids

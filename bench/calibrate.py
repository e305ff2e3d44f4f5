"""Calibrate the duplicate threshold on the near-duplicate set (bench/neardup.py), phash side by side.

Run by hand: ``python bench/calibrate.py`` (offline model efficientnet-lite2; under a minute on 2 cores).
Every image of the set (originals and their copies) goes into one collection; for each threshold the
clusters are built exactly as ``Collection.duplicates`` builds them (FAISS self-search, keeper-first
star clustering, default keeper policy), once from the plain similarities and once with the
orientation check (``recheck_orientations``: quarter-turned embeddings for neighbours from
``ORIENTATION_FLOOR`` up whose shapes are a quarter turn apart, ``turn_candidates``). Scores are
pairwise over all pairs of images: a pair is predicted a duplicate when both images land in one
cluster, and truly one when they come from the same original.

The perceptual hash baseline is imagehash's phash (what imagededup's PHash computes), a pair predicted
a duplicate when the Hamming distance is at most the threshold, as imagededup reports pairs (its
default max_distance_threshold is 10). Writes "## Duplicate threshold calibration" in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import imagehash
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from neardup import Item, make_set  # noqa: E402
from report import machine, today, write_section  # noqa: E402

import lookalike  # noqa: E402
from lookalike.index.collection import ORIENTATION_K, _records  # noqa: E402
from lookalike.index.duplicates import (  # noqa: E402
    DEFAULT_THRESHOLD,
    ORIENTATION_FLOOR,
    Cluster,
    build_clusters,
    recheck_orientations,
    similar_pairs,
    turn_candidates,
)

SECTION = "## Duplicate threshold calibration"
THRESHOLDS = [0.5, 0.55, 0.6, 0.62, 0.64, 0.66, 0.68, 0.7, 0.72, 0.74, 0.76, 0.8, 0.85, 0.9, 0.95]
HAMMING = [0, 2, 4, 6, 8, 10, 12, 14, 16, 20]


def scores(predicted: set[frozenset[str]], truth: set[frozenset[str]]) -> tuple[float, float, float]:
    hits = len(predicted & truth)
    precision = hits / len(predicted) if predicted else 1.0
    recall = hits / len(truth)
    return precision, recall, 2 * precision * recall / (precision + recall) if hits else 0.0


def co_members(clusters: list[Cluster]) -> set[frozenset[str]]:
    return {frozenset(p) for c in clusters for p in itertools.combinations([m.path for m in c.members], 2)}


def row(label: str, values: tuple[float, ...], bold: bool = False) -> str:
    cells = [label, *(f"{v:.4f}" for v in values)]
    return "| " + " | ".join(f"**{c}**" if bold else c for c in cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="efficientnet-lite2")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        items = make_set(Path(tmp) / "set")
        col = lookalike.open(Path(tmp) / "index", model=args.model)
        col.add([Path(tmp) / "set"])
        body = calibrate(col, items, args.model)
        col.close()
    print(body)
    if not args.no_write:
        write_section(SECTION, body)


def calibrate(col, items: list[Item], model: str) -> str:
    group = {str(item.path): item.group for item in items}
    truth = {frozenset(p) for p in itertools.combinations(group, 2) if group[p[0]] == group[p[1]]}
    (ids, vectors), = col.store.iter_vectors(len(items))
    index = col._current_vectors().index
    records = _records(col.store, ids.tolist())
    targets = dict(zip(ids.tolist(), vectors, strict=True))

    started = time.perf_counter()
    variants = col._orientation_vectors(ids.tolist())  # every image once; each threshold uses a subset
    per_image_s = (time.perf_counter() - started) / len(ids)
    floor = similar_pairs(index, vectors, ids, ORIENTATION_FLOOR, ORIENTATION_K, max_k=ORIENTATION_K)

    shapes = {i: (r.width, r.height) for i, r in records.items()}
    turnable = turn_candidates(floor, shapes, shapes)

    def clusters(threshold: float, check: bool) -> tuple[list[Cluster], int]:
        pairs = similar_pairs(index, vectors, ids, threshold)
        maybe = [p for p in turnable if p.similarity < threshold] if check else []
        pairs += recheck_orientations(maybe, threshold, variants, targets)
        return build_clusters(records, pairs), len({p.a for p in maybe})

    table = ["| threshold | plain: precision | recall | F1 | + orientation check: precision | recall | F1 "
             "| images re-embedded |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for t in THRESHOLDS:
        plain = scores(co_members(clusters(t, False)[0]), truth)
        found, embedded = clusters(t, True)
        checked = scores(co_members(found), truth)
        table.append(row(f"{t:.2f}", (*plain, *checked), bold=t == DEFAULT_THRESHOLD)[:-1]
                     + f"| {embedded}/{len(ids)} |")

    hashes = {path: imagehash.phash(Image.open(path)) for path in group}
    distance = {frozenset((a, b)): hashes[a] - hashes[b] for a, b in itertools.combinations(group, 2)}
    phash = ["| max Hamming distance | precision | recall | F1 |", "|---|---:|---:|---:|"]
    for d in HAMMING:
        predicted = {pair for pair, dist in distance.items() if dist <= d}
        phash.append(row(str(d), scores(predicted, truth), bold=d == 10))

    plain_found = co_members(clusters(DEFAULT_THRESHOLD, False)[0])
    product = col.duplicates()  # the library call itself, end to end: it must agree with the table
    checked_found = co_members(product)
    assert checked_found == co_members(clusters(DEFAULT_THRESHOLD, True)[0]), "bench and library disagree"
    originals = {item.group: str(item.path) for item in items if item.transform == "original"}
    recall: dict[str, list[tuple[bool, bool, bool]]] = defaultdict(list)
    for item in items:
        if item.transform != "original":
            pair = frozenset((str(item.path), originals[item.group]))
            recall[item.transform].append((pair in plain_found, pair in checked_found, distance[pair] <= 10))
    per_transform = ["| copy | plain | + orientation check | phash <= 10 |", "|---|---:|---:|---:|"]
    for name, found in recall.items():
        per_transform.append(f"| {name} | " + " | ".join(f"{sum(f[i] for f in found)}/{len(found)}"
                                                        for i in range(3)) + " |")
    false = sorted(
        f"{Path(a).name} ~ {Path(b).name}"
        for c in product for a, b in itertools.combinations([m.path for m in c.members], 2)
        if group[a] != group[b]
    )
    path_of = {i: r.path for i, r in records.items()}
    cross = np.array([[group[path_of[a]] != group[path_of[b]] for b in ids.tolist()] for a in ids.tolist()])
    closest_plain = float(np.max(np.where(cross, vectors @ vectors.T, -1.0)))
    closest_turned = max((float(np.max(variants[p.a] @ targets[p.b])) for p in turnable
                          if p.a in variants and group[path_of[p.a]] != group[path_of[p.b]]), default=-1.0)
    groups = len(originals)
    check_cost = f"{per_image_s * 1000:.0f} ms per image re-embedded (2 quarter turns, read from its file)"
    return "\n".join([
        f"Default threshold **{DEFAULT_THRESHOLD}** (`DEFAULT_THRESHOLD` in lookalike/index/duplicates.py), "
        f"with the orientation check for closest-neighbour pairs from {ORIENTATION_FLOOR} up "
        f"(`ORIENTATION_FLOOR`, {ORIENTATION_K} neighbours per image).",
        "",
        "Pairwise over all pairs of images; predicted duplicates = the same cluster:",
        "",
        *table,
        "",
        "Perceptual hash (imagehash phash, imagededup's PHash method; bold: imagededup's default 10), "
        "pairwise as it reports pairs:",
        "",
        *phash,
        "",
        f"Each copy in its original's cluster at the default threshold {DEFAULT_THRESHOLD} "
        "(phash: within distance 10 of its original):",
        "",
        *per_transform,
        "",
        f"Images of different originals put in one cluster at the default: {', '.join(false) or 'none'}. "
        f"Closest pair of images from different originals: cosine {closest_plain:.3f} as stored, "
        f"{closest_turned:.3f} after a quarter turn (orientation-check candidates only): the margin "
        f"below the default threshold.",
        "",
        f"`python bench/calibrate.py` on {today()}, {machine()}; model {model}; {groups} real photos "
        f"(data/ and scikit-image's sample photographs) with {len(items) // groups - 1} copies each "
        f"({', '.join(recall)}): {len(items)} images, {len(truth)} true pairs of "
        f"{len(items) * (len(items) - 1) // 2}. The orientation check costs {check_cost}; "
        f"the keeper is the default policy's (most pixels, then largest file, then oldest), so a bordered "
        f"copy, which has more pixels than its original, is often the keeper its group is compared with.",
    ])


if __name__ == "__main__":
    main()

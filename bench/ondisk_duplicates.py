"""Duplicate pair search over the on-disk IVF-PQ layout: PQ estimates against exact re-ranking.

Run by hand: ``python bench/ondisk_duplicates.py --n 50000``. Prints a markdown table and rewrites the
"### Duplicates over the on-disk layout" sub-section of docs/benchmarks.md (it ends the on-disk section).

bench/duplicates.py's planted data (background around random centres, 5% of originals with 1-3 copies
at cosine 0.92-0.99) is indexed twice: exactly (a flat index: the reference) and in the on-disk layout
(``OnDiskIndex.build``, its float16 vectors in RAM as ``fetch``). The self-search is what
``Collection.duplicates`` runs (``similar_pairs`` with density floors), scored with ``pair_score`` and
kept at the threshold; each variant's pairs are compared with the exact search's (same pair, both at
the threshold) and with the planted ones (every two images of a planted group).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from duplicates import pairwise, planted  # noqa: E402
from report import machine, today, write_section  # noqa: E402

from lookalike.index import ondisk  # noqa: E402
from lookalike.index.duplicates import (  # noqa: E402
    DEFAULT_THRESHOLD,
    PAIR_NPROBE,
    pair_score,
    similar_pairs,
)
from lookalike.index.vectors import VectorIndex  # noqa: E402

SECTION = "### Duplicates over the on-disk layout"
CHUNK = 50_000


def scored_pairs(scan, vectors: np.ndarray, threshold: float, nprobe: int) -> tuple[dict, float]:
    """({(a, b): similarity} at the threshold, seconds) for one self-search."""
    t = time.perf_counter()
    densities: dict[int, float] = {}
    found = similar_pairs(scan, vectors, np.arange(len(vectors)), threshold, nprobe=nprobe,
                          densities=densities, by_density=True)
    seconds = time.perf_counter() - t
    kept = {(p.a, p.b): p.similarity for p in found
            if pair_score(p.similarity, densities[p.a], densities[p.b]) >= threshold}
    return kept, seconds


def main() -> None:
    ints = lambda s: [int(v) for v in s.split(",")]  # noqa: E731
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=50_000)
    p.add_argument("--dim", type=int, default=1280)
    p.add_argument("--nprobe", type=ints, default=[PAIR_NPROBE])
    p.add_argument("--rerank", type=ints, default=[0, 2, ondisk.PAIR_RERANK, 10], help="0 = PQ only")
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = p.parse_args()
    started = time.perf_counter()
    vectors, groups, _ = planted(args.n, args.dim, args.seed)
    truth = pairwise(groups)

    def chunks():
        for start in range(0, args.n, CHUNK):
            stop = min(args.n, start + CHUNK)
            yield np.arange(start, stop), vectors[start:stop].astype(np.float32)

    flat = VectorIndex.build(chunks, args.n, args.dim, "flat")
    reference, flat_s = scored_pairs(flat.pair_search(), vectors, args.threshold, 0)
    del flat
    rows = [("exact (flat)", "-", "-", flat_s, reference, 0.0)]
    print(f"flat: {len(reference):,} pairs in {flat_s:.0f}s", flush=True)
    with tempfile.TemporaryDirectory(prefix="lookalike-ondisk-dups-") as work:
        t = time.perf_counter()
        vi = ondisk.OnDiskIndex.build(work, chunks, args.n, args.dim, seed=args.seed)
        build_s = time.perf_counter() - t
        print(f"{vi.meta['factory']} built in {build_s:.0f}s", flush=True)
        for nprobe in args.nprobe:
            for rerank in args.rerank:
                vi.fetch = (lambda ids: (ids, vectors[ids].astype(np.float32))) if rerank else None
                scan = vi.pair_search(rerank or 1)
                pairs, seconds = scored_pairs(scan, vectors, args.threshold, nprobe)
                common = [k for k in pairs if k in reference]
                error = max((abs(pairs[k] - reference[k]) for k in common), default=0.0)
                rows.append((vi.meta["factory"], nprobe, f"{rerank}x" if rerank else "none (PQ)", seconds,
                             pairs, error))
                print(f"nprobe {nprobe} rerank {rerank}: {len(pairs):,} pairs in {seconds:.0f}s", flush=True)
    lines = ["| index | nprobe | re-rank | pair search s | pairs | vs exact: precision | recall "
             "| max similarity error | planted pairs found | other pairs |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for index, nprobe, rerank, seconds, pairs, error in rows:
        same, planted_found = len(pairs.keys() & reference.keys()), len(pairs.keys() & truth)
        lines.append(f"| `{index}` | {nprobe} | {rerank} | {seconds:.0f} | {len(pairs):,} "
                     f"| {same / max(len(pairs), 1):.4f} | {same / max(len(reference), 1):.4f} | {error:.3f} "
                     f"| {planted_found / len(truth):.4f} | {len(pairs) - planted_found:,} |")
    table = "\n".join(lines)
    print("\n" + table)
    if args.no_write:
        return
    note = (f"`python bench/ondisk_duplicates.py --n {args.n}` on {today()}, "
            f"{machine(f'faiss {faiss.__version__}', f'{faiss.omp_get_max_threads()} FAISS threads')}; "
            f"on-disk build {build_s:.0f}s, whole run {time.perf_counter() - started:.0f}s, load average at "
            f"the end {os.getloadavg()[0]:.1f}. Pairs are those scoring at the threshold {args.threshold} "
            "(cosine less density, as `lookalike duplicates`); precision and recall against the exact "
            "search's pairs; planted pairs: any two images of a planted group.")
    write_section(SECTION, f"{note}\n\n{table}")


if __name__ == "__main__":
    main()

"""Search latency and recall of exact vs approximate FAISS indexes on clustered synthetic embeddings.

Run by hand (it is slow at 1M): ``python bench/search.py --sizes 10000,100000,1000000``.
Prints a markdown table and rewrites the "## Search latency and recall" section of docs/benchmarks.md,
so the numbers the index policy in ``lookalike/index/vectors.py`` relies on stay next to the machine
they were measured on.

Why not uniform random vectors: image embeddings have structure (photos of the same kind of thing
group together, in a space of low intrinsic dimension). See ``Space``: with its defaults a vector's
10 nearest neighbours have cosines around 0.75-0.8 and unrelated pairs around 0, as with real photos.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from lookalike.index import vectors

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import DOCS, machine, today, write_section  # noqa: E402

SECTION = "## Search latency and recall"
K = 10


@dataclass
class Row:
    size: int
    index: str
    params: str
    build_s: float
    memory_mib: float
    p50_ms: float
    p95_ms: float
    recall: float


def clustered(n: int, space: Space, rng: np.random.Generator, chunk: int = 50_000) -> Iterator[np.ndarray]:
    """Yield L2-normalised points, chunk by chunk to keep memory flat at 1M."""
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        which = rng.integers(0, len(space.centres), m)
        latent = rng.standard_normal((m, space.latent.shape[0]), dtype=np.float32)
        latent *= space.spreads[which, None]
        latent += space.centres[which]
        x = latent @ space.latent
        x += rng.standard_normal(x.shape, dtype=np.float32) * space.noise
        faiss.normalize_L2(x)
        yield x


@dataclass
class Space:
    """Gaussian clusters in a low-dimensional latent space, linearly embedded in dim dimensions plus noise.

    CNN embeddings have a low intrinsic dimension (tens, not 1280): that is what approximate indexes
    exploit on real photos. Isotropic gaussians in 1280-d have none, their "nearest neighbours" beyond
    the own cluster are noise no index can find, so they would misjudge every approximate index.
    """

    centres: np.ndarray  # (clusters, latent_dim)
    spreads: np.ndarray  # (clusters,) per-cluster standard deviation in latent space
    latent: np.ndarray  # (latent_dim, dim) random embedding
    noise: float  # isotropic noise per output coordinate

    @classmethod
    def random(cls, clusters: int, latent_dim: int, dim: int, rng: np.random.Generator) -> Space:
        return cls(
            centres=rng.standard_normal((clusters, latent_dim), dtype=np.float32),
            spreads=rng.uniform(0.5, 1.2, clusters).astype(np.float32),
            latent=rng.standard_normal((latent_dim, dim), dtype=np.float32) / np.float32(latent_dim**0.5),
            noise=0.05,
        )


def index_mib(index: faiss.Index) -> float:
    """Bytes the index holds in RAM (and on disk): vector codes, ids, graph links, centroids."""
    if isinstance(index, faiss.IndexHNSW):
        links = index.hnsw.neighbors.size() * 4 + index.hnsw.offsets.size() * 8
        return (index.ntotal * index.storage.sa_code_size() + links) / 2**20
    if isinstance(index, faiss.IndexIVF):
        return (index.ntotal * (index.code_size + 8) + index.nlist * index.d * 4) / 2**20
    return index.ntotal * index.d * 4 / 2**20


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def latencies(
    search: Callable[[np.ndarray], np.ndarray], queries: np.ndarray
) -> tuple[list[float], np.ndarray]:
    """Time one query at a time (the interactive case), after a short warm-up."""
    for q in queries[:5]:
        search(q[None])
    times, found = [], []
    for q in queries:
        t = time.perf_counter()
        found.append(search(q[None])[0])
        times.append((time.perf_counter() - t) * 1000)
    return times, np.array(found)


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / K for f, t in zip(found, truth, strict=True)]))


def row(size: int, name: str, params: str, build_s: float, memory: float,
        times: list[float], found: np.ndarray, truth: np.ndarray) -> Row:
    q = statistics.quantiles(times, n=100)
    r = Row(size, name, params, build_s, memory, statistics.median(times), q[94], recall_at_k(found, truth))
    print(f"  {name:9s} {params:28s} build {build_s:7.1f}s  mem {memory:8.0f} MiB  "
          f"p50 {r.p50_ms:7.2f} ms  p95 {r.p95_ms:7.2f} ms  recall@10 {r.recall:.3f}", flush=True)
    return r


def bench_size(n: int, args: argparse.Namespace) -> list[Row]:
    rng = np.random.default_rng(n)
    dim = args.dim
    n_clusters = min(args.clusters, max(10, n // 100))
    space = Space.random(n_clusters, args.latent_dim, dim, rng)
    queries = next(clustered(args.queries, space, rng))
    rows: list[Row] = []
    print(f"\n{n:,} vectors x {dim}, {n_clusters} clusters, {args.queries} single queries, k={K}", flush=True)

    # Exact: the base vectors live only inside the flat index (no second copy at 1M).
    t = time.perf_counter()
    flat = faiss.IndexFlatIP(dim)
    for x in clustered(n, space, rng):
        flat.add(x)
    flat_build, flat_mem = time.perf_counter() - t, index_mib(flat)
    _, truth = flat.search(queries, K)
    times, found = latencies(lambda q: flat.search(q, K)[1], queries)
    rows.append(row(n, "flat", "IndexFlatIP", flat_build, flat_mem, times, found, truth))
    base = faiss.rev_swig_ptr(flat.get_xb(), n * dim).reshape(n, dim)  # a view, not a copy
    sample = base[rng.choice(n, min(n, args.train_per_list * vectors.nlist_for(n)), replace=False)]

    # IVF: one trained coarse quantizer shared by the float and the 8-bit scalar-quantized variants.
    nlist = vectors.nlist_for(n)
    t = time.perf_counter()
    quantizer = faiss.IndexFlatIP(dim)
    ivf = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    ivf.cp.niter = 10
    ivf.train(sample)
    train_s = time.perf_counter() - t
    print(f"  ivf: trained {nlist} lists on {len(sample):,} vectors in {train_s:.1f}s", flush=True)
    for name, make in (("ivf-flat", lambda q: faiss.IndexIVFFlat(q, dim, nlist, faiss.METRIC_INNER_PRODUCT)),
                       ("ivf-sq8", lambda q: faiss.IndexIVFScalarQuantizer(
                           q, dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT))):
        if name == "ivf-sq8" and not args.sq8:
            continue
        t = time.perf_counter()
        index = make(faiss.clone_index(quantizer))
        index.train(sample)  # quantizer already trained: only the scalar quantizer (if any) learns here
        for start in range(0, n, 100_000):
            index.add(base[start:start + 100_000])
        build, mem = train_s + time.perf_counter() - t, index_mib(index)
        for nprobe in args.nprobe:
            index.nprobe = nprobe
            times, found = latencies(lambda q, i=index: i.search(q, K)[1], queries)
            rows.append(row(n, name, f"nlist={nlist} nprobe={nprobe}", build, mem, times, found, truth))
        del index

    if n <= args.hnsw_max:
        t = time.perf_counter()
        hnsw = faiss.IndexHNSWFlat(dim, args.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = args.ef_construction
        for start in range(0, n, 100_000):
            hnsw.add(base[start:start + 100_000])
        build, mem = time.perf_counter() - t, index_mib(hnsw)
        for ef in args.ef_search:
            hnsw.hnsw.efSearch = ef
            times, found = latencies(lambda q: hnsw.search(q, K)[1], queries)
            rows.append(row(n, "hnsw", f"M={args.hnsw_m} efC={args.ef_construction} efS={ef}",
                            build, mem, times, found, truth))
        del hnsw
    return rows


def markdown(rows: list[Row]) -> str:
    lines = ["| vectors | index | parameters | build s | index MiB | p50 ms | p95 ms | recall@10 |",
             "|---:|---|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r.size:,} | {r.index} | {r.params} | {r.build_s:.1f} | {r.memory_mib:.0f} | "
              f"{r.p50_ms:.2f} | {r.p95_ms:.2f} | {r.recall:.3f} |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    ints = lambda s: [int(v) for v in s.split(",")]  # noqa: E731
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=ints, default=[10_000, 100_000, 1_000_000])
    p.add_argument("--dim", type=int, default=1280, help="EfficientNet-B2 feature size")
    p.add_argument("--clusters", type=int, default=3000, help="at most; and at least 100 vectors each")
    p.add_argument("--latent-dim", type=int, default=64, help="intrinsic dimension of the synthetic data")
    p.add_argument("--queries", type=int, default=300)
    p.add_argument("--threads", type=int, default=2, help="FAISS (OpenMP) threads")
    p.add_argument("--nprobe", type=ints, default=[8, 16, 32, 64])
    p.add_argument("--train-per-list", type=int, default=40, help="k-means training points per IVF list")
    p.add_argument("--sq8", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--hnsw-max", type=int, default=100_000, help="largest size to build HNSW at")
    p.add_argument("--hnsw-m", type=int, default=32)
    p.add_argument("--ef-construction", type=int, default=64)
    p.add_argument("--ef-search", type=ints, default=[32, 64, 128])
    p.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = p.parse_args()
    faiss.omp_set_num_threads(args.threads)

    started = time.perf_counter()
    rows = [r for n in args.sizes for r in bench_size(n, args)]
    table = markdown(rows)
    print("\n" + table + f"\n\npeak RSS {peak_rss_gib():.1f} GiB")
    if args.no_write:
        return
    note = (
        f"`python bench/search.py --sizes {','.join(map(str, args.sizes))}` on {today()}, "
        f"{machine(f'faiss {faiss.__version__}', f'{args.threads} FAISS threads')}. Data: dim {args.dim}, "
        f"up to {args.clusters} gaussian "
        f"clusters (>= 100 vectors each) in a {args.latent_dim}-d latent space plus noise, L2-normalised; "
        f"{args.queries} single queries (k={K}), recall@10 against exact search. Index MiB = the index's "
        f"own bytes (codes, ids, graph links, centroids); peak RSS of the whole run "
        f"{peak_rss_gib():.1f} GiB. IVF build time includes k-means training "
        f"({args.train_per_list} points per list, 10 iterations). Total run "
        f"{time.perf_counter() - started:.0f}s; load average at the end {os.getloadavg()[0]:.1f} "
        f"(other jobs on the machine inflate latencies, p95 most)."
        f"\n\nPolicy this chooses (lookalike/index/vectors.py): exact `flat` up to {vectors.FLAT_MAX:,} "
        f"vectors, "
        f"then `ivf` = IVF-SQ8 with ~4*sqrt(n) lists and nprobe={vectors.NPROBE}; HNSW is measured for "
        f"comparison only (slow to build on 2 cores, no removal)."
    )
    write_section(SECTION, f"{note}\n\n{table}")
    print(f"\nwrote {SECTION!r} in {DOCS}")


if __name__ == "__main__":
    main()

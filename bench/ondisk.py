"""The on-disk IVF-PQ layout (lookalike/index/ondisk.py) at millions of synthetic 1280-d vectors.

Run by hand (10M takes about an hour and ~30 GB of disk under --work):
``python bench/ondisk.py --sizes 1000000,10000000``. Prints a markdown table and rewrites the
"## On-disk IVF-PQ layout" section of docs/benchmarks.md.

The vectors are bench/search.py's clustered synthetic embeddings, generated chunk by chunk from a
seeded generator and never held whole (10M x 1280 float32 is 51 GB). One pass over them: a training
sample first (the first vectors; they are drawn i.i.d., so they are a uniform sample), then every
chunk is (a) encoded into the index's segments, (b) scanned exactly against the queries for the
ground truth (a running top-10), (c) appended as float16 to a memory-mapped file, which the search
uses to re-rank candidates (the float16 vectors of the Parquet shards, issue 10). Search runs in a
fresh process that opens the saved index as ``lookalike`` does; its RSS is read from /proc: RssAnon
is memory of its own, RssFile the pages of the mapped lists and float16 file it touched (page cache,
shared and reclaimable). The first row per size is cold: the index files and the float16 file are
dropped from the page cache first (posix_fadvise DONTNEED on those files only).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import drop_cache, machine, today, write_section  # noqa: E402
from search import Space, clustered  # noqa: E402

from lookalike.index import ondisk  # noqa: E402

SECTION = "## On-disk IVF-PQ layout"
K = 10
CHUNK = 50_000


def status() -> dict[str, float]:
    """This process's memory from /proc/self/status, GiB."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
            out[key] = int(value.split()[0]) / 2**20
    return out


def lists_rss() -> float:
    """GiB of the memory-mapped .ivfdata files' pages mapped into this process (/proc/self/smaps)."""
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        if not line[:1].isupper():  # a mapping's header line, not one of its fields
            inside = line.rstrip().endswith(".ivfdata")
        elif inside and line.startswith("Rss:"):
            total += int(line.split()[1])
    return total / 2**20


def du(paths: list[Path]) -> float:
    return sum(p.stat().st_blocks * 512 for p in paths) / 2**30


def build(n: int, args: argparse.Namespace, work: Path) -> dict:
    """Generate, encode, ground-truth and store; save the index in ``work``; return the build's numbers."""
    work.mkdir(parents=True, exist_ok=True)
    for stale in work.glob("*"):
        stale.unlink()
    rng = np.random.default_rng(n)
    space = Space.random(min(args.clusters, max(10, n // 100)), args.latent_dim, args.dim, rng)
    queries = next(clustered(args.queries, space, rng))
    state = rng.bit_generator.state  # the base vectors start here, for every pass

    def stream():
        g = np.random.default_rng()
        g.bit_generator.state = state
        return clustered(n, space, g, CHUNK)

    timings = {"generate": 0.0, "truth": 0.0, "float16": 0.0}
    want = min(n, ondisk.MAX_TRAIN, max(ondisk.TRAIN_PER_LIST * ondisk.nlist_for(n), ondisk.PQ_TRAIN_8BIT))
    t = time.perf_counter()
    parts, have = [], 0
    for x in stream():
        parts.append(x[: want - have])
        have += len(parts[-1])
        if have >= want:
            break
    sample = np.concatenate(parts)
    del parts
    timings["generate"] += time.perf_counter() - t

    store = np.lib.format.open_memmap(work / "vectors.f16.npy", mode="w+", dtype=np.float16,
                                      shape=(n, args.dim))
    top_s = np.full((len(queries), K), -np.inf, dtype=np.float32)
    top_i = np.full((len(queries), K), -1, dtype=np.int64)

    def chunks():
        nonlocal top_s, top_i
        start = 0
        it = stream()
        while True:
            t0 = time.perf_counter()
            x = next(it, None)
            timings["generate"] += time.perf_counter() - t0
            if x is None:
                return
            ids = np.arange(start, start + len(x), dtype=np.int64)
            t0 = time.perf_counter()
            s = queries @ x.T  # (q, chunk)
            part = np.argpartition(-s, K, axis=1)[:, :K]
            cs = np.concatenate([top_s, np.take_along_axis(s, part, 1)], 1)
            ci = np.concatenate([top_i, part + start], 1)
            best = np.argsort(-cs, axis=1)[:, :K]
            top_s, top_i = np.take_along_axis(cs, best, 1), np.take_along_axis(ci, best, 1)
            t1 = time.perf_counter()
            store[start:start + len(x)] = x
            t2 = time.perf_counter()
            timings["truth"] += t1 - t0
            timings["float16"] += t2 - t1
            start += len(x)
            if start % 1_000_000 < CHUNK:
                print(f"    {start:,} encoded, {time.perf_counter() - started:.0f}s", flush=True)
            yield ids, x

    started = time.perf_counter()
    t_train = time.perf_counter()
    vi = ondisk.OnDiskIndex.train(work, sample, n, args.dim)
    train_s = time.perf_counter() - t_train
    del sample
    print(f"  trained {vi.meta['factory']} on {want:,} vectors in {train_s:.0f}s", flush=True)
    segments = vi.encode_segments(chunks())
    t_merge = time.perf_counter()
    vi.merge_segments(segments)
    merge_s = time.perf_counter() - t_merge
    vi.save(work, 1)
    store.flush()
    total = time.perf_counter() - started
    side_work = timings["generate"] + timings["truth"] + timings["float16"]
    np.save(work / "queries.npy", queries)
    np.save(work / "truth.npy", top_i)
    index_files = [p for p in work.glob(f"{ondisk.PREFIX}*")]
    result = {
        "n": n, "factory": vi.meta["factory"], "train_n": want, "train_s": train_s, "merge_s": merge_s,
        "build_s": total - side_work,  # train + encode + merge + save, without data generation
        "index_gib": du(index_files), "ivfdata_gib": du([p for p in index_files if p.suffix == ".ivfdata"]),
        "float16_gib": du([work / "vectors.f16.npy"]), "float32_gib": n * args.dim * 4 / 2**30,
        **{f"{k}_s": v for k, v in timings.items()},
    }
    print(f"  built in {result['build_s']:.0f}s (+{side_work:.0f}s generating, ground truth, float16)",
          flush=True)
    return result


def search(work: Path, args: argparse.Namespace) -> list[dict]:
    """In this (fresh) process: open the saved index, search one query at a time, cold then warm."""
    faiss.omp_set_num_threads(args.threads)
    before = status()
    sidecar = json.loads((work / "vectors.json").read_text())
    t = time.perf_counter()
    vi = ondisk.OnDiskIndex.load(work, sidecar)
    open_s = time.perf_counter() - t
    opened = status()
    mapped = np.load(work / "vectors.f16.npy", mmap_mode="r")
    offset, dim = mapped.offset, mapped.shape[1]
    del mapped
    fd = os.open(work / "vectors.f16.npy", os.O_RDONLY)
    queries, truth = np.load(work / "queries.npy"), np.load(work / "truth.npy")

    def fetch(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows read with pread, as a shard reader would: page cache, not this process's memory."""
        row = dim * 2
        raw = b"".join(os.pread(fd, row, offset + int(i) * row) for i in ids)
        return ids, np.frombuffer(raw, dtype=np.float16).reshape(len(ids), dim).astype(np.float32)

    rows = []
    settings = [(ondisk.NPROBE, ondisk.RERANK, "cold")]
    settings += [(p, r, "warm") for p in args.nprobe for r in args.rerank]
    for nprobe, rerank, cache in settings:
        if cache == "cold":
            drop_cache([*work.glob(f"{ondisk.PREFIX}*"), work / "vectors.f16.npy"])
        vi.fetch = fetch if rerank else None
        times, found = [], []
        for q in queries:
            t = time.perf_counter()
            (hits,) = vi.search(q[None], K, nprobe=nprobe, rerank=rerank or None)
            times.append((time.perf_counter() - t) * 1000)
            found.append(hits.ids)
        recall = float(np.mean([len(set(f.tolist()) & set(t.tolist())) / K
                                for f, t in zip(found, truth, strict=True)]))
        mem = status()
        mem["lists"] = lists_rss()
        rows.append({"nprobe": nprobe, "rerank": rerank, "cache": cache, "p50": statistics.median(times),
                     "p95": statistics.quantiles(times, n=100)[94], "recall": recall,
                     "rss": mem["VmRSS"], "anon": mem["RssAnon"], "file": mem["RssFile"], "hwm": mem["VmHWM"],
                     "lists": mem["lists"],
                     "open_s": open_s, "rss_open": opened["VmRSS"], "anon_open": opened["RssAnon"],
                     "rss_start": before["VmRSS"]})
        r = rows[-1]
        print(f"  nprobe {nprobe:4d} rerank {rerank:3d} {cache}: p50 {r['p50']:6.2f} ms  "
              f"p95 {r['p95']:6.2f} ms  recall@10 {recall:.3f}  RSS {r['rss']:.2f} GiB "
              f"(anon {r['anon']:.2f}, file {r['file']:.2f}, lists {r['lists']:.3f})",
              flush=True)
    return rows


def markdown(results: list[dict]) -> str:
    out = ["| vectors | layout | build s | index GiB on disk | float16 GiB | RSS after open GiB | "
           "nprobe | re-rank | cache | p50 ms | p95 ms | recall@10 | RSS GiB (own / mapped pages) |",
           "|---:|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---|"]
    for b in results:
        for r in b["rows"]:
            rerank = f"{r['rerank']}x" if r["rerank"] else "none (PQ)"
            out.append(f"| {b['n']:,} | `{b['factory']}` | {b['build_s']:.0f} | {b['index_gib']:.2f} | "
                       f"{b['float16_gib']:.1f} | {r['rss_open']:.2f} | {r['nprobe']} | {rerank} | "
                       f"{r['cache']} | "
                       f"{r['p50']:.2f} | {r['p95']:.2f} | {r['recall']:.3f} | "
                       f"{r['rss']:.2f} ({r['anon']:.2f} / {r['file']:.2f}) |")
    return "\n".join(out)


def main() -> None:
    ints = lambda s: [int(v) for v in s.split(",")]  # noqa: E731
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=ints, default=[1_000_000, 10_000_000])
    p.add_argument("--dim", type=int, default=1280)
    p.add_argument("--clusters", type=int, default=3000)
    p.add_argument("--latent-dim", type=int, default=64)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--nprobe", type=ints, default=[16, 32, 64, 128])
    p.add_argument("--rerank", type=ints, default=[0, 10],
                   help="candidates per neighbour re-scored; 0 = PQ only")
    p.add_argument("--work", type=Path, default=Path("/tmp/lookalike-ondisk-bench"))
    p.add_argument("--keep", action="store_true", help="keep the work directory (tens of GB at 10M)")
    p.add_argument("--search-only", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--results", type=Path, help="append each size's numbers to this JSON-lines file")
    p.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = p.parse_args()
    faiss.omp_set_num_threads(args.threads)
    if args.search_only:
        print("ROWS " + json.dumps(search(args.search_only, args)))
        return
    started, results = time.perf_counter(), []
    for n in args.sizes:
        print(f"\n{n:,} vectors x {args.dim}", flush=True)
        work = args.work / str(n)
        b = build(n, args, work)
        child = subprocess.run([sys.executable, __file__, "--search-only", str(work),
                                "--threads", str(args.threads),
                                "--nprobe", ",".join(map(str, args.nprobe)),
                                "--rerank", ",".join(map(str, args.rerank))],
                               capture_output=True, text=True, check=True)
        lines = child.stdout.splitlines()
        print("\n".join(line for line in lines if not line.startswith("ROWS ")), flush=True)
        b["rows"] = json.loads(next(line[5:] for line in lines if line.startswith("ROWS ")))
        results.append(b)
        if args.results:
            with open(args.results, "a") as f:
                f.write(json.dumps(b) + "\n")
        if not args.keep:
            for path in work.glob("*"):
                path.unlink()
            work.rmdir()
    table = markdown(results)
    print("\n" + table)
    if args.no_write:
        return
    note = (f"`python bench/ondisk.py --sizes {','.join(map(str, args.sizes))}` on {today()}, "
            f"{machine(f'faiss {faiss.__version__}', f'{args.threads} FAISS threads')}; "
            f"total run {time.perf_counter() - started:.0f}s, "
            f"load average at the end {os.getloadavg()[0]:.1f}.")
    write_section(SECTION, f"{note}\n\n{table}")


if __name__ == "__main__":
    main()

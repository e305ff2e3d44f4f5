"""What the checksum in vectors.json costs: saving and loading the FAISS file with and without it.

Run by hand: ``python bench/checksum.py`` (1M vectors: about 4 minutes, most of it the IVF build).
Builds the index the product builds for ``--size`` 1280-d vectors (``VectorIndex.build``: IVF with 8-bit
codes and ``nlist_for(n)`` lists beyond 15,000 vectors) from clustered synthetic vectors as
bench/search.py makes them, then times, medians of ``--repeats`` interleaved runs:
- save: ``faiss.write_index`` to a path + fsync (the previous release) vs ``VectorIndex.save`` (CRC-32
  computed in the same pass through a Python writer, sidecar, fsync, renames);
- load: ``faiss.read_index`` from a path (+ the id-set check the previous release made) vs
  ``VectorIndex.load`` (CRC-32 in the same pass through a Python reader, all checks);
- the checksum alone over the file from the page cache, for CRC-32 and the hashlib alternatives.
Writes the "## FAISS file checksum" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
import zlib
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import machine, today, write_section  # noqa: E402
from search import Space, clustered  # noqa: E402

from lookalike.index import vectors  # noqa: E402
from lookalike.index.vectors import INDEX_FILE, VectorIndex  # noqa: E402

SECTION = "## FAISS file checksum"
CHUNK = 1 << 20


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def file_digest(path: Path, algorithm: str) -> None:
    with open(path, "rb") as f:
        if algorithm == "crc32":
            crc = 0
            while chunk := f.read(CHUNK):
                crc = zlib.crc32(chunk, crc)
        else:
            h = hashlib.new(algorithm)
            while chunk := f.read(CHUNK):
                h.update(chunk)


def plain_save(index: faiss.Index, path: Path) -> None:
    faiss.write_index(index, str(path))
    fd = os.open(path, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)


def plain_load(path: Path) -> None:
    VectorIndex(faiss.read_index(str(path)), "ivf").id_checksum()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=1280)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2, help="FAISS (OpenMP) threads")
    p.add_argument("--dir", type=Path, help="where to write the files (default: a temporary folder)")
    p.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = p.parse_args()
    faiss.omp_set_num_threads(args.threads)

    space = Space.random(min(3000, args.size // 100), 64, args.dim, np.random.default_rng(0))

    def chunks():
        rng = np.random.default_rng(1)
        start = 0
        for x in clustered(args.size, space, rng):
            yield np.arange(start, start + len(x), dtype=np.int64), x
            start += len(x)

    started = time.perf_counter()
    index = VectorIndex.build(chunks, args.size, args.dim)
    build_s = time.perf_counter() - started
    print(f"built {index.kind} ({vectors.nlist_for(args.size)} lists) in {build_s:.0f} s", file=sys.stderr)

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        folder = Path(tmp)
        plain_path = folder / "plain.faiss"
        times: dict[str, list[float]] = {k: [] for k in ("plain save", "save", "plain load", "load")}
        for _ in range(args.repeats):  # interleaved, so drift hits both alike
            times["plain save"].append(timed(lambda: plain_save(index.index, plain_path)))
            times["save"].append(timed(lambda: index.save(folder, 1)))
            times["plain load"].append(timed(lambda: plain_load(plain_path)))
            times["load"].append(timed(lambda: VectorIndex.load(folder)))
        size = (folder / INDEX_FILE).stat().st_size
        digests = {}
        for algorithm in ("crc32", "sha1", "sha256", "blake2b", "md5"):
            digests[algorithm] = statistics.median(
                timed(lambda a=algorithm: file_digest(folder / INDEX_FILE, a)) for _ in range(args.repeats)
            )

    med = {k: statistics.median(v) for k, v in times.items()}
    mib = size / 2**20
    lines = [
        "| operation | previous release s | with CRC-32 s | added |",
        "|---|---:|---:|---:|",
        f"| save (write + fsync) | {med['plain save']:.2f} | {med['save']:.2f} | "
        f"{(med['save'] / med['plain save'] - 1) * 100:+.0f}% |",
        f"| load (read + checks) | {med['plain load']:.2f} | {med['load']:.2f} | "
        f"{(med['load'] / med['plain load'] - 1) * 100:+.0f}% |",
        "",
        "| checksum alone over the file (page cache) | s | MiB/s |",
        "|---|---:|---:|",
        *(f"| {a}{' (used)' if a == 'crc32' else ''} | {s:.2f} | {mib / s:.0f} |"
          for a, s in digests.items()),
    ]
    table = "\n".join(lines)
    print("\n" + table)
    if args.no_write:
        return
    note = (
        f"`python bench/checksum.py --size {args.size}` on {today()}, "
        f"{machine(f'faiss {faiss.__version__}', f'{args.threads} FAISS threads')}. The index the product "
        f"builds for {args.size:,} clustered {args.dim}-d vectors (bench/search.py's data): {index.kind}, "
        f"{vectors.nlist_for(args.size)} lists, 8-bit codes, a {mib:,.0f} MiB file, "
        f"built in {build_s:.0f} s. "
        f"Medians of {args.repeats} interleaved repeats, files in the page cache (a cold read adds the "
        f"disk's time to both columns alike). \"Previous release\": `faiss.write_index`/`read_index` on a "
        f"path plus the id-set check; \"with CRC-32\": `VectorIndex.save`/`load`, which compute the "
        f"checksum in the same pass as the write/read through a Python writer/reader, then the sidecar, "
        f"fsyncs and renames. CRC-32 was chosen for speed: it is there to catch damage, not tampering."
    )
    write_section(SECTION, table + "\n\n" + note)


if __name__ == "__main__":
    main()

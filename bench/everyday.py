"""The waits a user feels: re-scanning an unchanged 100k-file tree, a warm query, the CLI's cold start.

Run by hand: ``python bench/everyday.py``. Writes the "## Everyday latency" section of docs/benchmarks.md.
- Re-scan: 100,000 small files on disk, all already in the index (rows written straight into the store
  with random vectors, since embedding 100k photos here takes over an hour and is not what is measured);
  then ``Collection.add`` over the tree, which must embed nothing and never load the model.
- Warm query: the offline model loaded, an index of the near-duplicate set (bench/neardup.py); median
  time of ``search(new image)`` (decode + embed + search) and ``search_id`` (stored vector only).
- Cold start: ``lookalike --help`` and a whole ``lookalike search`` process, medians of a few runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from neardup import make_set  # noqa: E402
from report import machine, today, write_section  # noqa: E402

import lookalike  # noqa: E402
from lookalike.index.store import NewImage, Store  # noqa: E402
from lookalike.index.walk import walk  # noqa: E402

SECTION = "## Everyday latency"
LOOKALIKE = [sys.executable, "-m", "lookalike.cli"]


def make_tree(root: Path, count: int) -> None:
    """``count`` distinct tiny files in folders of 1,000, like a camera roll's year/month folders."""
    payload = (Path(__file__).resolve().parent.parent / "data" / "cat.jpg").read_bytes()
    for i in range(count):
        folder = root / f"{i // 1000:03d}"
        if i % 1000 == 0:
            folder.mkdir(parents=True)
        (folder / f"IMG_{i:06d}.jpg").write_bytes(payload + i.to_bytes(4, "little"))


def fill_store(index: Path, root: Path, dim: int) -> None:
    rng = np.random.default_rng(0)
    with Store.open(index) as store:
        batch = []
        for found in walk([root]):
            vector = rng.standard_normal(dim).astype(np.float32)
            row = NewImage(found.path, found.size, found.mtime, "0" * 64, 451, 300, "JPEG", [], vector)
            batch.append(row)
            if len(batch) == 5000:
                store.upsert(batch)
                batch = []
        store.upsert(batch)


def timed(work, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--model", default="efficientnet-lite2")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_tree(tmp / "tree", args.files)
        fill_store(tmp / "big-index", tmp / "tree", 1280)
        big = lookalike.open(tmp / "big-index")
        big.add([tmp / "tree"])  # first pass also builds and saves the FAISS file (IVF at this size)
        rescans = []
        for _ in range(3):
            reopened = lookalike.open(tmp / "big-index")
            summary = reopened.add([tmp / "tree"])
            assert summary.unchanged == args.files and summary.added == summary.updated == 0
            assert reopened._embedder is None, "an unchanged tree must not load the model"
            rescans.append(summary.seconds)
        lines.append(f"| re-scan of an unchanged {args.files:,}-file tree (library, embeds nothing) "
                     f"| {statistics.median(rescans):.2f} s |")

        items = make_set(tmp / "set")
        collection = lookalike.open(tmp / "index", model=args.model)
        collection.add([tmp / "set"])
        query = tmp / "query.jpg"
        shutil.copy(items[0].path, query)  # not in the index: decoded and embedded on every search
        collection.search(query)  # warm-up: the model is loaded once per process
        by_file = timed(lambda: collection.search(query, k=10), args.repeats * 4)
        some_id = collection.search(items[0].path, k=1).query_id
        by_id = timed(lambda: collection.search_id(some_id, k=10), args.repeats * 4)
        lines.append(f"| warm query, new image file (decode + embed + search, k=10) "
                     f"| {statistics.median(by_file) * 1000:.0f} ms |")
        lines.append(f"| warm query, indexed image (`search_id`, stored vector) "
                     f"| {statistics.median(by_id) * 1000:.1f} ms |")

        env = dict(os.environ, LOOKALIKE_INDEX=str(tmp / "index"))
        help_times = timed(lambda: subprocess.run([*LOOKALIKE, "--help"], capture_output=True, check=True),
                           args.repeats)
        search_times = timed(lambda: subprocess.run([*LOOKALIKE, "search", str(query)], capture_output=True,
                                                    check=True, env=env), args.repeats)
        lines.append(f"| `lookalike --help` (whole process) | {statistics.median(help_times):.2f} s |")
        lines.append(f"| `lookalike search photo.jpg` cold (whole process: import TF, load model, search) "
                     f"| {statistics.median(search_times):.1f} s |")
    body = "| what | median |\n|---|---:|\n" + "\n".join(lines) + (
        f"\n\n`python bench/everyday.py` on {today()}, {machine()}; model {args.model}; "
        f"{args.repeats} runs per cold-start figure, {args.repeats * 4} per warm query; warm queries over "
        f"an index of {len(items)} images (the search itself is a small share: see Search latency)."
    )
    print(body)
    if not args.no_write:
        write_section(SECTION, body)


if __name__ == "__main__":
    main()

"""Peak memory (RSS) of indexing a folder of real JPEGs, by ``--batch-size``, each run in a fresh process.

Run by hand: ``python bench/memory.py``. Makes a folder of distinct JPEGs from data/'s photos (small,
medium and 12-megapixel ones), then for every batch size starts a new Python process that opens a new
index with the offline model and runs ``Collection.add`` on the folder - what ``lookalike index
--batch-size N`` does. The child reports its peak RSS (``ru_maxrss``) after loading the model and after
indexing; the parent polls the child's RSS and kills it past ``--limit-gib`` so a runaway run cannot
take the machine down. Writes the "## Peak memory by batch size" section of docs/benchmarks.md.

``--save FILE`` keeps the results as JSON; ``--compare FILE`` adds those results as a "before" column
(e.g. measured on the previous commit).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import machine, today, write_section  # noqa: E402
from samples import jittered_jpegs  # noqa: E402

SECTION = "## Peak memory by batch size"
SIZES = ((640, 480), (1600, 1200), (4000, 3000))


def child(args: argparse.Namespace) -> None:
    """One indexing run in this process; prints a JSON line with its peak RSS and timing."""
    import lookalike

    collection = lookalike.open(args.index, model=args.model)
    collection.embedder  # noqa: B018 - load the model first, to tell its memory from the batches'
    model_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    summary = collection.add([args.folder], batch_size=args.batch)
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"batch": args.batch, "model_kib": model_kib, "peak_kib": peak_kib,
                      "seconds": seconds, "added": summary.added, "failed": summary.failed}))


def rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run(folder: Path, batch: int, model: str, limit_gib: float) -> dict:
    """Index ``folder`` in a fresh process; kill it past ``limit_gib`` of RSS."""
    with tempfile.TemporaryDirectory() as index:
        command = [sys.executable, __file__, "--child", "--batch", str(batch), "--model", model,
                   "--folder", str(folder), "--index", index]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        polled, killed = 0, False
        while process.poll() is None:
            polled = max(polled, rss_kib(process.pid))
            if polled > limit_gib * 2**20:
                process.kill()
                killed = True
            time.sleep(0.05)
        out, err = process.communicate()
    if killed:
        return {"batch": batch, "killed": True, "peak_kib": polled}
    if process.returncode != 0:
        raise SystemExit(f"batch {batch} failed:\n{err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1])


def gib(kib: float) -> str:
    return f"{kib / 2**20:.2f}"


def markdown(rows: list[dict], before: dict[int, dict], images: int) -> str:
    head = "| batch size | peak RSS GiB | of which model loaded | images/s |"
    rule = "|---:|---:|---:|---:|"
    if before:
        head = "| batch size | before: peak RSS GiB | before: images/s | " + head[len("| batch size | "):]
        rule = "|---:|---:|---:|---:|---:|---:|"
    lines = [head, rule]
    for r in rows:
        cells = [str(r["batch"])]
        if before:
            b = before.get(r["batch"])
            if b is None:
                cells += ["-", "-"]
            elif b.get("killed"):
                cells += [f"> {gib(b['peak_kib'])} (killed)", "-"]
            else:
                cells += [gib(b["peak_kib"]), f"{images / b['seconds']:.1f}"]
        if r.get("killed"):
            cells += [f"> {gib(r['peak_kib'])} (killed)", "-", "-"]
        else:
            cells += [gib(r["peak_kib"]), gib(r["model_kib"]), f"{images / r['seconds']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ints = lambda s: [int(v) for v in s.split(",")]  # noqa: E731
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", type=ints, default=[1, 8, 32, 128, 512, 1024])
    p.add_argument("--counts", type=ints, default=[300, 300, 100],
                   help="JPEGs at 640x480, 1600x1200 and 4000x3000")
    p.add_argument("--model", default="efficientnet-lite2")
    p.add_argument("--limit-gib", type=float, default=12.0, help="kill a run past this RSS")
    p.add_argument("--folder", type=Path, help="reuse (or make once) the JPEG folder here")
    p.add_argument("--save", type=Path, help="write the results as JSON here")
    p.add_argument("--compare", type=Path, help="JSON results of an earlier run: a 'before' column")
    p.add_argument("--results", type=Path, help="write the section from --save'd results, running nothing")
    p.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    p.add_argument("--index", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return

    if args.results:
        rows = json.loads(args.results.read_text())
        report(args, rows, next(r["added"] for r in rows if not r.get("killed")))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.folder or Path(tmp) / "photos"
        images = sorted(folder.rglob("*.jpg")) if folder.exists() else []
        if not images:
            for (width, height), count in zip(SIZES, args.counts, strict=True):
                images += jittered_jpegs(folder / f"{width}x{height}", count, (width, height))
        print(f"{len(images)} JPEGs in {folder}", file=sys.stderr)
        rows = []
        for batch in args.batches:
            rows.append(run(folder, batch, args.model, args.limit_gib))
            print(json.dumps(rows[-1]), file=sys.stderr)
    if args.save:
        args.save.write_text(json.dumps(rows, indent=1))
    report(args, rows, len(images))


def report(args: argparse.Namespace, rows: list[dict], images: int) -> None:
    before = {r["batch"]: r for r in json.loads(args.compare.read_text())} if args.compare else {}
    table = markdown(rows, before, images)
    print("\n" + table)
    if args.no_write:
        return
    from lookalike.embedder.embedder import MAX_BATCH_SIZE

    sizes = ", ".join(f"{n} at {w}x{h}" for (w, h), n in zip(SIZES, args.counts, strict=True))
    note = (
        f"`python bench/memory.py` on {today()}, {machine()}; model {args.model}; {images} distinct "
        f"JPEGs from data/'s photos ({sizes}); each batch size indexed into a new index by "
        f"`Collection.add` (as `lookalike index --batch-size N`) in a fresh process; peak RSS is the "
        f"child's `ru_maxrss`, \"of which model loaded\" its peak right after loading the model, "
        f"before any image. The embedder runs at most `MAX_BATCH_SIZE` = {MAX_BATCH_SIZE} images per "
        f"forward pass and keeps a bounded look-ahead of decoded images, whatever the batch size asked. "
        f"images/s moved with the load other jobs put on the shared machine: the batch sizes from "
        f"MAX_BATCH_SIZE up run the very same passes, so their spread is the noise; peak RSS does not "
        f"depend on it."
    )
    if before:
        note += (f" \"before\": the same runs on the embedder before the cap (one forward pass per batch "
                 f"as asked, a look-ahead of two whole batches), from {args.compare.name}; \"killed\": "
                 f"stopped by this script at --limit-gib.")
    write_section(SECTION, table + "\n\n" + note)


if __name__ == "__main__":
    main()

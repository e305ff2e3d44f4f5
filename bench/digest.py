"""What digesting the bytes decoded costs: indexing's embed step before and after, and peak memory.

Run by hand: ``python bench/digest.py``. Side by side in one run (the machine is shared and noisy):
- embed step images/s, as ``Collection.add`` runs it: before, ``embed_many`` and then each file opened
  again and digested (``digest_file``) as it came out; after, ``embed_many(digests=True)`` digesting the
  bytes decoded in the decoding threads, each file read once. On small JPEGs and 12 MP JPEGs, cold-ish
  (every file's pages dropped from the page cache first, ``posix_fadvise(DONTNEED)``) and warm. Medians of
  interleaved repeats.
- peak RSS of a fresh process decoding one file (``VmHWM``), without and with the digest: a 24 MP
  JPEG, an uncompressed TIFF just under ``READ_WHOLE_MAX`` (read whole into memory) and one just over it
  (decoded from the descriptor, then digested from it).
Writes the "## Digest of the bytes decoded" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import drop_cache, machine, today, write_section  # noqa: E402
from samples import jittered_jpegs  # noqa: E402

from lookalike.embedder import load_embedder  # noqa: E402
from lookalike.embedder.images import READ_WHOLE_MAX  # noqa: E402
from lookalike.index.walk import digest_file  # noqa: E402

SECTION = "## Digest of the bytes decoded"
ROOT = Path(__file__).resolve().parent.parent
PEAK_CHILD = """
import sys
from lookalike.embedder.images import load_image
def peak():  # VmHWM, not ru_maxrss: that is inherited across fork and exec from this 3 GB parent
    return next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:"))
before = peak()
load_image(sys.argv[1], 260, digest=sys.argv[2] == "1")
print(before, peak())
"""


def warm(paths: list[Path]) -> None:
    for path in paths:
        path.read_bytes()


def timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def peak_mib(path: Path, digest: bool) -> tuple[float, float]:
    """Peak RSS of a fresh process before and after decoding ``path``, in MiB."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", PEAK_CHILD, str(path), "1" if digest else "0"],
                         capture_output=True, text=True, check=True, env=env).stdout.split()
    before, after = (int(kib) / 1024 for kib in out)
    return before, after


def tiff_of(path: Path, nbytes: int) -> Path:
    """An uncompressed RGB TIFF of about ``nbytes`` (a photo's smooth content, resized)."""
    side = int((nbytes / 3) ** 0.5)
    with Image.open(sorted((ROOT / "data").glob("*.jpg"))[0]) as photo:
        photo.convert("RGB").resize((side, side)).save(path, compression=None)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="efficientnet-lite2")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--small", type=int, default=300, help="number of 640x480 JPEGs")
    parser.add_argument("--large", type=int, default=32, help="number of 4000x3000 (12 MP) JPEGs")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    embedder = load_embedder(args.model)

    def before(paths: list[Path]) -> None:  # what _BatchWriter.take did: the file opened again, digested
        for path, result in embedder.embed_many(paths, batch_size=args.batch):
            if not isinstance(result, Exception):
                digest_file(path)

    def after(paths: list[Path]) -> None:
        for _ in embedder.embed_many(paths, batch_size=args.batch, digests=True):
            pass

    with tempfile.TemporaryDirectory() as tmp:
        sets = {"640x480": jittered_jpegs(Path(tmp) / "small", args.small, (640, 480)),
                "12 MP": jittered_jpegs(Path(tmp) / "large", args.large, (4000, 3000))}
        after(sets["640x480"][: args.batch])  # warm-up
        times: dict[tuple[str, str, str], list[float]] = {}
        for _ in range(args.repeats):  # interleaved, so drift hits every measurement alike
            for name, paths in sets.items():
                for cache, prepare in (("cold", drop_cache), ("warm", warm)):
                    for way, run in (("before", before), ("after", after)):
                        prepare(paths)
                        times.setdefault((name, cache, way), []).append(timed(lambda r=run, p=paths: r(p)))
        rows = []
        for name, paths in sets.items():
            mib = sum(p.stat().st_size for p in paths) / len(paths) / 2**20
            for cache in ("cold", "warm"):
                ips = {way: len(paths) / statistics.median(times[name, cache, way])
                       for way in ("before", "after")}
                rows.append(f"| {name} ({mib:.2f} MiB each, {len(paths)}) | {cache} | {ips['before']:.1f} "
                            f"| {ips['after']:.1f} | {ips['after'] / ips['before']:.2f} |")

        photo = jittered_jpegs(Path(tmp) / "photo", 1, (6000, 4000), noise=16)[0]  # a photo's grain
        under = tiff_of(Path(tmp) / "under.tif", READ_WHOLE_MAX - 2**20)
        over = tiff_of(Path(tmp) / "over.tif", READ_WHOLE_MAX + 2**20)
        peaks = []
        for label, path in (("24 MP JPEG", photo), ("TIFF just under the cap", under),
                            ("TIFF just over the cap", over)):
            size = path.stat().st_size / 2**20
            (base, plain), (_, digested) = peak_mib(path, False), peak_mib(path, True)
            peaks.append(f"| {label} ({size:.1f} MiB) | {base:.0f} | {plain:.0f} | {digested:.0f} "
                         f"| {digested - plain:+.0f} |")

    body = "\n".join([
        f"Measured {today()} on {machine()}, model {args.model}, batch {args.batch}: "
        "`python bench/digest.py`.",
        "",
        "Indexing's embed step, images/s (medians of interleaved repeats): *before*, `embed_many` and each "
        "file opened again and digested as it came out (what `_BatchWriter.take` did); *after*, "
        "`embed_many(digests=True)`, the digest of the bytes decoded taken in the decoding threads, each "
        "file read once. *cold*: every file's pages dropped from the page cache first.",
        "",
        "| files | cache | before | after | after / before |",
        "|---|---|---|---|---|",
        *rows,
        "",
        f"Peak RSS (MiB) of a fresh process decoding one file for a 260 input, `READ_WHOLE_MAX` = "
        f"{READ_WHOLE_MAX / 2**20:.0f} MiB: after imports, decoded, decoded with the digest.",
        "",
        "| file | imports | decoded | with digest | difference |",
        "|---|---|---|---|---|",
        *peaks,
    ])
    print(body)
    if not args.no_write:
        write_section(SECTION, body)


if __name__ == "__main__":
    main()

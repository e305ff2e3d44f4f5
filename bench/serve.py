"""Load on the HTTP service: search-by-upload throughput and latency, with query batching on vs off.

Run by hand: ``python bench/serve.py``. Builds an index of sample photos with the offline model
(``lookalike index``, a subprocess), starts two servers on 127.0.0.1 (``lookalike serve`` with
``--batching`` and ``--no-batching``, each its own process), then this process drives a fixed number
of concurrent ``POST /search`` uploads at each, alternating rounds so the shared machine's drift hits
both alike, and stops. Reports requests/s and p50/p95 latency per concurrency level, and writes the
"## Service load" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import machine, today, write_section  # noqa: E402
from samples import jittered_jpegs  # noqa: E402

SECTION = "## Service load"
CLI = [sys.executable, "-m", "lookalike.cli"]
STARTUP_S = 300.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(index: Path, options: list[str]) -> tuple[subprocess.Popen, str]:
    """``lookalike serve`` on a free loopback port with ``options``; returns once /health answers."""
    port = free_port()
    command = [*CLI, "serve", "--index", str(index), "--host", "127.0.0.1", "--port", str(port), *options]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with status {process.returncode}: {' '.join(command)}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    raise SystemExit("server did not start")


def drive(url: str, uploads: list[bytes], requests: int, concurrency: int) -> tuple[float, list[float]]:
    """``requests`` uploads from ``concurrency`` threads; (wall seconds, per-request latencies)."""
    with httpx.Client(base_url=url, timeout=120, limits=httpx.Limits(max_connections=concurrency)) as http:

        def one(i: int) -> float:
            started = time.perf_counter()
            upload = {"file": ("q.jpg", uploads[i % len(uploads)])}
            response = http.post("/search", files=upload, params={"k": 10})
            response.raise_for_status()
            return time.perf_counter() - started

        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(one, range(concurrency)))  # warm-up: connections open, threads started
            started = time.perf_counter()
            latencies = list(pool.map(one, range(requests)))
            return time.perf_counter() - started, latencies


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="efficientnet-lite2")
    parser.add_argument("--indexed", type=int, default=60, help="photos in the index")
    parser.add_argument("--requests", type=int, default=160, help="searches per round and setting")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        jittered_jpegs(root / "photos", args.indexed, (800, 600), noise=8)
        queries = [p.read_bytes() for p in jittered_jpegs(root / "queries", 32, (1024, 768), noise=8)]
        index = root / "index"
        subprocess.run([*CLI, "index", str(root / "photos"), "--index", str(index), "--model", args.model,
                        "--quiet"], check=True, stdout=subprocess.DEVNULL)
        servers = {"on": start_server(index, ["--batching"]), "off": start_server(index, ["--no-batching"])}
        try:
            walls: dict[tuple[str, int], list[float]] = {}
            latencies: dict[tuple[str, int], list[float]] = {}
            for _ in range(args.rounds):  # alternate, so drift on a shared machine hits both alike
                for concurrency in args.concurrency:
                    for mode, (_, url) in servers.items():
                        wall, times = drive(url, queries, args.requests, concurrency)
                        walls.setdefault((mode, concurrency), []).append(wall)
                        latencies.setdefault((mode, concurrency), []).extend(times)
                        rate = args.requests / wall
                        print(f"batching {mode:3} x{concurrency:<3} {rate:6.1f} req/s", flush=True)
        finally:
            for process, _ in servers.values():
                process.terminate()
                process.wait(30)

    rows, verdicts = [], []
    for concurrency in args.concurrency:
        measured = {}
        for mode in servers:
            key = (mode, concurrency)
            rate = args.requests / statistics.median(walls[key])
            p50, p95 = (1000 * percentile(latencies[key], q) for q in (50, 95))
            measured[mode] = rate, p95
            rows.append(f"| {concurrency} | {mode} | {rate:.1f} | {p50:.0f} | {p95:.0f} |")
        (rate_on, p95_on), (rate_off, p95_off) = measured["on"], measured["off"]
        change = f"throughput {rate_on / rate_off - 1:+.0%}, p95 {p95_on / p95_off - 1:+.0%}"
        verdicts.append(f"{concurrency} clients: {change}")
    load = os.getloadavg()[0]
    body = "\n".join([
        f"`python bench/serve.py` on {today()}: {machine()}.",
        "",
        f"`lookalike serve` with `{args.model}` over {args.indexed} indexed photos; the load comes from a "
        f"second process on loopback: {args.requests} `POST /search` uploads (1024x768 JPEGs, k=10) per "
        f"round and setting, {args.rounds} rounds alternating the two servers. Requests/s is the median "
        f"round; latencies pool all rounds. Load average {load:.1f} at the end (the machine is shared).",
        "",
        "| concurrent clients | batching | requests/s | p50 ms | p95 ms |",
        "|---|---|---|---|---|",
        *rows,
        "",
        "Batching on vs off: " + "; ".join(verdicts) + ".",
    ])
    print(body)
    if not args.no_write:
        write_section(SECTION, body)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()

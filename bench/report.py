"""What every benchmark shares: the machine it ran on, its own section of docs/benchmarks.md, and the
product's constants set otherwise for a side-by-side "before" run."""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def machine(*extras: str) -> str:
    """CPU, cores, RAM and Python, plus whatever else a benchmark depends on (e.g. its FAISS threads)."""
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return ", ".join([f"{os.cpu_count()} CPUs ({cpu})", f"{ram:.0f} GiB RAM",
                      f"Python {platform.python_version()}", *extras])


def today() -> str:
    return dt.date.today().isoformat()


def write_section(heading: str, body: str) -> None:
    """Replace only this benchmark's section of docs/benchmarks.md; the others belong to other scripts."""
    text = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
    section = f"{heading}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text).rstrip() + "\n"
    else:
        text = text.rstrip() + "\n\n" + section
    DOCS.write_text(text)


@contextmanager
def constants(module: ModuleType, **values: object) -> Iterator[None]:
    """Some of ``module``'s constants set to ``values`` for the block (a mode measured beside the
    product in one run), restored afterwards whatever happens; a name the module lacks is an error."""
    saved = {name: getattr(module, name) for name in values}
    for name, value in values.items():
        setattr(module, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(module, name, value)


def clustered(col, settings: dict[str, object], threshold: float | None = None) -> tuple[list, float]:
    """``col.duplicates(threshold)`` with ``settings`` in place of lookalike.index.duplicates' constants
    (a mode beside the product, on one index), and the seconds it took: each run as a first one, the
    second looks' remembered vectors forgotten."""
    from lookalike.index import duplicates

    col.store.forget_remembered()
    with constants(duplicates, **settings):
        started = time.perf_counter()
        clusters = col.duplicates(threshold)
    return clusters, time.perf_counter() - started

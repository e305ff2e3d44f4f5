"""What every benchmark shares: the machine it ran on, its own section of docs/benchmarks.md, and the
product's constants set otherwise for a side-by-side "before" run."""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
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


@contextmanager
def search_settings(**values: object) -> Iterator[None]:
    """:func:`constants` over the duplicate search's modules (``lookalike.index``'s duplicates, looks,
    geometry, thumbnails, records), each name set in every one that holds it: a constant where it is
    defined, a function also where it is imported and called. A name none of them holds is an error."""
    from lookalike.index import duplicates, geometry, looks, records, thumbnails

    modules = (duplicates, geometry, looks, records, thumbnails)
    unknown = [name for name in values if not any(hasattr(m, name) for m in modules)]
    if unknown:
        raise AttributeError(f"no module of the duplicate search has {', '.join(unknown)}")
    with ExitStack() as stack:
        for module in modules:
            held = {name: value for name, value in values.items() if hasattr(module, name)}
            stack.enter_context(constants(module, **held))
        yield


def clustered(col, settings: dict[str, object], threshold: float | None = None) -> tuple[list, float]:
    """``col.duplicates(threshold)`` with ``settings`` in place of the duplicate search's constants
    (:func:`search_settings`: a mode beside the product, on one index), and the seconds it took: each
    run as a first one, the second looks' remembered vectors forgotten."""
    col.store.forget_remembered()
    with search_settings(**settings):
        started = time.perf_counter()
        clusters = col.duplicates(threshold)
    return clusters, time.perf_counter() - started


def drop_cache(paths: list[Path]) -> None:
    """Evict files from the page cache (written back first), for a cold-cache measurement."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)

"""What every benchmark writes beside its numbers: the machine, and its own section of docs/benchmarks.md."""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
from pathlib import Path

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

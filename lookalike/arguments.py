"""The library's argument checks, in one place: a bad argument is refused as an :class:`InvalidOption`
before any work, where Python would take it silently (``True`` is 1, ``-1`` a SQLite LIMIT of
everything, NaN compares false with every bound) and answer wrongly instead."""

from __future__ import annotations

import numbers
import os

from lookalike.errors import InvalidOption
from lookalike.paths import display


def check_count(name: str, value: object, option: str) -> int:
    """A count asked for (neighbours, matches, labels) is a whole number of 1 or more: ``-5`` gave
    nothing and ``-1`` all but the last, silently. Returned as Python's int (FAISS refuses NumPy's)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise InvalidOption(option, f"{name} must be a whole number of 1 or more, not {value!r}")
    return int(value)


def check_score(name: str, value: object, option: str, low: float, high: float,
                above_low: bool = False) -> float:
    """A score or threshold is a real number in [``low``, ``high``] (``(low, high]`` with ``above_low``):
    not a bool, which Python takes as 0 or 1, nor NaN, which every comparison lets by one way or another."""
    if (isinstance(value, bool) or not isinstance(value, numbers.Real) or not low <= value <= high
            or above_low and value == low):
        interval = f"({low:g}, {high:g}]" if above_low else f"[{low:g}, {high:g}]"
        raise InvalidOption(option, f"{name} must be in {interval}, not {value!r}")
    return float(value)


def check_wait(value: object, option: str = "wait") -> float:
    """How long to wait for another writer is a number of seconds, 0 or more (``inf``: for as long as it
    takes). NaN compared false with the deadline forever: a writer asked to wait NaN seconds for a busy
    index spun at full CPU and never gave up; a negative wait is no wait anyone means."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0:
        raise InvalidOption(option, f"the wait must be a number of seconds, 0 or more, not {value!r}")
    return float(value)


def check_path(value: str | bytes | os.PathLike, option: str) -> str:
    """A path names a file or folder, returned as the ``str`` Python opens (bytes decoded as
    ``os.fsdecode`` does, undecodable bytes as surrogates: ``open()`` takes bytes too, and ``Path(b"...")``
    raised a bare TypeError). Refused as :class:`InvalidOption`:

    - an empty one ("" or b"", say a shell variable that was not set): ``Path("")`` is the current folder,
      so ``lookalike index ""`` indexed whatever folder the shell stood in, silently, and ``--index ""``
      made one there;
    - one holding a NUL byte, which no file name can: the OS call refused it with a bare ValueError.

    Anything that is no path at all (an int, None) stays the TypeError ``os.fsdecode`` raises."""
    name = os.fsdecode(value)
    if not name:
        raise InvalidOption(option, f"{option} is empty: an empty path names no file or folder (for the "
                                    "current folder, give .)")
    if "\0" in name:
        raise InvalidOption(option, f"{option} holds a NUL byte, which no file name can: {display(name)}")
    return name

"""Hostile file names, legal on Linux, and how lookalike.paths.display shows each."""

from __future__ import annotations

import os

# name -> how text output shows it (valid UTF-8, one line, nothing a terminal would act on)
HOSTILE = {
    os.fsdecode(b"bad\xffname.jpg"): "bad\\xffname.jpg",  # not UTF-8: a surrogate in Python
    "two\nlines.jpg": "two\\nlines.jpg",  # would forge a line of output
    "tab\there.jpg": "tab\\there.jpg",
    "esc\x1b[31mred.jpg": "esc\\x1b[31mred.jpg",  # a terminal escape
    "back\rover.jpg": "back\\rover.jpg",  # would overwrite the line on a terminal
    "caf\u00e9 \u65e5\u672c.jpg": "caf\u00e9 \u65e5\u672c.jpg",  # printable Unicode stays as it is
}


def printable_lines(text: str) -> list[str]:
    """``text``'s lines, checked to hold no control character but the newlines between them."""
    lines = text.split("\n")
    for line in lines:
        assert line.isprintable(), repr(line)
    return lines

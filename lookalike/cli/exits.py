"""The exit statuses of ``lookalike``, and which failure gets which: decided here, in one table.

=======  =====================================================================================
status   meaning
=======  =====================================================================================
0        done
1        failed: an expected failure (one line on stderr), or every input of a batch failed
2        usage: a bad option or argument (typer's own parsing errors, and ``InvalidOption``)
3        partial: some inputs of a batch failed, each reported on stderr; every good result was
         printed, indexed, moved or restored
130      interrupted (Ctrl-C)
=======  =====================================================================================

Only :mod:`lookalike.errors` types (and a full disk, whatever the library layer it escapes from) are
expected failures; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import sqlite3

from lookalike.errors import InvalidOption, LookalikeError, ModelMismatchError, NoIndex, NoSpace
from lookalike.paths import display

OK = 0
FAILURE = 1
USAGE = 2
PARTIAL = 3
INTERRUPTED = 130

# First match wins: list a subclass before its base.
STATUSES: tuple[tuple[type[LookalikeError], int], ...] = (
    (InvalidOption, USAGE),
    (LookalikeError, FAILURE),
)

_NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_NO_SPACE_TEXT = ("No space left on device", "Disk quota exceeded")


def status(error: LookalikeError) -> int:
    """The exit status of an expected failure."""
    for kind, code in STATUSES:
        if isinstance(error, kind):
            return code
    return FAILURE


def batch_status(done: int, failed: int) -> int:
    """A batch's status: OK without failures, PARTIAL when some inputs failed, FAILURE when all did."""
    if not failed:
        return OK
    return PARTIAL if done else FAILURE


def message(error: BaseException, command: str | None = None) -> str:
    """``str(error)`` and what to do next (in ``command``, the subcommand that failed), as one printable
    line (a newline in a file name cannot forge a second one)."""
    step = next_step(error, command)
    return display(f"{error}; {step}" if step else str(error))


def next_step(error: BaseException, command: str | None = None) -> str | None:
    """The command line's advice for a failure whose library message cannot give it (it does not know
    the options a command has), or None when the message already says what to do."""
    if isinstance(error, NoIndex):
        from lookalike.cli.output import command as line
        from lookalike.cli.output import index_words

        if command == "undo":  # a new index would not do: the files go back into the one they left
            return ("undo puts files back into the index they were moved from: "
                    f"{line('lookalike', 'undo', 'MANIFEST', '--index', 'DIR')}")
        return f"create one with: {line('lookalike', 'index', 'FOLDER', *index_words(error.directory))}"
    if isinstance(error, ModelMismatchError):
        return "leave out --model (an index remembers its own) or use another --index"
    return None


def expected(error: BaseException) -> LookalikeError | None:
    """The expected failure ``error`` stands for, or None for a bug.

    A full disk is expected wherever it escapes from: the library raises ``NoSpace``, and this last
    resort catches what still comes through as SQLite's "database or disk is full", an OSError
    ENOSPC/EDQUOT, or FAISS's RuntimeError "... No space left on device".
    """
    if isinstance(error, LookalikeError):
        return error
    reason = _disk_full(error)
    if reason:
        return NoSpace(f"{reason}: free some space and run the command again")
    return None


def _disk_full(error: BaseException) -> str | None:
    """What filled up, in a few words, when ``error`` is a full disk or quota; else None."""
    if isinstance(error, sqlite3.OperationalError):
        full = getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "disk is full" in str(error)
        return "no space left on device: the index database could not be written" if full else None
    if isinstance(error, OSError):
        if error.errno not in _NO_SPACE_ERRNOS:
            return None
        what = "disk quota exceeded" if error.errno == errno.EDQUOT else "no space left on device"
        return f"{what}: {display(error.filename)}" if error.filename else what
    if isinstance(error, RuntimeError) and any(text in str(error) for text in _NO_SPACE_TEXT):
        return "no space left on device: the vector index could not be written"  # FAISS's write error
    return None
